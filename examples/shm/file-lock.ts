// FileLock interoperates with flock(1): while this program holds the lock, a shell's
// `flock -n FILE true` fails; once it releases, the shell gets it.
//
//   node --import tsx examples/shm/file-lock.ts
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileLock } from '../../src/index.js'; // in your project: from 'ipckit'

const dir = mkdtempSync(join(tmpdir(), 'ipckit-example-'));
const path = join(dir, 'data.lock');
const shellTries = () => (spawnSync('flock', ['-n', path, 'true']).status === 0 ? 'got it' : 'refused');
try {
  {
    using _lock = await FileLock.lock(path);
    console.log(`while we hold it, flock(1) says: ${shellTries()}`);
  }
  console.log(`after we released it, flock(1) says: ${shellTries()}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
