import { spawn } from 'node:child_process';
import { lstatSync } from 'node:fs';
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
