// Scheduling and back-pressure: a delayed message, a message that expires if nobody takes it in
// time, selective receive by type, and a bounded queue whose producer waits for room.
//
//   node --import tsx examples/mq/delayed-and-bounded.ts
import { MessageQueue } from '../../src/index.js'; // in your project: from 'ipckit'

const q = await MessageQueue.open<string>('reminders', { maxMessages: 3 });

const sentAt = Date.now();
await q.send('stand up and stretch', { type: 'reminder', delayMs: 300 });
await q.send('flash sale, 50 ms only', { type: 'offer', ttlMs: 50 });
// One delayed; the offer is ready, unless 50 ms have passed already on a busy machine.
console.log(`now: ${JSON.stringify(await q.stats())}`);

// Only reminders: the offer expires meanwhile and is dropped, never delivered.
const reminder = await q.receive({ types: ['reminder'] });
console.log(
  `"${reminder.body}" arrived after its delay (${Date.now() - sentAt >= 300 ? 'not before' : 'too early!'})`,
);
await reminder.ack();
console.log(`the expired offer is gone: ${JSON.stringify(await q.stats())}`);

// maxMessages 3: the fourth send waits until a consumer makes room.
for (const n of [1, 2, 3]) await q.send(`task ${n}`, { type: 'task' });
const fourth = q
  .send('task 4', { type: 'task' })
  .then(() => console.log('task 4 was queued once there was room'));
const first = await q.receive({ types: ['task'] });
console.log(`took "${first.body}"`);
await first.ack();
await fourth;

for (let i = 0; i < 3; i++) {
  const task = await q.receive({ types: ['task'] });
  console.log(`took "${task.body}"`);
  await task.ack();
}
await q.close();
await MessageQueue.remove('reminders');
