/**
 * SIGKILL at random points: processes loop on a primitive and count their iterations in a shared
 * word; one of them is killed after a random number of further iterations of the whole group, so
 * the kill lands anywhere in their loops, and a new one takes its place. Used by the Semaphore's
 * test and by kill-chaos.test.ts.
 */
import { watchdog } from '../helpers.js';
import type { Fixture } from './children.js';

/** Resolves once word `index` of `words` reaches `target`. */
export async function wordReaches(words: Int32Array, index: number, target: number): Promise<void> {
  while (Atomics.load(words, index) < target) await new Promise((resolve) => setImmediate(resolve));
}

/** Resolves once `done()` is true, looking again on every turn of the event loop. */
export async function until(done: () => boolean): Promise<void> {
  while (!done()) await new Promise((resolve) => setImmediate(resolve));
}

export interface Churn {
  /** Starts churner number `k` (its replacements get the same `k`). */
  start(k: number): Fixture;
  count: number;
  kills: number;
  words: Int32Array;
  /** The word the churners count their iterations in. */
  iterations: number;
  /** Most iterations of the whole group between two kills (each time a random number up to it). */
  spread: number;
  /** Kill only once every churner runs (by default only the victim need have started). */
  allRunning?: boolean;
  /** Runs after each victim has exited, before its replacement starts. */
  afterKill?(): Promise<void>;
}

/** Kills churners one at a time at random points, `kills` times, replacing each; then kills them all. */
export async function churn({
  start,
  count,
  kills,
  words,
  iterations,
  spread,
  allRunning,
  afterKill,
}: Churn) {
  const churners = Array.from({ length: count }, (_, k) => start(k));
  for (let kill = 0; kill < kills; kill++) {
    const k = kill % count;
    const victim = churners[k]!;
    for (const churner of allRunning ? churners : [victim]) await churner.line('ready');
    // Let the whole group run a random number of iterations more, then kill the victim wherever it is.
    const target = Atomics.load(words, iterations) + 1 + Math.floor(Math.random() * spread);
    await watchdog(wordReaches(words, iterations, target), 20_000, `iteration ${target} (kill ${kill})`);
    victim.child.kill('SIGKILL');
    await watchdog(victim.exited, 10_000, 'the victim exits');
    await afterKill?.();
    churners[k] = start(k);
  }
  for (const churner of churners) churner.child.kill('SIGKILL');
  await watchdog(Promise.all(churners.map((c) => c.exited)), 10_000, 'the churners exit');
}
