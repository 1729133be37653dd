/**
 * Semaphore: a counter of permits in shared memory. `acquire` takes one (waiting while there are
 * none), `release` gives one back.
 *
 * Permits of dead holders come back. Every acquire is recorded against the acquiring thread in a
 * holder table; when an acquire finds no permit it also looks for holders that died and returns
 * their permits to the count. The rule this implies: a permit belongs to the thread that acquired
 * it until that thread releases it. `release()` gives back one of the caller's own permits if it
 * holds any, otherwise it adds a permit (signalling). If you acquire in one thread and release in
 * another, acquire with `{ track: false }`, or the permit would be returned a second time when the
 * acquirer dies. The count is updated before the holder table on acquire, and after it on release,
 * so a holder killed between the two steps can lose a permit but never create one: the value never
 * exceeds what was put in.
 *
 * Layout (32-bit words): 0-3 header (initial value), 4 value, 5 permits recovered from dead
 * holders, 6.. holder table, then the wait queue.
 */
import { booleanOption, numberError } from '../core/options.js';
import type { WaitOptions } from '../core/wait.js';
import { type Guard, HeldGuard } from './guard.js';
import { HOLDERS_WORDS, Holders } from './holders.js';
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
const RECOVERED = 5;
const HOLDERS = 6;
const QUEUE = HOLDERS + HOLDERS_WORDS;
const WORDS = QUEUE + WAIT_QUEUE_WORDS;
const MAX_VALUE = 0x7fffffff;

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
  readonly #queue: WaitQueue;
  readonly #holders: Holders;
  #slot = -1;

  private constructor(storage: Storage) {
    super('semaphore', storage);
    this.#i32 = this.region.i32;
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

  /** Takes a permit if one is available (after recovering dead holders' permits). Never waits. */
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
    const slot = this.#holders.slotOf(selfThread(), false, this.#slot);
    if (slot >= 0 && this.#holders.count(slot) > 0) this.#holders.add(slot, -1);
    this.#give();
  }

  #give(): void {
    const i32 = this.#i32;
    for (;;) {
      const value = Atomics.load(i32, VALUE);
      if (value >= MAX_VALUE) throw new RangeError(`${this.what}: released more permits than it can count`);
      if (Atomics.compareExchange(i32, VALUE, value, value + 1) === value) break;
    }
    if (this.#queue.waiting > 0) this.#queue.wake(1);
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
      watchPids: () => [...new Set(this.#holders.holders().map((h) => h.pid))],
      track: (kick) => this.trackWait(kick),
    };
  }

  #attempt(track: boolean, deathCheck: boolean): SemaphorePermit | undefined {
    const i32 = this.#i32;
    const recovered = deathCheck ? this.#recover() : 0;
    let value = Atomics.load(i32, VALUE);
    while (value > 0) {
      const prev = Atomics.compareExchange(i32, VALUE, value, value - 1);
      if (prev === value) return this.#permit(track, recovered > 0);
      value = prev;
    }
    return undefined;
  }

  #permit(track: boolean, ownerDied: boolean): SemaphorePermit {
    let slot = -1;
    if (track) {
      slot = this.#holders.slotOf(selfThread(), true, this.#slot);
      // A full holder table leaves this permit untracked: it works, it just is not recovered.
      if (slot >= 0) {
        this.#slot = slot;
        this.#holders.add(slot, 1);
      }
    }
    return new HeldGuard(
      this,
      () => {
        this.assertOpen();
        if (slot >= 0 && this.#holders.count(slot) > 0) this.#holders.add(slot, -1);
        this.#give();
      },
      ownerDied,
    );
  }

  /** Returns dead holders' permits to the count; returns how many. */
  #recover(callerTakesOne = true): number {
    let total = 0;
    this.#holders.reclaimDead((count) => {
      Atomics.add(this.#i32, VALUE, count);
      Atomics.add(this.#i32, RECOVERED, count);
      total += count;
    });
    // A caller about to take a permit takes one of these itself: the rest go to the waiters.
    const spare = callerTakesOne ? total - 1 : total;
    if (spare > 0 && this.#queue.waiting > 0) this.#queue.wake(spare);
    return total;
  }
}
