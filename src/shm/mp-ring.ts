/**
 * The many-producer side of a ring (`producers: 'many'`): several processes append records to one
 * ring that one reader consumes (ring.ts, in its `many` mode).
 *
 * A producer claims the bytes of its record by a compare-and-swap of `head`, so claims are ordered
 * and never overlap; it then fills the record and publishes it by storing the header's kind word
 * last (the commit). The reader takes records in claim order and waits at one whose kind is still 0.
 * Since a later lap's header can land in the middle of an earlier payload, the reader zeroes what it
 * frees: a kind word is 0 until its producer commits.
 *
 * Before each claim, the producer writes its intent (the position it tries to claim, and how many
 * bytes) into its slot of the control page. A producer killed between its claim and its commit leaves
 * an uncommitted record at the reader's position: the reader finds the slot that claimed that
 * position, sees its owner is dead, and skips the claimed bytes (see {@link deadClaimAt}), so the
 * ring is never wedged by a dead producer.
 */
import { isAlive, selfIdentity } from '../core/process-identity.js';
import { threadDoorbell } from './doorbell.js';
import { Ctl, RECORD_HEADER, RecordKind, type RingViews } from './ring.js';

/** Byte offset of the producer slots in the control page, and their count. */
export const SLOTS_OFFSET = 1024;
export const SLOT_COUNT = 96;
const SLOT_WORDS = 8;
/** Slot words. START is a float64 over words 2-3 (slots are 8-byte aligned). */
const P = { STATE: 0, PID: 1, START: 2, INTENT: 4, SIZE: 5, TID: 6, NONCE: 7 } as const;
/** CLAIMING: a producer is filling the slot in (one killed right then leaves the slot unusable). */
const SlotState = { FREE: 0, USED: 1, CLAIMING: 2 } as const;

function align8(n: number): number {
  return (n + 7) & ~7;
}

/** The producer slots of a control page. */
export class ProducerSlots {
  readonly #words: Int32Array;
  readonly #starts: Float64Array;

