/**
 * SIGKILL at random points, for the primitives other than the Semaphore (whose churn test is in
 * semaphore.test.ts): processes loop on a primitive in every way it can be taken or waited for, one
 * of them is SIGKILLed wherever it happens to be, over and over (a new one takes its place each
 * time), and then the primitive must still work: nothing held by the dead, no count left behind,
 * nobody hung. The churners count their iterations in a shared word; each kill comes after a random
 * number of further iterations of the whole group, so it lands anywhere in their loops.
 *
 * Then the states a random kill hits only now and then, made on purpose: a fair mutex's waiter
 * killed after the lock was handed to it, a condition waiter killed after its notification but
 * before it holds the mutex again.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it, vi } from 'vitest';
import { Condition, Event, Mutex, RwLock, SharedMemory } from '../../src/index.js';
import { ConditionWords, MutexWords, RwLockWords } from '../fixtures/sync-churn-words.js';
import { watchdog } from '../helpers.js';
import { isolateEachTest, startFixture, succeeded } from './children.js';
import { churn, until, wordReaches } from './churn.js';

isolateEachTest();
// A churn kills and replaces processes dozens of times: 20–26 s per test in CI, 44 s once when the
// VM was slow, against the suite's 60 s default. A hang still fails at once: every step of churn()
// has a watchdog of its own (10–20 s).
vi.setConfig({ testTimeout: 180_000 });

describe('Mutex: holders SIGKILLed at random points', () => {
  const { ITERATIONS, A, B, VIOLATIONS, INSIDE, SECTIONS } = MutexWords;

  it.each([
    ['default', false],
    ['fair', true],
  ])(
    '%s: never two holders, never held by the dead, tryLock works once released',
    async (_, fair) => {
      const words = new Int32Array(SharedMemory.create('counter', { size: 64 }).buffer);
      const mutex = Mutex.create('lock', { fair });
      await churn({
        start: () => startFixture('sync-mutex-churn.ts'),
        count: 3,
        kills: 25,
        words,
        iterations: ITERATIONS,
        spread: 400,
      });
      const guard = await watchdog(mutex.lock(), 5_000, 'the test takes the mutex the dead left');
      if (guard.ownerDied) {
        // The last holder died inside: it may have left the flag raised and the pair torn.
        words[INSIDE] = 0;
        words[B] = words[A]!;
      }
      expect(words[INSIDE]).toBe(0);
      expect(words[A]).toBe(words[B]);
      expect(words[VIOLATIONS]).toBe(0);
      expect(words[SECTIONS]).toBeGreaterThan(0);
      guard.release();
      expect(mutex.locked).toBe(false);
      const again = mutex.tryLock();
      expect(again).toBeDefined();
      expect(again!.ownerDied).toBe(false);
      again!.release();
      expect(mutex.locked).toBe(false);
    },
    120_000,
  );
});

describe('RwLock: readers and writers SIGKILLed at random points', () => {
  const { ITERATIONS, VIOLATIONS, WRITES, READS } = RwLockWords;

  it('drops the dead readers and writers: a writer gets in, then readers and writers again', async () => {
    const words = new Int32Array(SharedMemory.create('counter', { size: 64 }).buffer);
    const lock = RwLock.create('lock');
    await churn({
      start: (k) => startFixture('sync-rwlock-churn.ts', [String(k)]),
      count: 3,
      kills: 25,
      words,
      iterations: ITERATIONS,
      spread: 400,
    });
    // The dead readers' read locks are dropped when a writer waits for them.
    const writer = await watchdog(lock.writeLock(), 5_000, 'the test takes the write lock');
    expect(lock.readers).toBe(0);
    expect(lock.writing).toBe(true);
    writer.release();
    expect(lock.writing).toBe(false);
    expect(lock.readers).toBe(0);
    const again = lock.tryWriteLock();
    expect(again).toBeDefined();
    expect(again!.ownerDied).toBe(false);
    again!.release();
    const reader = lock.tryReadLock();
    expect(reader).toBeDefined();
    expect(lock.readers).toBe(1);
    reader!.release();
    expect(lock.readers).toBe(0);
    expect(lock.writing).toBe(false);
    expect(words[VIOLATIONS]).toBe(0);
    expect(words[WRITES]).toBeGreaterThan(0);
    expect(words[READS]).toBeGreaterThan(0);
  }, 120_000);
});

describe('Condition: producers and consumers SIGKILLed at random points', () => {
  const { FULL, CONSUMED, VIOLATIONS } = ConditionWords;

  it('keeps handing over: the survivors without the victim, and a fresh pair at the end', async () => {
    const words = new Int32Array(SharedMemory.create('counter', { size: 64 }).buffer);
    const mutex = Mutex.create('lock');
    const notFull = Condition.create('not-full');
    const notEmpty = Condition.create('not-empty');
    const roles = ['producer', 'consumer', 'producer', 'consumer'];
    await churn({
      start: (k) => startFixture('sync-condition-churn.ts', [roles[k]!]),
      count: roles.length,
      // Each kill waits for the last replacement to start: fewer kills keep the test near 20 s.
      kills: 15,
      words,
      iterations: CONSUMED,
      spread: 200,
      // Every churner runs at each kill, so a producer and a consumer survive it.
      allRunning: true,
      afterKill: async () => {
        // What any process of the application would do on finding a dead holder: the victim,
        // killed holding the mutex, may have owed a notify, so everyone looks again. Killed
        // anywhere else, it owed nothing, and nothing is done.
        const guard = await watchdog(mutex.lock(), 5_000, 'the test takes the mutex');
        if (guard.ownerDied) {
          notFull.notifyAll();
          notEmpty.notifyAll();
        }
        guard.release();
        // The survivors hand items over without the victim (and without its replacement).
        const target = Atomics.load(words, CONSUMED) + 20;
        await watchdog(wordReaches(words, CONSUMED, target), 5_000, 'the survivors hand over 20 items');
      },
    });
    expect(words[VIOLATIONS]).toBe(0);
    // A fresh pair hands 2000 items over the same mutex and conditions, from an empty slot.
    const guard = await watchdog(mutex.lock(), 5_000, 'the test takes the mutex');
    words[FULL] = 0;
    guard.release();
    const producer = startFixture('sync-condition-handoff.ts', ['producer', '2000']);
    const consumer = startFixture('sync-condition-handoff.ts', ['consumer', '2000']);
    const output = await succeeded(consumer, 20_000, 'the fresh consumer');
    await succeeded(producer, 20_000, 'the fresh producer');
    expect(output).toContain(`sum ${(2000 * 2001) / 2}`);
  }, 120_000);
});

describe('Event: players SIGKILLed at random points', () => {
  it('keeps waking: the players go on through every kill, and a fresh pair ping-pongs after', async () => {
    const words = new Int32Array(SharedMemory.create('counter', { size: 64 }).buffer);
    const ping = Event.create('ping');
    const pong = Event.create('pong');
    const sides = ['ping', 'pong', 'ping', 'pong'];
    await churn({
      start: (k) => startFixture('sync-event-churn.ts', [sides[k]!]),
      count: sides.length,
      kills: 20,
      words,
      iterations: 0,
      spread: 200,
    });
    // The flags are the application's state: the fresh pair starts from lowered ones.
    ping.clear();
    pong.clear();
    const pinger = startFixture('sync-event-pingpong.ts', ['ping', '2000']);
    const ponger = startFixture('sync-event-pingpong.ts', ['pong', '2000']);
    expect(await succeeded(pinger, 20_000, 'the fresh ping side')).toContain('rounds 2000');
    expect(await succeeded(ponger, 20_000, 'the fresh pong side')).toContain('rounds 2000');
  }, 120_000);
});

describe('Condition: a waiter SIGKILLed after its notification, before it holds the mutex again', () => {
  // Segment 'room' as sync-condition-take-one.ts uses it: word 0 full flag, word 1 item, the mutex
  // at byte 64, the condition after it. Word 16 + 16 is the count of the mutex's wait queue (the
  // queue starts at word 16 of a Mutex, its first word counts its waiters).
  const FULL = 0;
  const ITEM = 1;
  const MUTEX_WAITERS = 16 + 16;

  it.each(['async', 'sync'])(
    'passes the notification on to the next waiter (%s waits)',
    async (mode) => {
      const room = SharedMemory.create('room', { size: 8192 });
      const words = new Int32Array(room.buffer);
      const mutex = Mutex.createAt(room, 64);
      const notEmpty = Condition.createAt(room, 64 + Mutex.byteLength);
      const first = startFixture('sync-condition-take-one.ts', [mode]);
      await watchdog(
        until(() => notEmpty.waiting === 1),
        20_000,
        'the first consumer waits',
      );
      const second = startFixture('sync-condition-take-one.ts', [mode]);
      await watchdog(
        until(() => notEmpty.waiting === 2),
        20_000,
        'the second consumer waits',
      );
      // Produce one item holding the mutex, as one should: the notification goes to the oldest
      // waiter, which then waits for the mutex we hold. It is killed there.
      const guard = await watchdog(mutex.lock(), 10_000, 'the test takes the mutex');
      words[ITEM] = 7;
      words[FULL] = 1;
      expect(notEmpty.notify()).toBe(1);
      await watchdog(
        until(() => Atomics.load(words, MUTEX_WAITERS) > 0),
        10_000,
        'the notified consumer waits for the mutex',
      );
      first.child.kill('SIGKILL');
      await watchdog(first.exited, 10_000, 'the first consumer exits');
      guard.release();
      // The item is there and a consumer waits for it: the notification must reach it.
      expect(await second.line('took', 10_000)).toBe('took 7');
      expect(words[FULL]).toBe(0);
      expect(notEmpty.waiting).toBe(0);
    },
    90_000,
  );
});

describe('fair Mutex: waiters SIGKILLed in its queue', () => {
  it('a waiter killed after the lock was handed to it keeps nobody out: tryLock works again', async () => {
    const mutex = Mutex.create('lock', { fair: true });
    const mine = mutex.tryLock()!;
    const waiter = startFixture('sync-mutex-queue-then-stall.ts');
    await waiter.line('queued');
    // The release hands the lock to the queued waiter, whose event loop is stalled: it never takes
    // it up, and is killed holding it.
    mine.release();
    waiter.child.kill('SIGKILL');
    await watchdog(waiter.exited, 10_000, 'the waiter exits');
    const recovered = await watchdog(mutex.lock(), 5_000, 'the test recovers the lock');
    expect(recovered.ownerDied).toBe(true);
    recovered.release();
    const again = mutex.tryLock();
    expect(again).toBeDefined();
    expect(again!.ownerDied).toBe(false);
    again!.release();
  });

  // The states a waiter leaves in the queue when SIGKILLed at each point, written by hand (layout
  // in wait-queue.ts: the queue at word 16 of a Mutex, [waiting, tickets, slots, used], then slots
  // of [state, tid, doorbell nonce, pid, start time (f64), waiting since (f64)]).
  const STATE = 4;
  const QUEUE = 16;
  const SLOT = QUEUE + 4;
  /** A slot being claimed reads CLAIMING - the claimer's thread id. */
  const CLAIMING = -0x1000000;
  const HANDED = -3;
  const SPINNING = 0x20000000;

  /** A fair mutex whose queue holds one slot in `state`, of a waiter that is dead. */
  function fairWithDeadWaiter(state: number, lockedByIt: boolean): { mutex: Mutex; i32: Int32Array } {
    const memory = new SharedArrayBuffer(Mutex.byteLength);
    const mutex = Mutex.createAt(memory, 0, { fair: true });
    const i32 = new Int32Array(memory);
    const f64 = new Float64Array(memory);
    // A process that ran and was reaped: its id names no thread.
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
    i32[QUEUE] = 1;
    i32[QUEUE + 1] = 1;
    i32[QUEUE + 3] = 1;
    i32[SLOT] = state === CLAIMING ? CLAIMING - dead : state;
    if (state !== CLAIMING) {
      i32[SLOT + 1] = dead;
      i32[SLOT + 2] = 12345;
      i32[SLOT + 3] = dead;
      f64[(SLOT + 4) >> 1] = 1;
      f64[(SLOT + 6) >> 1] = performance.timeOrigin + performance.now() - 1000;
    }
    if (lockedByIt) i32[STATE] = dead;
    return { mutex, i32 };
  }

  it.each([
    ['parked (async)', 1, false],
    ['spinning on its slot', 1 | SPINNING, false],
    ['after the lock was handed to it', HANDED, true],
  ])('a waiter killed %s: tryLock takes the lock, and again after a release', (_, state, lockedByIt) => {
    const { mutex, i32 } = fairWithDeadWaiter(state, lockedByIt);
    const first = mutex.tryLock();
    expect(first).toBeDefined();
    expect(first!.ownerDied).toBe(lockedByIt);
    first!.release();
    const second = mutex.tryLock();
    expect(second).toBeDefined();
    expect(second!.ownerDied).toBe(false);
    second!.release();
    expect(i32[QUEUE]).toBe(0);
  });

  it('a waiter killed while claiming its slot: tryLock takes the lock, and the slot is freed', () => {
    const { mutex, i32 } = fairWithDeadWaiter(CLAIMING, false);
    const first = mutex.tryLock();
    expect(first).toBeDefined();
    expect(first!.ownerDied).toBe(false);
    first!.release();
    expect(i32[SLOT]).toBe(0);
    expect(i32[QUEUE]).toBe(0);
  });
});
