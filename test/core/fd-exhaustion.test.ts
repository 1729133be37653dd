/**
 * A process out of file descriptors (`ulimit -n`): the failure is an IpcError that says EMFILE, not
 * a wrong code or a raw Node error, and once fds are free again the same call works.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fixtureArgs, isolateRuntimeDir } from '../helpers.js';

let env: ReturnType<typeof isolateRuntimeDir>;
beforeEach(() => {
  env = isolateRuntimeDir();
});
afterEach(() => env.cleanup());

const run = promisify(execFile);

describe('out of file descriptors', () => {
  // '-again': once before the fds run out, so that the addon and the store are loaded already and
  // the operation itself runs out; without it, loading them is what fails first.
  it.each([
    'queue',
    'queue-again',
    'spawn',
    'spawn-again',
    'shm',
    'shm-again',
    'shm-channel-again',
    'mutex',
    'mutex-again',
    'fifo',
    'fifo-again',
    'named-pipe-listen-again',
    'named-pipe-connect-again',
  ])('%s: ERR_IPC_SYSTEM caused by EMFILE, then recovers', async (what) => {
    const node = [process.execPath, ...fixtureArgs('exhaust-fds-then-report.ts', what)]
      .map((arg) => `'${arg}'`)
      .join(' ');
    const { stdout } = await run('bash', ['-c', `ulimit -n 128 && exec ${node}`], {
      env: process.env,
      timeout: 60_000,
    });
    expect(stdout.trim().split('\n')).toEqual(['FAILED ERR_IPC_SYSTEM EMFILE', 'RECOVERED']);
  });
});
