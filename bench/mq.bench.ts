/**
 * Message queues: ipckit's MessageQueue on its embedded SQLite store and on its Redis store against
 * BullMQ on a local redis-server (the baseline users would pick; the Redis store uses the same
 * server), measured in the same run, interleaved run by run.
 *
 * - end-to-end throughput: 2 producer and 2 consumer processes, 64 B bodies, send → receive → ack;
 * - idle wake-up: a consumer waiting on an empty queue, one message at a time, send → receive;
 * - consumer memory: peak RSS of a consumer draining a queue that holds many messages, against one
 *   draining an almost empty queue (a backlog must not cost consumers memory).
 *
 * The benchmark starts its own redis-server (Debian package `redis-server`) on a free loopback port
 * with its own temporary data directory, and stops it afterwards; without redis-server the BullMQ
 * baseline is skipped with a note. Runs standalone too: `node --import tsx bench/mq.bench.ts [--quick]`.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { MessageQueue } from '../src/index.js';
import { RedisServer, redisUnavailable } from '../test/support/redis-server.js';
import { type BenchBody, type Command, nowUs, padBody, type Report } from './children/mq-protocol.js';
import {
  type CaseResult,
  type Measurement,
  median,
  type RunOptions,
  type Scenario,
  summarize,
} from './scenario.js';
import { CHILD_LOADER, childPath } from './support/peer.js';

type Subject = 'ipckit' | 'redis' | 'bullmq';

const SUBJECT_NAMES: Record<Subject, string> = {
  ipckit: 'ipckit MessageQueue (SQLite, WAL)',
  redis: 'ipckit MessageQueue (Redis store, same redis-server)',
  bullmq: 'BullMQ 6 + redis-server 7 (AOF everysec)',
};

/** One worker process and its reports. */
class WorkerProcess {
  readonly child: ChildProcess;
  readonly ready: Promise<void>;
  readonly done: Promise<Extract<Report, { ev: 'done' }>>;
  #listeners: ((report: Report) => void)[] = [];

