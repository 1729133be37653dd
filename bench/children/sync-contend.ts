// Contends on mutex 'bench-lock' with its sibling, after event 'bench-go'. argv: mode (async|sync),
// iterations, id, workload:
//  - count: `iterations` times lock, increment word 0 of segment 'bench-counter', unlock; a handoff
//    is an acquisition whose previous holder was the other process (word 1 holds its id);
//  - turns: take `iterations` turns: lock, and if the last turn was the other process's (word 1),
//    take one (increment word 0, word 1 = id), unlock. Every turn needs the lock to have passed
//    from the other process, so turns/s is the rate at which the lock changes hands.
// Prints "done <startMs> <endMs> <handoffs or turns> <peakRssKiB>" with absolute times.
import { Event, Mutex, SharedMemory } from '../../src/index.js';

const mode = process.argv[2];
const iterations = Number(process.argv[3]);
const id = Number(process.argv[4]);
const workload = process.argv[5] ?? 'count';
const words = new Int32Array(SharedMemory.open('bench-counter').buffer);
const mutex = Mutex.open('bench-lock');
const go = Event.open('bench-go');
console.log('ready');
await go.wait();
const start = performance.timeOrigin + performance.now();
let handoffs = 0;
if (workload === 'turns') {
  while (handoffs < iterations) {
    const guard = mode === 'sync' ? mutex.lockSync() : await mutex.lock();
    if (words[1] !== id) {
      words[0] = words[0]! + 1;
      words[1] = id;
      handoffs++;
    }
    guard.release();
  }
} else {
  for (let i = 0; i < iterations; i++) {
    const guard = mode === 'sync' ? mutex.lockSync() : await mutex.lock();
    words[0] = words[0]! + 1;
    if (words[1] !== id) {
      handoffs++;
      words[1] = id;
    }
    guard.release();
  }
}
const end = performance.timeOrigin + performance.now();
console.log(`done ${start} ${end} ${handoffs} ${process.resourceUsage().maxRSS}`);
