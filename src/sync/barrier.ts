/**
 * Barrier: `parties` threads (in any processes) wait until all of them have arrived, then all go
 * on; it is reusable, generation after generation.
 *
 * Parties are known: every handle (create/open) joins the barrier's member table and `close()`
 * leaves it. If a member dies without closing while others wait, the waiters find it (pidfd on the
 * event loop, or the periodic check) and the barrier breaks: every current and later wait rejects
 * with ERR_IPC_PEER_GONE until `reset()`. The arrival that would complete a round looks too, so a
 * party that arrived and then died never completes one. A wait that times out or is aborted breaks
 * it too (as in Python), since the others could otherwise never complete; a wait that close() ends
 * withdraws its arrival instead (the member left in order).
 *
 * Layout (32-bit words): 0-3 header (parties), 4 arrived, 5 generation, 6 broken (generation + 1
 * of the broken generation, 0 if none), 8.. member table, then the wait queue. Words 4 and 5 change
 * together, as one 64-bit word (arrived in its low half): an arrival counts itself into the round
 * it read, and the last one completes that round, each in one compare-and-swap.
 */
import { ErrorCodes, IpcError } from '../core/errors.js';
import { numberError } from '../core/options.js';
import { abortedError, checkWaitOptions, type WaitOptions } from '../core/wait.js';
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
/** ARRIVED and GENERATION as one 64-bit word (byte 16: 8-byte aligned, as placements are). */
const ROUND_BYTES = ARRIVED * 4;
const LOW_HALF = 0xffffffffn;

/** The round word holding `arrived` parties of `generation` (both int32, as the 32-bit views read them). */
function roundWord(generation: number, arrived: number): bigint {
  return BigInt.asIntN(64, (BigInt(generation | 0) << 32n) | (BigInt(arrived | 0) & LOW_HALF));
}

function arrivedOf(round: bigint): number {
  return Number(BigInt.asIntN(32, round));
}

