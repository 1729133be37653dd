/**
 * Event: a flag that threads in any processes wait for, as in Python's threading.Event: `set()`
 * wakes every waiter, `clear()` lowers it again. A wait started before a `set()` completes even if
 * the flag is cleared again before the waiter runs (each set bumps a generation the waiter checks),
 * so set-then-clear pulses are never lost.
 *
 * Layout (32-bit words): 0-3 header, 4 flag, 5 set generation, 8.. wait queue.
 */
import { ErrorCodes, IpcError } from '../core/errors.js';
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

const FLAG = 4;
const GENERATION = 5;
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
    if (!unlinkNamedPrimitive('event', name)) {
      throw new IpcError(ErrorCodes.NOT_FOUND, `event '${name}' does not exist`);
    }
  }

  /** Raises the flag and wakes every waiter. */
  set(): void {
    this.assertOpen();
    Atomics.store(this.#i32, FLAG, 1);
    Atomics.add(this.#i32, GENERATION, 1);
    if (this.#queue.waiting > 0) this.#queue.wake(Number.POSITIVE_INFINITY);
  }

  /** Lowers the flag. */
  clear(): void {
    this.assertOpen();
    Atomics.store(this.#i32, FLAG, 0);
  }

  /** True while the flag is raised. */
  isSet(): boolean {
    this.assertOpen();
    return Atomics.load(this.#i32, FLAG) === 1;
  }

  /** Resolves once the flag is set (at once if it is). */
  wait(opts?: WaitOptions): Promise<void> {
    if (this.closed) return Promise.reject(new IpcError(ErrorCodes.CLOSED, `${this.what} is closed`));
    return waitAsync(this.#target(), opts).then(() => undefined);
  }

  /** {@link Event.wait} blocking this thread (workers, scripts). */
  waitSync(opts?: WaitOptions): void {
    this.assertOpen();
    waitSync(this.#target(), opts);
  }

  #target(): WaitTarget<true> {
    const i32 = this.#i32;
    const generation = Atomics.load(i32, GENERATION);
    return {
      what: `${this.what}: wait`,
      queue: this.#queue,
      spin: this.spinner,
      attempt: () => {
        this.assertOpen();
        return Atomics.load(i32, FLAG) === 1 || Atomics.load(i32, GENERATION) !== generation
          ? true
          : undefined;
      },
      track: (kick) => this.trackWait(kick),
    };
  }
}
