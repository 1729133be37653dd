/**
 * The one waiting engine behind every primitive. A primitive describes a wait as an `attempt`
 * (finish now or say "not yet") plus its WaitQueue; this file turns that into
 *  - an async wait that keeps the event loop free: a short adaptive spin, then a slot in the
 *    queue and a doorbell ring (or a death check) to come back; never a blocking syscall on the
 *    calling thread and never a task on the libuv threadpool;
 *  - a …Sync wait that blocks the calling thread in futex(2) on its slot, in slices, checking for
 *    dead owners between slices.
 *
 * Dead owners are looked for with `attempt(true)`, which reads /proc and is therefore not done on
 * every wake-up: it runs when a watched owner process exits (pidfd on the event loop, ~1 ms), and
 * on a backoff timer (5 ms doubling to 100 ms) that also covers owners that are threads of this
 * process and systems without pidfd.
 */
import { closedError, ErrorCodes, IpcError } from '../core/errors.js';
import { sleepSync } from '../core/sleep.js';
import { abortedError, armWait, checkWaitOptions, timeoutError, type WaitOptions } from '../core/wait.js';
import { native } from '../native/binding.js';
import { threadDoorbell } from '../shm/doorbell.js';
import { watchProcess } from '../shm/process-watch.js';
import { selfThread } from './thread.js';
import { HANDED, NOTIFIED, type Registration, type WaitQueue } from './wait-queue.js';

/** What a primitive hands the engine for one wait. */
export interface WaitTarget<T> {
  /** Names the wait in errors: "mutex 'jobs': lock". */
  what: string;
  queue: WaitQueue;
  /**
   * Tries to finish the wait: a result, or undefined for "not yet". `deathCheck` asks it to also
   * recover from dead owners (slow: reads /proc). `handed` says a Mutex release handed this waiter
   * the lock (its slot reads HANDED); `queued` that the caller holds a slot in the queue (a fair
   * Mutex lets only queued waiters take a free lock while others wait). May throw to end the wait.
   * Must throw ERR_IPC_CLOSED, before touching the primitive's memory, once the primitive is closed
   * or its memory was unmapped: the engine calls it to end waits in both cases.
   */
  attempt(deathCheck: boolean, handed?: boolean, queued?: boolean): T | undefined;
  /**
   * The primitive hands itself to its oldest waiter at every release (a fair Mutex): a waiter takes
   * its slot at once and spins on it, where a release can hand it the lock without a wake-up.
   */
  handsOff?: boolean;
  /** Processes whose exit should trigger `attempt(true)` at once (lock owners, barrier parties). */
  watchPids?(): readonly number[];
  /** Undoes partial progress when the wait fails (a writer giving back its claim, a barrier breaking). */
  cancel?(): void;
  /**
   * A wait that was handed the lock (its slot read HANDED when it left the queue) but whose handle
   * was closed meanwhile: completes the hand-off and passes the lock on as a release would, so it
   * is not left held by a thread that will never release it. False while the releaser is still
   * making this thread the owner. Called only while the memory is mapped.
   */
  passOnHanded?(deathCheck: boolean): boolean;
  /**
   * When a failing wait (timeout, abort) finds it had been notified meanwhile, end with this result
   * instead of the error (a Condition wait that was notified counts as notified).
   */
  resultIfNotified?(): T;
  /**
   * A read-only look whether the wait has completed by others' doing (a barrier round that counted
   * this party, an event set or pulsed since the wait began): a failing wait (timeout, abort) ends
   * with this result instead of the error. A timer can fire before the doorbell of the completion
   * is read, and the completion must not be reported as a timeout: the others went on counting it.
   */
  completed?(): T | undefined;
  /**
   * A read-only check that an attempt could succeed now (a Mutex: the word is 0). Spinning polls
   * it and only attempts when it says yes, so spinners read the lock's cache line instead of
   * invalidating it with failed compare-and-swaps under the holder's feet.
   */
  ready?(): boolean;
  /** Adaptive spin state of the primitive handle. */
  spin: Spinner;
  /** A slot the primitive registered itself before releasing something (Condition). */
  registration?: Registration;
  /**
   * Called instead of leaving `registration` when the wait succeeds: the slot stays as it is
   * (NOTIFIED) and the primitive leaves it itself later. A Condition leaves once it holds its mutex
   * again, so that a waiter killed in between leaves a notified slot of a dead thread, which the
   * other waiters' death checks pass on, instead of taking the notification with it.
   */
  keepSlot?(): void;
  /**
   * Lets the primitive end a parked wait early (on close): it calls `kick`, which re-checks
   * (the closed primitive's attempt then throws). Returns the function that stops tracking.
   */
  track?(kick: () => void): () => void;
}

