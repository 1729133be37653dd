import { describe, expect, it } from 'vitest';
import { Condition, ErrorCodes, Event, isIpcError, Mutex, SharedMemory } from '../../src/index.js';
import { blockUntil, watchdog } from '../helpers.js';
import { isolateEachTest, startFixture, succeeded } from './children.js';

isolateEachTest();

describe('Condition', () => {
  it('releases the mutex while waiting and holds it again when notified', async () => {
    using mutex = Mutex.create('lock');
    using cond = Condition.create('cond');
    const guard = await mutex.lock();
    const waiting = cond.wait(guard);
    // While the waiter waits, the mutex is free for the notifier.
    const notifier = await watchdog(mutex.lock(), 2000, 'mutex free during wait');
    expect(cond.waiting).toBe(1);
    // The waiting guard is lent to the wait: releasing it would free the notifier's lock.
    expect(() => guard.release()).toThrow(/lent to a Condition wait/);
    expect(mutex.tryLock()).toBeUndefined();
    await expect(cond.wait(guard)).rejects.toThrow(TypeError);
    expect(cond.notify()).toBe(1);
    notifier.release();
    await watchdog(waiting, 2000, 'notified wait');
    expect(mutex.locked).toBe(true);
    expect(guard.released).toBe(false);
    guard.release();
    mutex.unlink();
    cond.unlink();
  });

  it('a handle closed while its notified wait re-takes the mutex leaves no slot behind', async () => {
    const segment = SharedMemory.create('relock', { size: Mutex.byteLength });
    const mutex = Mutex.createAt(segment, 0);
    const mutexWaiters = (): number => Atomics.load(new Int32Array(segment.buffer), 16);
    const closing = Condition.create('cond');
    using other = Condition.open('cond');
    const waited = closing.wait(await mutex.lock());
    // The wait released the mutex: take it, so that the notified wait has to wait to re-take it.
    const blocker = mutex.tryLock();
    expect(blocker).toBeDefined();
    expect(other.notify()).toBe(1);
    const relocking = (async () => {
      while (mutexWaiters() === 0) await new Promise((resolve) => setImmediate(resolve));
    })();
    await watchdog(relocking, 5000, 'the notified wait queued for the mutex');
    closing.close();
    blocker?.release();
    await watchdog(waited, 5000, 'the wait');
    expect(other.waiting).toBe(0);
    mutex.close();
    segment.close();
    segment.unlink();
  });

  it('waitSync with a signal aborted before the call fails with ERR_IPC_ABORTED, the mutex held again', () => {
    using mutex = Mutex.create('lock');
    using cond = Condition.create('cond');
    const guard = mutex.lockSync();
    // The timeout only bounds a wait that ignored the signal.
    expect(() => cond.waitSync(guard, { signal: AbortSignal.abort(new Error('no')), timeout: 2000 })).toThrow(
      expect.objectContaining({ code: ErrorCodes.ABORTED }),
    );
    expect(guard.released).toBe(false);
    expect(mutex.tryLock()).toBeUndefined();
    expect(cond.waiting).toBe(0);
    guard.release();
    mutex.unlink();
    cond.unlink();
  });

  it('re-takes the mutex before rejecting on timeout, and counts a late notify as notified', async () => {
    using mutex = Mutex.create('lock');
    using cond = Condition.create('cond');
    const guard = mutex.lockSync();
    const err = await cond.wait(guard, { timeout: 20 }).catch((e: unknown) => e);
    expect(isIpcError(err, ErrorCodes.TIMEOUT)).toBe(true);
    expect(guard.released).toBe(false);
    expect(mutex.tryLock()).toBeUndefined();
    expect(() => cond.waitSync(guard, { timeout: 5 })).toThrow(
      expect.objectContaining({ code: ErrorCodes.TIMEOUT }),
    );
    expect(cond.waiting).toBe(0);
    guard.release();
    expect(() => cond.waitSync(guard)).toThrow(TypeError);
    mutex.unlink();
    cond.unlink();
  });

  it('waitSync while this thread has an async lock() waiting for the mutex is ERR_IPC_DEADLOCK', async () => {
    const sab = new SharedArrayBuffer(Mutex.byteLength);
    const mutex = Mutex.createAt(sab);
    const cond = Condition.createAt(new SharedArrayBuffer(Condition.byteLength));
    const guard = mutex.lockSync();
    const queued = mutex.lock();
    // The queued lock() "has waited no time at all" (its waiting-since time, f64 13 of the layout,
    // is in the future), so a release does not hand it the lock: without the check, waitSync then
    // times out instead of re-locking forever, and this test fails instead of hanging.
    new Float64Array(sab)[13] = performance.timeOrigin + performance.now() + 60_000;
    expect(() => cond.waitSync(guard, { timeout: 20 })).toThrow(
      expect.objectContaining({ code: ErrorCodes.DEADLOCK }),
    );
    // Refused before anything happened: the guard still holds the mutex, nobody waits on cond.
    expect(guard.released).toBe(false);
    expect(mutex.tryLock()).toBeUndefined();
    expect(cond.waiting).toBe(0);
    guard.release();
    (await watchdog(queued, 2000, 'the queued lock()')).release();
  });

  it('notify(n) takes a number: a string is a TypeError, a negative count a RangeError', () => {
    using cond = Condition.create('cond');
    expect(() => cond.notify('1' as never)).toThrow(TypeError);
    expect(() => cond.notify(-1)).toThrow(RangeError);
    cond.unlink();
  });

  it('notify(n) wakes n waiters and notifyAll the rest', async () => {
    using mutex = Mutex.create('lock');
    using cond = Condition.create('cond');
    let woken = 0;
    const waiters = [0, 1, 2, 3].map(async () => {
      const g = await mutex.lock();
      await cond.wait(g);
      woken++;
      g.release();
    });
    while (cond.waiting < 4) await new Promise((r) => setImmediate(r));
    expect(cond.notify(2)).toBe(2);
    await watchdog(Promise.race([Promise.all(waiters.slice(0, 2)), Promise.all(waiters)]), 2000, 'two woken');
    expect(cond.notifyAll()).toBe(2);
    await watchdog(Promise.all(waiters), 2000, 'all woken');
    expect(woken).toBe(4);
    mutex.unlink();
    cond.unlink();
  });

  it('hands 5000 items between two processes without a lost wake-up', async () => {
    const words = new Int32Array(SharedMemory.create('counter', { size: 64 }).buffer);
    Mutex.create('lock');
    Condition.create('not-full');
    Condition.create('not-empty');
    const consumer = startFixture('sync-condition-handoff.ts', ['consumer', '5000']);
    const producer = startFixture('sync-condition-handoff.ts', ['producer', '5000']);
    await succeeded(producer, 60_000, 'producer');
    await succeeded(consumer, 60_000, 'consumer');
    expect(consumer.output()).toContain(`sum ${(5000 * 5001) / 2}`);
    expect(words[0]).toBe(0);
  }, 90_000);
});

