/**
 * Barrier: `parties` threads (in any processes) wait until all of them have arrived, then all go
 * on; it is reusable, generation after generation.
 *
 * Parties are known: every handle (create/open) joins the barrier's member table and `close()`
 * leaves it. If a member dies without closing while others wait, the waiters find it (pidfd on the
 * event loop, or the periodic check) and the barrier breaks: every current and later wait rejects
 * with ERR_IPC_PEER_GONE until `reset()`. A wait that times out or is aborted breaks it too (as in
 * Python), since the others could otherwise never complete.
 *
 * Layout (32-bit words): 0-3 header (parties), 4 arrived, 5 generation, 6 broken (generation + 1
 * of the broken generation, 0 if none), 8.. member table, then the wait queue.
 */
import { ErrorCodes, IpcError } from '../core/errors.js';
import { numberError } from '../core/options.js';
import { checkWaitOptions, type WaitOptions } from '../core/wait.js';
import { HOLDERS_WORDS, type HolderInfo, Holders } from './holders.js';
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

const ARRIVED = 4;
const GENERATION = 5;
const BROKEN = 6;
const MEMBERS = 8;
const QUEUE = MEMBERS + HOLDERS_WORDS;
const WORDS = QUEUE + WAIT_QUEUE_WORDS;

const spec: KindSpec = {
  kind: 'barrier',
  byteLength: WORDS * 4,
  init: (region) => {
    Holders.init(region, MEMBERS);
    WaitQueue.init(region, QUEUE);
  },
};

/** Options for creating a barrier. */
export interface BarrierOptions extends PrimitiveOptions {
  /** How many waits complete a generation (>= 1). */
  parties: number;
}

function checkParties(parties: unknown): number {
  if (typeof parties !== 'number' || !Number.isInteger(parties) || parties < 1 || parties > 0x7fffffff) {
    throw numberError(parties, `options.parties must be an integer >= 1, got ${String(parties)}`);
  }
  return parties;
}

/** A reusable cross-process, cross-thread barrier. */
export class Barrier extends Primitive {
  /** Bytes a Barrier occupies when placed with {@link Barrier.createAt}. */
  static readonly byteLength = spec.byteLength;
  /** How many waits complete a generation. */
  readonly parties: number;
  readonly #i32: Int32Array;
  readonly #queue: WaitQueue;
  readonly #members: Holders;
  #slot = -1;