  constructor(controlPage: Int32Array) {
    this.#words = new Int32Array(
      controlPage.buffer,
      controlPage.byteOffset + SLOTS_OFFSET,
      SLOT_COUNT * SLOT_WORDS,
    );
    this.#starts = new Float64Array(
      controlPage.buffer,
      controlPage.byteOffset + SLOTS_OFFSET,
      SLOT_COUNT * 4,
    );
  }

  /**
   * Takes a free slot (or one whose owner died, once the reader is past its last claim: `settled`)
   * for this thread; returns its index, or -1 when every slot is taken.
   */
  register(settled: (position: number) => boolean): number {
    const bell = threadDoorbell();
    const me = selfIdentity();
    for (let i = 0; i < SLOT_COUNT; i++) {
      const base = i * SLOT_WORDS;
      const state = Atomics.load(this.#words, base + P.STATE);
      if (state === SlotState.CLAIMING) continue;
      if (state === SlotState.USED) {
        if (this.#ownerAlive(i)) continue;
        // A dead owner's claim the reader has not met yet: it needs the intent to skip that claim.
        const size = Atomics.load(this.#words, base + P.SIZE);
        if (size !== 0 && !settled(Atomics.load(this.#words, base + P.INTENT) >>> 0)) continue;
      }
      if (Atomics.compareExchange(this.#words, base + P.STATE, state, SlotState.CLAIMING) !== state) continue;
      this.#starts[i * 4 + P.START / 2] = me.startTime;
      this.#words[base + P.TID] = bell.tid;
      this.#words[base + P.NONCE] = bell.nonce;
      Atomics.store(this.#words, base + P.SIZE, 0);
      Atomics.store(this.#words, base + P.PID, process.pid);
      Atomics.store(this.#words, base + P.STATE, SlotState.USED);
      return i;
    }
    return -1;
  }

  /** Gives slot `i` back (a producer that closed). */
  release(i: number): void {
    Atomics.store(this.#words, i * SLOT_WORDS + P.SIZE, 0);
    Atomics.store(this.#words, i * SLOT_WORDS + P.STATE, SlotState.FREE);
  }

  /** Records that slot `i` tries to claim `size` bytes at `position` (0 bytes: no claim). */
  intend(i: number, position: number, size: number): void {
    Atomics.store(this.#words, i * SLOT_WORDS + P.INTENT, position | 0);
    Atomics.store(this.#words, i * SLOT_WORDS + P.SIZE, size);
  }

  /** Pids of the producers registered now. */
  pids(): number[] {
    const out: number[] = [];
    for (let i = 0; i < SLOT_COUNT; i++) {
      const base = i * SLOT_WORDS;
      if (Atomics.load(this.#words, base + P.STATE) === SlotState.USED) {
        const pid = Atomics.load(this.#words, base + P.PID);
        if (pid !== 0) out.push(pid);
      }
    }
    return out;
  }

  /** Doorbell addresses of the registered producers (to wake those waiting for space). */
  doorbells(): Array<{ tid: number; nonce: number }> {
    const out: Array<{ tid: number; nonce: number }> = [];
    for (let i = 0; i < SLOT_COUNT; i++) {
      const base = i * SLOT_WORDS;
      if (Atomics.load(this.#words, base + P.STATE) !== SlotState.USED) continue;
      out.push({ tid: this.#words[base + P.TID]!, nonce: this.#words[base + P.NONCE]! });
    }
    return out;
  }

  /**
   * The bytes claimed at `position` by a producer that died before committing them, 0 if a live
   * producer may still commit there (or nobody claimed it), -1 if dead producers' intents disagree.
   * Called by the reader only when the record at its position stays uncommitted.
   */
  deadClaimAt(position: number): number {
    let size = 0;
    const dead: number[] = [];
    for (let i = 0; i < SLOT_COUNT; i++) {
      const base = i * SLOT_WORDS;
      const claimed = Atomics.load(this.#words, base + P.SIZE);
      if (claimed === 0 || Atomics.load(this.#words, base + P.INTENT) >>> 0 !== position) continue;
      if (Atomics.load(this.#words, base + P.STATE) === SlotState.USED && this.#ownerAlive(i)) return 0;
      if (size !== 0 && size !== claimed) return -1;
      size = claimed;
      dead.push(i);
    }
    // Their claims are settled by the skip: the slots can serve new producers.
    for (const i of dead) this.release(i);
    return size;
  }

  #ownerAlive(i: number): boolean {
    const pid = Atomics.load(this.#words, i * SLOT_WORDS + P.PID);
    if (pid === 0) return false;
    if (pid === process.pid) return true;
    return isAlive({ pid, startTime: this.#starts[i * 4 + P.START / 2]! });
  }
}

/**
 * One producer's end of a many-producer ring: the {@link RingWriter} surface (reserve, then commit),
 * with the claim made by compare-and-swap at `reserve` time. Records must fit in half the ring.
 */
export class MpRingWriter {
  readonly capacity: number;
  readonly #mask: number;
  readonly #control: Int32Array;
  readonly #data: Uint8Array;
  readonly #words: Int32Array;
  readonly #slots: ProducerSlots;
  readonly #slot: number;
  /** The claimed record's position (after any PAD), between reserve and commit. */
  #at = 0;

  constructor(views: RingViews, slots: ProducerSlots, slot: number) {
    this.#control = views.control;
    this.#data = views.data;
    this.capacity = views.data.length;
    this.#mask = this.capacity - 1;
    this.#words = new Int32Array(views.data.buffer, views.data.byteOffset, this.capacity >> 2);
    this.#slots = slots;
    this.#slot = slot;
  }

  /** Always false: each record is published by its own commit. */
  readonly unpublished = false;

  /**
   * True after a reserve() that failed having lost a claim to another producer: it withdrew the
   * intent it had announced, and a reader parked on that intent (see deadClaimAt) should look again.
   */
  lostRace = false;

  /** Bytes free right now. */
  free(): number {
    const head = Atomics.load(this.#control, Ctl.HEAD) >>> 0;
    const tail = Atomics.load(this.#control, Ctl.TAIL) >>> 0;
    return this.capacity - ((head - tail) >>> 0);
  }

  /**
   * Claims room for a record of exactly `want` payload bytes (`min` must equal it): returns `want`,
   * or -1 if the ring has no room now. May claim (and commit) a PAD up to the end of the ring first.
   */
  reserve(want: number, _min: number): number {
    const size = RECORD_HEADER + align8(want);
    this.lostRace = false;
    for (;;) {
      const head = Atomics.load(this.#control, Ctl.HEAD) >>> 0;
      const tail = Atomics.load(this.#control, Ctl.TAIL) >>> 0;
      const offset = head & this.#mask;
      const contiguous = this.capacity - offset;
      const need = size <= contiguous ? size : contiguous + size;
      if (this.capacity - ((head - tail) >>> 0) < need) {
        if (this.lostRace) {
          // The intent of the claim another producer won must not stay: it names that producer's
          // position, where a reader finding the winner dead would take this live producer for
          // the claimant and wait for it, for good (or, once this one died too, see sizes disagree).
          this.#slots.intend(this.#slot, 0, 0);
        }
        return -1;
      }
      this.#slots.intend(this.#slot, head, need);
      this.lostRace = true;
      if (Atomics.compareExchange(this.#control, Ctl.HEAD, head | 0, (head + need) | 0) !== (head | 0))
        continue;
      this.lostRace = false;
      if (need !== size) {
        this.#words[offset >> 2] = contiguous - RECORD_HEADER;
        Atomics.store(this.#words, (offset >> 2) + 1, RecordKind.PAD);
      }
      this.#at = (head + need - size) & this.#mask;
      return want;
    }
  }

  /** Fills the claimed record and commits it (the kind word, stored last). */
  commit(kind: number, src: Uint8Array | undefined, srcOffset: number, length: number): void {
    const offset = this.#at;
    this.#words[offset >> 2] = length;
    if (length > 0 && src) {
      this.#data.set(
        length === src.length && srcOffset === 0 ? src : src.subarray(srcOffset, srcOffset + length),
        offset + RECORD_HEADER,
      );
    }
    Atomics.store(this.#words, (offset >> 2) + 1, kind);
    this.#slots.intend(this.#slot, 0, 0);
  }

  /** Nothing to do: a commit publishes its record (the claim made the ring's head public already). */
  publish(): boolean {
    return false;
  }
}
