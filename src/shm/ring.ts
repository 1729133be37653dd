/**
 * A single-producer single-consumer ring of variable-size records in shared memory. The writer owns
 * `head`, the reader owns `tail`; both are free-running u32 byte counters (the ring capacity is a
 * power of two, so `counter & mask` is the position and `(head - tail) >>> 0` the bytes in use even
 * after the counters wrap past 2^32).
 *
 * A record is an 8-byte header (i32 payload length, i32 kind) and its payload, padded to 8 bytes.
 * The writer fills header and payload with plain stores and only then moves `head` with
 * `Atomics.store`: a record becomes visible to the reader only once complete, so a writer killed in
 * the middle of one leaves nothing torn behind. A record never wraps: when it does not fit before
 * the end of the ring, the writer fills the rest with a PAD record and starts again at 0.
 *
 * The reader also serves a ring with many producers (mp-ring.ts), where `head` counts claimed
 * bytes and each record is published by its own header's kind word instead.
 *
 * The control words also carry the two flags of the doorbell protocol (see shm-channel.ts):
 * `READER_IDLE` (the reader parked) and `WRITER_WAITING` (the writer waits for space).
 */
import { numberError } from '../core/options.js';

/** Bytes of a record header. Records start 8-byte aligned. */
export const RECORD_HEADER = 8;
/**
 * Bytes of a ring's control block: three cache lines. The writer's line (head, and the flag the
 * reader reads with it), the reader's line (tail), and the reader's idle flag on a line of its
 * own: the writer reads that flag at every send, and beside the tail, which the reader stores at
 * every batch, each of those reads pulled the line away from the reader and back (false sharing:
 * two cache misses per message on a round trip).
 */
export const RING_CONTROL_BYTES = 192;

/** Control word indices (Int32) inside a ring's control block. */
export const Ctl = {
  /** Written by the writer: bytes ever published. */
  HEAD: 0,
  /** Set by the writer before it parks waiting for space; cleared by whoever wakes it. */
  WRITER_WAITING: 1,
  /** Written by the reader: bytes ever freed. */
  TAIL: 16,
  /** Set by the reader before it parks; cleared by the writer that rings it. */
  READER_IDLE: 32,
} as const;

/** Record kinds. 0 is never written, so a zeroed header reads as corrupt rather than valid. */
export const RecordKind = {
  /** A whole message, or the last piece of one. */
  DATA: 1,
  /** A piece of a message larger than a record may be; more pieces follow. */
  PIECE: 2,
  /** Filler up to the end of the ring: skip to position 0. */
  PAD: 3,
  /** The writer closed its end: nothing follows. */
  GOODBYE: 4,
  /**
   * A new writer took over the ring (its payload: the u32 session it starts): drop any message
   * being assembled, since the old writer may have died between its pieces.
   */
  RESET: 5,
} as const;

/** Smallest and largest ring capacity accepted. */
export const MIN_RING_CAPACITY = 4096;
export const MAX_RING_CAPACITY = 1 << 30;

function align8(n: number): number {
  return (n + 7) & ~7;
}

/** Throws TypeError (not a number) or RangeError unless `capacity` is a power of two within the accepted range. */
export function checkRingCapacity(
  capacity: unknown,
  option = 'options.capacity',
): asserts capacity is number {
  if (
    typeof capacity !== 'number' ||
    !Number.isInteger(capacity) ||
    capacity < MIN_RING_CAPACITY ||
    capacity > MAX_RING_CAPACITY ||
    (capacity & (capacity - 1)) !== 0
  ) {
    throw numberError(
      capacity,
      `${option} must be a power of two from ${MIN_RING_CAPACITY} to ${MAX_RING_CAPACITY} bytes, got ${String(capacity)}`,
    );
  }
}

/**
 * The largest payload one record can always carry, whatever the ring position: a record of up to
 * half the ring fits in an empty ring either before its end or, after a PAD, from its start.
 */
export function maxRecordPayload(capacity: number): number {
  return capacity / 2 - RECORD_HEADER;
}

/** Views of one ring: its control words and its data bytes. */
export interface RingViews {
  control: Int32Array;
  data: Uint8Array;
}

/** Makes the views of a ring whose control block starts at `controlOffset` and data at `dataOffset`. */
export function ringViews(
  buffer: ArrayBufferLike,
  controlOffset: number,
  dataOffset: number,
  capacity: number,
): RingViews {
  return {
    control: new Int32Array(buffer, controlOffset, RING_CONTROL_BYTES / 4),
    data: new Uint8Array(buffer, dataOffset, capacity),
  };
}

