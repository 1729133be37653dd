/**
 * Condition: wait until notified, atomically releasing a Mutex while waiting, as in Python's
 * threading.Condition or pthread_cond_t, but between processes and worker threads.
 *
 * A waiter takes a slot in the condition's wait queue *before* releasing the mutex, so a notify
 * issued by whoever takes the mutex next always finds it: no lost wake-ups. `notify(n)` wakes the n
 * oldest waiters, `notifyAll()` all of them; a waiter that times out or is aborted after being
 * notified counts as notified (the wait resolves), so a notification is never swallowed.
 * A wait always re-takes the mutex before it settles, even when it rejects.
 *
 * Use it the usual way: hold the mutex, check your predicate in a loop, wait; change the state and
 * notify while holding the mutex. Layout: 0-3 header, 4-7 reserved, 8.. wait queue.
 */
import { ErrorCodes, IpcError } from '../core/errors.js';
import { numberError } from '../core/options.js';
import { checkWaitOptions, type WaitOptions } from '../core/wait.js';
import { threadDoorbell } from '../shm/doorbell.js';
import { HeldGuard } from './guard.js';
import { Mutex, type MutexGuard } from './mutex.js';
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
import { NOTIFIED, type Registration, WAIT_QUEUE_WORDS, WAIT_SLOTS, WaitQueue } from './wait-queue.js';
import { type WaitTarget, waitAsync, waitSync } from './waiter.js';

const QUEUE = 8;
const WORDS = QUEUE + WAIT_QUEUE_WORDS;

const spec: KindSpec = {
  kind: 'condition',
  byteLength: WORDS * 4,
  init: (region) => WaitQueue.init(region, QUEUE),
};

/** A cross-process, cross-thread condition variable used with a {@link Mutex}. */
export class Condition extends Primitive {
  /** Bytes a Condition occupies when placed with {@link Condition.createAt}. */
  static readonly byteLength = spec.byteLength;
  readonly #queue: WaitQueue;
  /** Slots of this handle's notified waits that are re-taking their mutex (see #leaveKept). */
  readonly #keptSlots = new Set<Registration>();

  private constructor(storage: Storage) {
    super('condition', storage);
    this.#queue = new WaitQueue(this.region, QUEUE);
  }

  /** Creates the named condition `name`. ERR_IPC_EXISTS if it exists. */
  static create(name: string, opts?: PrimitiveOptions): Condition {
    return new Condition(openNamedStorage(spec, name, 'create', 0, opts));
  }

  /** Opens the existing named condition `name`. */
  static open(name: string): Condition {
    return new Condition(openNamedStorage(spec, name, 'open', 0, undefined));
  }

  /** Opens `name`, creating it if needed. */
  static openOrCreate(name: string, opts?: PrimitiveOptions): Condition {
    return new Condition(openNamedStorage(spec, name, 'openOrCreate', 0, opts));
  }

  /** Initializes a condition at `offset` of memory you own. */
  static createAt(target: PlacementTarget, offset = 0): Condition {
    return new Condition(placedStorage(spec, target, offset, 'create', 0));
  }

  /** Attaches to a condition placed at `offset`. */
  static openAt(target: PlacementTarget, offset = 0): Condition {
    return new Condition(placedStorage(spec, target, offset, 'open', 0));
  }

  /** Removes the named condition `name`. ERR_IPC_NOT_FOUND if it does not exist. */
  static unlink(name: string): void {
    unlinkNamedPrimitive('condition', name);
  }

  /** Threads waiting right now (a snapshot). */
  get waiting(): number {
    this.assertOpen();
    return this.#queue.waiting;
  }

