// Without the addon, shared memory and sync fail with ERR_IPC_NATIVE_UNAVAILABLE (and nothing else
// breaks): run a copy of the sources that has no build/ next to it.
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isolateRuntimeDir } from '../helpers.js';

let env: ReturnType<typeof isolateRuntimeDir>;
let copy: string;
beforeEach(() => {
  env = isolateRuntimeDir();
  copy = mkdtempSync(join(tmpdir(), 'ipckit-nobuild-'));
});
afterEach(() => {
  rmSync(copy, { recursive: true, force: true });
  env.cleanup();
});

describe('without the native addon', () => {
  it('reports ERR_IPC_NATIVE_UNAVAILABLE from SharedMemory, Mutex and FileLock', () => {
    const root = process.cwd();
    cpSync(join(root, 'src'), join(copy, 'src'), { recursive: true });
    cpSync(join(root, 'package.json'), join(copy, 'package.json'));
    symlinkSync(join(root, 'node_modules'), join(copy, 'node_modules'));
    const probe = join(copy, 'probe.ts');
    writeFileSync(
      probe,
      `import { FileLock, Mutex, SharedMemory, isIpcError } from './src/index.js';
       const codes: string[] = [];
       for (const attempt of [
         () => SharedMemory.create('x', { size: 8 }),
         () => Mutex.openOrCreate('m'),
         () => FileLock.tryLock(${JSON.stringify(join(copy, 'f.lock'))}),
       ]) {
         try { attempt(); codes.push('no error'); } catch (err) { codes.push(isIpcError(err) ? err.code : String(err)); }
       }
       console.log(codes.join(','));`,
    );
    const result = spawnSync(process.execPath, ['--import', 'tsx', probe], { cwd: copy, encoding: 'utf8' });
    expect(result.stderr).toBe('');
    expect(result.stdout.trim()).toBe(
      'ERR_IPC_NATIVE_UNAVAILABLE,ERR_IPC_NATIVE_UNAVAILABLE,ERR_IPC_NATIVE_UNAVAILABLE',
    );
  });
});
