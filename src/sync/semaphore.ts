/**
 * Semaphore: a counter of permits in shared memory. `acquire` takes one (waiting while there are
 * none), `release` gives one back.
 *
 * Permits of dead holders come back, exactly. Every acquire is recorded against the acquiring
 * thread in a holder table; when an acquire finds no permit it also looks for holders that died
 * and returns their permits to the count. The rule this implies: a permit belongs to the thread
 * that acquired it until that thread releases it. `release()` gives back one of the caller's own
 * permits if it holds any, otherwise it adds a permit (signalling). If you acquire in one thread
 * and release in another, acquire with `{ track: false }`, or the permit would be returned a second
 * time when the acquirer dies.
 *
 * A tracked acquire or release changes two words, the value and the thread's count, and a holder
 * can be killed between the two. So the value shares a 64-bit word with a journal: the step's
 * compare-and-swap moves the value and writes, in the same instant, which slot's count is about to
 * change, which way, and the count's parity once changed; the holder then writes its count and
 * clears the journal. Whoever reclaims a dead holder whose step is in the journal reads from the
 * parity whether the count was written, and returns the holder's share as it stands after the
 * step. One step is in flight at a time: another tracked step waits for it (nanoseconds, unless its
 * thread was descheduled or killed); untracked acquires and signalling releases do not.
 *
 * Layout (32-bit words): 0-3 header (initial value), 4-5 state (4 value, 5 journal), 6 permits
 * recovered from dead holders, 7 reserved, 8.. holder table, then the wait queue.
 */
import { booleanOption, numberError } from '../core/options.js';
import type { WaitOptions } from '../core/wait.js';
import { native } from '../native/binding.js';
import { type Guard, HeldGuard } from './guard.js';
import { HOLDERS_WORDS, Holders, type Reclaim } from './holders.js';
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

const VALUE = 4;
const JOURNAL = 5;
const RECOVERED = 6;
const HOLDERS = 8;
const QUEUE = HOLDERS + HOLDERS_WORDS;
const WORDS = QUEUE + WAIT_QUEUE_WORDS;
const MAX_VALUE = 0x7fffffff;

// The journal word: the slot index + 1 of the step in flight (0: none), the step's direction, the
// parity of the slot's count once the step is done, and a flag set by threads waiting for it to end.
const JOURNAL_SLOT = 0x7f;
const JOURNAL_RELEASE = 0x80;
const JOURNAL_PARITY = 0x100;
const JOURNAL_WAITED = 0x200;

/** Tracked steps to retry before a release waiting for another thread's step sleeps. */
const BUSY_SPINS = 64;
/** Sleeps of 1 ms between the release's checks for a dead journal owner (each reads /proc). */
const BUSY_SLEEPS_PER_CHECK = 16;

/** The 64-bit state word from its halves (little-endian: the value is the low half). */
function packState(value: number, journal: number): bigint {
  return (BigInt(journal) << 32n) | BigInt(value);
}

/** What a journalled step came to. */
type StepOutcome = 'done' | 'empty' | 'busy' | 'retry';

const spec: KindSpec = {
  kind: 'semaphore',
  byteLength: WORDS * 4,
  init: (region, initial) => {
    region.i32[VALUE] = initial;
    Holders.init(region, HOLDERS);
    WaitQueue.init(region, QUEUE);
  },
};

/** Options for creating a semaphore. */
export interface SemaphoreOptions extends PrimitiveOptions {
  /** Permits available at creation. Default 1. Ignored when opening an existing semaphore. */
  initial?: number;
}

/** Options for acquiring a permit. */
export interface AcquireOptions extends WaitOptions {
  /**
   * Record the permit against this thread so it returns to the semaphore if the thread dies
   * holding it. Default true; pass false when another thread or process will release it.
   */
  track?: boolean;
}

/** A held permit: `release()` (or `using`) gives it back. */
export type SemaphorePermit = Guard;

function checkInitial(initial: unknown): number {
  const value = initial ?? 1;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > MAX_VALUE) {
    throw numberError(
      value,
      `options.initial must be an integer from 0 to ${MAX_VALUE}, got ${String(initial)}`,
    );
  }
  return value;
}

/** `options.track`: a boolean, default true. */
function trackOption(opts: { track?: boolean } | undefined): boolean {
  return booleanOption(opts?.track, 'options.track', true);
}

/** A cross-process, cross-thread counting semaphore. */
export class Semaphore extends Primitive {
  /** Bytes a Semaphore occupies when placed with {@link Semaphore.createAt}. */
  static readonly byteLength = spec.byteLength;
  readonly #i32: Int32Array;
  readonly #state: BigInt64Array;
  readonly #queue: WaitQueue;
  readonly #holders: Holders;
  #slot = -1;
  #halvesSlot = -1;
  #halves: bigint[] = [];