/**
 * Most bytes a lazy commit (see {@link RingWriter.commit}) leaves unpublished: about 113 records of
 * 64 B, so a burst publishes its head once per 113 records instead of once per record. 8 KiB rather
 * than 2 KiB: each publication is a full fence that waits for the lines written since the last one,
 * and in alternating runs of 2M raw 64 B messages the burst went 7.3 M msg/s (median of five runs)
 * with 2 KiB and 8.5 M with 8 KiB.
 */
const LAZY_PUBLISH_BYTES = 8192;

/** What writes records into a ring: a {@link RingWriter}, or one producer of many (mp-ring.ts). */
export interface RecordWriter {
  readonly capacity: number;
  /** True while lazily committed records wait for {@link RecordWriter.publish}. */
  readonly unpublished: boolean;
  free(): number;
  reserve(want: number, min: number): number;
  commit(kind: number, src: Uint8Array | undefined, srcOffset: number, length: number, lazy?: boolean): void;
  /** Publishes what lazy commits left unpublished; true if there was any. */
  publish(): boolean;
  /** Many producers: the last failed reserve() lost a claim to another producer (see MpRingWriter). */
  readonly lostRace?: boolean;
}

/** The producing end of a ring. One writer per ring at a time. */
export class RingWriter implements RecordWriter {
  readonly capacity: number;
  readonly #mask: number;
  readonly #control: Int32Array;
  readonly #data: Uint8Array;
  readonly #words: Int32Array;
  readonly #lazyLimit: number;
  /** Bytes ever written, published or not. */
  #head: number;
  /** What the reader can see: `head` as last stored in the control block. */
  #published: number;
  #tail: number;

  constructor(views: RingViews) {
    this.#control = views.control;
    this.#data = views.data;
    this.capacity = views.data.length;
    this.#mask = this.capacity - 1;
    this.#words = new Int32Array(views.data.buffer, views.data.byteOffset, this.capacity >> 2);
    this.#lazyLimit = Math.min(LAZY_PUBLISH_BYTES, this.capacity / 8);
    this.#head = Atomics.load(this.#control, Ctl.HEAD) >>> 0;
    this.#published = this.#head;
    this.#tail = Atomics.load(this.#control, Ctl.TAIL) >>> 0;
  }

  get unpublished(): boolean {
    return this.#published !== this.#head;
  }

