import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  ErrorCodes,
  Event,
  isIpcError,
  listResources,
  Mutex,
  RwLock,
  Semaphore,
  SharedMemory,
} from '../../src/index.js';
import { selfThread } from '../../src/sync/thread.js';
import { fixture, watchdog } from '../helpers.js';
import { isolateEachTest, startFixture, succeeded } from './children.js';

isolateEachTest();

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

/**
 * Starts one incrementer process per entry of `modes` ('sync' or 'async'), each adding 1 to the
 * shared counter `each` times under mutex 'lock', releases them together, and returns the total.
 */
async function countTogether(modes: string[], each: number, opts?: { fair: boolean }): Promise<number> {
  const counter = SharedMemory.create('counter', { size: 64 });
  Mutex.create('lock', opts);
  const go = Event.create('go');
  const children = modes.map((mode) => startFixture('sync-mutex-increment.ts', [String(each), mode]));
  for (const child of children) await child.line('ready');
  go.set();
  for (const child of children) await succeeded(child, 60_000, 'incrementer');
  return new Int32Array(counter.buffer)[0]!;
}

describe('Mutex within one process', () => {
  it('excludes: tryLock fails while held, succeeds after release; guards release once', () => {
    using mutex = Mutex.create('jobs');
    const guard = mutex.tryLock();
    expect(guard).toBeDefined();
    expect(guard!.ownerDied).toBe(false);
    expect(mutex.locked).toBe(true);
    expect(mutex.tryLock()).toBeUndefined();
    guard!.release();
    guard!.release();
    expect(mutex.locked).toBe(false);
    const again = mutex.tryLock();
    expect(again).toBeDefined();
    again!.release();
    mutex.unlink();
  });

  it('serializes async tasks of one thread and releases with using / withLock', async () => {
    using mutex = Mutex.create('tasks');
    const order: string[] = [];
    const first = await mutex.lock();
    const second = mutex.lock().then((g) => {
      order.push('second');
      return g;
    });
    order.push('first');
    first.release();
    {
      await using g = await watchdog(second, 2000, 'second lock');
      expect(g.released).toBe(false);
    }
    expect(await mutex.withLock(async () => (mutex.locked ? 'held' : 'free'))).toBe('held');
    expect(mutex.locked).toBe(false);
    expect(order).toEqual(['first', 'second']);
    mutex.unlink();
  });

  it('times out and aborts with stable codes without damaging the lock', async () => {
    using mutex = Mutex.create('waits');
    const guard = mutex.tryLock()!;
    const timedOut = await rejection(mutex.lock({ timeout: 20 }));
    expect(isIpcError(timedOut, ErrorCodes.TIMEOUT)).toBe(true);
    const controller = new AbortController();
    const pending = mutex.lock({ signal: controller.signal });
    controller.abort(new Error('stop'));
    const aborted = await rejection(pending);
    expect(isIpcError(aborted, ErrorCodes.ABORTED)).toBe(true);
    expect((aborted as Error).cause).toEqual(new Error('stop'));
    expect(isIpcError(await rejection(mutex.lock({ timeout: 0 })), ErrorCodes.TIMEOUT)).toBe(true);
    guard.release();
    const next = await watchdog(mutex.lock(), 2000, 'lock after timeouts');
    next.release();
    mutex.unlink();
  });

  it('a signal aborted before the call fails it with ERR_IPC_ABORTED even when the lock is free (Node convention)', async () => {
    const memory = new SharedArrayBuffer(Mutex.byteLength + Semaphore.byteLength + RwLock.byteLength);
    const mutex = Mutex.createAt(memory, 0);
    const slots = Semaphore.createAt(memory, Mutex.byteLength, { initial: 1 });
    const rw = RwLock.createAt(memory, Mutex.byteLength + Semaphore.byteLength);
    const signal = AbortSignal.abort(new Error('too late'));
    const aborted = (err: unknown) =>
      isIpcError(err, ErrorCodes.ABORTED) && (err as Error).cause instanceof Error;
    expect(aborted(await mutex.lock({ signal }).catch((e) => e))).toBe(true);
    expect(aborted(await slots.acquire({ signal }).catch((e) => e))).toBe(true);
    expect(aborted(await rw.readLock({ signal }).catch((e) => e))).toBe(true);
    expect(aborted(await rw.writeLock({ signal }).catch((e) => e))).toBe(true);
    let thrown: unknown;
    try {
      mutex.lockSync({ signal });
    } catch (err) {
      thrown = err;
    }
    expect(aborted(thrown)).toBe(true);
    // Nothing was taken.
    expect(mutex.tryLock()).toBeDefined();
    expect(slots.value).toBe(1);
    expect(rw.readers).toBe(0);
    expect(rw.writing).toBe(false);
  });

  it('rejects bad options synchronously-free: the promise rejects with a RangeError', async () => {
    using mutex = Mutex.create('options');
    const promise = mutex.lock({ timeout: -1 });
    expect(await rejection(promise)).toBeInstanceOf(RangeError);
    mutex.unlink();
  });

  it('lockSync by the holding thread is ERR_IPC_DEADLOCK, lockSync with a timeout times out', () => {
    using mutex = Mutex.create('self');
    const guard = mutex.lockSync();
    expect(() => mutex.lockSync()).toThrow(expect.objectContaining({ code: ErrorCodes.DEADLOCK }));
    guard.release();
    mutex.lockSync({ timeout: 10 }).release();
    mutex.unlink();
  });

  it('hands the lock to a waiter that waited past the fairness bound, else lets the releaser barge', async () => {
    const sab = new SharedArrayBuffer(Mutex.byteLength);
    const mutex = Mutex.createAt(sab);
    const i32 = new Int32Array(sab);
    const f64 = new Float64Array(sab);
    // Layout: wait queue at word 16 (count), slot 0 at word 20, its waiting-since time at f64 13.
    const parked = async () => {
      while (i32[16] !== 1) await new Promise((resolve) => setImmediate(resolve));
    };
    let guard = mutex.lockSync();
    let waiting = mutex.lock();
    await parked();
    f64[13] = performance.timeOrigin + performance.now() + 60_000; // waited "no time at all"
    guard.release();
    const barged = mutex.tryLock();
    expect(barged).toBeDefined();
    barged!.release();
    (await watchdog(waiting, 2000, 'woken waiter')).release();

    guard = mutex.lockSync();
    waiting = mutex.lock();
    await parked();
    f64[13] = 0; // waited "forever"
    guard.release();
    expect(mutex.tryLock()).toBeUndefined();
    const handed = await watchdog(waiting, 2000, 'handed waiter');
    expect(handed.ownerDied).toBe(false);
    handed.release();
    expect(mutex.locked).toBe(false);
  });

  it('fair: hands the lock to its waiters in arrival order and lets no newcomer barge', async () => {
    const sab = new SharedArrayBuffer(Mutex.byteLength);
    const mutex = Mutex.createAt(sab, 0, { fair: true });
    expect(mutex.fair).toBe(true);
    expect(Mutex.openAt(sab).fair).toBe(true);
    const i32 = new Int32Array(sab);
    // The wait queue's waiting count is word 16.
    const queued = async (n: number) => {
      while (i32[16] !== n) await new Promise((resolve) => setImmediate(resolve));
    };
    const order: string[] = [];
    const guard = mutex.lockSync();
    const first = mutex.lock().then((g) => {
      order.push('first');
      return g;
    });
    await queued(1);
    const second = mutex.lock().then((g) => {
      order.push('second');
      return g;
    });
    await queued(2);
    guard.release();
    // The lock went to the first waiter: neither the releaser nor a newcomer can take it.
    expect(mutex.locked).toBe(true);
    expect(mutex.tryLock()).toBeUndefined();
    const firstGuard = await watchdog(first, 2000, 'first waiter');
    expect(order).toEqual(['first']);
    firstGuard.release();
    expect(mutex.tryLock()).toBeUndefined();
    (await watchdog(second, 2000, 'second waiter')).release();
    expect(order).toEqual(['first', 'second']);
    // With nobody waiting, a fair lock is taken by a plain compare-and-swap like any other.
    const again = mutex.tryLock();
    expect(again).toBeDefined();
    again!.release();
    expect(mutex.locked).toBe(false);
  });

  it('fair is fixed at creation, a boolean, and off by default', () => {
    const plain = Mutex.create('plain');
    expect(plain.fair).toBe(false);
    const fair = Mutex.create('fair', { fair: true });
    expect(Mutex.open('fair').fair).toBe(true);
    // openOrCreate of an existing mutex keeps what it was created with.
    expect(Mutex.openOrCreate('plain', { fair: true }).fair).toBe(false);
    expect(() => Mutex.create('bad', { fair: 'yes' as unknown as boolean })).toThrow(TypeError);
    plain.close();
    fair.close();
  });

  it("a handle's unlink() leaves alone a name that now belongs to a newer mutex", () => {
    using old = Mutex.create('reused');
    Mutex.unlink('reused');
    using fresh = Mutex.create('reused');
    old.unlink();
    using reopened = Mutex.open('reused');
    const guard = fresh.tryLock()!;
    expect(reopened.tryLock()).toBeUndefined();
    guard.release();
    expect(listResources().some((r) => r.kind === 'mutex' && r.name === 'reused')).toBe(true);
    fresh.unlink();
  });

  it('close() rejects pending waits with ERR_IPC_CLOSED', async () => {
    const holder = Mutex.create('closing');
    const waiter = Mutex.open('closing');
    const guard = holder.tryLock()!;
    const pending = waiter.lock();
    waiter.close();
    expect(isIpcError(await watchdog(rejection(pending), 2000, 'closed wait'), ErrorCodes.CLOSED)).toBe(true);
    guard.release();
    holder.close();
    holder.unlink();
  });

  it('close() of a wait the lock was being handed to passes the lock on to the next waiter', async () => {
    // Fair: the release hands the lock to the oldest waiter, whose handle is then closed before
    // its wake-up is handled. The lock must not stay with that handle, which nobody can release.
    using holder = Mutex.create('handed', { fair: true });
    const closing = Mutex.open('handed');
    using next = Mutex.open('handed');
    const guard = holder.tryLock()!;
    const first = closing.lock(); // queued and parked before lock() returns
    const second = next.lock();
    guard.release(); // hands the lock to `first`
    closing.close();
    expect(isIpcError(await watchdog(rejection(first), 2000, 'closed wait'), ErrorCodes.CLOSED)).toBe(true);
    const passedOn = await watchdog(second, 2000, 'the next waiter');
    expect(holder.locked).toBe(true);
    passedOn.release();
    expect(holder.locked).toBe(false);
    holder.unlink();
  });

  it("placed through a typed array, lives at the view's start plus the offset, within the view", () => {
    const sab = new SharedArrayBuffer(64 + Mutex.byteLength + 64);
    const bytes = new Uint8Array(sab);
    bytes.fill(0xee);
    const view = new Uint8Array(sab, 64, Mutex.byteLength);
    const placed = Mutex.createAt(view);
    // The bytes before the view are untouched; the primitive is at the view's start.
    expect(bytes.subarray(0, 64).every((b) => b === 0xee)).toBe(true);
    expect(bytes.subarray(64 + Mutex.byteLength).every((b) => b === 0xee)).toBe(true);
    const guard = Mutex.openAt(sab, 64).tryLock()!;
    expect(placed.tryLock()).toBeUndefined();
    guard.release();
    expect(() => Mutex.createAt(view, 8)).toThrow(RangeError);
    expect(() => Mutex.createAt(new Uint8Array(sab, 4, Mutex.byteLength))).toThrow(/multiple of 8/);
  });

  it('opens by name (EXISTS / NOT_FOUND) and is placeable at an offset of a segment', () => {
    Mutex.create('named').close();
    expect(() => Mutex.create('named')).toThrow(expect.objectContaining({ code: ErrorCodes.EXISTS }));
    expect(() => Mutex.open('nope')).toThrow(expect.objectContaining({ code: ErrorCodes.NOT_FOUND }));
    Mutex.unlink('named');
    const segment = SharedMemory.create('with-lock', { size: 64 + Mutex.byteLength });
    const placed = Mutex.createAt(segment, 64);
    const other = Mutex.openAt(segment, 64);
    const guard = placed.tryLock()!;
    expect(other.tryLock()).toBeUndefined();
    guard.release();
    expect(() => Mutex.openAt(segment, 0)).toThrow(
      expect.objectContaining({ code: ErrorCodes.INCOMPATIBLE }),
    );
    expect(() => Mutex.createAt(segment, 4)).toThrow(RangeError);
    expect(() => Mutex.createAt(segment, 128)).toThrow(RangeError);
    expect(() => Mutex.createAt(segment, '8' as never)).toThrow(TypeError);
    segment.close();
    segment.unlink();
  });
});

