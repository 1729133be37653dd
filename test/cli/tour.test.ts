import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isolateRuntimeDir } from '../helpers.js';
import { runCli, runCliJson } from './run-cli.js';

let runtime: ReturnType<typeof isolateRuntimeDir>;
beforeEach(() => {
  runtime = isolateRuntimeDir();
});
afterEach(() => runtime.cleanup());

interface TourJson {
  runtimeDir: string;
  steps: { id: string; figure: { label: string; value: number; unit: string } }[];
  leftBehind: string[];
}

describe('ipckit tour', () => {
  it('runs every step, exits 0, and leaves nothing for `ipckit ls` to show', async () => {
    const run = await runCli(['tour'], { ms: 60_000 });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    for (const title of [
      'Anonymous pipe to a child process',
      'FIFO written by a shell command',
      'Named-pipe server with client processes',
    ]) {
      expect(run.stdout).toContain(title);
    }
    expect(run.stdout).toContain('received the line "hello from sh, pid');
    expect(run.stdout).toContain('Coming next');
    expect(await runCliJson(['ls', '--json'])).toEqual([]);
  });

  it('--json reports one figure per step', async () => {
    const run = await runCli(['tour', '--json'], { ms: 60_000 });
    expect(run.code).toBe(0);
    const result = JSON.parse(run.stdout) as TourJson;
    expect(result.runtimeDir).toBe(runtime.dir);
    expect(result.steps.map((step) => step.id)).toEqual(['anonymous-pipe', 'fifo-shell', 'named-pipe']);
    for (const step of result.steps) expect(step.figure.value).toBeGreaterThan(0);
    expect(result.leftBehind).toEqual([]);
    expect(await runCliJson(['ls', '--json'])).toEqual([]);
  });
});