  /**
   * Releases `guard`'s mutex, waits to be notified, and re-takes the mutex before settling (the
   * guard is held again, with `ownerDied` set if the mutex was recovered from a dead holder).
   * Rejects with ERR_IPC_TIMEOUT / ERR_IPC_ABORTED per `opts` (mutex re-taken all the same).
   * Check your predicate in a loop, as with any condition variable: another thread may have changed
   * it between the notify and your re-taking the mutex, and a waiter can be woken without a notify
   * of its own, when a notified waiter was killed and its notification is passed on (see docs).
   */
  async wait(guard: MutexGuard, opts?: WaitOptions): Promise<void> {
    checkWaitOptions(opts);
    this.assertOpen();
    const mutex = this.#mutexOf(guard);
    const held = guard as HeldGuard;
    const reg = this.#register(threadDoorbell().nonce);
    this.#releaseOrLeave(mutex, reg);
    held.lend(true);
    const kept = { slot: false };
    let failure: unknown;
    try {
      await waitAsync(this.#target(reg, kept), opts);
    } catch (err) {
      failure = err;
    }
    try {
      const died = await waitAsync(mutex.relockTarget(), undefined);
      if (died) held.ownerDied = true;
    } finally {
      held.lend(false);
      this.#leaveKept(reg, kept);
    }
    if (failure !== undefined) throw failure;
  }

  /**
   * {@link Condition.wait} blocking this thread (workers, scripts). ERR_IPC_DEADLOCK (before the
   * mutex is released) if this thread has an async `lock()` waiting for the guard's mutex: the
   * release could hand the mutex to it, and the re-lock would then wait for this very thread.
   */
  waitSync(guard: MutexGuard, opts?: WaitOptions): void {
    checkWaitOptions(opts);
    this.assertOpen();
    const mutex = this.#mutexOf(guard);
    mutex.assertNoAsyncWaitOfThisThread('Condition.waitSync (which re-takes the mutex)');
    const reg = this.#register(0);
    const held = guard as HeldGuard;
    this.#releaseOrLeave(mutex, reg);
    held.lend(true);
    const kept = { slot: false };
    let failure: unknown;
    try {
      waitSync(this.#target(reg, kept), opts);
    } catch (err) {
      failure = err;
    }
    try {
      const died = waitSync(mutex.relockTarget(), undefined);
      if (died) held.ownerDied = true;
    } finally {
      held.lend(false);
      this.#leaveKept(reg, kept);
    }
    if (failure !== undefined) throw failure;
  }

  /** Wakes up to `n` waiters (oldest first). Returns how many were woken. */
  notify(n = 1): number {
    if (!Number.isInteger(n) || n < 0) throw numberError(n, `n must be an integer >= 0, got ${String(n)}`);
    this.assertOpen();
    return n === 0 ? 0 : this.#queue.wake(n);
  }

  /** Wakes every waiter. Returns how many were woken. */
  notifyAll(): number {
    this.assertOpen();
    return this.#queue.wake(Number.POSITIVE_INFINITY);
  }

  #mutexOf(guard: MutexGuard): Mutex {
    if (!(guard instanceof HeldGuard) || !(guard.source instanceof Mutex)) {
      throw new TypeError('guard must be a MutexGuard (from Mutex.lock, lockSync or tryLock)');
    }
    if (guard.released) throw new TypeError('guard was already released: wait needs the mutex held');
    if (guard.lent) throw new TypeError('guard is lent to another Condition wait that has not returned');
    return guard.source;
  }

  #releaseOrLeave(mutex: Mutex, reg: Registration): void {
    try {
      mutex.releaseWord();
    } catch (err) {
      this.#queue.leave(reg);
      throw err;
    }
  }

  #register(nonce: number): Registration {
    const reg = this.#queue.register(selfThread(), nonce);
    if (!reg) {
      throw new IpcError(
        ErrorCodes.QUEUE_FULL,
        `${this.what}: too many threads waiting at once (the limit is ${WAIT_SLOTS})`,
      );
    }
    return reg;
  }

  /**
   * Leaves the slot of a notified wait once its mutex is held again (or the re-lock failed). Until
   * then the slot reads NOTIFIED: a waiter killed after its notification but before it held the
   * mutex leaves a dead thread's notified slot, which the other waiters' death checks pass on
   * (after it holds the mutex, its death is the mutex's ownerDied). Leaving at the notification
   * instead let a waiter killed while re-taking the mutex take the notification with it.
   */
  #leaveKept(reg: Registration, kept: { slot: boolean }): void {
    if (!kept.slot) return;
    // Left by close() already if the handle was closed meanwhile (its memory is gone now).
    if (this.#keptSlots.delete(reg) && !this.#queue.detached) this.#queue.leave(reg);
  }

  /** Leaves the kept slots while the memory is still mapped: a closed handle's would stay for good. */
  protected override onClose(): void {
    for (const reg of this.#keptSlots) this.#queue.leave(reg);
    this.#keptSlots.clear();
  }

  #target(reg: Registration, kept: { slot: boolean }): WaitTarget<true> {
    return {
      what: `${this.what}: wait`,
      queue: this.#queue,
      spin: this.spinner,
      registration: reg,
      keepSlot: () => {
        kept.slot = true;
        this.#keptSlots.add(reg);
      },
      attempt: () => {
        this.assertOpen();
        return this.#queue.state(reg.slot) === NOTIFIED ? true : undefined;
      },
      resultIfNotified: () => true,
      track: (kick) => this.trackWait(kick),
    };
  }
}