  private constructor(storage: Storage) {
    super('semaphore', storage);
    this.#i32 = this.region.i32;
    this.#state = new BigInt64Array(this.#i32.buffer, this.#i32.byteOffset + VALUE * 4, 1);
    this.#queue = new WaitQueue(this.region, QUEUE);
    this.#holders = new Holders(this.region, HOLDERS);
  }

  /** Creates the named semaphore `name` with `initial` permits (default 1). ERR_IPC_EXISTS if it exists. */
  static create(name: string, opts?: SemaphoreOptions): Semaphore {
    return new Semaphore(openNamedStorage(spec, name, 'create', checkInitial(opts?.initial), opts));
  }

  /** Opens the existing named semaphore `name`. */
  static open(name: string): Semaphore {
    return new Semaphore(openNamedStorage(spec, name, 'open', 0, undefined));
  }

  /** Opens `name`, creating it with `initial` permits if it does not exist. */
  static openOrCreate(name: string, opts?: SemaphoreOptions): Semaphore {
    return new Semaphore(openNamedStorage(spec, name, 'openOrCreate', checkInitial(opts?.initial), opts));
  }

  /** Initializes a semaphore at `offset` of memory you own. */
  static createAt(target: PlacementTarget, offset = 0, opts?: { initial?: number }): Semaphore {
    return new Semaphore(placedStorage(spec, target, offset, 'create', checkInitial(opts?.initial)));
  }

  /** Attaches to a semaphore placed at `offset`. */
  static openAt(target: PlacementTarget, offset = 0): Semaphore {
    return new Semaphore(placedStorage(spec, target, offset, 'open', 0));
  }

  /** Removes the named semaphore `name`. ERR_IPC_NOT_FOUND if it does not exist. */
  static unlink(name: string): void {
    unlinkNamedPrimitive('semaphore', name);
  }

