#!/usr/bin/env node
// Builds the native addon from source with npm's bundled node-gyp.
// When the running Node ships its headers (include/node), pass --nodedir so nothing is downloaded.
// A failed build does not fail `npm install`: pipes, sockets and queues work without the addon,
// and shared memory / sync then report ERR_IPC_NATIVE_UNAVAILABLE.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const nodePrefix = join(dirname(process.execPath), '..');

function findNodeGyp() {
  const candidates = [];
  if (process.env.npm_execpath) {
    candidates.push(
      join(dirname(process.env.npm_execpath), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
    );
  }
  candidates.push(
    join(nodePrefix, 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  );
  try {
    candidates.push(createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js'));
  } catch {}
  return candidates.find((p) => existsSync(p));
}

const nodeGyp = findNodeGyp();
if (!nodeGyp) {
  console.warn('ipckit: node-gyp not found; the native addon was not built (shm/sync unavailable).');
  process.exit(0);
}
const args = [nodeGyp, 'rebuild', '--silent'];
if (existsSync(join(nodePrefix, 'include', 'node', 'node_api.h'))) args.push(`--nodedir=${nodePrefix}`);
const result = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
if (result.status !== 0) {
  console.warn('ipckit: the native addon failed to build; shm/sync will report ERR_IPC_NATIVE_UNAVAILABLE.');
}
process.exit(0);
