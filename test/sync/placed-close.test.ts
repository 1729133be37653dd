/**
 * Primitives placed in a SharedMemory segment the user closes: the memory goes away under them
 * (the segment's buffer is detached). Pending waits reject with ERR_IPC_CLOSED instead of crashing
 * the process, and every later call throws or rejects ERR_IPC_CLOSED instead of V8's TypeError.
 */
import { describe, expect, it } from 'vitest';
import {
  Barrier,
  Condition,
  ErrorCodes,
  Event,
  isIpcError,
  Mutex,
  RwLock,
  Semaphore,
  SharedMemory,
} from '../../src/index.js';
import { rejectionOf } from '../helpers.js';
import { PLACEMENT_STRIDE } from '../support/placement.js';
import { isolateEachTest, startFixture, succeeded } from './children.js';

isolateEachTest();

describe('a primitive placed in a SharedMemory that is closed', () => {
  it('rejects the pending waits of every kind with ERR_IPC_CLOSED; the process ends by itself', async () => {
    const run = startFixture('sync-placed-close.ts');
    const output = await succeeded(run, 20_000, 'waits on a closed segment');
    const line = output.split('\n').find((l) => l.startsWith('settled '));
    expect(JSON.parse(line!.slice('settled '.length))).toEqual({
      mutex: ErrorCodes.CLOSED,
      fair: ErrorCodes.CLOSED,
      semaphore: ErrorCodes.CLOSED,
      read: ErrorCodes.CLOSED,
      write: ErrorCodes.CLOSED,
      condition: ErrorCodes.CLOSED,
      barrier: ErrorCodes.CLOSED,
      event: ErrorCodes.CLOSED,
    });
  });

  it('makes every later call throw or reject ERR_IPC_CLOSED', async () => {
    const stride = PLACEMENT_STRIDE;
    const segment = SharedMemory.create('placed', { size: 6 * stride });
    const mutex = Mutex.createAt(segment, 0);
    const semaphore = Semaphore.createAt(segment, stride, { initial: 2 });
    const rwlock = RwLock.createAt(segment, 2 * stride);
    const condition = Condition.createAt(segment, 3 * stride);
    const barrier = Barrier.createAt(segment, 4 * stride, { parties: 2 });
    const event = Event.createAt(segment, 5 * stride);
    const guard = mutex.tryLock()!;
    const permit = semaphore.tryAcquire()!;
    const read = rwlock.tryReadLock()!;
    segment.close();

    const closed = expect.objectContaining({ code: ErrorCodes.CLOSED });
    const rejectsClosed = async (promise: Promise<unknown>) =>
      expect(isIpcError(await rejectionOf(promise), ErrorCodes.CLOSED)).toBe(true);
    for (const primitive of [mutex, semaphore, rwlock, condition, barrier, event]) {
      expect(primitive.closed).toBe(true);
    }
    expect(() => mutex.tryLock()).toThrow(closed);
    expect(() => mutex.lockSync({ timeout: 10 })).toThrow(closed);
    expect(() => mutex.locked).toThrow(closed);
    expect(() => guard.release()).toThrow(closed);
    await rejectsClosed(mutex.lock({ timeout: 10 }));
    expect(() => semaphore.value).toThrow(closed);
    expect(() => semaphore.tryAcquire()).toThrow(closed);
    expect(() => semaphore.acquireSync({ timeout: 10 })).toThrow(closed);
    expect(() => semaphore.release()).toThrow(closed);
    expect(() => permit.release()).toThrow(closed);
    await rejectsClosed(semaphore.acquire({ timeout: 10 }));
    expect(() => rwlock.readers).toThrow(closed);
    expect(() => rwlock.tryWriteLock()).toThrow(closed);
    expect(() => rwlock.writeLockSync({ timeout: 10 })).toThrow(closed);
    expect(() => read.release()).toThrow(closed);
    await rejectsClosed(rwlock.readLock({ timeout: 10 }));
    await rejectsClosed(rwlock.writeLock({ timeout: 10 }));
    expect(() => condition.notify()).toThrow(closed);
    expect(() => condition.waiting).toThrow(closed);
    const elsewhere = Mutex.createAt(new SharedArrayBuffer(Mutex.byteLength)).lockSync();
    await rejectsClosed(condition.wait(elsewhere));
    expect(() => condition.waitSync(elsewhere, { timeout: 10 })).toThrow(closed);
    expect(() => barrier.broken).toThrow(closed);
    expect(() => barrier.waitSync({ timeout: 10 })).toThrow(closed);
    expect(() => barrier.reset()).toThrow(closed);
    await rejectsClosed(barrier.wait({ timeout: 10 }));
    expect(() => event.set()).toThrow(closed);
    expect(() => event.isSet()).toThrow(closed);
    expect(() => event.waitSync({ timeout: 10 })).toThrow(closed);
    await rejectsClosed(event.wait({ timeout: 10 }));
    // Closing the handles themselves is still fine (and touches nothing).
    for (const primitive of [mutex, semaphore, rwlock, condition, barrier, event]) primitive.close();
    segment.unlink();
  });
});
