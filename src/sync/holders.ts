/**
 * A table of per-thread counts in shared memory: which threads hold how many permits of a
 * Semaphore, read locks of an RwLock, or handles on a Barrier. It is what lets a dead holder's share
 * be found and given back. Each thread uses one slot, found by its thread id and start time.
 *
 * Claiming: tid word 0 -> -tid (CAS), write pid and start time, then store tid; a slot is read as
 * someone's only once its tid is positive. Reclaiming a dead holder: CAS tid -> RECLAIMING, take the
 * count with an exchange, hand it to the caller, free the slot. Only a slot's owner changes its
 * count while it lives, and only a reclaimer once it is dead, so counts are never lost or doubled.
 *
 * Layout (words from `base`, even): +0 slot count, +1..3 reserved, then per slot
 * [tid, count, pid, reserved, start time (f64)].
 */
import type { Region } from './region.js';
import { type ThreadIdentity, threadAlive } from './thread.js';

/** Slots per table: the most distinct threads that can hold a share at once. */
export const HOLDER_SLOTS = 64;
const SLOT_WORDS = 6;
/** Words a table occupies. */
export const HOLDERS_WORDS = 4 + SLOT_WORDS * HOLDER_SLOTS;
/** Never a thread id (pid_max is at most 2^22). */
const RECLAIMING = 0x7fffffff;

/** One thread's share as found in the table. */
export interface HolderInfo {
  tid: number;
  pid: number;
  count: number;
}

/** A holder table. */
export class Holders {
  readonly #i32: Int32Array;
  readonly #f64: Float64Array;
  readonly #base: number;

  constructor(region: Region, base: number) {
    this.#i32 = region.i32;
    this.#f64 = region.f64;
    this.#base = base;
  }

  /** Writes the slot count into a zeroed table. */
  static init(region: Region, base: number): void {
    region.i32[base] = HOLDER_SLOTS;
  }

  #slot(i: number): number {
    return this.#base + 4 + SLOT_WORDS * i;
  }

  #isMine(slot: number, me: ThreadIdentity): boolean {
    return Atomics.load(this.#i32, slot) === me.tid && this.#f64[(slot + 4) >> 1] === me.startTime;
  }

  /**
   * The slot of `me` (its first word's index), claiming a free one if `claim`; -1 if it has none
   * and none could be claimed. `hint` is a slot index to try first (cached by the caller).
   */
  slotOf(me: ThreadIdentity, claim: boolean, hint = -1): number {
    if (hint >= 0 && this.#isMine(hint, me)) return hint;
    const slots = this.#i32[this.#base]!;
    for (let i = 0; i < slots; i++) {
      const slot = this.#slot(i);
      if (this.#isMine(slot, me)) return slot;
    }
    if (!claim) return -1;
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < slots; i++) {
        const slot = this.#slot(i);
        if (Atomics.load(this.#i32, slot) !== 0) continue;
        if (Atomics.compareExchange(this.#i32, slot, 0, -me.tid) !== 0) continue;
        this.#i32[slot + 2] = me.pid;
        this.#f64[(slot + 4) >> 1] = me.startTime;
        Atomics.store(this.#i32, slot + 1, 0);
        Atomics.store(this.#i32, slot, me.tid);
        return slot;
      }
      // Full: free the slots of dead threads that hold nothing, then try once more.
      if (this.reclaimDead(() => {}, true) === 0) break;
    }
    return -1;
  }

  /** Adds `delta` to the count of a slot this thread owns; returns the new count. */
  add(slot: number, delta: number): number {
    return Atomics.add(this.#i32, slot + 1, delta) + delta;
  }

  /** The count of a slot. */
  count(slot: number): number {
    return Atomics.load(this.#i32, slot + 1);
  }

  /** Sum of all counts. */
  total(): number {
    const slots = this.#i32[this.#base]!;
    let sum = 0;
    for (let i = 0; i < slots; i++) {
      const slot = this.#slot(i);
      if (Atomics.load(this.#i32, slot) > 0) sum += Atomics.load(this.#i32, slot + 1);
    }
    return sum;
  }

  /** Live-looking holders with a non-zero count (for pidfd watching and diagnostics). */
  holders(): HolderInfo[] {
    const slots = this.#i32[this.#base]!;
    const list: HolderInfo[] = [];
    for (let i = 0; i < slots; i++) {
      const slot = this.#slot(i);
      const tid = Atomics.load(this.#i32, slot);
      const count = Atomics.load(this.#i32, slot + 1);
      if (tid > 0 && tid !== RECLAIMING && count > 0) list.push({ tid, pid: this.#i32[slot + 2]!, count });
    }
    return list;
  }

  /**
   * Frees the slots of dead threads, handing each one's count to `onReclaim` (called once per dead
   * holder with a non-zero count). With `includeEmpty`, slots of dead threads holding nothing are
   * freed too. Returns how many slots were freed. Reads /proc: call it on death checks, not per op.
   */
  reclaimDead(onReclaim: (count: number, holder: HolderInfo) => void, includeEmpty = false): number {
    const slots = this.#i32[this.#base]!;
    let freed = 0;
    for (let i = 0; i < slots; i++) {
      const slot = this.#slot(i);
      const tid = Atomics.load(this.#i32, slot);
      if (tid === 0 || tid === RECLAIMING) continue;
      if (tid < 0) {
        // A claim in progress; only a claimer that died mid-claim leaves it like this.
        if (!threadAlive(-tid, 0) && Atomics.compareExchange(this.#i32, slot, tid, 0) === tid) freed++;
        continue;
      }
      if (!includeEmpty && Atomics.load(this.#i32, slot + 1) === 0) continue;
      if (threadAlive(tid, this.#f64[(slot + 4) >> 1]!)) continue;
      if (Atomics.compareExchange(this.#i32, slot, tid, RECLAIMING) !== tid) continue;
      const count = Atomics.exchange(this.#i32, slot + 1, 0);
      if (count !== 0) onReclaim(count, { tid, pid: this.#i32[slot + 2]!, count });
      Atomics.store(this.#i32, slot, 0);
      freed++;
    }
    return freed;
  }
}
