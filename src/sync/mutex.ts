/**
 * Mutex: a robust, non-recursive mutual-exclusion lock in shared memory, usable between processes
 * and between worker threads. The lock word holds the owner's thread id; taking it is one
 * compare-and-swap (~tens of ns uncontended). A holder that dies (SIGKILL, a zombie, a terminated
 * worker) is detected by its waiters and the next `lock()` gets the lock with `ownerDied: true`,
 * without any timeout chosen by the user.
 *
 * By default the lock barges, like a futex mutex, parking_lot or Boost's: a release frees the word
 * and the next compare-and-swap wins, which keeps a busy lock at uncontended speed, and a waiter
 * that has waited FAIR_MS gets the lock handed to it. A fair Mutex (`{ fair: true }`) hands the
 * lock to its oldest waiter at every release and lets nobody jump the line, like Java's fair
 * ReentrantLock: waiters take turns, at the price of a hand-off per acquisition under contention.
 *
 * Layout (32-bit words): 0-3 header, 4 lock word (0 or owner tid), 6-11 owner record,
 * 12 recoveries (times a dead owner's lock was taken over), 13 flags (bit 0: fair), 16.. wait queue.
 */
import { ErrorCodes, IpcError } from '../core/errors.js';
import type { WaitOptions } from '../core/wait.js';
import { type Guard, HeldGuard } from './guard.js';
import { OWNER_WORDS, OwnerRecord } from './owner.js';
import {
  type KindSpec,
  openNamedStorage,
  Primitive,
  type PrimitiveOptions,
  placedStorage,
  type Storage,
  unlinkNamedPrimitive,
} from './primitive.js';
import type { PlacementTarget } from './region.js';
import { selfThread } from './thread.js';
import { WAIT_QUEUE_WORDS, WaitQueue } from './wait-queue.js';
import { type WaitTarget, waitAsync, waitSync } from './waiter.js';

const STATE = 4;
const OWNER = 6;
const RECOVERIES = OWNER + OWNER_WORDS;
const FLAGS = RECOVERIES + 1;
const FAIR_FLAG = 1;
// The wait queue starts on the next 64-byte cache line, away from the lock word that spinners read.
const QUEUE = 16;
const WORDS = QUEUE + WAIT_QUEUE_WORDS;
/**
 * Eventual fairness: a release hands the lock straight to the oldest waiter once it has waited this
 * long, instead of letting the releaser (or anyone spinning) barge in again. Short enough that no
 * waiter starves, long enough that a busy lock mostly runs at uncontended speed.
 */
const FAIR_MS = 0.5;

const spec: KindSpec = {
  kind: 'mutex',
  byteLength: WORDS * 4,
  init: (region, flags) => {
    region.i32[FLAGS] = flags;
    WaitQueue.init(region, QUEUE);
  },
};

/** Options for creating a mutex. */
export interface MutexOptions extends PrimitiveOptions {
  /**
   * Hand the lock to the longest-waiting thread at every release, never letting a newcomer (or
   * the releaser itself) take it first. Default false: the lock barges, which is much faster
   * under contention, and hands off only to a waiter that has waited 0.5 ms. A property of the
   * mutex, fixed at creation: ignored when opening an existing one.
   */
  fair?: boolean;
}

function flagsOf(opts: MutexOptions | undefined): number {
  if (opts?.fair !== undefined && typeof opts.fair !== 'boolean') {
    throw new TypeError('options.fair must be a boolean');
  }
  return opts?.fair ? FAIR_FLAG : 0;
}

/** A held Mutex. */
export type MutexGuard = Guard;

