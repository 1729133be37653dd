/**
 * Process control: ipckit's Pool against pools built on Node's own `child_process.fork` +
 * `process.send`, of the same size, measured in the same run and interleaved run by run.
 *
 * - pool map, 100k tiny tasks (tasks/s): Pool.map against (a) the plain fork pool, one task per
 *   message with one in flight per worker (how such pools are usually written), and (b) the same
 *   fork pool given ipckit's chunking (same chunk size, two chunks in flight per worker), which
 *   tells what comes from batching and what from the transport.
 * - one task round trip (µs): `pool.run` of one tiny task against one message each way on fork,
 *   for a Pool over pipes (the default) and one over shared memory (`channel: 'shm'`).
 * - spawn to first message (ms): spawn with a pipe channel, child sends one message at once,
 *   against fork + process.send. Both children run under the same tsx loader.
 */
import { fork, type ChildProcess as NodeChild } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { Pool, spawn } from '../src/index.js';
import {
  type CaseResult,
  type Measurement,
  median,
  type RunOptions,
  type Scenario,
  summarize,
  withPeakRss,
} from './scenario.js';
import { childPeakRssMiB } from './support/memory.js';
import { CHILD_LOADER, childArgs, childPath } from './support/peer.js';

const SIZE = Math.min(4, availableParallelism());

/** A pool over fork + process.send: chunks of `chunkSize` items, `window` chunks out per worker. */
class ForkPool {
  readonly #workers: NodeChild[] = [];
  readonly #waiting = new Map<number, (results: number[]) => void>();
  #nextId = 1;

  constructor(size: number) {
    for (let i = 0; i < size; i++) {
      const child = fork(childPath('process-fork-worker.ts'), [], {
        execArgv: [...CHILD_LOADER],
        stdio: 'inherit',
      });
      child.on('message', (message) => {
        const [id, results] = message as [number, number[]];
        const done = this.#waiting.get(id);
        this.#waiting.delete(id);
        done?.(results);
      });
      this.#workers.push(child);
    }
  }

  get pids(): number[] {
    return this.#workers.map((w) => w.pid!);
  }

  #send(worker: NodeChild, items: number[]): Promise<number[]> {
    const id = this.#nextId++;
    return new Promise((resolve) => {
      this.#waiting.set(id, resolve);
      worker.send([id, items]);
    });
  }

  /** Results in input order; each worker keeps `window` chunks out until the input runs out. */
  async map(items: number[], chunkSize: number, window: number): Promise<number[]> {
    const out = new Array<number>(items.length);
    let cursor = 0;
    const lane = async (worker: NodeChild) => {
      while (cursor < items.length) {
        const offset = cursor;
        cursor = Math.min(items.length, offset + chunkSize);
        const results = await this.#send(worker, items.slice(offset, cursor));
        for (let i = 0; i < results.length; i++) out[offset + i] = results[i]!;
      }
    };
    const lanes: Promise<void>[] = [];
    for (let w = 0; w < window; w++) for (const worker of this.#workers) lanes.push(lane(worker));
    await Promise.all(lanes);
    return out;
  }

  /** One task, one message each way. */
  async run(n: number): Promise<number> {
    return (await this.#send(this.#workers[0]!, [n]))[0]!;
  }

  async close(): Promise<void> {
    await Promise.all(
      this.#workers.map(
        (w) =>
          new Promise<void>((resolve) => {
            w.once('exit', () => resolve());
            w.disconnect();
          }),
      ),
    );
  }
}

/** Pool.map's default chunk size for `n` items (see src/process/pool.ts). */
function defaultChunk(n: number): number {
  return Math.max(1, Math.min(1024, Math.ceil(n / (SIZE * 4))));
}

function check(out: number[], n: number, who: string): void {
  if (out.length !== n || out[n - 1] !== (n - 1) * (n - 1) || out[7] !== 49) {
    throw new Error(`${who}: wrong results`);
  }
}

interface Subject {
  name: string;
  measure(): Promise<number>;
}

/** Runs every subject once per run, rotating who goes first; returns their summaries. */
async function interleave(
  label: string,
  subjects: Subject[],
  opts: RunOptions,
): Promise<{ measurements: Measurement[]; values: number[][] }> {
  const values = subjects.map(() => [] as number[]);
  const peaks = subjects.map(() => 0);
  for (let run = 0; run < opts.runs; run++) {
    opts.progress(`process: ${label}, run ${run + 1}/${opts.runs}`);
    for (let j = 0; j < subjects.length; j++) {
      const i = (j + run) % subjects.length;
      const { value, peakRssMiB } = await withPeakRss(() => subjects[i]!.measure());
      values[i]!.push(value);
      peaks[i] = Math.max(peaks[i]!, peakRssMiB);
    }
  }
  return {
    measurements: subjects.map((s, i) => summarize(s.name, values[i]!, Math.round(peaks[i]!))),
    values,
  };
}

function childrenRss(pids: number[]): string {
  const total = pids.reduce((sum, pid) => sum + (childPeakRssMiB(pid) ?? 0), 0);
  return `${Math.round(total)} MiB`;
}