  /**
   * Permits available now (a snapshot), counting those of holders that died: they are returned to
   * the count here, as the next acquire would return them, and a waiter is woken for each.
   */
  get value(): number {
    this.assertOpen();
    this.#recover(false);
    return Atomics.load(this.#i32, VALUE);
  }

  /** Permits returned to the count from holders that died (since creation). */
  get recovered(): number {
    this.assertOpen();
    return Atomics.load(this.#i32, RECOVERED);
  }

  /** Takes a permit if one is available, recovering dead holders' permits when none is. Never waits. */
  tryAcquire(opts?: { track?: boolean }): SemaphorePermit | undefined {
    this.assertOpen();
    return this.#attempt(trackOption(opts), true);
  }

  /** Waits for a permit without blocking the event loop. */
  acquire(opts?: AcquireOptions): Promise<SemaphorePermit> {
    if (this.closed) return Promise.reject(this.closedError());
    let track: boolean;
    try {
      track = trackOption(opts);
    } catch (err) {
      return Promise.reject(err);
    }
    return waitAsync(this.#target(track), opts);
  }

  /** Waits for a permit blocking this thread (workers, scripts). */
  acquireSync(opts?: AcquireOptions): SemaphorePermit {
    this.assertOpen();
    return waitSync(this.#target(trackOption(opts)), opts);
  }

  /**
   * Gives back one of this thread's permits, or adds a permit if this thread holds none
   * (signalling). RangeError if the count would overflow.
   */
  release(): void {
    this.assertOpen();
    this.#releaseFrom(this.#holders.slotOf(selfThread(), false, this.#slot));
  }

  /** Gives back a permit of `slot` if it holds one (-1: none), else adds one. */
  #releaseFrom(slot: number): void {
    if (slot >= 0 && this.#holders.count(slot) > 0) {
      this.#releaseTracked(slot);
    } else {
      this.#give();
    }
  }

  /** Adds a permit that no thread's count accounts for (untracked permits, signalling). */
  #give(): void {
    const i32 = this.#i32;
    for (;;) {
      const value = Atomics.load(i32, VALUE);
      if (value >= MAX_VALUE) throw this.#overflow();
      if (Atomics.compareExchange(i32, VALUE, value, value + 1) === value) break;
    }
    if (this.#queue.waiting > 0) this.#queue.wake(1);
  }

  #overflow(): RangeError {
    return new RangeError(`${this.what}: released more permits than it can count`);
  }

  /** Gives back one of `slot`'s permits through the journal, waiting for another step in flight. */
  #releaseTracked(slot: number): void {
    for (let tries = 1; ; tries++) {
      const outcome = this.#step(slot, true);
      if (outcome === 'done') break;
      if (outcome !== 'busy' || tries < BUSY_SPINS) continue;
      // The step in flight belongs to a thread that was descheduled or killed mid-step: sleep
      // until it ends (its end wakes the journal word), checking now and then whether it died.
      const journal = Atomics.load(this.#i32, JOURNAL);
      if (journal !== 0) native().futexWait(this.#i32, JOURNAL, journal, 1);
      if ((tries - BUSY_SPINS) % BUSY_SLEEPS_PER_CHECK === BUSY_SLEEPS_PER_CHECK - 1) this.#recover(false);
    }
    if (this.#queue.waiting > 0) this.#queue.wake(1);
  }

  /**
   * One journalled step of `slot`: an acquire (value - 1, count + 1) or a release (value + 1,
   * count - 1). 'empty': no permit to acquire; 'busy': another thread's step is in flight (this
   * thread is now flagged as waiting for it); 'retry': the state changed under us.
   */
  #step(slot: number, release: boolean): StepOutcome {
    const i32 = this.#i32;
    const value = Atomics.load(i32, VALUE);
    const journal = Atomics.load(i32, JOURNAL);
    if (journal !== 0) return this.#busy(journal, slot);
    if (release ? value >= MAX_VALUE : value <= 0) {
      if (release) throw this.#overflow();
      return 'empty';
    }
    const count = this.#holders.count(slot);
    const after = release ? count - 1 : count + 1;
    // The journal is 0 (checked above): the state is the value alone.
    const seen = BigInt(value);
    const next = this.#journalHalf(slot, release, after & 1) + BigInt(release ? value + 1 : value - 1);
    if (Atomics.compareExchange(this.#state, 0, seen, next) !== seen) return 'retry';
    this.#holders.setCount(slot, after);
    this.#endStep(Atomics.exchange(i32, JOURNAL, 0));
    // Freed only once the journal no longer names it: a reclaimer settles a step by slot index.
    if (after === 0) this.#holders.freeIfEmpty(slot, selfThread());
    return 'done';
  }

  /**
   * The state's high half for a step of `slot` (cached: BigInt arithmetic per step is what a
   * tracked acquire would otherwise spend most of its time on).
   */
  #journalHalf(slot: number, release: boolean, parity: number): bigint {
    if (this.#halvesSlot !== slot) {
      const index = this.#holders.indexOf(slot) + 1;
      this.#halves = [0, JOURNAL_PARITY, JOURNAL_RELEASE, JOURNAL_RELEASE | JOURNAL_PARITY].map(
        (bits) => BigInt(index | bits) << 32n,
      );
      this.#halvesSlot = slot;
    }
    return this.#halves[(release ? 2 : 0) + parity]!;
  }

  /** Another step is in flight: flag that this thread waits for it, or clear it if it is stale. */
  #busy(journal: number, slot: number): StepOutcome {
    if ((journal & JOURNAL_SLOT) - 1 === this.#holders.indexOf(slot)) {
      // This thread's own slot, while this thread is not mid-step: left by a reclaim that died.
      Atomics.compareExchange(this.#i32, JOURNAL, journal, 0);
      return 'retry';
    }
    if ((journal & JOURNAL_WAITED) === 0)
      Atomics.compareExchange(this.#i32, JOURNAL, journal, journal | JOURNAL_WAITED);
    return 'busy';
  }

  /** After a step's journal was cleared: wakes the threads that waited for it. */
  #endStep(journal: number): void {
    if ((journal & JOURNAL_WAITED) === 0) return;
    native().futexWake(this.#i32, JOURNAL, MAX_VALUE);
    const value = Atomics.load(this.#i32, VALUE);
    if (value > 0 && this.#queue.waiting > 0) this.#queue.wake(value);
  }

  #target(track: boolean): WaitTarget<SemaphorePermit> {
    return {
      what: `${this.what}: acquire`,
      queue: this.#queue,
      spin: this.spinner,
      attempt: (deathCheck) => {
        this.assertOpen();
        return this.#attempt(track, deathCheck);
      },
      watchPids: () => this.#pids(),
      track: (kick) => this.trackWait(kick),
    };
  }

  /** The processes whose death can free a permit: holders, and the thread whose step is in flight. */
  #pids(): number[] {
    const pids = new Set(this.#holders.holders().map((h) => h.pid));
    const journal = Atomics.load(this.#i32, JOURNAL);
    const stepping = journal === 0 ? undefined : this.#holders.pidAt((journal & JOURNAL_SLOT) - 1);
    if (stepping !== undefined) pids.add(stepping);
    return [...pids];
  }

  #attempt(track: boolean, deathCheck: boolean): SemaphorePermit | undefined {
    const permit = this.#take(track, false);
    if (permit !== undefined || !deathCheck) return permit;
    // None to take (or another thread's step stands in the way): some may be held by dead threads.
    const recovered = this.#recover();
    return this.#take(track, recovered > 0);
  }

  #take(track: boolean, ownerDied: boolean): SemaphorePermit | undefined {
    // No permit: nothing to claim a holder slot for (a waiter spinning here would claim and free it
    // on every try).
    if (Atomics.load(this.#i32, VALUE) <= 0) return undefined;
    const slot = track ? this.#trackingSlot() : -1;
    if (slot >= 0) {
      for (;;) {
        const outcome = this.#step(slot, false);
        if (outcome === 'done') return this.#permit(slot, ownerDied);
        if (outcome !== 'retry') {
          // A slot claimed for this try holds nothing: it must not stay claimed while the thread lives.
          this.#holders.freeIfEmpty(slot, selfThread());
          return undefined;
        }
      }
    }
    // Untracked (asked for, or the holder table is full: the permit works, it is just not recovered).
    const i32 = this.#i32;
    let value = Atomics.load(i32, VALUE);
    while (value > 0) {
      const prev = Atomics.compareExchange(i32, VALUE, value, value - 1);
      if (prev === value) return this.#permit(-1, ownerDied);
      value = prev;
    }
    return undefined;
  }

  /** A full holder table makes room by reclaiming dead holders: their permits go to the waiters. */
  readonly #reclaimToWaiters = (reclaim: Reclaim): void => {
    const share = this.#returnShare(reclaim);
    if (share > 0 && this.#queue.waiting > 0) this.#queue.wake(share);
  };

  /** This thread's holder slot, claimed on first use; -1 when the table is full. */
  #trackingSlot(): number {
    const slot = this.#holders.slotOf(selfThread(), true, this.#slot, this.#reclaimToWaiters);
    if (slot >= 0) this.#slot = slot;
    return slot;
  }

  #permit(slot: number, ownerDied: boolean): SemaphorePermit {
    return new HeldGuard(
      this,
      () => {
        this.assertOpen();
        // The thread's slot now, if it has one: `slot` was freed if its count dropped to 0 meanwhile
        // (a release() of this thread), and may be another thread's.
        this.#releaseFrom(slot < 0 ? -1 : this.#holders.slotOf(selfThread(), false, slot));
      },
      ownerDied,
    );
  }

  /** Returns dead holders' permits to the count; returns how many. */
  #recover(callerTakesOne = true): number {
    let total = 0;
    // A step in flight may be a dead thread's whose count is still 0: look at empty slots too.
    const inFlight = Atomics.load(this.#i32, JOURNAL) !== 0;
    this.#holders.reclaimDead((reclaim) => {
      total += this.#returnShare(reclaim);
    }, inFlight);
    // A caller about to take a permit takes one of these itself: the rest go to the waiters.
    const spare = callerTakesOne ? total - 1 : total;
    if (spare > 0 && this.#queue.waiting > 0) this.#queue.wake(spare);
    return total;
  }

  /**
   * Adds a reclaimed slot's share to the value, settling the journal if the dead holder was mid-step
   * (in one compare-and-swap, so a reclaimer killed here has returned all of it or none). Returns it.
   */
  #returnShare({ index, count, abandoned }: Reclaim): number {
    for (;;) {
      const value = Atomics.load(this.#i32, VALUE);
      const journal = Atomics.load(this.#i32, JOURNAL);
      const midStep = journal !== 0 && (journal & JOURNAL_SLOT) - 1 === index;
      // An abandoned reclaim's 0 may be a share it took out and lost: never guess it back up.
      const share = midStep && !(abandoned && count === 0) ? settledCount(count, journal) : count;
      const seen = packState(value, journal);
      if (
        Atomics.compareExchange(this.#state, 0, seen, packState(value + share, midStep ? 0 : journal)) !==
        seen
      ) {
        continue;
      }
      if (midStep) this.#endStep(journal);
      if (share > 0) Atomics.add(this.#i32, RECOVERED, share);
      return share;
    }
  }
}

/** A mid-step holder's count as it is once its step is done (the journal's parity tells whether it is). */
function settledCount(count: number, journal: number): number {
  const done = (count & 1) === (journal & JOURNAL_PARITY ? 1 : 0);
  if (done) return count;
  return journal & JOURNAL_RELEASE ? count - 1 : count + 1;
}