/** A cross-process, cross-thread mutual-exclusion lock. */
export class Mutex extends Primitive {
  /** Bytes a Mutex occupies when placed with {@link Mutex.createAt} (offsets must be multiples of 8). */
  static readonly byteLength = spec.byteLength;
  readonly #queue: WaitQueue;
  readonly #owner: OwnerRecord;
  readonly #i32: Int32Array;
  readonly #fair: boolean;
  readonly #lockTarget: WaitTarget<MutexGuard>;
  // One unlock function for all guards: no closure allocated per lock on the fast path.
  readonly #unlock = () => this.releaseWord();
  readonly #lockFree = (): boolean => Atomics.load(this.#i32, STATE) === 0;
  readonly #ownerPids = (): readonly number[] => {
    const tid = Atomics.load(this.#i32, STATE);
    return tid === 0 ? [] : [this.#owner.pidOf(tid)];
  };

  private constructor(storage: Storage) {
    super('mutex', storage);
    this.#i32 = this.region.i32;
    this.#queue = new WaitQueue(this.region, QUEUE);
    this.#owner = new OwnerRecord(this.region, OWNER);
    this.#fair = (Atomics.load(this.#i32, FLAGS) & FAIR_FLAG) !== 0;
    this.#lockTarget = this.#waitTarget(`${this.what}: lock`, (deathCheck, handed, queued) => {
      const died = this.acquireWord(deathCheck, handed, queued);
      return died === undefined ? undefined : this.#guard(died);
    });
  }

  /** A wait for the lock word (lock(), and the re-lock after a Condition wait): `take` makes the result. */
  #waitTarget<R>(what: string, take: WaitTarget<R>['attempt']): WaitTarget<R> {
    return {
      what,
      queue: this.#queue,
      spin: this.spinner,
      handsOff: this.#fair,
      attempt: (deathCheck, handed, queued) => {
        this.assertOpen();
        return take(deathCheck, handed, queued);
      },
      ready: this.#lockFree,
      watchPids: this.#ownerPids,
      track: (kick) => this.trackWait(kick),
      passOnHanded: (deathCheck) => {
        if (this.acquireWord(deathCheck, true) === undefined) return false;
        this.#releaseHeldWord();
        return true;
      },
    };
  }

  /** Creates the named mutex `name` (unlocked). ERR_IPC_EXISTS if it exists. */
  static create(name: string, opts?: MutexOptions): Mutex {
    return new Mutex(openNamedStorage(spec, name, 'create', flagsOf(opts), opts));
  }

  /** Opens the existing named mutex `name`. ERR_IPC_NOT_FOUND if missing. */
  static open(name: string): Mutex {
    return new Mutex(openNamedStorage(spec, name, 'open', 0, undefined));
  }

  /** Opens the named mutex `name`, creating it if needed. */
  static openOrCreate(name: string, opts?: MutexOptions): Mutex {
    return new Mutex(openNamedStorage(spec, name, 'openOrCreate', flagsOf(opts), opts));
  }

  /**
   * Initializes a mutex at `offset` of memory you own (a SharedMemory, or a SharedArrayBuffer shared
   * with workers) and returns it. Other processes or threads attach with {@link Mutex.openAt}.
   */
  static createAt(target: PlacementTarget, offset = 0, opts?: Pick<MutexOptions, 'fair'>): Mutex {
    return new Mutex(placedStorage(spec, target, offset, 'create', flagsOf(opts)));
  }

  /** Attaches to a mutex that {@link Mutex.createAt} placed at `offset`. ERR_IPC_INCOMPATIBLE if there is none. */
  static openAt(target: PlacementTarget, offset = 0): Mutex {
    return new Mutex(placedStorage(spec, target, offset, 'open', 0));
  }

  /** Removes the named mutex `name`. ERR_IPC_NOT_FOUND if it does not exist. */
  static unlink(name: string): void {
    unlinkNamedPrimitive('mutex', name);
  }

  /** True for a fair mutex (see {@link MutexOptions.fair}), as created. */
  get fair(): boolean {
    return this.#fair;
  }

  /** True while some thread holds the lock (a snapshot). */
  get locked(): boolean {
    this.assertOpen();
    return Atomics.load(this.#i32, STATE) !== 0;
  }

  /**
   * Takes the lock if it is free, or if its holder is dead (then `ownerDied` is true). Never waits.
   * Returns undefined if another live thread (or another task of this thread) holds it.
   */
  tryLock(): MutexGuard | undefined {
    this.assertOpen();
    const died = this.acquireWord(true);
    return died === undefined ? undefined : this.#guard(died);
  }

  /**
   * Waits for the lock without blocking the event loop. Rejects with ERR_IPC_TIMEOUT /
   * ERR_IPC_ABORTED per `opts`, ERR_IPC_CLOSED if this handle is closed meanwhile.
   */
  lock(opts?: WaitOptions): Promise<MutexGuard> {
    if (this.closed) return Promise.reject(this.closedError());
    return waitAsync(this.#lockTarget, opts);
  }

  /**
   * Waits for the lock blocking this thread (workers, scripts). ERR_IPC_DEADLOCK if this thread
   * already holds it, or has an async `lock()` of its own waiting for it (through any handle):
   * nothing else could release it, or the lock would be handed to that waiter, which cannot run
   * while this thread is blocked.
   */
  lockSync(opts?: WaitOptions): MutexGuard {
    this.assertOpen();
    if (this.#owner.isMe(Atomics.load(this.#i32, STATE), selfThread())) {
      throw new IpcError(
        ErrorCodes.DEADLOCK,
        `${this.what}: lockSync by the thread that holds it would never return (release the other guard first)`,
      );
    }
    this.assertNoAsyncWaitOfThisThread('lockSync');
    return waitSync(this.#lockTarget, opts);
  }

  /**
   * @internal Throws ERR_IPC_DEADLOCK if this thread has an async wait queued for this mutex (a
   * `lock()`, or a Condition wait re-taking it), through any handle: `op` is about to block the
   * thread until it holds the lock, but a release hands the lock to the oldest waiter, which may
   * be that async wait, and it cannot run while the thread is blocked. `op` would then wait for
   * itself, forever or until its timeout, depending on who queued first: refused at once instead.
   */
  assertNoAsyncWaitOfThisThread(op: string): void {
    this.assertOpen();
    if (!this.#queue.queuedBy(selfThread())) return;
    throw new IpcError(
      ErrorCodes.DEADLOCK,
      `${this.what}: ${op} by a thread that has an async lock() of its own waiting for this mutex ` +
        'could wait for itself (the lock may be handed to that waiter, which cannot run while this ' +
        'thread is blocked): await that lock() instead, or settle it first',
    );
  }

  /** Runs `fn` holding the lock and releases it however `fn` ends. */
  async withLock<R>(fn: (guard: MutexGuard) => R | Promise<R>, opts?: WaitOptions): Promise<R> {
    const guard = await this.lock(opts);
    try {
      return await fn(guard);
    } finally {
      guard.release();
    }
  }

  /** How many times a dead holder's lock was taken over (since creation). */
  get recoveries(): number {
    this.assertOpen();
    return Atomics.load(this.#i32, RECOVERIES);
  }

  #guard(ownerDied: boolean): MutexGuard {
    return new HeldGuard(this, this.#unlock, ownerDied);
  }

  /**
   * @internal Tries to take the lock word: undefined if held by someone alive (or, for a fair
   * mutex, if the caller is not `queued` while others wait), else whether the previous holder
   * died. Used by Condition to re-take the lock after a wait.
   */
  acquireWord(deathCheck: boolean, handed = false, queued = false): boolean | undefined {
    const i32 = this.#i32;
    const me = selfThread();
    if (handed) {
      // The releaser made (or is making) this thread the owner; only a dead releaser needs more.
      const holder = Atomics.load(i32, STATE);
      if (holder === me.tid) return false;
      if (!deathCheck || holder === 0 || !this.#owner.isDead(holder)) return undefined;
      if (Atomics.compareExchange(i32, STATE, holder, me.tid) !== holder) return undefined;
      this.#owner.record(me);
      Atomics.add(i32, RECOVERIES, 1);
      return true;
    }
    // A fair lock serves its queue first. A free word with waiters is only the instant between a
    // release and its hand-off (or a waiter still registering): a queued waiter may take it.
    // Unless the waiters are dead (killed while queued, or after the lock was handed to them):
    // nobody would ever take it then, so a death check frees their slots, and with no slot left
    // taken the lock is anyone's (the count may stay too high: see WaitQueue.register).
    const barred = this.#fair && !queued && this.#queue.waiting > 0;
    let prev = barred ? Atomics.load(i32, STATE) : 0;
    if (barred && prev === 0 && (!deathCheck || this.#queue.reapDeadWaiters() > 0)) return undefined;
    if (prev === 0) {
      prev = Atomics.compareExchange(i32, STATE, 0, me.tid);
      if (prev === 0) {
        this.#owner.record(me);
        return false;
      }
    }
    if (!deathCheck || this.#owner.isMe(prev, me) || !this.#owner.isDead(prev)) return undefined;
    if (Atomics.compareExchange(i32, STATE, prev, me.tid) !== prev) return undefined;
    this.#owner.record(me);
    Atomics.add(i32, RECOVERIES, 1);
    return true;
  }

  /**
   * @internal Releases the lock word held by this thread: hands it to a waiter that has waited
   * FAIR_MS or more (a fair mutex: to the oldest waiter), else frees it and wakes one waiter.
   */
  releaseWord(): void {
    this.assertOpen();
    if (Atomics.load(this.#i32, STATE) !== selfThread().tid) {
      throw new IpcError(
        ErrorCodes.OWNER_DIED,
        `${this.what}: released by a thread that does not hold it (it was recovered as if this thread had died)`,
      );
    }
    this.#releaseHeldWord();
  }

  /** {@link Mutex.releaseWord} once it is known that this thread holds the word and it is mapped. */
  #releaseHeldWord(): void {
    const i32 = this.#i32;
    const queue = this.#queue;
    if (queue.waiting > 0) {
      // Fair: any waiter, however short its wait (waiting-since times come from each process's own
      // clock, which can be a fraction of a millisecond apart, so a 0 ms threshold is not "any").
      const next = queue.handOff(this.#fair ? Number.NEGATIVE_INFINITY : FAIR_MS);
      if (next) {
        this.#owner.record(next);
        Atomics.store(i32, STATE, next.tid);
        if (queue.deliverHandOff(next)) return;
        // Its thread is gone: take the lock back from it and release it the ordinary way.
        if (Atomics.compareExchange(i32, STATE, next.tid, 0) === next.tid && queue.waiting > 0) queue.wake(1);
        return;
      }
    }
    Atomics.store(i32, STATE, 0);
    if (queue.waiting > 0) queue.wake(1);
  }

  /** @internal A wait target that re-takes the lock for a Condition wait (same engine as lock()). */
  relockTarget(): WaitTarget<boolean> {
    return this.#waitTarget(`${this.what}: re-lock after a condition wait`, (deathCheck, handed, queued) =>
      this.acquireWord(deathCheck, handed, queued),
    );
  }
}