  private constructor(storage: Storage) {
    super('barrier', storage);
    this.parties = storage.param;
    this.#i32 = this.region.i32;
    this.#queue = new WaitQueue(this.region, QUEUE);
    this.#members = new Holders(this.region, MEMBERS);
    // Join: this handle is a party whose death breaks the barrier (unless it closes first).
    this.#slot = this.#members.slotOf(selfThread(), true);
    if (this.#slot >= 0) this.#members.add(this.#slot, 1);
  }

  /** Creates the named barrier `name` for `parties` parties. ERR_IPC_EXISTS if it exists. */
  static create(name: string, opts: BarrierOptions): Barrier {
    return new Barrier(openNamedStorage(spec, name, 'create', checkParties(opts?.parties), opts));
  }

  /** Opens the existing named barrier `name`. */
  static open(name: string): Barrier {
    return new Barrier(openNamedStorage(spec, name, 'open', 0, undefined));
  }

  /**
   * Opens `name`, creating it for `parties` parties if needed. An existing barrier for a different
   * number of parties is ERR_IPC_INCOMPATIBLE.
   */
  static openOrCreate(name: string, opts: BarrierOptions): Barrier {
    const parties = checkParties(opts?.parties);
    const barrier = new Barrier(openNamedStorage(spec, name, 'openOrCreate', parties, opts));
    if (barrier.parties !== parties) {
      barrier.close();
      throw new IpcError(
        ErrorCodes.INCOMPATIBLE,
        `barrier '${name}' exists for ${barrier.parties} parties, not ${parties}`,
      );
    }
    return barrier;
  }

  /** Initializes a barrier at `offset` of memory you own. */
  static createAt(target: PlacementTarget, offset: number, opts: { parties: number }): Barrier {
    return new Barrier(placedStorage(spec, target, offset, 'create', checkParties(opts?.parties)));
  }

  /** Attaches to a barrier placed at `offset`. */
  static openAt(target: PlacementTarget, offset = 0): Barrier {
    return new Barrier(placedStorage(spec, target, offset, 'open', 0));
  }

  /** Removes the named barrier `name`. ERR_IPC_NOT_FOUND if it does not exist. */
  static unlink(name: string): void {
    unlinkNamedPrimitive('barrier', name);
  }

  /** Parties waiting in the current generation (a snapshot). */
  get waiting(): number {
    this.assertOpen();
    return Atomics.load(this.#i32, ARRIVED);
  }

  /** True when the current generation is broken (a party died or gave up); see {@link Barrier.reset}. */
  get broken(): boolean {
    this.assertOpen();
    return Atomics.load(this.#i32, BROKEN) === Atomics.load(this.#i32, GENERATION) + 1;
  }

  /**
   * Arrives and waits for the other parties. Resolves with this party's arrival index (0 for the
   * first, parties - 1 for the last, which releases the others). Rejects with ERR_IPC_PEER_GONE if
   * the barrier is or becomes broken.
   */
  wait(opts?: WaitOptions): Promise<number> {
    try {
      checkWaitOptions(opts);
      this.assertOpen();
      const target = this.#arrive();
      return typeof target === 'number' ? Promise.resolve(target) : waitAsync(target, opts);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** {@link Barrier.wait} blocking this thread (workers, scripts). */
  waitSync(opts?: WaitOptions): number {
    checkWaitOptions(opts);
    this.assertOpen();
    const target = this.#arrive();
    return typeof target === 'number' ? target : waitSync(target, opts);
  }

  /**
   * Starts a fresh generation: parties waiting now reject with ERR_IPC_PEER_GONE, the broken state
   * is cleared, and later waits start counting from zero.
   */
  reset(): void {
    this.assertOpen();
    const generation = Atomics.load(this.#i32, GENERATION);
    Atomics.store(this.#i32, BROKEN, generation + 1);
    Atomics.store(this.#i32, ARRIVED, 0);
    Atomics.add(this.#i32, GENERATION, 1);
    this.#queue.wake(Number.POSITIVE_INFINITY);
  }

  protected override onClose(): void {
    if (this.#slot >= 0 && !this.region.detached) this.#members.add(this.#slot, -1);
  }

  #brokenError(detail: string): IpcError {
    return new IpcError(ErrorCodes.PEER_GONE, `${this.what} is broken: ${detail}`);
  }

  #break(generation: number): void {
    Atomics.compareExchange(this.#i32, BROKEN, 0, generation + 1);
    if (Atomics.load(this.#i32, BROKEN) !== generation + 1) Atomics.store(this.#i32, BROKEN, generation + 1);
    this.#queue.wake(Number.POSITIVE_INFINITY);
  }

  /** Arrives; returns the index if this arrival completed the generation, else the wait target. */
  #arrive(): number | WaitTarget<number> {
    const i32 = this.#i32;
    const generation = Atomics.load(i32, GENERATION);
    if (Atomics.load(i32, BROKEN) === generation + 1) {
      throw this.#brokenError('a party died or gave up (reset() it to use it again)');
    }
    const index = Atomics.add(i32, ARRIVED, 1);
    if (index + 1 >= this.parties) {
      Atomics.store(i32, ARRIVED, 0);
      Atomics.add(i32, GENERATION, 1);
      this.#queue.wake(Number.POSITIVE_INFINITY);
      if (Atomics.load(i32, BROKEN) === generation + 1) throw this.#brokenError('a party died or gave up');
      return index;
    }
    let dead: HolderInfo | undefined;
    return {
      what: `${this.what}: wait`,
      queue: this.#queue,
      spin: this.spinner,
      attempt: (deathCheck) => {
        this.assertOpen();
        const broken = Atomics.load(i32, BROKEN) === generation + 1;
        if (Atomics.load(i32, GENERATION) !== generation) {
          if (broken) throw this.#brokenError(dead ? `pid ${dead.pid} died` : 'a party died or gave up');
          return index;
        }
        if (broken) throw this.#brokenError(dead ? `pid ${dead.pid} died` : 'a party died or gave up');
        if (deathCheck) {
          this.#members.reclaimDead((_, holder) => {
            dead ??= holder;
          });
          if (dead) {
            this.#break(generation);
            throw this.#brokenError(`party thread ${dead.tid} of pid ${dead.pid} died`);
          }
        }
        return undefined;
      },
      watchPids: () => [...new Set(this.#members.holders().map((h) => h.pid))],
      cancel: () => {
        if (!this.closed && Atomics.load(i32, GENERATION) === generation) this.#break(generation);
      },
      track: (kick) => this.trackWait(kick),
    };
  }
}
