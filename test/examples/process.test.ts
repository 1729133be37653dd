import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isolateRuntimeDir } from '../helpers.js';
import { runExample } from './run-example.js';

let runtime: ReturnType<typeof isolateRuntimeDir>;
beforeEach(() => {
  runtime = isolateRuntimeDir();
});
afterEach(() => runtime.cleanup());

describe('examples/process', () => {
  it('supervised-workers.ts: a crashed worker is restarted and the same channel reaches the new one', async () => {
    const run = await runExample('process', 'supervised-workers.ts');
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const pids = [...run.stdout.matchAll(/\[upper\] started, pid (\d+)/g)].map((m) => m[1]);
    expect(pids).toHaveLength(2);
    expect(run.stdout).toContain(`hello -> HELLO (pid ${pids[0]})`);
    expect(run.stdout).toContain('[upper] exited (code 1, signal null)');
    expect(run.stdout).toContain('[upper] restart #1 in 100 ms');
    expect(run.stdout).toContain(`again -> AGAIN (pid ${pids[1]})`);
    expect(run.stdout).toContain('answered by the restarted worker');
    expect(run.stdout).toContain('supervisor stopped');
  });

  it('pool.ts: counts primes in worker processes, and reports a task error', async () => {
    const run = await runExample('process', 'pool.ts');
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/pool of 4 workers: \d+, \d+, \d+, \d+/);
    expect(run.stdout).toContain('primes below 2,000,000: 148933');
    expect(run.stdout).toContain('primes below 50,000: 5133');
    expect(run.stdout).toContain('task failed remotely: RangeError: empty range 10..5 (ERR_IPC_REMOTE)');
    expect(run.stdout).toContain('pool closed');
  });
});
