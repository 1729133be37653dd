// Tour child for the shared-memory step: opens segment argv[2] and mutex argv[3], says 'ready',
// and on 'go' adds 1 to word 0 of the segment argv[4] times under the mutex, then says 'done'.
import { Mutex, parentChannel, SharedMemory } from '../../../index.js';
import type { SharedMemoryTourMessage } from '../shared-memory.js';

const [segmentName, mutexName, countText] = process.argv.slice(2);
if (!segmentName || !mutexName || !countText) throw new Error('usage: mutex-increment SEGMENT MUTEX COUNT');
const count = Number(countText);

const channel = parentChannel<SharedMemoryTourMessage>();
const segment = SharedMemory.open(segmentName);
const mutex = Mutex.open(mutexName);
const counter = new Int32Array(segment.buffer);
await channel.send({ kind: 'ready' });
await channel.receive({ timeout: 10_000 });
for (let i = 0; i < count; i++) {
  // A blocking lock is fine here: this process has nothing else to do meanwhile.
  const guard = mutex.lockSync();
  counter[0] = counter[0]! + 1;
  guard.release();
}
await channel.send({ kind: 'done', pid: process.pid });
// Wait for the tour to close the channel, so the segment outlives no one's view of it.
for await (const _ of channel);
mutex.close();
segment.close();
