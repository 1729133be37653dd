import { spawn } from 'node:child_process';
import { existsSync, lstatSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Fifo } from '../../src/index.js';
import { isolateRuntimeDir, watchdog } from '../helpers.js';
import { BIN, runCli, runCliJson } from './run-cli.js';

let runtime: ReturnType<typeof isolateRuntimeDir>;
beforeEach(() => {
  runtime = isolateRuntimeDir();
});
afterEach(() => runtime.cleanup());

describe('ipckit fifo', () => {
  it('path prints the path in the runtime directory, as text or JSON', async () => {
    const run = await runCli(['fifo', 'path', 'logs']);
    expect(run.code).toBe(0);
    expect(run.stdout).toBe(`${join(runtime.dir, 'logs.fifo')}\n`);
    expect(await runCliJson(['fifo', 'path', 'logs', '--json'])).toEqual({
      kind: 'fifo',
      name: 'logs',
      path: join(runtime.dir, 'logs.fifo'),
    });
  });

  it('create makes a FIFO with the requested mode and prints its path; rm removes it', async () => {
    const run = await runCli(['fifo', 'create', 'jobs', '--mode', '640']);
    expect(run.code).toBe(0);
    const path = run.stdout.trim();
    const stat = lstatSync(path);
    expect(stat.isFIFO()).toBe(true);
    expect(stat.mode & 0o777).toBe(0o640);

    const rm = await runCli(['fifo', 'rm', 'jobs']);
    expect(rm.code).toBe(0);
    expect(() => lstatSync(path)).toThrow(/ENOENT/);
    expect(await runCliJson(['ls', '--json'])).toEqual([]);
    expect((await runCli(['fifo', 'rm', '--force', 'jobs'])).code).toBe(0);
  });

  it('a create that fails (an unsafe .kept) leaves nothing; an rm that fails keeps the FIFO kept', async () => {
    const outside = mkdtempSync(join(runtime.dir, '..', 'kept-'));
    Fifo.path('k'); // makes the runtime directory
    symlinkSync(outside, join(runtime.dir, '.kept'));
    const created = await runCli(['fifo', 'create', 'k']);
    expect(created.code).toBe(1);
    expect(created.stderr).toMatch(/ERR_IPC_UNSAFE_PATH/);
    expect(existsSync(join(runtime.dir, 'k.fifo'))).toBe(false);
    expect(await runCliJson(['ls', '--json'])).toEqual([]);
    rmSync(join(runtime.dir, '.kept'));

    // A file where a kept FIFO was: rm refuses it, and the mark stays, so gc leaves it too.
    expect((await runCli(['fifo', 'create', 'j'])).code).toBe(0);
    rmSync(join(runtime.dir, 'j.fifo'));
    writeFileSync(join(runtime.dir, 'j.fifo'), 'x');
    expect((await runCli(['fifo', 'rm', 'j'])).code).toBe(1);
    expect(readdirSync(join(runtime.dir, '.kept'))).toHaveLength(1);
  });

  it('a shell writes into a FIFO found with `ipckit fifo path`, and a reader gets the line', async () => {
    expect((await runCli(['fifo', 'create', 'shell'])).code).toBe(0);
    const lines = await Fifo.receiver<string>('shell', { format: 'lines' });
    try {
      const sh = spawn(
        'sh',
        ['-c', 'echo "hi from sh" > "$("$0" "$1" fifo path shell)"', process.execPath, BIN],
        {
          stdio: 'ignore',
        },
      );
      const exited = new Promise((resolve) => sh.once('exit', resolve));
      expect(await lines.receive({ timeout: 15_000 })).toBe('hi from sh');
      expect(await watchdog(exited, 15_000, 'the shell to exit')).toBe(0);
    } finally {
      await lines.close();
    }
  });
});
