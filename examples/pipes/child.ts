// The child of parent-child.ts: takes the channel its parent gave it, squares each number it is
// sent, and exits when the parent closes the channel.
import { parentChannel } from '../../src/index.js'; // in your project: from 'ipckit'

/** A job from the parent. */
export interface Job {
  id: number;
  n: number;
}

/** The answer to a job. */
export interface Result {
  id: number;
  n: number;
  square: number;
  pid: number;
}

const channel = parentChannel<Job | Result>();
for await (const job of channel) {
  if ('square' in job) continue;
  await channel.send({ id: job.id, n: job.n, square: job.n * job.n, pid: process.pid });
}
await channel.close();