  /** Bytes free right now (re-reads the reader's tail). */
  free(): number {
    this.#tail = Atomics.load(this.#control, Ctl.TAIL) >>> 0;
    return this.capacity - ((this.#head - this.#tail) >>> 0);
  }

  /**
   * Makes room for one record of between `min` and `want` payload bytes (min <= want, and min at
   * most {@link maxRecordPayload}): returns the payload length that fits now, or -1 if not even
   * `min` does. May write (unpublished) a PAD record to wrap to the start of the ring.
   */
  reserve(want: number, min: number): number {
    // Try with the cached tail first; only look at the reader's progress when that says no room.
    const n = this.#place(want, min, this.capacity - ((this.#head - this.#tail) >>> 0));
    return n >= 0 ? n : this.#place(want, min, this.free());
  }

  #place(want: number, min: number, free: number): number {
    const offset = this.#head & this.#mask;
    const contiguous = this.capacity - offset;
    const here = Math.min(free, contiguous) - RECORD_HEADER;
    if (here >= min) return Math.min(want, here);
    const atStart = free - contiguous - RECORD_HEADER;
    if (contiguous < free && atStart >= min) {
      this.#writeHeader(offset, contiguous - RECORD_HEADER, RecordKind.PAD);
      this.#head = (this.#head + contiguous) >>> 0;
      return Math.min(want, atStart);
    }
    return -1;
  }

  /**
   * Writes one record after a successful {@link RingWriter.reserve} of at least `length` bytes, and
   * publishes it (with any PAD before it). `length` bytes are copied from `src` at `srcOffset`.
   *
   * `lazy`: the record may stay unpublished until {@link RingWriter.publish}, or until a few KiB
   * wait. Publishing is a sequentially consistent store, a full fence on x86: the CPU stalls until
   * every earlier store, the record's included, owns its cache line, which the reader on the other
   * core has just read. Once per record, that stall was most of a 64 B record's cost.
   */
  commit(kind: number, src: Uint8Array | undefined, srcOffset: number, length: number, lazy = false): void {
    const offset = this.#head & this.#mask;
    this.#writeHeader(offset, length, kind);
    if (length > 0 && src) {
      this.#data.set(
        length === src.length && srcOffset === 0 ? src : src.subarray(srcOffset, srcOffset + length),
        offset + RECORD_HEADER,
      );
    }
    this.#head = (this.#head + RECORD_HEADER + align8(length)) >>> 0;
    if (!lazy || (this.#head - this.#published) >>> 0 >= this.#lazyLimit) this.#publishHead();
  }

  publish(): boolean {
    if (this.#published === this.#head) return false;
    this.#publishHead();
    return true;
  }

  #publishHead(): void {
    this.#published = this.#head;
    // The release store: everything written before is visible to a reader that loads this head.
    Atomics.store(this.#control, Ctl.HEAD, this.#head | 0);
  }

  #writeHeader(offset: number, length: number, kind: number): void {
    this.#words[offset >> 2] = length;
    this.#words[(offset >> 2) + 1] = kind;
  }
}

/** One record as the reader sees it: where its payload is, how long, and what it is. */
export interface RingRecord {
  kind: number;
  /** Offset of the payload in the ring's data. */
  offset: number;
  length: number;
  /** The reader position just past this record (pass to {@link RingReader.free}). */
  end: number;
  /** The reader position of this record's header (pass to {@link RingReader.rewind}). */
  start: number;
}

/** The consuming end of a ring. One reader per ring. */
export class RingReader {
  readonly capacity: number;
  readonly #mask: number;
  readonly #control: Int32Array;
  readonly #words: Int32Array;
  readonly data: Uint8Array;
  /** Next record to read. */
  #cursor: number;
  /** The record next() returns, reused: reading allocates nothing. */
  readonly #record: RingRecord = { kind: 0, offset: 0, length: 0, end: 0, start: 0 };
  /** Freed up to here (published as the tail); trails the cursor while views are held. */
  #tail: number;
  #head: number;
  /**
   * Many producers (mp-ring.ts): `head` counts claimed bytes, a record is published by its kind
   * word, and freed bytes are zeroed so that an uncommitted header always reads kind 0.
   */
  readonly #many: boolean;

  constructor(views: RingViews, many = false) {
    this.#many = many;
    this.#control = views.control;
    this.data = views.data;
    this.capacity = views.data.length;
    this.#mask = this.capacity - 1;
    this.#words = new Int32Array(views.data.buffer, views.data.byteOffset, this.capacity >> 2);
    this.#tail = Atomics.load(this.#control, Ctl.TAIL) >>> 0;
    this.#cursor = this.#tail;
    this.#head = Atomics.load(this.#control, Ctl.HEAD) >>> 0;
  }

  /** True when a published record is waiting (re-reads the writer's head if needed). */
  available(): boolean {
    if (this.#cursor === this.#head) {
      this.#head = Atomics.load(this.#control, Ctl.HEAD) >>> 0;
      if (this.#cursor === this.#head) return false;
    }
    return !this.#many || Atomics.load(this.#words, ((this.#cursor & this.#mask) >> 2) + 1) !== 0;
  }

  /**
   * Loads, and ignores, the first two cache lines of where the next record will be. A reader that
   * busy-polls an empty ring calls it between polls: each time the writer writes those lines, the
   * next call fetches them again, so that when `head` moves, the record is already on the reader's
   * core instead of being fetched then, one line after the other. On the benchmark VM, where a line
   * takes 0.2 µs or more to cross between cores, a 64 B round trip in `mode: 'latency'` took 0.4 µs
   * less (2.0 → 1.5 µs with the raw codec, 3.1 → 2.7 µs with msgpack; see docs/benchmarks.md).
   */
  prefetchNext(): void {
    const at = this.#cursor & this.#mask;
    // Atomics.load, not a plain read: the compiler may drop a plain load whose value is unused.
    Atomics.load(this.#words, at >> 2);
    Atomics.load(this.#words, ((at + 64) & this.#mask) >> 2);
  }

  /** Many producers: a record is claimed at the cursor but not committed (yet, or ever). */
  stalled(): boolean {
    return this.#many && !this.available() && this.#cursor !== this.#head;
  }

  /** Many producers: passes over `size` claimed bytes whose producer died before committing them. */
  skip(size: number): void {
    this.#cursor = (this.#cursor + size) >>> 0;
  }

  /**
   * Takes the next record (skipping PAD), or returns undefined if none is published. The record
   * object is reused by the next call: read its fields first. Throws a RangeError if the header is
   * impossible (the memory was scribbled on).
   */
  next(): RingRecord | undefined {
    for (;;) {
      if (!this.available()) return undefined;
      const offset = this.#cursor & this.#mask;
      const length = this.#words[offset >> 2]!;
      const kind = this.#words[(offset >> 2) + 1]!;
      const size = RECORD_HEADER + align8(length);
      const published = (this.#head - this.#cursor) >>> 0;
      if (length < 0 || size > this.capacity - offset || size > published || kind < 1 || kind > 5) {
        throw new RangeError(
          `corrupt ring record at ${offset}: kind ${kind}, length ${length}, ${published} bytes published`,
        );
      }
      const start = this.#cursor;
      this.#cursor = (this.#cursor + size) >>> 0;
      if (kind === RecordKind.PAD) continue;
      const rec = this.#record;
      rec.kind = kind;
      rec.offset = offset + RECORD_HEADER;
      rec.length = length;
      rec.end = this.#cursor;
      rec.start = start;
      return rec;
    }
  }

  /**
   * The next record's payload as a copy of its own, when that record is a whole message (DATA) of
   * at most `limit` bytes: a small message's whole read in one call, without the record object and
   * the checks of the general path. Anything else (nothing published, PAD, PIECE, GOODBYE, RESET, an
   * oversize or impossible header, a ring of many producers) is left for {@link RingReader.next}:
   * returns undefined and the cursor stays.
   */
  copyNextData(limit: number): Uint8Array | undefined {
    if (this.#many || !this.available()) return undefined;
    const offset = this.#cursor & this.#mask;
    const length = this.#words[offset >> 2]!;
    if (this.#words[(offset >> 2) + 1] !== RecordKind.DATA || length < 0 || length > limit) return undefined;
    const size = RECORD_HEADER + align8(length);
    if (size > this.capacity - offset || size > (this.#head - this.#cursor) >>> 0) return undefined;
    this.#cursor = (this.#cursor + size) >>> 0;
    const start = offset + RECORD_HEADER;
    return this.data.slice(start, start + length);
  }

  /** The position up to which everything read so far could be freed. */
  get cursor(): number {
    return this.#cursor;
  }

  /** Puts the cursor back to `start` (a record's start, not freed yet): that record is read again next. */
  rewind(start: number): void {
    this.#cursor = start;
  }

  /** Frees the ring up to `end` (a record's end or {@link RingReader.cursor}) for the writer. */
  free(end: number): void {
    if (end === this.#tail) return;
    if (this.#many) {
      // Zeroed before the tail moves: a producer claims only bytes behind the tail it read.
      const from = this.#tail & this.#mask;
      const bytes = (end - this.#tail) >>> 0;
      const first = Math.min(bytes, this.capacity - from);
      this.data.fill(0, from, from + first);
      if (first < bytes) this.data.fill(0, 0, bytes - first);
    }
    this.#tail = end;
    Atomics.store(this.#control, Ctl.TAIL, end | 0);
  }
}

/**
 * Writes as much of `payload` (from byte `offset`) as fits now. A message whose record fits in half
 * the ring goes whole, as one DATA record, or not at all; a larger one goes in PIECE records of at
 * least an eighth of the ring each (or its remainder), the last of them DATA. `continued`: the
 * payload is the rest of a message whose first pieces are in the ring already. Returns the new
 * offset (`payload.byteLength` once the whole message is written), or -1 if nothing fitted.
 * `lazy`: the records may stay unpublished (see {@link RingWriter.commit}).
 */
export function writeMessage(
  writer: RecordWriter,
  payload: Uint8Array,
  offset: number,
  continued = false,
  lazy = false,
): number {
  const total = payload.length;
  const maxPayload = maxRecordPayload(writer.capacity);
  if (offset === 0 && !continued && total <= maxPayload) {
    if (writer.reserve(total, total) < 0) return -1;
    writer.commit(RecordKind.DATA, payload, 0, total, lazy);
    return total;
  }
  const piece = Math.min(writer.capacity / 8, maxPayload);
  let at = offset;
  while (at < total) {
    const remaining = total - at;
    const n = writer.reserve(Math.min(remaining, maxPayload), Math.min(remaining, piece));
    if (n < 0) break;
    writer.commit(n === remaining ? RecordKind.DATA : RecordKind.PIECE, payload, at, n, lazy);
    at += n;
  }
  return at === offset ? -1 : at;
}
