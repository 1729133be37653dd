// At-least-once delivery in one process: a handler that fails gets the message again with a
// higher attempt count; after maxAttempts deliveries the message goes to the dead letters, where
// it can be inspected and replayed once the bug is fixed.
//
//   node --import tsx examples/mq/retries-and-dead-letters.ts
import { MessageQueue } from '../../src/index.js'; // in your project: from 'ipckit'

interface Payment {
  order: string;
  cents: number;
}

const q = await MessageQueue.open<Payment>('payments', { maxAttempts: 3, visibilityTimeoutMs: 5_000 });

// The id makes the send idempotent: sending the same order twice queues it once.
await q.send({ order: 'A-1', cents: 1200 }, { id: 'order-A-1' });
await q.send({ order: 'A-1', cents: 1200 }, { id: 'order-A-1' });
await q.send({ order: 'B-2', cents: -5 }, { id: 'order-B-2' });
console.log(`queued: ${(await q.stats()).ready} (the duplicate of A-1 was dropped)`);

let fixed = false;
const charge = (payment: Payment) => {
  if (payment.cents < 0 && !fixed) throw new Error(`negative amount on ${payment.order}`);
};

for (;;) {
  const message = await q.receive({ timeout: 200 }).catch(() => undefined);
  if (!message) break;
  try {
    charge(message.body);
    await message.ack();
    console.log(`charged ${message.body.order} on attempt ${message.attempts}`);
  } catch (err) {
    console.log(`attempt ${message.attempts} of ${message.body.order} failed: ${(err as Error).message}`);
    await message.nack({ delayMs: 10 });
  }
}

const dead = await q.deadLetters();
console.log(`dead letters: ${dead.map((m) => `${m.id} after ${m.attempts} attempts`).join(', ')}`);

fixed = true;
console.log(`replayed ${await q.replayDead()} dead letter(s)`);
const again = await q.receive({ timeout: 5_000 });
charge(again.body);
await again.ack();
console.log(`charged ${again.body.order} on attempt ${again.attempts} after the replay`);
console.log(`left: ${JSON.stringify(await q.stats())}`);

await q.close();
await MessageQueue.remove('payments');
