// A process pool: counts the primes below 2,000,000 in 4 worker processes, each taking ranges of
// 50,000 numbers; then shows how a task's error comes back.
//
//   node --import tsx examples/process/pool.ts
import { Pool, TaskError } from '../../src/index.js'; // in your project: from 'ipckit'
import type { Range } from './pool-task.js';

// The task module is given by path or URL; a .ts module works when this process runs under tsx.
const pool = Pool.create<Range, number>(new URL('./pool-task.ts', import.meta.url), { size: 4 });
console.log(`pool of ${pool.size} workers: ${pool.pids.join(', ')}`);

const ranges: Range[] = [];
for (let from = 0; from < 2_000_000; from += 50_000) ranges.push({ from, to: from + 50_000 });
// map keeps the input order; chunkSize 1 because each range is a sizeable task on its own.
const counts = await pool.map(ranges, { chunkSize: 1 });
console.log(`primes below 2,000,000: ${counts.reduce((a, b) => a + b, 0)}`);
console.log(`primes below 50,000: ${counts[0]}`);

try {
  await pool.run({ from: 10, to: 5 });
} catch (err) {
  if (!(err instanceof TaskError)) throw err;
  console.log(`task failed remotely: ${err.remoteName}: ${err.remoteMessage} (${err.code})`);
}

// close() waits for queued work, then ends the workers; without it they keep this process alive.
await pool.close();
console.log('pool closed');
