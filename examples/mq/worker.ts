// A worker process for work-queue.ts: takes email jobs from the shared 'emails' queue, "sends"
// each one, and reports to the 'email-results' queue. SIGTERM stops it gracefully: the running
// jobs finish and are acked, prefetched ones go back to the queue, and the process exits 0.
//
//   started by work-queue.ts; not meant to be run alone
import { MessageQueue } from '../../src/index.js'; // in your project: from 'ipckit'

export interface EmailJob {
  to: string;
  subject: string;
}

export interface EmailResult {
  to: string;
  worker: number;
  attempts: number;
}

const jobs = await MessageQueue.open<EmailJob>('emails');
const results = await MessageQueue.open<EmailResult>('email-results');
const stop = new AbortController();
process.once('SIGTERM', () => stop.abort());

// Returning acks the job; throwing would nack it (and retry it, up to maxAttempts).
await jobs.process(
  async (job, message) => {
    await results.send({ to: job.to, worker: process.pid, attempts: message.attempts });
  },
  { concurrency: 2, types: ['email'], signal: stop.signal },
);
await jobs.close();
await results.close();
