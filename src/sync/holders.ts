/**
 * A table of per-thread counts in shared memory: which threads hold how many permits of a
 * Semaphore, read locks of an RwLock, or handles on a Barrier. It is what lets a dead holder's share
 * be found and given back. Each thread uses one slot, found by its thread id and start time, while
 * it holds a share: it frees the slot when its count drops to 0.
 *
 * Claiming: tid word 0 -> -tid (CAS), write pid and start time, then store tid; a slot is read as
 * someone's only once its tid is positive. Reclaiming a dead holder: CAS tid -> RECLAIM_BIT | the
 * reclaimer's tid, take the count with an exchange, hand it to the caller, free the slot. Only a
 * slot's owner changes its count while it lives, and only its reclaimer once it is dead, so counts
 * are never doubled. A reclaimer that dies mid-way leaves its tid in the word; the next reclaim
 * that finds that thread dead takes the slot over (the share it had not yet handed on is handed on
 * then, or lost if it had already been taken out of the count: never handed on twice).
 *
 * Layout (words from `base`, even): +0 slot count, +1 high-water mark (slots ever claimed, so that
 * a thread looks for its own slot among those only), +2..3 reserved, then per slot
 * [tid, count, pid, reserved, start time (f64)].
 */
import type { Region } from './region.js';
import { selfThread, type ThreadIdentity, threadAlive } from './thread.js';

/** Slots per table: the most distinct threads that can hold a share at once. */
export const HOLDER_SLOTS = 64;
const SLOT_WORDS = 6;
/** Words a table occupies. */
export const HOLDERS_WORDS = 4 + SLOT_WORDS * HOLDER_SLOTS;
/** Set in a tid word while a slot is being reclaimed, beside the reclaimer's tid (pid_max <= 2^22). */
const RECLAIM_BIT = 0x40000000;

/** A tid word that names a live-or-dead holder (not free, claiming, or being reclaimed). */
function isHolder(word: number): boolean {
  return word > 0 && word < RECLAIM_BIT;
}

/** One thread's share as found in the table. */
export interface HolderInfo {
  tid: number;
  pid: number;
  count: number;
}

/** A slot being freed by {@link Holders.reclaimDead}: its dead holder and the share taken out. */
export interface Reclaim extends HolderInfo {
  /** The slot's index in the table (0 to HOLDER_SLOTS - 1). */
  index: number;
  /**
   * True when a reclaimer died while freeing this slot: `count` is what it left, which is 0 if it
   * had already taken the share out (and then lost it), or the holder's whole share if not; `tid`
   * is then 0 (the slot's tid word held the reclaimer's).
   */
  abandoned: boolean;
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

