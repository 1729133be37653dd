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
  it.each(['queue', 'queue-again', 'spawn'])(
    '%s: ERR_IPC_SYSTEM caused by EMFILE, then recovers',
    async (what) => {
      const node = [process.execPath, ...fixtureArgs('exhaust-fds-then-report.ts', what)]
        .map((arg) => `'${arg}'`)
        .join(' ');
      const { stdout } = await run('bash', ['-c', `ulimit -n 256 && exec ${node}`], {
        env: process.env,
        timeout: 60_000,
      });
      expect(stdout.trim().split('\n')).toEqual(['FAILED ERR_IPC_SYSTEM EMFILE', 'RECOVERED']);
    },
  );
});
