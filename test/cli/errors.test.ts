import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, existsSync, openSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isolateRuntimeDir, watchdog } from '../helpers.js';
import { BIN, runCli } from './run-cli.js';

let runtime: ReturnType<typeof isolateRuntimeDir>;
beforeEach(() => {
  runtime = isolateRuntimeDir();
});
afterEach(() => runtime.cleanup());

/** One line on stderr (no stack trace), nothing on stdout. */
function expectOneLineError(run: { stdout: string; stderr: string }): string {
  expect(run.stdout).toBe('');
  const lines = run.stderr.split('\n').filter((line) => line !== '');
  expect(lines).toHaveLength(1);
  expect(run.stderr).not.toMatch(/\n\s+at /);
  return lines[0]!;
}

describe('ipckit errors', () => {
  it('an invalid resource name is a bad argument: one line, exit code 2', async () => {
    const run = await runCli(['fifo', 'create', '../escape']);
    expect(run.code).toBe(2);
    const line = expectOneLineError(run);
    expect(line).toMatch(/^ipckit fifo create: .*invalid name.*ERR_IPC_INVALID_NAME/);
  });

  it('an unknown option, command or missing argument exits 2 with one line naming the command', async () => {
    const cases: [string[], RegExp][] = [
      [['ls', '--bogus'], /^ipckit ls: unknown option '--bogus'/],
      [['frobnicate'], /^ipckit: unknown command 'frobnicate'/],
      [['fifo', 'path'], /^ipckit fifo path: missing required argument 'name'/],
      [['fifo', 'create', 'x', '--mode', '999'], /^ipckit fifo create: option .*--mode.* is invalid/],
      [['ls', 'extra'], /^ipckit ls: too many arguments/],
    ];
    for (const [args, pattern] of cases) {
      const run = await runCli(args);
      expect(run.code, args.join(' ')).toBe(2);
      expect(expectOneLineError(run)).toMatch(pattern);
    }
  });

  it('a failure while running exits 1 with one line and the stable error code', async () => {
    const run = await runCli(['fifo', 'rm', 'missing']);
    expect(run.code).toBe(1);
    expect(expectOneLineError(run)).toMatch(/^ipckit fifo rm: fifo 'missing'.*ERR_IPC_NOT_FOUND/);
  });

  it('a reader that closes stdout early (`| head -1`) ends the command quietly, exit code 0', async () => {
    const child = spawn(process.execPath, [BIN, '--help'], { stdio: ['ignore', 'pipe', 'pipe'] });
    // Closed before the process has even started: its first write meets EPIPE.
    child.stdout.destroy();
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    const [code] = await watchdog(once(child, 'close'), 20_000, 'ipckit --help to exit');
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
  });

  it.skipIf(!existsSync('/dev/full'))(
    'output that cannot be written (a full disk) fails with one line and exit code 1, no stack',
    async () => {
      const full = openSync('/dev/full', 'w');
      try {
        for (const args of [['ls'], ['--version']]) {
          const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', full, 'pipe'] });
          let stderr = '';
          child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
            stderr += chunk;
          });
          const [code] = await watchdog(once(child, 'close'), 20_000, `ipckit ${args.join(' ')} to exit`);
          expect(code, args.join(' ')).toBe(1);
          expect(expectOneLineError({ stdout: '', stderr })).toMatch(/^ipckit.*: .*ENOSPC/);
        }
      } finally {
        closeSync(full);
      }
    },
  );

  it('creating a FIFO that exists fails with ERR_IPC_EXISTS', async () => {
    expect((await runCli(['fifo', 'create', 'twice'])).code).toBe(0);
    const run = await runCli(['fifo', 'create', 'twice']);
    expect(run.code).toBe(1);
    expect(expectOneLineError(run)).toContain('ERR_IPC_EXISTS');
  });
});
