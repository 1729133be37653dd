/**
 * The baseline users would pick: a BullMQ process on a local redis-server, in the same roles and
 * speaking the same protocol as mq-ipckit-worker.ts. Jobs are removed on completion (as a
 * long-running BullMQ deployment is configured), so Redis memory stays flat like the SQLite file.
 *
 *   node --import tsx mq-bullmq-worker.ts <role> <queue> <count> <window> <redis port>
 */
import { Queue, Worker } from 'bullmq';
import { childPeakRssMiB } from '../support/memory.js';
import { type BenchBody, cpuMsSince, nowUs, padBody, reportTo, Window, waitFor } from './mq-protocol.js';

const [role, queueName, countArg, windowArg, portArg] = process.argv.slice(2);
const count = Number(countArg);
const window = Number(windowArg);
const connection = { host: '127.0.0.1', port: Number(portArg) };
const report = reportTo(process);
/** CPU is counted from the moment the process is ready: start-up is not the queue's cost. */
let started = process.cpuUsage();
const jobOptions = { removeOnComplete: true, removeOnFail: true };

if (role === 'producer') {
  const queue = new Queue<BenchBody>(queueName!, { connection });
  await queue.waitUntilReady();
  started = process.cpuUsage();
  report({ ev: 'ready' });
  await waitFor(process, 'go');
  const pad = padBody();
  const inFlight = new Window(window);
  for (let i = 0; i < count; i++) await inFlight.add(queue.add('m', { t: nowUs(), i, pad }, jobOptions));
  await inFlight.drain();
  report({ ev: 'done', count, peakRssMiB: childPeakRssMiB(process.pid) ?? 0, cpuMs: cpuMsSince(started) });
  await queue.close();
} else if (role === 'consumer') {
  let done = 0;
  let reported = 0;
  const timer = setInterval(() => {
    if (done === reported) return;
    reported = done;
    report({ ev: 'progress', count: done });
  }, 10);
  const worker = new Worker<BenchBody>(
    queueName!,
    async () => {
      done++;
    },
    { connection, concurrency: window },
  );
  await worker.waitUntilReady();
  started = process.cpuUsage();
  report({ ev: 'ready' });
  await waitFor(process, 'stop');
  await worker.close();
  clearInterval(timer);
  report({
    ev: 'done',
    count: done,
    peakRssMiB: childPeakRssMiB(process.pid) ?? 0,
    cpuMs: cpuMsSince(started),
  });
} else if (role === 'waker') {
  let seen = 0;
  let finished: () => void = () => {};
  const allSeen = new Promise<void>((resolve) => {
    finished = resolve;
  });
  const worker = new Worker<BenchBody>(
    queueName!,
    async (job) => {
      report({ ev: 'latency', us: nowUs() - job.data.t });
      if (++seen === count) finished();
    },
    { connection, concurrency: 1 },
  );
  await worker.waitUntilReady();
  started = process.cpuUsage();
  report({ ev: 'ready' });
  await allSeen;
  await worker.close();
  report({ ev: 'done', count, peakRssMiB: childPeakRssMiB(process.pid) ?? 0, cpuMs: cpuMsSince(started) });
} else {
  throw new Error(`mq-bullmq-worker: unknown role ${role}`);
}
process.disconnect?.();