async function poolCases(opts: RunOptions): Promise<CaseResult[]> {
  const n = opts.quick ? 5_000 : 100_000;
  const items = Array.from({ length: n }, (_, i) => i);
  opts.progress(`process: starting a Pool and two fork pools of ${SIZE} workers`);
  const pool = Pool.create<number, number>(childPath('process-square-task.ts'), { size: SIZE });
  // Measured for the round trip only: where the transport, not the task, is the cost.
  const shmPool = Pool.create<number, number>(childPath('process-square-task.ts'), {
    size: SIZE,
    channel: 'shm',
  });
  const naive = new ForkPool(SIZE);
  const chunked = new ForkPool(SIZE);
  try {
    // Warm up: every worker loaded and the JIT settled on both sides.
    for (let i = 0; i < 3; i++) {
      check(await pool.map(items), n, 'Pool');
      check(await chunked.map(items, defaultChunk(n), 2), n, 'fork chunked');
    }
    check(await naive.map(items.slice(0, 20_000), 1, 1), Math.min(n, 20_000), 'fork');
    const throughput = (work: () => Promise<number[]>, who: string) => async () => {
      const start = performance.now();
      check(await work(), n, who);
      return n / ((performance.now() - start) / 1000);
    };
    const map = await interleave(
      `map ${n} tasks`,
      [
        { name: `ipckit Pool.map (${SIZE} workers)`, measure: throughput(() => pool.map(items), 'Pool') },
        {
          name: 'fork + process.send, 1 task per message',
          measure: throughput(() => naive.map(items, 1, 1), 'fork'),
        },
        {
          name: `fork + process.send, chunks of ${defaultChunk(n)}`,
          measure: throughput(() => chunked.map(items, defaultChunk(n), 2), 'fork chunked'),
        },
      ],
      opts,
    );
    const [ours, ...baselines] = map.measurements as [Measurement, ...Measurement[]];

    const calls = opts.quick ? 100 : 500;
    // The first few thousand calls are several times slower on both sides (the JIT settles on the
    // per-call path, which the maps above did not exercise): warm both subjects up first.
    opts.progress('process: warming up the round-trip path');
    for (let i = 0; i < (opts.quick ? 1000 : 6000); i++) {
      await pool.run(i);
      await shmPool.run(i);
      await naive.run(i);
    }
    const latency = (call: (i: number) => Promise<number>) => async () => {
      const samples: number[] = [];
      for (let i = 0; i < calls; i++) {
        const start = performance.now();
        if ((await call(i)) !== i * i) throw new Error('wrong result');
        samples.push((performance.now() - start) * 1000);
      }
      return median(samples);
    };
    const rt = await interleave(
      'one task round trip',
      [
        { name: 'ipckit pool.run', measure: latency((i) => pool.run(i)) },
        { name: 'fork + process.send', measure: latency((i) => naive.run(i)) },
        { name: "ipckit pool.run, channel 'shm'", measure: latency((i) => shmPool.run(i)) },
      ],
      opts,
    );
    const [rtOurs, rtFork, rtShm] = rt.measurements as [Measurement, Measurement, Measurement];
    const rss = `children peak RSS: Pool ${childrenRss(pool.pids)}, fork pools ${childrenRss(naive.pids)} / ${childrenRss(chunked.pids)}`;
    return [
      {
        case: `pool map, ${n / 1000}k tiny tasks, ${SIZE} workers`,
        unit: 'tasks/s',
        higherIsBetter: true,
        ours,
        baselines,
        notes: `target >= 5x the plain fork pool; ${rss}`,
      },
      {
        case: 'one tiny task, round trip',
        unit: 'µs',
        higherIsBetter: false,
        ours: rtOurs,
        baselines: [rtFork],
        notes:
          'pool.run includes the worker\'s "start" notice (what lets a crash fail only the running task); ' +
          'on the 2-vCPU VM a round trip costs several times more when the two processes land on two CPUs than on one ' +
          '(docs/benchmarks.md, "The machine has phases")',
      },
      {
        case: "one tiny task, round trip, channel 'shm'",
        unit: 'µs',
        higherIsBetter: false,
        ours: rtShm,
        baselines: [rtFork],
        notes: "measured in the same rounds as the case above: Pool.create(..., { channel: 'shm' })",
      },
    ];
  } finally {
    await Promise.all([pool.close(), shmPool.close(), naive.close(), chunked.close()]);
  }
}

async function firstMessageCase(opts: RunOptions): Promise<CaseResult> {
  const per = opts.quick ? 1 : 3;
  const ipckit = async () => {
    const samples: number[] = [];
    for (let i = 0; i < per; i++) {
      const start = performance.now();
      const child = spawn<string>(process.execPath, childArgs('process-first-message-ipckit.ts'), {
        channel: 'pipe',
      });
      if ((await child.channel.receive()) !== 'hello') throw new Error('ipckit child: wrong first message');
      samples.push(performance.now() - start);
      await child.exited;
    }
    return median(samples);
  };
  const forked = async () => {
    const samples: number[] = [];
    for (let i = 0; i < per; i++) {
      const start = performance.now();
      const child = fork(childPath('process-first-message-fork.ts'), [], {
        execArgv: [...CHILD_LOADER],
        stdio: 'inherit',
      });
      const first = await new Promise<unknown>((resolve) => child.once('message', resolve));
      if (first !== 'hello') throw new Error('fork child: wrong first message');
      samples.push(performance.now() - start);
      await new Promise((resolve) => child.once('exit', resolve));
    }
    return median(samples);
  };
  const { measurements } = await interleave(
    'spawn to first message',
    [
      { name: "ipckit spawn({ channel: 'pipe' })", measure: ipckit },
      { name: 'fork + process.send', measure: forked },
    ],
    opts,
  );
  const [ours, ...baselines] = measurements as [Measurement, ...Measurement[]];
  return {
    case: 'spawn to first message',
    unit: 'ms',
    higherIsBetter: false,
    ours,
    baselines,
    notes:
      'both children are plain node (the suite runs transpiled); the ipckit child imports the whole public entry',
  };
}

const scenario: Scenario = {
  name: 'process',
  description: `Process pool (Pool.map, pool.run) and spawn latency against child_process.fork + process.send, ${SIZE} workers`,
  async run(opts) {
    return [...(await poolCases(opts)), await firstMessageCase(opts)];
  },
};

export default scenario;