  constructor(
    subject: Subject,
    role: string,
    queue: string,
    count: number,
    window: number,
    env: NodeJS.ProcessEnv,
    port?: number,
  ) {
    const file = subject === 'bullmq' ? 'mq-bullmq-worker.ts' : 'mq-ipckit-worker.ts';
    const extra = port === undefined ? [] : [String(port)];
    const args = [role, queue, String(count), String(window), ...extra];
    this.child = fork(childPath(file), args, { execArgv: [...CHILD_LOADER], env, stdio: 'inherit' });
    const exited = once(this.child, 'exit').then(([code, signal]) => {
      throw new Error(`${file} ${role} exited (${code ?? signal}) before it was done`);
    });
    this.child.on('message', (report: Report) => {
      for (const listener of this.#listeners) listener(report);
    });
    this.ready = Promise.race([this.#next('ready').then(() => {}), exited]);
    this.done = Promise.race([this.#next('done') as Promise<Extract<Report, { ev: 'done' }>>, exited]);
    // Failures surface through the awaited promises; these copies must not be unhandled.
    this.ready.catch(() => {});
    this.done.catch(() => {});
  }

  on(listener: (report: Report) => void): void {
    this.#listeners.push(listener);
  }

  send(command: Command): void {
    this.child.send(command);
  }

  #next(ev: Report['ev']): Promise<Report> {
    return new Promise((resolve) => {
      const listener = (report: Report) => {
        if (report.ev !== ev) return;
        this.#listeners = this.#listeners.filter((l) => l !== listener);
        resolve(report);
      };
      this.on(listener);
    });
  }

  async exited(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) await once(this.child, 'exit');
  }
}

// ---- redis-server ---------------------------------------------------------------------------------

/** CPU time (user + system) a process has used so far, in ms, from /proc (0 where unreadable). */
function processCpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return (ticks * 1000) / CLOCK_TICKS;
  } catch {
    return 0;
  }
}

/** USER_HZ: 100 on every Linux this runs on. */
const CLOCK_TICKS = 100;

/**
 * Starts the private redis-server the tests use (test/support/redis-server.ts), with AOF fsync
 * every second: BullMQ's usual durable set-up, comparable to the SQLite store's default (a
 * committed message survives any process crash). A string says why there is none.
 */
async function startRedis(): Promise<RedisServer | string> {
  const unavailable = redisUnavailable();
  if (unavailable) return `${unavailable}: BullMQ baseline skipped`;
  try {
    return await RedisServer.start({ appendfsync: 'everysec' });
  } catch (err) {
    return `redis-server did not start (${(err as Error).message.split('\n')[0]}): BullMQ baseline skipped`;
  }
}

// ---- cases ----------------------------------------------------------------------------------------

interface Env {
  ipckitEnv: NodeJS.ProcessEnv;
  redis: RedisServer | undefined;
}

function workerEnv(env: Env, subject: Subject): NodeJS.ProcessEnv {
  if (subject === 'redis') return { ...env.ipckitEnv, MQ_BENCH_STORE: redisStoreUrl(env) };
  return subject === 'ipckit' ? env.ipckitEnv : process.env;
}

/** The ipckit Redis store on the benchmark's redis-server, the one BullMQ uses. */
function redisStoreUrl(env: Env): `redis://${string}` {
  return `redis://127.0.0.1:${env.redis!.port}?prefix=ipckit-bench`;
}

/** One end-to-end run: 2 producers send `total` messages, 2 consumers take and ack them. */
async function throughputRun(
  env: Env,
  subject: Subject,
  queue: string,
  total: number,
): Promise<{ rate: number; peakRssMiB: number; cpuUsPerMessage: number }> {
  const port = env.redis?.port;
  const e = workerEnv(env, subject);
  const consumers = [0, 1].map(() => new WorkerProcess(subject, 'consumer', queue, 0, 16, e, port));
  const producers = [0, 1].map(
    (i) => new WorkerProcess(subject, 'producer', queue, (total >> 1) + (i ? total & 1 : 0), 256, e, port),
  );
  const all = [...consumers, ...producers];
  try {
    await Promise.all(all.map((w) => w.ready));
    const counts = [0, 0];
    let finish: (end: number) => void = () => {};
    const finished = new Promise<number>((resolve) => {
      finish = resolve;
    });
    consumers.forEach((c, i) => {
      c.on((report) => {
        if (report.ev !== 'progress') return;
        counts[i] = report.count;
        if (counts[0]! + counts[1]! >= total) finish(performance.now());
      });
    });
    const redisCpuBefore = subject !== 'ipckit' && env.redis ? processCpuMs(env.redis.pid!) : 0;
    const start = performance.now();
    for (const p of producers) p.send({ cmd: 'go' });
    const produced = await Promise.all(producers.map((p) => p.done));
    const end = await finished;
    for (const c of consumers) c.send({ cmd: 'stop' });
    const reports = await Promise.all(consumers.map((c) => c.done));
    const redisCpu = subject !== 'ipckit' && env.redis ? processCpuMs(env.redis.pid!) - redisCpuBefore : 0;
    const consumed = reports.reduce((n, r) => n + r.count, 0);
    if (consumed !== total) throw new Error(`${subject}: consumers counted ${consumed} of ${total}`);
    const cpuMs = [...produced, ...reports].reduce((n, r) => n + r.cpuMs, 0) + redisCpu;
    return {
      rate: total / ((end - start) / 1000),
      peakRssMiB: Math.max(...reports.map((r) => r.peakRssMiB)),
      cpuUsPerMessage: (cpuMs * 1000) / total,
    };
  } finally {
    for (const w of all) if (w.child.exitCode === null) w.child.kill('SIGKILL');
    await Promise.all(all.map((w) => w.exited()));
  }
}

/** Idle wake-up: `count` messages one at a time to a waiting consumer; returns latencies in µs. */
async function wakeUpRun(env: Env, subject: Subject, queue: string, count: number): Promise<number[]> {
  const waker = new WorkerProcess(
    subject,
    'waker',
    queue,
    count,
    1,
    workerEnv(env, subject),
    env.redis?.port,
  );
  const latencies: number[] = [];
  let onLatency: () => void = () => {};
  waker.on((report) => {
    if (report.ev === 'latency') {
      latencies.push(report.us);
      onLatency();
    }
  });
  const send = await senderFor(env, subject, queue);
  try {
    await waker.ready;
    const pad = padBody();
    for (let i = 0; i < count; i++) {
      // Let the consumer park on its wake-up before the next message: an idle consumer is the case.
      await new Promise((resolve) => setTimeout(resolve, 5));
      const seen = new Promise<void>((resolve) => {
        onLatency = resolve;
      });
      await send({ t: nowUs(), i, pad });
      await Promise.race([seen, waker.done]);
    }
    await waker.done;
    return latencies;
  } finally {
    await send.close();
    if (waker.child.exitCode === null) waker.child.kill('SIGKILL');
    await waker.exited();
  }
}

type Send = ((body: BenchBody) => Promise<unknown>) & { close(): Promise<void> };

async function senderFor(env: Env, subject: Subject, queue: string): Promise<Send> {
  if (subject !== 'bullmq') {
    const previous = process.env.IPCKIT_DIR;
    process.env.IPCKIT_DIR = env.ipckitEnv.IPCKIT_DIR;
    const q = await MessageQueue.open<BenchBody>(queue, {
      store: subject === 'redis' ? redisStoreUrl(env) : 'sqlite',
    });
    if (previous === undefined) delete process.env.IPCKIT_DIR;
    else process.env.IPCKIT_DIR = previous;
    return Object.assign((body: BenchBody) => q.send(body), { close: () => q.close() });
  }
  const { Queue } = await import('bullmq');
  const q = new Queue<BenchBody>(queue, { connection: { host: '127.0.0.1', port: env.redis!.port } });
  return Object.assign((body: BenchBody) => q.add('m', body, { removeOnComplete: true }), {
    close: () => q.close(),
  });
}

/** Puts `count` messages in the ipckit queue `queue` (SQLite), 1,000 per transaction. */
async function fill(env: Env, queue: string, count: number): Promise<void> {
  const previous = process.env.IPCKIT_DIR;
  process.env.IPCKIT_DIR = env.ipckitEnv.IPCKIT_DIR;
  const q = await MessageQueue.open<BenchBody>(queue);
  if (previous === undefined) delete process.env.IPCKIT_DIR;
  else process.env.IPCKIT_DIR = previous;
  try {
    const pad = padBody();
    for (let sent = 0; sent < count; ) {
      const n = Math.min(1000, count - sent);
      await q.sendBatch(Array.from({ length: n }, (_, k) => ({ body: { t: nowUs(), i: sent + k, pad } })));
      sent += n;
    }
  } finally {
    await q.close();
  }
}

/** Peak RSS of a consumer that drains `drain` messages from `queue` (acking each) and stops. */
async function drainPeakRss(env: Env, queue: string, drain: number): Promise<number> {
  const consumer = new WorkerProcess('ipckit', 'consumer', queue, 0, 16, env.ipckitEnv);
  try {
    await consumer.ready;
    let finish: () => void = () => {};
    const drained = new Promise<void>((resolve) => {
      finish = resolve;
    });
    consumer.on((report) => {
      if (report.ev === 'progress' && report.count >= drain) finish();
    });
    await drained;
    consumer.send({ cmd: 'stop' });
    return (await consumer.done).peakRssMiB;
  } finally {
    if (consumer.child.exitCode === null) consumer.child.kill('SIGKILL');
    await consumer.exited();
  }
}

function rotate<T>(items: readonly T[], by: number): T[] {
  const k = by % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
}

async function run(opts: RunOptions): Promise<CaseResult[]> {
  const ipckitDir = mkdtempSync(join(tmpdir(), 'ipckit-bench-mq-'));
  const env: Env = { ipckitEnv: { ...process.env, IPCKIT_DIR: join(ipckitDir, 'rt') }, redis: undefined };
  opts.progress('mq: starting redis-server for the BullMQ baseline');
  const redis = await startRedis();
  let skipped: string | undefined;
  if (typeof redis === 'string') {
    skipped = redis;
    opts.progress(`mq: ${redis}`);
  } else {
    env.redis = redis;
  }
  const subjects: Subject[] = env.redis ? ['ipckit', 'redis', 'bullmq'] : ['ipckit'];
  const total = opts.quick ? 5_000 : 100_000;
  const wakeUps = opts.quick ? 15 : 200;
  const results: CaseResult[] = [];
  try {
    // -- throughput
    const rates = new Map<Subject, number[]>(subjects.map((s) => [s, []]));
    const cpus = new Map<Subject, number[]>(subjects.map((s) => [s, []]));
    const rss = new Map<Subject, number>(subjects.map((s) => [s, 0]));
    for (let r = 0; r < opts.runs; r++) {
      for (const subject of rotate(subjects, r)) {
        opts.progress(`mq: end-to-end, ${SUBJECT_NAMES[subject]}, run ${r + 1}/${opts.runs}`);
        // BullMQ moves a quarter as many messages (it is several times slower), so that its runs
        // take about as long as ours; rates are per second either way.
        const n = subject === 'bullmq' ? Math.max(opts.quick ? 1000 : 5000, total >> 2) : total;
        const { rate, peakRssMiB, cpuUsPerMessage } = await throughputRun(
          env,
          subject,
          `tp-${subject}-${r}`,
          n,
        );
        rates.get(subject)!.push(rate);
        cpus.get(subject)!.push(cpuUsPerMessage);
        rss.set(subject, Math.max(rss.get(subject)!, peakRssMiB));
      }
    }
    const measure = (s: Subject, values: number[], peak?: number): Measurement =>
      summarize(SUBJECT_NAMES[s], values, peak);
    results.push({
      case: 'end to end, 2 producers + 2 consumers, 64 B, send → receive → ack',
      unit: 'msg/s',
      higherIsBetter: true,
      ours: measure('ipckit', rates.get('ipckit')!, rss.get('ipckit')),
      baselines: subjects.filter((s) => s === 'bullmq').map((s) => measure(s, rates.get(s)!, rss.get(s))),
      notes: `target >= 50k msg/s and >= 3x BullMQ; peak RSS is the largest consumer's${skipped ? `; ${skipped}` : ''}`,
    });

    results.push({
      case: 'CPU per message, end to end (all processes, redis-server included)',
      unit: 'µs',
      higherIsBetter: false,
      ours: measure('ipckit', cpus.get('ipckit')!),
      baselines: subjects.filter((s) => s === 'bullmq').map((s) => measure(s, cpus.get(s)!)),
      notes:
        'user + system CPU of the producers and consumers from ready to done, over the messages moved: what the throughput costs the machine, steadier than msg/s on a shared one',
    });

    if (env.redis) {
      // The Redis store against BullMQ on the same redis-server, with the SQLite store's figure
      // from the same runs beside it.
      results.push({
        case: 'Redis store: end to end, 2 producers + 2 consumers, 64 B, send → receive → ack',
        unit: 'msg/s',
        higherIsBetter: true,
        ours: measure('redis', rates.get('redis')!, rss.get('redis')),
        baselines: (['bullmq', 'ipckit'] as const).map((s) => measure(s, rates.get(s)!, rss.get(s))),
        notes: 'target >= 1.5x BullMQ on the same redis-server (AOF, fsync every second)',
      });
      results.push({
        case: 'Redis store: CPU per message, end to end (all processes, redis-server included)',
        unit: 'µs',
        higherIsBetter: false,
        ours: measure('redis', cpus.get('redis')!),
        baselines: [measure('bullmq', cpus.get('bullmq')!)],
        notes: 'user + system CPU of every process, redis-server included, over the messages moved',
      });
    }

    // -- idle wake-up
    const latencies = new Map<Subject, number[]>(subjects.map((s) => [s, []]));
    for (let r = 0; r < opts.runs; r++) {
      for (const subject of rotate(subjects, r)) {
        opts.progress(`mq: idle wake-up, ${SUBJECT_NAMES[subject]}, run ${r + 1}/${opts.runs}`);
        const samples = await wakeUpRun(env, subject, `wake-${subject}-${r}`, wakeUps);
        latencies.get(subject)!.push(median(samples) / 1000);
      }
    }
    results.push({
      case: 'idle consumer wake-up, send → receive (median)',
      unit: 'ms',
      higherIsBetter: false,
      ours: measure('ipckit', latencies.get('ipckit')!),
      baselines: subjects.filter((s) => s === 'bullmq').map((s) => measure(s, latencies.get(s)!)),
      notes: `target median <= 2 ms; ${wakeUps} messages per run, one at a time${skipped ? `; ${skipped}` : ''}`,
    });

    if (env.redis) {
      results.push({
        case: 'Redis store: idle consumer wake-up, send → receive (median)',
        unit: 'ms',
        higherIsBetter: false,
        ours: measure('redis', latencies.get('redis')!),
        baselines: [measure('bullmq', latencies.get('bullmq')!)],
        notes: `pub/sub wake-up; ${wakeUps} messages per run, one at a time`,
      });
    }

    // -- memory with a backlog: one queue filled once, each run's consumer drains its share of it
    const backlog = opts.quick ? 10_000 : 1_000_000;
    const drain = opts.quick ? 2_000 : 10_000;
    const runs = Math.min(opts.runs, opts.quick ? 1 : 3);
    opts.progress(`mq: filling a queue with ${(backlog + drain * runs).toLocaleString('en-US')} messages`);
    await fill(env, 'mem-full', backlog + drain * runs);
    const withBacklog: number[] = [];
    const empty: number[] = [];
    for (let r = 0; r < runs; r++) {
      opts.progress(`mq: consumer memory, ${backlog.toLocaleString('en-US')} waiting vs none, run ${r + 1}`);
      withBacklog.push(await drainPeakRss(env, 'mem-full', drain));
      await fill(env, `mem-empty-${r}`, drain);
      empty.push(await drainPeakRss(env, `mem-empty-${r}`, drain));
    }
    results.push({
      case: `consumer peak RSS draining ${drain.toLocaleString('en-US')} messages with ${backlog.toLocaleString('en-US')} more waiting`,
      unit: 'MiB',
      higherIsBetter: false,
      ours: summarize(`ipckit consumer, ${backlog.toLocaleString('en-US')} waiting`, withBacklog),
      baselines: [summarize('ipckit consumer, queue otherwise empty', empty)],
      notes: 'a backlog must not cost consumers memory: the ratio should be about 1',
    });
  } finally {
    await env.redis?.stop();
    rmSync(ipckitDir, { recursive: true, force: true });
  }
  return results;
}

const scenario: Scenario = {
  name: 'mq',
  description:
    'Message queues: ipckit MessageQueue on its embedded SQLite store and on its Redis store against BullMQ on a local redis-server, same run',
  run,
};

export default scenario;

// Standalone: `node --import tsx bench/mq.bench.ts [--quick] [--runs N]`.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const quick = process.argv.includes('--quick');
  const runsAt = process.argv.indexOf('--runs');
  const runs = runsAt > 0 ? Number(process.argv[runsAt + 1]) : quick ? 3 : 5;
  const results = await run({ quick, runs, progress: (note) => process.stderr.write(`${note}\n`) });
  for (const r of results) {
    console.log(`\n${r.case} (${r.unit}, ${r.higherIsBetter ? 'higher' : 'lower'} is better)`);
    for (const m of [r.ours, ...r.baselines]) {
      const rssNote = m.peakRssMiB === undefined ? '' : `, peak RSS ${m.peakRssMiB.toFixed(0)} MiB`;
      const ratio =
        m === r.ours
          ? ''
          : `, ipckit is ${(r.higherIsBetter ? r.ours.median / m.median : m.median / r.ours.median).toFixed(2)}x`;
      console.log(
        `  ${m.subject}: median ${m.median.toFixed(2)} [${m.min.toFixed(2)} … ${m.max.toFixed(2)}]${rssNote}${ratio}`,
      );
    }
    if (r.notes) console.log(`  note: ${r.notes}`);
  }
}
