// A work queue shared by processes: this program starts two worker processes, sends them email
// jobs through the durable 'emails' queue (urgent ones first), and collects what they report on a
// second queue. No server: both queues are SQLite files in the runtime directory.
//
//   node --import tsx examples/mq/work-queue.ts
import { fileURLToPath } from 'node:url';
import { MessageQueue, spawn } from '../../src/index.js'; // in your project: from 'ipckit'
import type { EmailJob, EmailResult } from './worker.js';

const jobs = await MessageQueue.open<EmailJob>('emails');
const results = await MessageQueue.open<EmailResult>('email-results');

// Jobs can be queued before any worker runs: the queue keeps them.
const recipients = ['ada', 'grace', 'linus', 'barbara', 'ken', 'margaret'];
for (const [i, name] of recipients.entries()) {
  const urgent = i % 3 === 0;
  await jobs.send(
    { to: `${name}@example.com`, subject: 'hello' },
    { type: 'email', priority: urgent ? 9 : 0 },
  );
}
console.log(`queued ${recipients.length} jobs: ${JSON.stringify(await jobs.stats())}`);

const workerFile = fileURLToPath(new URL('./worker.ts', import.meta.url));
const workers = [0, 1].map(() => spawn(process.execPath, ['--import', 'tsx', workerFile]));
console.log(`started workers ${workers.map((w) => w.pid).join(' and ')}`);

for (let i = 0; i < recipients.length; i++) {
  const result = await results.receive({ timeout: 30_000 });
  console.log(`sent to ${result.body.to} by worker ${result.body.worker} (attempt ${result.body.attempts})`);
  await result.ack();
}

// SIGTERM lets each worker finish what it runs; then nothing is left in either queue.
for (const worker of workers) await worker.stop({ graceMs: 10_000 });
console.log(`after the workers stopped: ${JSON.stringify(await jobs.stats())}`);
await jobs.close();
await results.close();
await MessageQueue.remove('emails');
await MessageQueue.remove('email-results');
