// Recovering a lock whose holder died. A child takes the lock, marks the shared record "being
// updated" and is killed (SIGKILL) before finishing. The parent's lock() then succeeds with
// `ownerDied: true` (no timeout involved) and repairs the record.
//
//   node --import tsx examples/shm/owner-died.ts
import { fileURLToPath } from 'node:url';
import { Mutex, SharedMemory, spawn } from '../../src/index.js'; // in your project: from 'ipckit'

const id = process.argv[3] ?? String(process.pid);
const names = { segment: `example-record-${id}`, lock: `example-record-lock-${id}` };
const DIRTY = 1;

if (process.argv[2] === 'child') {
  const record = new Int32Array(SharedMemory.open(names.segment).buffer);
  const guard = await Mutex.open(names.lock).lock();
  record[0] = DIRTY; // half-way through an update...
  console.log('child: holding the lock, record marked dirty');
  setInterval(() => guard, 1 << 30); // ...and it never finishes: the parent kills it.
} else {
  const segment = SharedMemory.create(names.segment, { size: 8 });
  const mutex = Mutex.create(names.lock);
  try {
    const record = new Int32Array(segment.buffer);
    const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), 'child', id], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise<void>((resolve) => child.process.stdout!.once('data', () => resolve()));
    console.log(`parent: lock held by the child: ${mutex.locked}`);
    child.kill('SIGKILL');
    await child.exited;
    const guard = await mutex.lock({ timeout: 5000 });
    console.log(`parent: got the lock, ownerDied = ${guard.ownerDied}`);
    if (guard.ownerDied && record[0] === DIRTY) {
      record[0] = 0; // repair: here, roll the half-done update back
      console.log('parent: repaired the record the dead holder left dirty');
    }
    guard.release();
  } finally {
    mutex.close();
    mutex.unlink();
    segment.close();
    segment.unlink();
  }
}
