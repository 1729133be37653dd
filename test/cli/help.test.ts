import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createProgram } from '../../src/cli/main.js';
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
    for (const command of ['tour', 'bench', 'ls', 'inspect', 'gc', 'mq', 'shm', 'fifo', 'serve', 'call'])
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

  it('describes every command and subcommand, with its usage', () => {
    // In process, over the whole command tree, so a command added later cannot lack help.
    const paths: string[] = [];
    const walk = (command: Command, path: string) => {
      for (const sub of command.commands) {
        if (sub.name() === 'help') continue;
        const subPath = `${path} ${sub.name()}`;
        paths.push(subPath);
        expect(sub.description(), subPath).not.toBe('');
        expect(sub.helpInformation(), subPath).toContain(`Usage: ${subPath}`);
        walk(sub, subPath);
      }
    };
    walk(createProgram(), 'ipckit');
    expect(paths).toEqual(expect.arrayContaining(['ipckit mq send', 'ipckit shm dump', 'ipckit gc']));
  });

  it('prints the version from package.json', async () => {
    const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
    const run = await runCli(['--version']);
    expect(run.code).toBe(0);
    expect(run.stdout.trim()).toBe(version);
  });
});