/** How long to spin before parking, adapted to whether spinning paid off recently. */
export class Spinner {
  limit = 32;
  succeeded(): void {
    this.limit = Math.min(512, this.limit * 2);
  }
  failed(): void {
    this.limit = Math.max(4, this.limit >> 1);
  }
}

const FIRST_CHECK_MS = 5;
/** How long a waiter that lost a race after a wake-up stays out of wake-one's choice (async: timer granularity). */
const THROTTLE_MS = 1;
const SYNC_THROTTLE_MS = 0.2;
const MAX_CHECK_MS = 100;
const SYNC_FIRST_SLICE_MS = 1;
const SYNC_MAX_SLICE_MS = 50;
/** How long a waiter of a hand-off primitive spins on its own slot before it sleeps. */
const QUEUE_SPIN_MS = 0.02;

let backOffSink = 0;
/**
 * Burns a few tens of nanoseconds (longer as the spin goes on) without touching shared memory.
 * Every poll of the lock word pulls its cache line to the spinner's core, and the holder's next
 * compare-and-swap must take it back: polled back to back, that doubled the cost of each of the
 * holder's lock/unlock pairs (two processes contending: about 2.1M ops/s without the pause, 2.6M
 * with it, on the 2-core VM). JavaScript has no PAUSE instruction, so this is local arithmetic.
 */
function backOff(round: number): void {
  let x = backOffSink;
  for (let k = Math.min(round, 8) * 16; k >= 0; k--) x = (x * 31 + k) | 0;
  backOffSink = x;
}

function spin<T>(target: WaitTarget<T>): T | undefined {
  const limit = target.spin.limit;
  const ready = target.ready;
  for (let i = 0; i < limit; i++) {
    if (ready && !ready()) {
      backOff(i);
      continue;
    }
    const result = target.attempt(false);
    if (result !== undefined) {
      target.spin.succeeded();
      return result;
    }
  }
  target.spin.failed();
  return undefined;
}

/**
 * Spins on a fresh slot of a target that hands off (a fair Mutex) until the lock is handed over or
 * found free. Undefined when the spin ran out: the slot then no longer says SPINNING, or it says
 * HANDED or NOTIFIED, which the caller's loop looks at before sleeping.
 */
function spinInQueue<T>(target: WaitTarget<T>, reg: Registration): T | undefined {
  const queue = target.queue;
  const ready = target.ready;
  // Not the adaptive spin: a fair lock's waiter waits for a whole critical section of the holder
  // (then the hand-off), which a few tries never cover, so the adaptive limit would shrink to its
  // floor and every hand-off would need a wake-up. A fixed time budget covers short sections.
  const until = performance.now() + QUEUE_SPIN_MS;
  for (let i = 1; ; i++) {
    const handed = queue.state(reg.slot) === HANDED;
    if (handed || !ready || ready()) {
      const result = target.attempt(false, handed, true);
      if (result !== undefined) return result;
    }
    if ((i & 63) === 0 && performance.now() > until) break;
  }
  queue.stopSpinning(reg);
  return undefined;
}

/** Waits asynchronously; never throws synchronously. */
export function waitAsync<T>(target: WaitTarget<T>, opts: WaitOptions | undefined): Promise<T> {
  try {
    checkWaitOptions(opts);
    if (!target.registration) {
      // Node's convention: a signal aborted before the call fails it, even if it could succeed.
      if (opts?.signal?.aborted) throw abortedError(target.what, opts.signal);
      const now = target.attempt(false);
      if (now !== undefined) return Promise.resolve(now);
      if (opts?.timeout === 0) {
        const last = spin(target) ?? target.attempt(true);
        if (last !== undefined) return Promise.resolve(last);
        throw timeoutError(target.what, 0);
      }
      if (target.handsOff) {
        const reg = target.queue.register(selfThread(), threadDoorbell().nonce, true);
        if (reg) {
          const spun = spinInQueue(target, reg);
          if (spun !== undefined) {
            target.queue.leave(reg);
            return Promise.resolve(spun);
          }
          return new Promise<T>((resolve, reject) => {
            new ParkedWait(target, opts, resolve, reject, reg).start();
          });
        }
      } else {
        const spun = spin(target);
        if (spun !== undefined) return Promise.resolve(spun);
      }
    }
    return new Promise<T>((resolve, reject) => {
      new ParkedWait(target, opts, resolve, reject).start();
    });
  } catch (err) {
    if (target.queue.detached) return Promise.reject(err);
    if (target.registration) target.queue.leave(target.registration);
    target.cancel?.();
    return Promise.reject(err);
  }
}

