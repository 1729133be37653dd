// Four processes add to one counter in shared memory, under one Mutex. Run without arguments it is
// the parent: it creates the segment and the lock, starts itself four times as a worker, and
// checks the total. The counter is a plain (non-atomic) read-modify-write: the Mutex is what keeps
// it exact.
//
//   node --import tsx examples/shm/counter.ts
import { fileURLToPath } from 'node:url';
import { Mutex, SharedMemory, spawn } from '../../src/index.js'; // in your project: from 'ipckit'

const WORKERS = 4;
const INCREMENTS = 10_000;
const names = {
  segment: `example-counter-${process.argv[3] ?? process.pid}`,
  lock: `example-lock-${process.argv[3] ?? process.pid}`,
};

if (process.argv[2] === 'worker') {
  const segment = SharedMemory.open(names.segment);
  const counter = new Int32Array(segment.buffer);
  const mutex = Mutex.open(names.lock);
  for (let i = 0; i < INCREMENTS; i++) {
    await using _guard = await mutex.lock();
    counter[0] = counter[0]! + 1;
  }
  mutex.close();
  segment.close();
} else {
  const segment = SharedMemory.create(names.segment, { size: 4 });
  const mutex = Mutex.create(names.lock);
  try {
    const self = fileURLToPath(import.meta.url);
    const workers = Array.from({ length: WORKERS }, () =>
      spawn(process.execPath, ['--import', 'tsx', self, 'worker', String(process.pid)]),
    );
    const exits = await Promise.all(workers.map((worker) => worker.exited));
    console.log(`workers exited with codes ${exits.map((e) => e.code).join(', ')}`);
    console.log(`counter = ${new Int32Array(segment.buffer)[0]} (expected ${WORKERS * INCREMENTS})`);
  } finally {
    mutex.close();
    mutex.unlink();
    segment.close();
    segment.unlink();
  }
}
