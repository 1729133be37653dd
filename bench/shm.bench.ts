/**
 * Shared memory: a counter shared by two processes, kept in a segment (Atomics.add, or a plain
 * increment under a Mutex) against the same counter kept by a parent that children update with
 * `process.send` (the usual Node way); and the cost of a segment's whole life (create, touch,
 * close, unlink) against Python's multiprocessing.shared_memory. Baselines run in the same run.
 * Runnable alone: `npm run bench -- --only shm [--quick]`.
 */
import { Event, Mutex, SharedMemory } from '../src/index.js';
import {
  type CaseResult,
  type Measurement,
  type RunOptions,
  ratio,
  type Scenario,
  summarize,
} from './scenario.js';
import { hasPython, inPrivateRuntimeDir, runPython, startLineChild } from './support/sync-procs.js';

interface CounterRun {
  opsPerSec: number;
  childRssMiB: number;
}

/** Two children add `iterations` each to word 0 of a segment, by Atomics or under a Mutex. */
async function segmentCounter(mode: 'atomics' | 'mutex', iterations: number): Promise<CounterRun> {
  const segment = SharedMemory.create('bench-counter', { size: 64 });
  const mutex = Mutex.create('bench-lock');
  const go = Event.create('bench-go');
  try {
    const children = [0, 1].map(() => startLineChild('shm-count.ts', [mode, String(iterations)]));
    for (const child of children) await child.line('ready');
    go.set();
    const fields = (await Promise.all(children.map((child) => child.line('done')))).map((line) =>
      line.split(' ').slice(1).map(Number),
    );
    await Promise.all(children.map((child) => child.exited));
    const total = new Int32Array(segment.buffer)[0]!;
    if (total !== 2 * iterations) throw new Error(`segment counter is ${total}, expected ${2 * iterations}`);
    const seconds = (Math.max(...fields.map((f) => f[1]!)) - Math.min(...fields.map((f) => f[0]!))) / 1000;
    return { opsPerSec: total / seconds, childRssMiB: Math.max(...fields.map((f) => f[2]! / 1024)) };
  } finally {
    for (const resource of [segment, mutex, go]) {
      resource.close();
      resource.unlink();
    }
  }
}

/** Two children send `iterations` '+' messages each; this process owns the counter. */
async function processSendCounter(iterations: number): Promise<CounterRun> {
  const children = [0, 1].map(() => startLineChild('shm-count.ts', ['send', String(iterations)], true));
  let count = 0;
  let lastAt = 0;
  const all = new Promise<void>((resolve) => {
    for (const { child } of children) {
      child.on('message', (message) => {
        if (message !== '+') return;
        count++;
        if (count === 2 * iterations) {
          lastAt = performance.timeOrigin + performance.now();
          resolve();
        }
      });
    }
  });
  for (const child of children) await child.line('ready');
  for (const { child } of children) child.send('go');
  const fields = (await Promise.all(children.map((child) => child.line('done')))).map((line) =>
    line.split(' ').slice(1).map(Number),
  );
  await all;
  for (const { child } of children) if (child.connected) child.disconnect();
  await Promise.all(children.map((child) => child.exited));
  const seconds = (lastAt - Math.min(...fields.map((f) => f[0]!))) / 1000;
  return { opsPerSec: count / seconds, childRssMiB: Math.max(...fields.map((f) => f[2]! / 1024)) };
}

async function counters(opts: RunOptions): Promise<CaseResult[]> {
  const iterations = opts.quick ? 30_000 : 500_000;
  const sendIterations = opts.quick ? 10_000 : 200_000;
  const atomics: CounterRun[] = [];
  const locked: CounterRun[] = [];
  const send: CounterRun[] = [];
  for (let run = 0; run < opts.runs; run++) {
    opts.progress(`shm: shared counter, run ${run + 1}/${opts.runs}`);
    atomics.push(await segmentCounter('atomics', iterations));
    locked.push(await segmentCounter('mutex', iterations));
    send.push(await processSendCounter(sendIterations));
  }
  const rss = (list: CounterRun[]) => Math.round(Math.max(...list.map((r) => r.childRssMiB)));
  const baseline = summarize(
    'process.send to the process that owns the counter',
    send.map((r) => r.opsPerSec),
    rss(send),
  );
  const results: CaseResult[] = [
    {
      case: 'shared counter, 2 processes, Atomics.add on a segment',
      unit: 'ops/s',
      higherIsBetter: true,
      ours: summarize(
        'ipckit SharedMemory + Atomics.add',
        atomics.map((r) => r.opsPerSec),
        rss(atomics),
      ),
      baselines: [baseline],
    },
    {
      case: 'shared counter, 2 processes, plain increment under a Mutex',
      unit: 'ops/s',
      higherIsBetter: true,
      ours: summarize(
        'ipckit SharedMemory + Mutex lockSync()',
        locked.map((r) => r.opsPerSec),
        rss(locked),
      ),
      baselines: [baseline],
    },
  ];
  for (const result of results) {
    result.notes =
      `${iterations.toLocaleString('en-US')} increments per process (process.send: ` +
      `${sendIterations.toLocaleString('en-US')}), exact total checked; peak RSS is the children's; ` +
      `vs process.send ${ratio(result, baseline).toFixed(1)}x`;
  }
  return results;
}

function segmentLifecycleUs(cycles: number): number {
  const start = process.hrtime.bigint();
  for (let i = 0; i < cycles; i++) {
    const segment = SharedMemory.create(`bench-cycle-${i % 8}`, { size: 4096 });
    new Uint8Array(segment.buffer)[0] = 1;
    segment.close();
    segment.unlink();
  }
  return Number(process.hrtime.bigint() - start) / cycles / 1000;
}

function pythonLifecycleUs(cycles: number): number {
  const out = runPython(`
from multiprocessing import shared_memory
import time, os
n = ${cycles}
t = time.perf_counter()
for i in range(n):
    s = shared_memory.SharedMemory(name=f"ipckit-bench-py-{os.getpid()}-{i % 8}", create=True, size=4096)
    s.buf[0] = 1
    s.close()
    s.unlink()
print((time.perf_counter() - t) / n * 1e6)`);
  return Number(out.trim());
}

async function lifecycle(opts: RunOptions): Promise<CaseResult> {
  const cycles = opts.quick ? 300 : 5000;
  const ours: number[] = [];
  const python: number[] = [];
  const withPython = hasPython();
  for (let run = 0; run < opts.runs; run++) {
    opts.progress(`shm: segment life cycle, run ${run + 1}/${opts.runs}`);
    ours.push(segmentLifecycleUs(cycles));
    if (withPython) python.push(pythonLifecycleUs(cycles));
  }
  const baselines: Measurement[] = withPython
    ? [summarize('Python multiprocessing.shared_memory (with its resource tracker)', python)]
    : [];
  return {
    case: 'segment life cycle: create 4 KiB, write, close, unlink',
    unit: 'µs',
    higherIsBetter: false,
    ours: summarize('ipckit SharedMemory (header, registry manifest)', ours),
    baselines,
    notes: 'ipckit writes a registry manifest per named segment (for ipckit ls / gc)',
  };
}

async function run(opts: RunOptions): Promise<CaseResult[]> {
  return inPrivateRuntimeDir(async () => [...(await counters(opts)), await lifecycle(opts)]);
}

const scenario: Scenario = {
  name: 'shm',
  description: 'Shared counter through a segment vs process.send; segment life cycle vs Python',
  run,
};
export default scenario;