describe('Event', () => {
  it('a wait pulsed by another process before it was aborted completes: the pulse is not lost', async () => {
    using event = Event.create('late');
    using done = Event.create('late-done');
    const abort = new AbortController();
    const waited = event.wait({ signal: abort.signal });
    // This thread stays blocked until the child has pulsed, then gives up before its loop has
    // read the doorbell of the pulse (as a timer due at that moment would).
    const child = startFixture('sync-event-pulse-then-set.ts', ['late', 'late-done']);
    blockUntil(() => done.isSet(), 20_000);
    abort.abort();
    await expect(watchdog(waited, 2000, 'the wait')).resolves.toBeUndefined();
    await succeeded(child, 20_000, 'pulser');
  });

  it('a wait its handle closes rejects ERR_IPC_CLOSED, even if the event was set before', async () => {
    using event = Event.create('closing');
    using other = Event.open('closing');
    const waited = event.wait();
    other.set();
    // Closed before this thread's loop has read the doorbell of the set.
    event.close();
    const err = await watchdog(waited, 2000, 'the wait').catch((e: unknown) => e);
    expect(isIpcError(err, ErrorCodes.CLOSED)).toBe(true);
  });

  it('sets, clears and wakes waiters; a set-then-clear pulse is not lost', async () => {
    using event = Event.create('flag');
    expect(event.isSet()).toBe(false);
    const waiting = event.wait();
    event.set();
    event.clear();
    await watchdog(waiting, 2000, 'pulse seen');
    expect(event.isSet()).toBe(false);
    event.set();
    await event.wait();
    event.waitSync();
    event.clear();
    const err = await event.wait({ timeout: 10 }).catch((e: unknown) => e);
    expect(isIpcError(err, ErrorCodes.TIMEOUT)).toBe(true);
    event.unlink();
  });

  it('ping-pongs 2000 rounds between two processes without a lost wake-up', async () => {
    Event.create('ping');
    Event.create('pong');
    const pong = startFixture('sync-event-pingpong.ts', ['pong', '2000']);
    const ping = startFixture('sync-event-pingpong.ts', ['ping', '2000']);
    await succeeded(ping, 60_000, 'ping side');
    await succeeded(pong, 60_000, 'pong side');
    expect(ping.output()).toContain('rounds 2000');
  }, 90_000);
});
