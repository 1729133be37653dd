/**
 * A benchmark process on an ipckit MessageQueue, driven by its parent over the fork IPC channel
 * (bench/children/mq-protocol.ts). Roles: producer (sends `count` messages, `window` in flight),
 * consumer (q.process until told to stop, reporting its count), waker (an idle consumer measuring
 * send → receive latency from the timestamp in each body).
 *
 *   [MQ_BENCH_STORE=redis://…] node --import tsx mq-ipckit-worker.ts <role> <queue> <count> <window>
 */
import { MessageQueue, type StoreSpec } from '../../src/index.js';
import { childPeakRssMiB } from '../support/memory.js';
import { type BenchBody, cpuMsSince, nowUs, padBody, reportTo, Window, waitFor } from './mq-protocol.js';

const [role, queueName, countArg, windowArg] = process.argv.slice(2);
const count = Number(countArg);
const window = Number(windowArg);
const report = reportTo(process);
/** CPU is counted from the moment the process is ready: start-up is not the queue's cost. */
let started = process.cpuUsage();

// MQ_BENCH_STORE: the store under measurement (a redis:// URL for the Redis store); SQLite by default.
const q = await MessageQueue.open<BenchBody>(queueName!, {
  store: (process.env.MQ_BENCH_STORE ?? 'sqlite') as StoreSpec,
});

if (role === 'producer') {
  started = process.cpuUsage();
  report({ ev: 'ready' });
  await waitFor(process, 'go');
  const pad = padBody();
  const inFlight = new Window(window);
  for (let i = 0; i < count; i++) await inFlight.add(q.send({ t: nowUs(), i, pad }));
  await inFlight.drain();
  report({ ev: 'done', count, peakRssMiB: childPeakRssMiB(process.pid) ?? 0, cpuMs: cpuMsSince(started) });
} else if (role === 'consumer') {
  let done = 0;
  let reported = 0;
  const stop = new AbortController();
  const timer = setInterval(() => {
    if (done === reported) return;
    reported = done;
    report({ ev: 'progress', count: done });
  }, 10);
  const run = q.process(
    () => {
      done++;
    },
    { concurrency: window, prefetch: Math.max(window * 2, 256), signal: stop.signal },
  );
  started = process.cpuUsage();
  report({ ev: 'ready' });
  await waitFor(process, 'stop');
  stop.abort();
  await run;
  clearInterval(timer);
  report({
    ev: 'done',
    count: done,
    peakRssMiB: childPeakRssMiB(process.pid) ?? 0,
    cpuMs: cpuMsSince(started),
  });
} else if (role === 'waker') {
  started = process.cpuUsage();
  report({ ev: 'ready' });
  for (let i = 0; i < count; i++) {
    const message = await q.receive();
    const latencyUs = nowUs() - message.body.t;
    await message.ack();
    report({ ev: 'latency', us: latencyUs });
  }
  report({ ev: 'done', count, peakRssMiB: childPeakRssMiB(process.pid) ?? 0, cpuMs: cpuMsSince(started) });
} else {
  throw new Error(`mq-ipckit-worker: unknown role ${role}`);
}
await q.close();
process.disconnect?.();
