// The same primitives between worker threads of one process: lock owners are threads, so a
// terminated worker is a dead owner even though its process lives on.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  Barrier,
  Condition,
  ErrorCodes,
  Event,
  FileLock,
  isIpcError,
  Mutex,
  RwLock,
  Semaphore,
  SharedMemory,
} from '../../src/index.js';
import { isolateRuntimeDir, openFdCount, watchdog } from '../helpers.js';
import { removeShmObjects, startWorkerFixture, succeeded, terminateWorkers } from './children.js';

let env: ReturnType<typeof isolateRuntimeDir>;
beforeEach(() => {
  env = isolateRuntimeDir();
});
afterEach(async () => {
  await terminateWorkers();
  removeShmObjects();
  env.cleanup();
});

describe('primitives between worker threads', () => {
  it('Mutex: an exact counter, 4 workers x 100k increments (lock and lockSync)', async () => {
    const counter = SharedMemory.create('counter', { size: 64 });
    Mutex.create('lock');
    const go = Event.create('go');
    const workers = ['async', 'sync', 'async', 'sync'].map((mode) =>
      startWorkerFixture('sync-mutex-increment.ts', ['100000', mode]),
    );
    for (const worker of workers) await worker.line('ready');
    go.set();
    for (const worker of workers) await succeeded(worker, 60_000, 'worker incrementer');
    expect(new Int32Array(counter.buffer)[0]).toBe(400_000);
  }, 90_000);

  it('Mutex: a worker terminated while holding it is a dead owner (ownerDied)', async () => {
    const mutex = Mutex.create('lock');
    const holder = startWorkerFixture('sync-hold-until-killed.ts', ['mutex']);
    await holder.line('held');
    expect(mutex.tryLock()).toBeUndefined();
    const waiting = mutex.lock();
    await holder.terminate();
    const guard = await watchdog(waiting, 10_000, 'recovery from a terminated worker');
    expect(guard.ownerDied).toBe(true);
    guard.release();
  });

  it('Semaphore: never over its permits between workers, and a dead worker returns its permits', async () => {
    const words = new Int32Array(SharedMemory.create('counter', { size: 64 }).buffer);
    const slots = Semaphore.create('slots', { initial: 2 });
    const go = Event.create('go');
    const workers = [0, 1, 2].map(() => startWorkerFixture('sync-semaphore-occupancy.ts', ['10000']));
    for (const worker of workers) await worker.line('ready');
    go.set();
    for (const worker of workers) await succeeded(worker, 60_000, 'worker occupant');
    expect(Atomics.load(words, 1)).toBeLessThanOrEqual(2);
    expect(Atomics.load(words, 2)).toBe(30_000);
    const holder = startWorkerFixture('sync-hold-until-killed.ts', ['semaphore']);
    await holder.line('held');
    const waiting = slots.acquire();
    await holder.terminate();
    const permit = await watchdog(waiting, 10_000, 'permit recovery from a worker');
    expect(permit.ownerDied).toBe(true);
    permit.release();
    expect(slots.value).toBe(2);
  }, 90_000);

  it('RwLock: readers and writers stay exclusive between workers', async () => {
    const words = new Int32Array(SharedMemory.create('counter', { size: 64 }).buffer);
    RwLock.create('lock');
    const go = Event.create('go');
    const workers = ['async', 'sync', 'async'].map((mode) =>
      startWorkerFixture('sync-rwlock-readers-writers.ts', ['8000', mode]),
    );
    for (const worker of workers) await worker.line('ready');
    go.set();
    for (const worker of workers) await succeeded(worker, 60_000, 'worker reader/writer');
    expect(words[0]).toBe(3 * 2000);
    expect(Atomics.load(words, 2)).toBe(0);
  }, 90_000);

  it('Condition and Event: no lost wake-ups between workers', async () => {
    SharedMemory.create('counter', { size: 64 });
    Mutex.create('lock');
    Condition.create('not-full');
    Condition.create('not-empty');
    const consumer = startWorkerFixture('sync-condition-handoff.ts', ['consumer', '3000']);
    const producer = startWorkerFixture('sync-condition-handoff.ts', ['producer', '3000']);
    await succeeded(producer, 60_000, 'worker producer');
    await succeeded(consumer, 60_000, 'worker consumer');
    expect(consumer.output()).toContain(`sum ${(3000 * 3001) / 2}`);
    Event.create('ping');
    Event.create('pong');
    const pong = startWorkerFixture('sync-event-pingpong.ts', ['pong', '1000']);
    const ping = startWorkerFixture('sync-event-pingpong.ts', ['ping', '1000']);
    await succeeded(ping, 60_000, 'worker ping');
    await succeeded(pong, 60_000, 'worker pong');
  }, 90_000);

  it('Barrier: 3 workers over 100 rounds; a terminated member breaks it', async () => {
    const words = new Int32Array(SharedMemory.create('counter', { size: 64 }).buffer);
    Barrier.create('start', { parties: 3 }).close();
    const parties = [0, 1, 2].map((p) =>
      startWorkerFixture('sync-barrier-rounds.ts', [String(p), '100', '3']),
    );
    for (const party of parties) await succeeded(party, 60_000, 'worker party');
    expect(Atomics.load(words, 8)).toBe(0);
    const barrier = Barrier.open('start');
    const victim = startWorkerFixture('sync-hold-until-killed.ts', ['barrier-member']);
    await victim.line('held');
    const mine = barrier.wait().catch((e: unknown) => e);
    await victim.terminate();
    const err = await watchdog(mine, 10_000, 'broken by a terminated worker');
    expect(isIpcError(err, ErrorCodes.PEER_GONE)).toBe(true);
  }, 90_000);

  it('a terminated worker that was parked in async waits leaves no fds behind', async () => {
    SharedMemory.create('counter', { size: 64 });
    Mutex.create('lock');
    Event.create('go');
    const before = openFdCount();
    for (let i = 0; i < 3; i++) {
      // The worker parks in go.wait(): it owns a doorbell socket, watched by its event loop.
      const worker = startWorkerFixture('sync-mutex-increment.ts', ['1', 'async']);
      await worker.line('ready');
      // Parked once its doorbell socket shows up among this process's fds.
      await watchdog(
        (async () => {
          while (openFdCount() <= before) await new Promise((resolve) => setImmediate(resolve));
        })(),
        10_000,
        'worker parked',
      );
      await worker.terminate();
    }
    expect(openFdCount()).toBe(before);
  });

  it('opening and closing segments, primitives and pipes in a worker prints no fd warning', async () => {
    // fs.closeSync on an fd the addon opened makes Node warn in a worker ("File descriptor N
    // closed but not opened in unmanaged mode"); the fixture prints every warning it gets.
    const worker = startWorkerFixture('sync-open-close-in-worker.ts');
    const output = await succeeded(worker, 30_000, 'worker opening and closing resources');
    expect(output).toContain('done');
    expect(output).not.toContain('unmanaged mode');
  });

  it('placement in a SharedArrayBuffer works between workers too', async () => {
    const sab = new SharedArrayBuffer(Mutex.byteLength);
    const mutex = Mutex.createAt(sab);
    const other = Mutex.openAt(sab);
    const guard = mutex.lockSync();
    expect(other.tryLock()).toBeUndefined();
    const waiting = other.lock();
    guard.release();
    (await watchdog(waiting, 10_000, 'placed mutex')).release();
  });

  it('FileLock: a lock taken in one thread excludes another thread', async () => {
    const path = `${env.dir}/../worker.lock`;
    const lock = FileLock.lockSync(path);
    expect(FileLock.tryLock(path)).toBeUndefined();
    lock.release();
    expect(FileLock.tryLock(path)?.release()).toBeUndefined();
  });
});