function generationOf(round: bigint): number {
  return Number(BigInt.asIntN(32, round >> 32n));
}

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
  /** ARRIVED and GENERATION as one word. */
  readonly #round: BigInt64Array;
  readonly #queue: WaitQueue;
  readonly #members: Holders;
  #slot = -1;

  private constructor(storage: Storage) {
    super('barrier', storage);
    this.parties = storage.param;
    this.#i32 = this.region.i32;
    this.#round = new BigInt64Array(this.#i32.buffer, this.#i32.byteOffset + ROUND_BYTES, 1);
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
      // Before arriving: an arrival cannot be taken back (it may complete the round).
      if (opts?.signal?.aborted) throw abortedError(`${this.what}: wait`, opts.signal);
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
    if (opts?.signal?.aborted) throw abortedError(`${this.what}: wait`, opts.signal);
    const target = this.#arrive();
    return typeof target === 'number' ? target : waitSync(target, opts);
  }

  /**
   * Starts a fresh generation: parties waiting now reject with ERR_IPC_PEER_GONE, the broken state
   * is cleared, and later waits start counting from zero. Members that died before it (the reason
   * for a reset, often) are forgotten here, so that finding them later does not break the new
   * generation too.
   */
  reset(): void {
    this.assertOpen();
    // The generation in progress is broken first: a last arrival that, once the dead are forgotten,
    // no longer sees a dead party that had arrived must still not complete it.
    this.#break(generationOf(Atomics.load(this.#round, 0)));
    this.#members.reclaimDead(() => {});
    for (;;) {
      const seen = Atomics.load(this.#round, 0);
      const generation = generationOf(seen);
      Atomics.store(this.#i32, BROKEN, generation + 1);
      if (Atomics.compareExchange(this.#round, 0, seen, roundWord(generation + 1, 0)) === seen) break;
    }
    this.#queue.wake(Number.POSITIVE_INFINITY);
  }

  protected override onClose(): void {
    if (this.#slot < 0 || this.region.detached) return;
    this.#members.add(this.#slot, -1);
    this.#members.freeIfEmpty(this.#slot, selfThread());
  }

  #brokenError(detail: string): IpcError {
    return new IpcError(ErrorCodes.PEER_GONE, `${this.what} is broken: ${detail}`);
  }

  #break(generation: number): void {
    Atomics.compareExchange(this.#i32, BROKEN, 0, generation + 1);
    if (Atomics.load(this.#i32, BROKEN) !== generation + 1) Atomics.store(this.#i32, BROKEN, generation + 1);
    this.#queue.wake(Number.POSITIVE_INFINITY);
  }

  /**
   * Looks for members that died without closing (reads /proc) and, if one did, breaks `generation`
   * and returns the first dead member with the error to fail with. Their slots are freed: after
   * reset() the barrier counts without them.
   */
  #deadMember(generation: number): { holder: HolderInfo; error: IpcError } | undefined {
    let first: HolderInfo | undefined;
    this.#members.reclaimDead((holder) => {
      first ??= holder;
    });
    if (!first) return undefined;
    this.#break(generation);
    return { holder: first, error: this.#brokenError(`party thread ${first.tid} of pid ${first.pid} died`) };
  }

  /**
   * Takes back an arrival in `generation` whose wait close() ended: the round must not complete
   * with a party that left. Nothing is taken back once the round completed: the arrival counted
   * while its party was there.
   */
  #withdraw(generation: number): void {
    for (;;) {
      const seen = Atomics.load(this.#round, 0);
      if (generationOf(seen) !== generation || arrivedOf(seen) <= 0) return;
      if (Atomics.compareExchange(this.#round, 0, seen, seen - 1n) === seen) return;
    }
  }

  /** Arrives; returns the index if this arrival completed the generation, else the wait target. */
  #arrive(): number | WaitTarget<number> {
    const i32 = this.#i32;
    let generation: number;
    let index: number;
    for (;;) {
      const seen = Atomics.load(this.#round, 0);
      generation = generationOf(seen);
      index = arrivedOf(seen);
      if (Atomics.load(i32, BROKEN) === generation + 1) {
        throw this.#brokenError('a party died or gave up (reset() it to use it again)');
      }
      const last = index + 1 >= this.parties;
      // A party that arrived and then died still counts, and nothing else would notice before
      // the last arrival lets everyone go: so that arrival makes sure every member is alive first
      // (one /proc sweep per round; a round nobody else arrived in has nobody to check). The
      // sweep comes before the compare-and-swap: if another arrival got in meanwhile, this one
      // is not the last of the round it read, and it looks again.
      if (last && index > 0) {
        const found = this.#deadMember(generation);
        if (found) throw found.error;
      }
      // The last arrival completes the round (count 0, next generation); any other counts itself
      // in. A surplus arrival (more waiters than parties) thus always lands in the next round.
      const next = last ? roundWord(generation + 1, 0) : seen + 1n;
      if (Atomics.compareExchange(this.#round, 0, seen, next) !== seen) continue;
      if (!last) break;
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
          const found = this.#deadMember(generation);
          if (found) {
            dead = found.holder;
            throw found.error;
          }
        }
        return undefined;
      },
      // The round this party arrived in completed: it was counted, whatever ended its wait.
      completed: () => {
        if (Atomics.load(i32, GENERATION) === generation) return undefined;
        if (Atomics.load(i32, BROKEN) === generation + 1) {
          throw this.#brokenError(dead ? `pid ${dead.pid} died` : 'a party died or gave up');
        }
        return index;
      },
      watchPids: () => [...new Set(this.#members.holders().map((h) => h.pid))],
      cancel: () => {
        // close() is a member leaving in order (it also leaves the member table): its arrival is
        // withdrawn and the others wait on for a party that is there. A timeout or an abort gives
        // up instead, and breaks the round as Python does, since the others could never complete.
        if (this.closed) this.#withdraw(generation);
        else if (Atomics.load(i32, GENERATION) === generation) this.#break(generation);
      },
      track: (kick) => this.trackWait(kick),
    };
  }
}