/**
 * The error a wait ends with once its primitive's memory was unmapped under it (a placed
 * primitive's SharedMemory closed while the wait was parked): the primitive's own ERR_IPC_CLOSED,
 * which its attempt throws without touching the memory.
 */
function goneError<T>(target: WaitTarget<T>): unknown {
  try {
    target.attempt(false);
  } catch (err) {
    return err;
  }
  return closedError(target.what);
}

/** One async wait parked on its thread's doorbell. */
class ParkedWait<T> {
  readonly #target: WaitTarget<T>;
  readonly #opts: WaitOptions | undefined;
  readonly #resolve: (value: T) => void;
  readonly #reject: (err: unknown) => void;
  #registration: Registration | undefined;
  #done = false;
  #disarm: () => void = () => {};
  #unsubscribe: () => void = () => {};
  #timer: NodeJS.Timeout | undefined;
  #throttleTimer: NodeJS.Timeout | undefined;
  #checkMs = FIRST_CHECK_MS;
  readonly #pidWatches = new Map<number, () => void>();
  #holding = false;
  #untrack: () => void = () => {};

  constructor(
    target: WaitTarget<T>,
    opts: WaitOptions | undefined,
    resolve: (value: T) => void,
    reject: (err: unknown) => void,
    registration?: Registration,
  ) {
    this.#target = target;
    this.#opts = opts;
    this.#resolve = resolve;
    this.#reject = reject;
    this.#registration = registration ?? target.registration;
  }