describe('Mutex between processes', () => {
  it('keeps an exact counter: 4 processes x 100k increments (async lock)', async () => {
    expect(await countTogether(['async', 'async', 'async', 'async'], 100_000)).toBe(400_000);
  }, 90_000);

  it('keeps an exact counter with lockSync and lock mixed: 2 x 50k each', async () => {
    expect(await countTogether(['sync', 'async', 'sync', 'async'], 50_000)).toBe(200_000);
  }, 90_000);

  it('fair: keeps an exact counter with lockSync and lock mixed, 4 processes x 20k', async () => {
    expect(await countTogether(['sync', 'async', 'sync', 'async'], 20_000, { fair: true })).toBe(80_000);
  }, 90_000);

  it('fair: recovers a lock whose holder was SIGKILLed while others queue', async () => {
    const mutex = Mutex.create('lock', { fair: true });
    const holder = startFixture('sync-hold-until-killed.ts', ['mutex']);
    await holder.line('held');
    const waits = [mutex.lock(), mutex.lock()];
    holder.child.kill('SIGKILL');
    // Recovery is not a hand-off: whichever waiter notices the death first (its pidfd or its
    // backoff check) takes the lock over. The other must get it at the release that follows.
    const recovered = await watchdog(
      Promise.race(waits.map((wait, index) => wait.then((guard) => ({ guard, index })))),
      10_000,
      'owner-died recovery',
    );
    expect(recovered.guard.ownerDied).toBe(true);
    expect(mutex.recoveries).toBe(1);
    recovered.guard.release();
    const next = await watchdog(
      waits[1 - recovered.index]!,
      10_000,
      'the other queued waiter after recovery',
    );
    expect(next.ownerDied).toBe(false);
    next.release();
    expect(mutex.locked).toBe(false);
  });

  it('recovers a lock whose holder was SIGKILLed, with ownerDied', async () => {
    const mutex = Mutex.create('lock');
    const holder = startFixture('sync-hold-until-killed.ts', ['mutex']);
    await holder.line('held');
    expect(mutex.tryLock()).toBeUndefined();
    const waiting = mutex.lock();
    holder.child.kill('SIGKILL');
    const guard = await watchdog(waiting, 10_000, 'owner-died recovery');
    expect(guard.ownerDied).toBe(true);
    expect(mutex.recoveries).toBe(1);
    guard.release();
    const next = mutex.tryLock();
    expect(next?.ownerDied).toBe(false);
    next!.release();
  });

  it('recovers from a holder left as a zombie (never reaped)', async () => {
    const mutex = Mutex.create('lock');
    // sh starts the holder in the background, then execs into sleep, which never reaps it.
    const wrapper = startFixture('', [], {
      command: 'sh',
      argv: [
        '-c',
        `"${process.execPath}" --import tsx "${fixture('sync-hold-until-killed.ts')}" mutex & exec sleep 60`,
      ],
    });
    const held = await wrapper.line('held');
    const pid = Number(held.split(' ')[1]);
    const waiting = mutex.lock();
    process.kill(pid, 'SIGKILL');
    const guard = await watchdog(waiting, 10_000, 'recovery from a zombie');
    expect(readFileSync(`/proc/${pid}/stat`, 'latin1')).toMatch(/\) Z /);
    expect(guard.ownerDied).toBe(true);
    guard.release();
  });

  it('lockSync while this thread has an async lock() queued is ERR_IPC_DEADLOCK at once, on any handle', async () => {
    for (const fair of [false, true]) {
      const mutex = Mutex.create('lock', { fair });
      const other = Mutex.open('lock');
      const holder = startFixture('sync-hold-until-killed.ts', ['mutex']);
      await holder.line('held');
      // Parked before lock() returns: its slot is in the queue now.
      const queued = mutex.lock();
      // A release would hand the lock to the queued lock() (the oldest waiter), which cannot run
      // while lockSync blocks this thread. The timeouts only bound how long the old code waited.
      const deadlock = expect.objectContaining({ code: ErrorCodes.DEADLOCK });
      expect(() => mutex.lockSync({ timeout: 100 })).toThrow(deadlock);
      expect(() => other.lockSync({ timeout: 100 })).toThrow(deadlock);
      holder.child.kill('SIGKILL');
      const guard = await watchdog(queued, 10_000, 'the queued lock() after the holder died');
      expect(guard.ownerDied).toBe(true);
      guard.release();
      // With no async waiter of this thread left, lockSync is fine again.
      other.lockSync({ timeout: 2000 }).release();
      other.close();
      mutex.close();
      Mutex.unlink('lock');
    }
  });

  it('judges an owner with a live pid but the wrong start time dead (pid reuse)', async () => {
    const segment = SharedMemory.create('forged', { size: Mutex.byteLength });
    const mutex = Mutex.createAt(segment, 0);
    const live = startFixture('sleep', [], { command: 'sleep', argv: ['60'] });
    const stat = readFileSync(`/proc/${live.pid}/stat`, 'latin1');
    expect(stat).not.toMatch(/\) Z /);
    // Forge the state a holder with this pid would leave, but with another start time: the
    // record (words 6..11: seq, tid, pid, -, start) says "pid X started at tick 12345".
    const words = new Int32Array(segment.buffer);
    words[7] = live.pid;
    words[8] = live.pid;
    new Float64Array(segment.buffer)[5] = 12345;
    Atomics.store(words, 6, 2);
    Atomics.store(words, 4, live.pid);
    expect(mutex.locked).toBe(true);
    const guard = await watchdog(mutex.lock(), 10_000, 'recovery from a reused pid');
    expect(guard.ownerDied).toBe(true);
    guard.release();
    // The same forgery with the right start time is a live owner: no recovery.
    const startTime = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
    words[7] = live.pid;
    new Float64Array(segment.buffer)[5] = startTime;
    Atomics.store(words, 6, 4);
    Atomics.store(words, 4, live.pid);
    expect(mutex.tryLock()).toBeUndefined();
    segment.close();
    segment.unlink();
  });

  it('lets a thread recover the lock of a dead holder whose thread id the kernel gave it (pid reuse)', async () => {
    // Mutex and RwLock both keep the holder's thread id in word 4 and its record at words 6..11.
    const me = selfThread();
    const forgeDeadHolderWithMyId = (memory: ArrayBuffer): void => {
      const words = new Int32Array(memory);
      words[7] = me.tid;
      words[8] = me.pid;
      new Float64Array(memory)[5] = me.startTime - 1;
      Atomics.store(words, 6, 2);
      Atomics.store(words, 4, me.tid);
    };
    const segment = SharedMemory.create('forged', { size: Math.max(Mutex.byteLength, RwLock.byteLength) });
    try {
      const mutex = Mutex.createAt(segment, 0);
      forgeDeadHolderWithMyId(segment.buffer);
      const tried = mutex.tryLock();
      expect(tried?.ownerDied).toBe(true);
      tried?.release();
      forgeDeadHolderWithMyId(segment.buffer);
      const blocked = mutex.lockSync({ timeout: 5000 });
      expect(blocked.ownerDied).toBe(true);
      blocked.release();
      forgeDeadHolderWithMyId(segment.buffer);
      const guard = await watchdog(mutex.lock(), 10_000, 'lock()');
      expect(guard.ownerDied).toBe(true);
      guard.release();
      expect(mutex.locked).toBe(false);
      mutex.close();

      new Uint8Array(segment.buffer).fill(0);
      const rwlock = RwLock.createAt(segment, 0);
      forgeDeadHolderWithMyId(segment.buffer);
      const reader = rwlock.readLockSync({ timeout: 5000 });
      expect(reader.ownerDied).toBe(true);
      reader.release();
      forgeDeadHolderWithMyId(segment.buffer);
      const writer = await watchdog(rwlock.writeLock(), 10_000, 'writeLock()');
      expect(writer.ownerDied).toBe(true);
      writer.release();
      rwlock.close();
    } finally {
      segment.close();
      segment.unlink();
    }
  });

  it('recovers a dead holder in a …Sync wait with timeout 0, as tryLock() does', () => {
    const segment = SharedMemory.create('dead-sync', { size: Math.max(Mutex.byteLength, RwLock.byteLength) });
    try {
      // A holder that cannot be running: thread id 0x7ffffffe, in the lock word and its record.
      const forgeDeadHolder = (): void => {
        const words = new Int32Array(segment.buffer);
        words[7] = 0x7ffffffe;
        words[8] = 0x7ffffffe;
        Atomics.store(words, 6, (Atomics.load(words, 6) | 1) + 1);
        Atomics.store(words, 4, 0x7ffffffe);
      };
      const mutex = Mutex.createAt(segment, 0);
      forgeDeadHolder();
      const guard = mutex.lockSync({ timeout: 0 });
      expect(guard.ownerDied).toBe(true);
      guard.release();
      mutex.close();
      new Uint8Array(segment.buffer).fill(0);
      const rwlock = RwLock.createAt(segment, 0);
      forgeDeadHolder();
      const writer = rwlock.writeLockSync({ timeout: 0 });
      expect(writer.ownerDied).toBe(true);
      writer.release();
      rwlock.close();
    } finally {
      segment.close();
      segment.unlink();
    }
  });

  it('keeps the owner record readable after recovering from an owner killed while writing it', () => {
    const segment = SharedMemory.create('odd-record', { size: Mutex.byteLength });
    try {
      const mutex = Mutex.createAt(segment, 0);
      const words = new Int32Array(segment.buffer);
      // The state a holder leaves when killed between the record's two counter steps: the count
      // (word 6) odd, its thread id (which cannot be running) in the lock word.
      Atomics.store(words, 6, 3);
      Atomics.store(words, 4, 0x7ffffffe);
      const guard = mutex.tryLock();
      expect(guard?.ownerDied).toBe(true);
      // Even again: readers can take a snapshot of the new owner (to watch its process, and to
      // tell it from a later thread with its id).
      expect(Atomics.load(words, 6) % 2).toBe(0);
      expect(words[7]).toBe(selfThread().tid);
      guard?.release();
      mutex.close();
    } finally {
      segment.close();
      segment.unlink();
    }
  });
});
