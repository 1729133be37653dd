/**
 * Event: a flag that threads in any processes wait for, as in Python's threading.Event: `set()`
 * wakes every waiter, `clear()` lowers it again. A wait started before a `set()` completes even if
 * the flag is cleared again before the waiter runs (each set bumps a generation the waiter checks),
 * so set-then-clear pulses are never lost.
 *
 * The flag and the generation share one word (generation << 1 | flag) and change together in one
 * compare-and-swap. As two words, a waiter could see the flag of a set whose generation bump had
 * not landed yet, start its next wait, and then take that late bump for a new set: a wake-up
 * without a set, which desynchronized a two-process ping-pong until it hung.
 *
 * Layout (32-bit words): 0-3 header, 4 state (generation << 1 | flag), 8.. wait queue.
 */
import type { WaitOptions } from '../core/wait.js';
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
import { WAIT_QUEUE_WORDS, WaitQueue } from './wait-queue.js';
import { type WaitTarget, waitAsync, waitSync } from './waiter.js';

const STATE = 4;
const FLAG_BIT = 1;
const QUEUE = 8;
const WORDS = QUEUE + WAIT_QUEUE_WORDS;

const spec: KindSpec = {
  kind: 'event',
  byteLength: WORDS * 4,
  init: (region) => WaitQueue.init(region, QUEUE),
};

/** A cross-process, cross-thread event flag. */
export class Event extends Primitive {
  /** Bytes an Event occupies when placed with {@link Event.createAt}. */
  static readonly byteLength = spec.byteLength;
  readonly #i32: Int32Array;
  readonly #queue: WaitQueue;

  private constructor(storage: Storage) {
    super('event', storage);
    this.#i32 = this.region.i32;
    this.#queue = new WaitQueue(this.region, QUEUE);
  }

  /** Creates the named event `name` (not set). ERR_IPC_EXISTS if it exists. */
  static create(name: string, opts?: PrimitiveOptions): Event {
    return new Event(openNamedStorage(spec, name, 'create', 0, opts));
  }

  /** Opens the existing named event `name`. */
  static open(name: string): Event {
    return new Event(openNamedStorage(spec, name, 'open', 0, undefined));
  }

  /** Opens `name`, creating it (not set) if needed. */
  static openOrCreate(name: string, opts?: PrimitiveOptions): Event {
    return new Event(openNamedStorage(spec, name, 'openOrCreate', 0, opts));
  }

  /** Initializes an event at `offset` of memory you own. */
  static createAt(target: PlacementTarget, offset = 0): Event {
    return new Event(placedStorage(spec, target, offset, 'create', 0));
  }

  /** Attaches to an event placed at `offset`. */
  static openAt(target: PlacementTarget, offset = 0): Event {
    return new Event(placedStorage(spec, target, offset, 'open', 0));
  }

  /** Removes the named event `name`. ERR_IPC_NOT_FOUND if it does not exist. */
  static unlink(name: string): void {
    unlinkNamedPrimitive('event', name);
  }

  /** Raises the flag and wakes every waiter. */
  set(): void {
    this.assertOpen();
    const i32 = this.#i32;
    for (let seen = Atomics.load(i32, STATE); ; ) {
      // (generation + 1) << 1 | 1; the generation wraps around in 31 bits, which is fine: a waiter
      // only compares it for change.
      const next = ((seen & ~FLAG_BIT) + 2) | FLAG_BIT;
      const found = Atomics.compareExchange(i32, STATE, seen, next);
      if (found === seen) break;
      seen = found;
    }
    if (this.#queue.waiting > 0) this.#queue.wake(Number.POSITIVE_INFINITY);
  }

  /** Lowers the flag. */
  clear(): void {
    this.assertOpen();
    Atomics.and(this.#i32, STATE, ~FLAG_BIT);
  }

  /** True while the flag is raised. */
  isSet(): boolean {
    this.assertOpen();
    return (Atomics.load(this.#i32, STATE) & FLAG_BIT) !== 0;
  }

  /** Resolves once the flag is set (at once if it is). */
  wait(opts?: WaitOptions): Promise<void> {
    if (this.closed) return Promise.reject(this.closedError());
    return waitAsync(this.#target(), opts).then(() => undefined);
  }

  /** {@link Event.wait} blocking this thread (workers, scripts). */
  waitSync(opts?: WaitOptions): void {
    this.assertOpen();
    waitSync(this.#target(), opts);
  }

  #target(): WaitTarget<true> {
    const i32 = this.#i32;
    const generation = Atomics.load(i32, STATE) & ~FLAG_BIT;
    const setSince = (): true | undefined => {
      const state = Atomics.load(i32, STATE);
      return (state & FLAG_BIT) !== 0 || (state & ~FLAG_BIT) !== generation ? true : undefined;
    };
    return {
      what: `${this.what}: wait`,
      queue: this.#queue,
      spin: this.spinner,
      attempt: () => {
        this.assertOpen();
        return setSince();
      },
      // Set, or pulsed (set then cleared), before the timer or the abort ended the wait.
      completed: setSince,
      track: (kick) => this.trackWait(kick),
    };
  }
}
