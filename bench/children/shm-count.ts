// Adds 1 to a shared counter `iterations` times. argv: mode, iterations.
//   atomics: Atomics.add on word 0 of segment 'bench-counter' (after event 'bench-go');
//   mutex:   a plain increment of word 0 under mutex 'bench-lock';
//   send:    process.send('+') per increment to the parent, which owns the counter.
// Prints "done <startMs> <endMs> <peakRssKiB>".
import { Event, Mutex, SharedMemory } from '../../src/index.js';

const mode = process.argv[2];
const iterations = Number(process.argv[3]);
if (mode === 'send') {
  process.once('message', () => {
    const start = performance.timeOrigin + performance.now();
    let i = 0;
    // Respect backpressure: process.send returns false when Node's queue is full.
    const pump = () => {
      while (i < iterations) {
        i++;
        if (!process.send!('+')) {
          process.send!('', pump);
          return;
        }
      }
      console.log(
        `done ${start} ${performance.timeOrigin + performance.now()} ${process.resourceUsage().maxRSS}`,
      );
    };
    pump();
  });
  console.log('ready');
} else {
  const words = new Int32Array(SharedMemory.open('bench-counter').buffer);
  const mutex = mode === 'mutex' ? Mutex.open('bench-lock') : undefined;
  const go = Event.open('bench-go');
  console.log('ready');
  await go.wait();
  const start = performance.timeOrigin + performance.now();
  if (mutex) {
    for (let i = 0; i < iterations; i++) {
      const guard = mutex.lockSync();
      words[0] = words[0]! + 1;
      guard.release();
    }
  } else {
    for (let i = 0; i < iterations; i++) Atomics.add(words, 0, 1);
  }
  console.log(
    `done ${start} ${performance.timeOrigin + performance.now()} ${process.resourceUsage().maxRSS}`,
  );
}
