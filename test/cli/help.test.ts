import { readFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isolateRuntimeDir } from '../helpers.js';
import { runCli } from './run-cli.js';

let runtime: ReturnType<typeof isolateRuntimeDir>;
beforeEach(() => {
  runtime = isolateRuntimeDir();
});
afterEach(() => runtime.cleanup());

describe('ipckit --help', () => {
  it('lists the commands on stdout and exits 0', async () => {
    const run = await runCli(['--help']);
    expect(run.code).toBe(0);
    expect(run.stderr).toBe('');
    expect(run.stdout).toMatch(/^Usage: ipckit/);
    for (const command of ['tour', 'ls', 'fifo'])
      expect(run.stdout).toMatch(new RegExp(`^  ${command}\\b`, 'm'));
  });

  it('prints the help for a bare `ipckit`, which is not an error', async () => {
    const run = await runCli([]);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^Usage: ipckit/);
  });

  it('has help for every subcommand', async () => {
    for (const args of [['ls'], ['tour'], ['fifo'], ['fifo', 'create'], ['fifo', 'rm'], ['fifo', 'path']]) {
      const run = await runCli([...args, '--help']);
      expect(run.code, args.join(' ')).toBe(0);
      expect(run.stdout).toContain(`Usage: ipckit ${args.join(' ')}`);
    }
  });

  it('prints the version from package.json', async () => {
    const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
    const run = await runCli(['--version']);
    expect(run.code).toBe(0);
    expect(run.stdout.trim()).toBe(version);
  });
});
