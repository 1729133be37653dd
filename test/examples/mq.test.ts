// Runs each program in examples/mq/ as a user would, in its own runtime directory, and checks what
// it prints and that it leaves no queue behind.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { listResources } from '../../src/index.js';
import { isolateRuntimeDir } from '../helpers.js';
import { runExample as runShared } from './run-example.js';

let runtime: ReturnType<typeof isolateRuntimeDir>;
beforeEach(() => {
  runtime = isolateRuntimeDir();
});
afterEach(() => runtime.cleanup());

/** Runs `examples/mq/<file>` (these start several processes: a longer watchdog). */
function runExample(file: string) {
  return runShared('mq', file, 60_000);
}

describe('examples/mq', () => {
  it('work-queue.ts: two worker processes take every job once', {
    timeout: 70_000,
  }, async () => {
    const run = await runExample('work-queue.ts');
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('queued 6 jobs: {"ready":6,');
    const workers = /started workers (\d+) and (\d+)/.exec(run.stdout)?.slice(1);
    expect(workers).toHaveLength(2);
    const sent = [...run.stdout.matchAll(/sent to (\S+) by worker (\d+) \(attempt 1\)/g)];
    expect(sent.map((m) => m[1]).sort()).toEqual(
      ['ada', 'barbara', 'grace', 'ken', 'linus', 'margaret'].map((n) => `${n}@example.com`),
    );
    for (const m of sent) expect(workers).toContain(m[2]);
    expect(run.stdout).toContain('after the workers stopped: {"ready":0,"delayed":0,"inflight":0,"dead":0,');
    expect(listResources()).toEqual([]);
  });

  it('retries-and-dead-letters.ts: a failing message is retried, dead-lettered, then replayed', async () => {
    const run = await runExample('retries-and-dead-letters.ts');
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('queued: 2 (the duplicate of A-1 was dropped)');
    expect(run.stdout).toContain('charged A-1 on attempt 1');
    for (const attempt of [1, 2, 3]) expect(run.stdout).toContain(`attempt ${attempt} of B-2 failed`);
    expect(run.stdout).toContain('dead letters: order-B-2 after 3 attempts');
    expect(run.stdout).toContain('replayed 1 dead letter(s)');
    expect(run.stdout).toContain('charged B-2 on attempt 1 after the replay');
    expect(run.stdout).toContain('left: {"ready":0,"delayed":0,"inflight":0,"dead":0,');
    expect(listResources()).toEqual([]);
  });

  it('delayed-and-bounded.ts: delays, expiry, selective receive and a producer waiting for room', async () => {
    const run = await runExample('delayed-and-bounded.ts');
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    // The offer's 50 ms may be over by the time stats() runs on a loaded machine: 0 or 1 ready.
    expect(run.stdout).toMatch(/now: \{"ready":[01],"delayed":1,/);
    expect(run.stdout).toContain('"stand up and stretch" arrived after its delay (not before)');
    expect(run.stdout).toContain('the expired offer is gone: {"ready":0,"delayed":0,"inflight":0,"dead":0,');
    const took = [...run.stdout.matchAll(/took "(task \d)"/g)].map((m) => m[1]);
    expect(took).toEqual(['task 1', 'task 2', 'task 3', 'task 4']);
    expect(run.stdout.indexOf('task 4 was queued once there was room')).toBeGreaterThan(
      run.stdout.indexOf('took "task 1"'),
    );
    expect(listResources()).toEqual([]);
  });
});