  /** The index in the table (0 to HOLDER_SLOTS - 1) of a slot returned by {@link slotOf}. */
  indexOf(slot: number): number {
    return (slot - this.#base - 4) / SLOT_WORDS;
  }

  /** The pid of the holder in slot `index` if one is there (live or dead), else undefined. */
  pidAt(index: number): number | undefined {
    const slot = this.#slot(index);
    return isHolder(Atomics.load(this.#i32, slot)) ? this.#i32[slot + 2] : undefined;
  }

  /**
   * The slot of `me` (its first word's index), claiming a free one if `claim`; -1 if it has none
   * and none could be claimed. `hint` is a slot index to try first (cached by the caller). When the
   * table is full, dead threads' slots are reclaimed through `onReclaim` to make room.
   */
  slotOf(
    me: ThreadIdentity,
    claim: boolean,
    hint = -1,
    onReclaim: (reclaim: Reclaim) => void = () => {},
  ): number {
    if (hint >= 0 && this.#isMine(hint, me)) return hint;
    const i32 = this.#i32;
    const f64 = this.#f64;
    const slots = i32[this.#base]!;
    // This thread raised the mark past every slot it claimed (an older ipckit that does not keep
    // the mark only leaves it low for its own slots, which only it looks for).
    const used = Math.min(Atomics.load(i32, this.#base + 1), slots);
    for (let slot = this.#slot(0), end = this.#slot(used); slot < end; slot += SLOT_WORDS) {
      if (Atomics.load(i32, slot) === me.tid && f64[(slot + 4) >> 1] === me.startTime) return slot;
    }
    if (!claim) return -1;
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < slots; i++) {
        const slot = this.#slot(i);
        if (Atomics.load(i32, slot) === 0 && this.#claim(slot, me)) return slot;
      }
      // Full: free the slots of dead threads, then try once more.
      if (this.reclaimDead(onReclaim, true) === 0) break;
    }
    return -1;
  }

  /** Claims `slot` for `me` if it is free. */
  #claim(slot: number, me: ThreadIdentity): boolean {
    if (Atomics.compareExchange(this.#i32, slot, 0, -me.tid) !== 0) return false;
    const mark = this.#base + 1;
    const index = this.indexOf(slot);
    for (let used = Atomics.load(this.#i32, mark); used < index + 1; ) {
      const seen = Atomics.compareExchange(this.#i32, mark, used, index + 1);
      if (seen === used) break;
      used = seen;
    }
    this.#i32[slot + 2] = me.pid;
    this.#f64[(slot + 4) >> 1] = me.startTime;
    Atomics.store(this.#i32, slot + 1, 0);
    Atomics.store(this.#i32, slot, me.tid);
    return true;
  }

  /** Adds `delta` to the count of a slot this thread owns; returns the new count. */
  add(slot: number, delta: number): number {
    return Atomics.add(this.#i32, slot + 1, delta) + delta;
  }

  /**
   * Frees a slot this thread owns once its count is 0. The table tracks the threads that hold a
   * share now, not every thread that ever held one: a live thread keeping its empty slot would
   * hold it for as long as it lives, and after 64 such threads the next one would find no room
   * (a read lock nobody holds never granted, permits and memberships no longer tracked).
   * Only the owner frees its slot, and only the owner changes its count while it lives, so the
   * count cannot change between the look and the free.
   */
  freeIfEmpty(slot: number, me: ThreadIdentity): void {
    if (Atomics.load(this.#i32, slot + 1) !== 0 || !this.#isMine(slot, me)) return;
    Atomics.compareExchange(this.#i32, slot, me.tid, 0);
  }

  /** Sets the count of a slot this thread owns (the Semaphore's journalled updates). */
  setCount(slot: number, count: number): void {
    Atomics.store(this.#i32, slot + 1, count);
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
      if (isHolder(Atomics.load(this.#i32, slot))) sum += Atomics.load(this.#i32, slot + 1);
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
      if (isHolder(tid) && count > 0) list.push({ tid, pid: this.#i32[slot + 2]!, count });
    }
    return list;
  }

  /**
   * Frees the slots of dead threads, handing each one's share to `onReclaim` (called once per freed
   * slot whose count is not zero; with `includeEmpty`, for the slots of dead threads holding nothing
   * too, which are then freed as well). Returns how many slots were freed. Reads /proc: call it on
   * death checks, not per operation.
   */
  reclaimDead(onReclaim: (reclaim: Reclaim) => void, includeEmpty = false): number {
    const slots = this.#i32[this.#base]!;
    const me = selfThread().tid;
    let freed = 0;
    for (let i = 0; i < slots; i++) {
      const slot = this.#slot(i);
      const tid = Atomics.load(this.#i32, slot);
      if (tid === 0) continue;
      if (tid < 0) {
        // A claim in progress; only a claimer that died mid-claim leaves it like this.
        if (!threadAlive(-tid, 0) && Atomics.compareExchange(this.#i32, slot, tid, 0) === tid) freed++;
        continue;
      }
      const abandoned = !isHolder(tid);
      if (abandoned) {
        // Being reclaimed: by a live thread (leave it), or by one that died doing it (take over).
        if (threadAlive(tid & ~RECLAIM_BIT, 0)) continue;
      } else {
        if (!includeEmpty && Atomics.load(this.#i32, slot + 1) === 0) continue;
        if (threadAlive(tid, this.#f64[(slot + 4) >> 1]!)) continue;
      }
      if (Atomics.compareExchange(this.#i32, slot, tid, RECLAIM_BIT | me) !== tid) continue;
      const count = Atomics.exchange(this.#i32, slot + 1, 0);
      if (count !== 0 || includeEmpty) {
        onReclaim({ index: i, tid: abandoned ? 0 : tid, pid: this.#i32[slot + 2]!, count, abandoned });
      }
      Atomics.store(this.#i32, slot, 0);
      freed++;
    }
    return freed;
  }
}
