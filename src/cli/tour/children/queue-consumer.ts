// Tour child for the message-queue step: on 'go', consumes queue argv[2] (visibility timeout
// argv[3]) and reports each ack to its parent. A message marked `crash` received for the first time is held,
// never acked, until the parent kills this process. Ends when the parent closes the channel.
import { MessageQueue, parentChannel } from '../../../index.js';
import type { QueueTourJob, QueueTourReport } from '../message-queue.js';

const [name, visibilityText] = process.argv.slice(2);
if (!name || !visibilityText) throw new Error('usage: queue-consumer QUEUE VISIBILITY_TIMEOUT_MS');

const channel = parentChannel<QueueTourReport>();
const queue = await MessageQueue.open<QueueTourJob>(name, { visibilityTimeoutMs: Number(visibilityText) });
await channel.send({ kind: 'ready', pid: process.pid });
await channel.receive({ timeout: 10_000 });
// The tour closing the channel is the signal to stop; so is the tour dying (Ctrl-C).
const stop = new AbortController();
void (async () => {
  try {
    for await (const _ of channel);
  } catch {
    // ERR_IPC_PEER_GONE: stop as well; whatever this consumer held comes back after its lease.
  }
  stop.abort();
})();

while (!stop.signal.aborted) {
  let message: Awaited<ReturnType<typeof queue.receive>>;
  try {
    message = await queue.receive({ signal: stop.signal });
  } catch (err) {
    if (stop.signal.aborted) break;
    throw err;
  }
  const { seq, crash } = message.body;
  const report = { pid: process.pid, seq, priority: message.priority, attempts: message.attempts };
  if (crash && message.attempts === 1) {
    await channel.send({ kind: 'holding', ...report });
    await new Promise((resolve) => stop.signal.addEventListener('abort', resolve, { once: true }));
    break;
  }
  await message.ack();
  await channel.send({ kind: 'acked', ...report });
}
await queue.close();
await channel.close();
