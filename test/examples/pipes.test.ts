import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { listResources } from '../../src/index.js';
import { isolateRuntimeDir } from '../helpers.js';
import { runExample } from './run-example.js';

let runtime: ReturnType<typeof isolateRuntimeDir>;
beforeEach(() => {
  runtime = isolateRuntimeDir();
});
afterEach(() => runtime.cleanup());

describe('examples/pipes', () => {
  it('parent-child.ts: the child squares the jobs it is sent and exits when the parent closes', async () => {
    const run = await runExample('pipes', 'parent-child.ts');
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('job 0: 3² = 9');
    expect(run.stdout).toContain('job 1: 7² = 49');
    expect(run.stdout).toContain('job 2: 12² = 144');
    const childPid = /spawned child (\d+)/.exec(run.stdout)?.[1];
    expect(childPid).toBeDefined();
    expect(run.stdout).toContain(`(computed by pid ${childPid})`);
    expect(run.stdout).toContain('child exited with code 0');
  });

  it('fifo-shell-writer.ts: lines a shell writes arrive in order, and the FIFO is removed', async () => {
    const run = await runExample('pipes', 'fifo-shell-writer.ts');
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const received = run.stdout
      .split('\n')
      .filter((line) => line.startsWith('received line: '))
      .map((line) => line.slice('received line: '.length));
    expect(received).toEqual(['alpha', 'beta', 'gamma']);
    expect(run.stdout).toContain('shell exited with code 0');
    expect(listResources()).toEqual([]);
  });

  it('named-pipe-echo.ts: a client process gets each word echoed back, and the server cleans up', async () => {
    const run = await runExample('pipes', 'named-pipe-echo.ts');
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    for (const word of ['hello', 'named', 'pipe']) {
      expect(run.stdout).toContain(`server echoes: ${word}`);
      expect(run.stdout).toContain(`client got: ${word.toUpperCase()}`);
    }
    expect(run.stdout).toContain('client exited with code 0');
    expect(listResources()).toEqual([]);
  });
});