  start(): void {
    const target = this.#target;
    const doorbell = threadDoorbell();
    this.#registration ??= target.queue.register(selfThread(), doorbell.nonce);
    doorbell.hold();
    this.#holding = true;
    this.#unsubscribe = doorbell.subscribe(() => this.check(false));
    this.#untrack = target.track?.(() => this.check(true)) ?? this.#untrack;
    // Re-check after publishing the slot: a release that happened before it saw no waiter to wake.
    this.check(false, true);
    if (this.#done) return;
    this.#disarm = armWait(target.what, this.#opts, (err) => this.#finish(undefined, err));
    if (this.#done) return;
    this.#schedule();
  }

  /** Looks again: on a ring (only if this waiter was notified), a pid exit, or the backoff timer. */
  check(deathCheck: boolean, force = false): void {
    if (this.#done) return;
    const target = this.#target;
    // Nothing else says the memory went away: whichever of the ring, the pid watch, the backoff
    // timer or close() looks first ends the wait, before any word of it is read.
    if (target.queue.detached) {
      this.#finish(undefined, goneError(target));
      return;
    }
    const reg = this.#registration;
    const state = reg === undefined ? 0 : target.queue.state(reg.slot);
    const handed = state === HANDED;
    const notified = state === NOTIFIED;
    // A ring wakes every waiter of the thread; only the notified one (or an unregistered poller) looks.
    if (!notified && !handed && !deathCheck && !force && reg !== undefined) return;
    try {
      let result = target.attempt(deathCheck, handed, reg !== undefined);
      if (result === undefined && notified && reg) {
        target.queue.rearm(reg, true);
        result = target.attempt(false, false, true);
        if (result === undefined) this.#scheduleUnthrottle();
      }
      if (result !== undefined) {
        this.#finish(result, undefined);
        return;
      }
    } catch (err) {
      this.#finish(undefined, err);
      return;
    }
    this.#watchPids();
  }

  #scheduleUnthrottle(): void {
    if (this.#throttleTimer) return;
    this.#throttleTimer = setTimeout(() => {
      this.#throttleTimer = undefined;
      if (this.#done || !this.#registration) return;
      if (!this.#target.queue.detached) this.#target.queue.unthrottle(this.#registration);
      this.check(false, true);
    }, THROTTLE_MS);
    this.#throttleTimer.unref();
  }

  #schedule(): void {
    // Without a slot (table full) nobody rings us: poll at the fast end of the backoff.
    const delay = this.#registration ? this.#checkMs : Math.min(this.#checkMs, 10);
    this.#timer = setTimeout(() => {
      this.#checkMs = Math.min(this.#checkMs * 2, MAX_CHECK_MS);
      // The check ends the wait if the memory went away; reaping would touch it first.
      if (!this.#target.queue.detached) this.#target.queue.reapDeadNotified(this.#registration?.slot ?? -1);
      this.check(true);
      if (!this.#done) this.#schedule();
    }, delay);
    // The doorbell hold keeps the loop alive; the timer must not (or a dead wait would pin it).
    this.#timer.unref();
  }

  #watchPids(): void {
    const pids = this.#target.watchPids?.();
    if (!pids) return;
    // Owners change while we wait: stop watching processes that no longer matter.
    for (const [pid, unwatch] of this.#pidWatches) {
      if (!pids.includes(pid)) {
        unwatch();
        this.#pidWatches.delete(pid);
      }
    }
    for (const pid of pids) {
      if (pid <= 0 || pid === process.pid || this.#pidWatches.has(pid)) continue;
      this.#pidWatches.set(
        pid,
        watchProcess(pid, () => {
          this.#pidWatches.delete(pid);
          this.check(true);
        }),
      );
    }
  }

  #finish(result: T | undefined, error: unknown): void {
    if (this.#done) return;
    this.#done = true;
    const target = this.#target;
    this.#disarm();
    if (this.#timer) clearTimeout(this.#timer);
    if (this.#throttleTimer) clearTimeout(this.#throttleTimer);
    this.#unsubscribe();
    this.#untrack();
    for (const unwatch of this.#pidWatches.values()) unwatch();
    this.#pidWatches.clear();
    if (this.#holding) threadDoorbell().release();
    if (target.queue.detached) {
      // The memory is gone: there is no slot to free and no progress to undo, and whatever ended
      // the wait (a timeout that fired first, say), the primitive is closed.
      if (error === undefined) this.#resolve(result as T);
      else this.#reject(goneError(target));
      return;
    }
    if (error === undefined && this.#registration && target.keepSlot) {
      target.keepSlot();
      this.#resolve(result as T);
      return;
    }
    const departure = this.#registration ? target.queue.leave(this.#registration) : 'waiting';
    if (error === undefined) {
      this.#resolve(result as T);
      return;
    }
    try {
      // Handed the lock while giving up: it is ours, so the wait succeeded after all.
      if (departure === 'handed') {
        this.#resolve(takeHanded(target));
        return;
      }
      if (departure === 'notified' && target.resultIfNotified) {
        this.#resolve(target.resultIfNotified());
        return;
      }
      // Only a wait given up on may have completed meanwhile; one its handle closed never reads
      // the primitive again.
      const givenUp =
        error instanceof IpcError && (error.code === ErrorCodes.TIMEOUT || error.code === ErrorCodes.ABORTED);
      const completed = givenUp ? target.completed?.() : undefined;
      if (completed !== undefined) {
        this.#resolve(completed);
        return;
      }
    } catch (err) {
      this.#reject(err);
      return;
    }
    // A notification meant for this waiter must not die with it.
    if (departure === 'notified') target.queue.wake(1);
    target.cancel?.();
    this.#reject(error);
  }
}

/** Waits blocking the calling thread (…Sync variants). Only `timeout` applies; a signal is checked once. */
export function waitSync<T>(target: WaitTarget<T>, opts: WaitOptions | undefined): T {
  checkWaitOptions(opts);
  let reg = target.registration;
  try {
    // As the async wait: a signal aborted before the call fails it, even if it could succeed (a
    // signal cannot fire while this thread is blocked, so this is the only look at it). A wait
    // already registered (a Condition's) leaves below, a notification it got passed on or counted.
    if (opts?.signal?.aborted) throw abortedError(target.what, opts.signal);
    if (!reg) {
      const now = target.attempt(false);
      if (now !== undefined) return now;
      if (target.handsOff && opts?.timeout !== 0) {
        reg = target.queue.register(selfThread(), 0, true);
        const spun = reg && spinInQueue(target, reg);
        if (spun !== undefined) {
          if (reg) target.queue.leave(reg);
          return spun;
        }
      } else {
        const spun = spin(target);
        if (spun !== undefined) return spun;
      }
    }
    const timeout = opts?.timeout;
    const deadline = timeout === undefined ? Number.POSITIVE_INFINITY : Date.now() + timeout;
    reg ??= target.queue.register(selfThread(), 0);
    const futexWait = native().futexWait;
    let slice = SYNC_FIRST_SLICE_MS;
    let deathCheck = false;
    for (;;) {
      const state = reg === undefined ? 0 : target.queue.state(reg.slot);
      let result = target.attempt(deathCheck, state === HANDED, reg !== undefined);
      if (result === undefined && state === NOTIFIED && reg) {
        target.queue.rearm(reg, true);
        result = target.attempt(false, false, true);
      }
      if (result !== undefined) {
        if (reg && target.keepSlot) target.keepSlot();
        else if (reg) target.queue.leave(reg);
        return result;
      }
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        // One last attempt with the death check before giving up, as the async wait makes: a dead
        // holder's lock is anyone's, also for `{ timeout: 0 }`.
        if (!deathCheck) {
          deathCheck = true;
          continue;
        }
        throw timeoutError(target.what, timeout ?? 0);
      }
      if (!reg) {
        sleepSync(Math.min(slice, remaining));
        slice = Math.min(slice * 2, SYNC_MAX_SLICE_MS);
        deathCheck = true;
        continue;
      }
      if (state === HANDED) {
        // The releaser is making us the owner; its wake-up follows.
        deathCheck = futexWait(target.queue.i32, reg.slot, HANDED, Math.min(1, remaining)) === 2;
        continue;
      }
      if (reg.armed !== reg.ticket) {
        // Throttled after losing a race: look again shortly by ourselves, no death check.
        if (futexWait(target.queue.i32, reg.slot, reg.armed, Math.min(SYNC_THROTTLE_MS, remaining)) === 2) {
          target.queue.unthrottle(reg);
        }
        deathCheck = false;
        continue;
      }
      const outcome = futexWait(target.queue.i32, reg.slot, reg.armed, Math.min(slice, remaining));
      deathCheck = outcome === 2;
      if (deathCheck) {
        target.queue.reapDeadNotified(reg.slot);
        slice = Math.min(slice * 2, SYNC_MAX_SLICE_MS);
      }
    }
  } catch (err) {
    if (target.queue.detached) throw err;
    const departure = reg ? target.queue.leave(reg) : 'waiting';
    if (departure === 'handed') return takeHanded(target);
    const gaveUp =
      err instanceof IpcError && (err.code === ErrorCodes.TIMEOUT || err.code === ErrorCodes.ABORTED);
    if (departure === 'notified' && target.resultIfNotified && gaveUp) return target.resultIfNotified();
    if (departure === 'notified') target.queue.wake(1);
    target.cancel?.();
    throw err;
  }
}

/** Polls of a lock hand-off in flight before takeHanded pauses between them. */
const HANDOFF_SPINS = 10_000;
/** How long takeHanded waits for a live releaser to finish a hand-off before it gives up. */
const HANDOFF_WAIT_MS = 2000;
const HANDOFF_PAUSE_MS = 0.05;
const handoffPause = new Int32Array(new SharedArrayBuffer(4));

/**
 * Completes a wait whose slot was handed the lock while it was giving up: the releaser makes this
 * thread the owner right after marking the slot, so this spins only for that instant (or, if the
 * releaser died in between, recovers the lock from it).
 */
function takeHanded<T>(target: WaitTarget<T>): T {
  const deadline = performance.now() + HANDOFF_WAIT_MS;
  for (let i = 0; ; i++) {
    if (i >= HANDOFF_SPINS) {
      // The releaser was descheduled between marking the slot and storing the lock word (a few
      // milliseconds on a busy machine): let it run rather than give up on a lock it is handing us.
      if (performance.now() > deadline) break;
      Atomics.wait(handoffPause, 0, 0, HANDOFF_PAUSE_MS);
    }
    const deathCheck = i % 1000 === 999;
    let result: T | undefined;
    try {
      result = target.attempt(deathCheck, true);
    } catch (err) {
      // Closed (its memory still mapped) while the lock was on its way to this wait: the wait fails,
      // and the lock goes on to the next waiter instead of staying with a handle nobody can use.
      if (!target.passOnHanded || target.queue.detached) throw err;
      if (target.passOnHanded(deathCheck)) throw err;
      continue;
    }
    if (result !== undefined) return result;
  }
  throw new IpcError(ErrorCodes.SYSTEM, `${target.what}: a lock hand-off did not complete`);
}
