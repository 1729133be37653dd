// Contends on mutex 'bench-lock' with its siblings: after event 'bench-go', `iterations` times
// lock, increment word 0 of segment 'bench-counter', count a handoff when the previous holder was
// another process (word 1 holds the last holder's id), unlock. argv: mode (async|sync), iterations, id.
// Prints "done <startMs> <endMs> <handoffs> <peakRssKiB>" with absolute times comparable across processes.
import { Event, Mutex, SharedMemory } from '../../src/index.js';

const mode = process.argv[2];
const iterations = Number(process.argv[3]);
const id = Number(process.argv[4]);
const words = new Int32Array(SharedMemory.open('bench-counter').buffer);
const mutex = Mutex.open('bench-lock');
const go = Event.open('bench-go');
console.log('ready');
await go.wait();
const start = performance.timeOrigin + performance.now();
let handoffs = 0;
for (let i = 0; i < iterations; i++) {
  const guard = mode === 'sync' ? mutex.lockSync() : await mutex.lock();
  words[0] = words[0]! + 1;
  if (words[1] !== id) {
    handoffs++;
    words[1] = id;
  }
  guard.release();
}
const end = performance.timeOrigin + performance.now();
console.log(`done ${start} ${end} ${handoffs} ${process.resourceUsage().maxRSS}`);
