/**
 * ShmChannel: a duplex Channel whose bytes go through two single-producer single-consumer rings
 * (ring.ts) in one shared segment, one ring each way. No syscall per message: a writer copies into
 * the ring and publishes with one atomic store.
 *
 * Wake-ups follow the doorbell pattern: a reader that finds its ring empty re-polls for a few event
 * loop turns (an adaptive spin that never blocks the loop), then sets READER_IDLE, re-checks, and
 * parks on its thread's doorbell, which the event loop watches. A writer rings only when it flips
 * READER_IDLE from 1 to 0, so a busy stream costs no syscalls. A writer that finds the ring full
 * sets WRITER_WAITING the same way and the reader rings it after freeing space. Both flags and the
 * ring indices are accessed with sequentially consistent Atomics, so "set flag, re-check" on one
 * side and "publish, check flag" on the other can never both miss.
 *
 * Peer death: each side records its pid in the segment and watches the other's with a pidfd; a
 * peer that exits without its GOODBYE record ends the channel with ERR_IPC_PEER_GONE once what it
 * published is received. Records are published only when complete, so nothing torn is delivered.
 *
 * Segment layout: a 4 KiB control page (magic, version, capacity, one block per side, two ring
 * control blocks), then ring 0 (creator -> opener) and ring 1 (opener -> creator).
 */
import { closeSync } from 'node:fs';
import { ChannelBase, type ChannelOptions } from '../core/channel.js';
import { closedError, ErrorCodes, IpcError } from '../core/errors.js';
import { Queue } from '../core/queue.js';
import { armWait, checkWaitOptions, type WaitOptions } from '../core/wait.js';
import { type DoorbellAddress, ringDoorbell, type ThreadDoorbell, threadDoorbell } from './doorbell.js';
import { CONTENT_PLAIN } from './header.js';
import { createAnonymous, mapFd, unmapSegment } from './mapping.js';
import { watchProcess } from './process-watch.js';
import {
  Ctl,
  checkRingCapacity,
  RecordKind,
  RING_CONTROL_BYTES,
  RingReader,
  type RingRecord,
  RingWriter,
  ringViews,
  writeMessage,
} from './ring.js';
import { SharedMemory } from './shared-memory.js';

/** Options for {@link ShmChannel.create}. */
export interface ShmChannelOptions<T = unknown> extends ChannelOptions<T> {
  /** Bytes of each ring (one per direction): a power of two from 4 KiB to 1 GiB. Default 1 MiB. */
  capacity?: number;
  /** Permission bits of the segment. Default 0o600. */
  mode?: number;
}

/** A message received without copying: `bytes` stays valid (in the ring) until `release()`. */
export interface ShmView {
  /** The encoded message (with `codecs.raw`, the message itself). */
  readonly bytes: Uint8Array;
  /** Gives the bytes back to the writer. Idempotent; `bytes` must not be used afterwards. */
  release(): void;
}

/** The segment bytes a channel lives in, and how to let go of them. */
interface SegmentHandle {
  buffer: ArrayBuffer;
  close(): void;
  /** Removes the segment's name (named segments created by this side). */
  unlink?(): void;
}

const MAGIC = 0x43484d53; // 'SMHC'
const VERSION = 1;
const CONTROL_PAGE = 4096;
const W = { MAGIC: 0, VERSION: 1, CAPACITY: 2 } as const;
/** Per-side words: side s starts at word SIDE_BASE + s * SIDE_WORDS. */
const SIDE_BASE = 8;
const SIDE_WORDS = 8;
const S = { STATE: 0, PID: 1, TID: 2, NONCE: 3 } as const;
const State = { FREE: 0, ATTACHED: 1, DETACHED: 2 } as const;
/** Byte offset of ring r's control block. */
const ringControlOffset = (r: number) => 512 + r * RING_CONTROL_BYTES;
const DEFAULT_CAPACITY = 1 << 20;
/** Records delivered per event-loop turn before yielding to other work. */
const BATCH = 4096;
/** Bytes queued for a parked reader that make the writer ring at once rather than at the end of its turn. */
const RING_EARLY_BYTES = 16 * 1024;
/** Bounds of the adaptive spin, in event-loop turns spent re-polling an empty ring before parking. */
const SPIN_MIN = 2;
const SPIN_MAX = 64;

/** The segment bytes a channel of ring capacity `capacity` needs. */
export function shmChannelBytes(capacity: number): number {
  return CONTROL_PAGE + 2 * capacity;
}

/** Lays a fresh channel out in `buffer` (zero-filled) and claims side 0 for this thread. */
function initLayout(buffer: ArrayBuffer, capacity: number): void {
  const words = new Int32Array(buffer, 0, CONTROL_PAGE / 4);
  words[W.VERSION] = VERSION;
  words[W.CAPACITY] = capacity;
  claimSide(words, 0);
  Atomics.store(words, W.MAGIC, MAGIC);
}

/** Records this thread's pid and doorbell in side `side`'s block; the pid is written last. */
function claimSide(words: Int32Array, side: number): void {
  const base = SIDE_BASE + side * SIDE_WORDS;
  const bell = threadDoorbell();
  words[base + S.TID] = bell.tid;
  words[base + S.NONCE] = bell.nonce;
  Atomics.store(words, base + S.PID, process.pid);
}

/** Checks the control page of a mapped channel; returns its ring capacity. */
function checkLayout(buffer: ArrayBuffer, what: string): number {
  if (buffer.byteLength < CONTROL_PAGE) {
    throw new IpcError(ErrorCodes.INCOMPATIBLE, `${what} is not a ShmChannel segment (too small)`);
  }
  const words = new Int32Array(buffer, 0, CONTROL_PAGE / 4);
  const magic = Atomics.load(words, W.MAGIC);
  const version = words[W.VERSION]!;
  const capacity = words[W.CAPACITY]!;
  if (magic !== MAGIC) throw new IpcError(ErrorCodes.INCOMPATIBLE, `${what} is not a ShmChannel segment`);
  if (version !== VERSION) {
    throw new IpcError(ErrorCodes.INCOMPATIBLE, `${what} has ShmChannel layout ${version}, not ${VERSION}`);
  }
  try {
    checkRingCapacity(capacity);
  } catch {
    throw new IpcError(ErrorCodes.INCOMPATIBLE, `${what} declares a bad ring capacity ${capacity}`);
  }
  if (buffer.byteLength !== shmChannelBytes(capacity)) {
    throw new IpcError(
      ErrorCodes.INCOMPATIBLE,
      `${what} is ${buffer.byteLength} bytes, not the ${shmChannelBytes(capacity)} its capacity needs`,
    );
  }
  return capacity;
}

interface Outgoing {
  bytes: Uint8Array | undefined;
  offset: number;
}

interface ViewWaiter {
  resolve(view: ShmView): void;
  reject(err: unknown): void;
  disarm(): void;
}

/**
 * A duplex channel over shared memory. Create it with {@link ShmChannel.create} in one process and
 * {@link ShmChannel.open} in another (or let `spawn(..., { channel: 'shm' })` do both).
 */
export class ShmChannel<T = unknown> extends ChannelBase<T> {
  readonly #segment: SegmentHandle;
  readonly #side: number;
  readonly #words: Int32Array;
  readonly #writer: RingWriter;
  readonly #reader: RingReader;
  readonly #out: Int32Array;
  readonly #in: Int32Array;
  readonly #bell: ThreadDoorbell;
  readonly #unsubscribe: () => void;
  readonly #onGone: (() => void) | undefined;
  #peerAddress: DoorbellAddress | undefined;
  #peerPid = 0;
  #unwatch: (() => void) | undefined;
  #holding = false;
  #torn = false;

  readonly #pending = new Queue<Outgoing>();
  #drainWaiters: Array<{ resolve(): void; reject(err: unknown): void }> = [];

  #inputPaused = false;
  /** The peer's GOODBYE was read: nothing more will arrive. */
  #inputDone = false;
  /** Why the peer ended without a goodbye (reported once its published records are received). */
  #peerEnded: string | undefined;
  #pieces: Uint8Array[] = [];
  #piecesBytes = 0;
  #pumpScheduled: NodeJS.Immediate | undefined;
  #ringScheduled: NodeJS.Immediate | undefined;
  #idleTurns = 0;
  #spinLimit = SPIN_MIN;

  #viewMode = false;
  readonly #views: Array<{ end: number; released: boolean }> = [];
  readonly #viewWaiters = new Queue<ViewWaiter>();

  private constructor(
    what: string,
    segment: SegmentHandle,
    side: 0 | 1,
    opts: ChannelOptions<T> | undefined,
    extra?: { peerPid?: number; onGone?: () => void },
  ) {
    super(what, opts);
    this.#segment = segment;
    this.#side = side;
    const buffer = segment.buffer;
    const capacity = checkLayout(buffer, what);
    this.#words = new Int32Array(buffer, 0, CONTROL_PAGE / 4);
    const outRing = side;
    const inRing = 1 - side;
    const outViews = ringViews(
      buffer,
      ringControlOffset(outRing),
      CONTROL_PAGE + outRing * capacity,
      capacity,
    );
    const inViews = ringViews(buffer, ringControlOffset(inRing), CONTROL_PAGE + inRing * capacity, capacity);
    this.#writer = new RingWriter(outViews);
    this.#reader = new RingReader(inViews);
    this.#out = outViews.control;
    this.#in = inViews.control;
    this.#onGone = extra?.onGone;
    this.#bell = threadDoorbell();
    this.#unsubscribe = this.#bell.subscribe(() => this.#onBell());
    // An open channel keeps the process alive while its peer may still send, like a readable pipe.
    this.#bell.hold();
    this.#holding = true;
    if (extra?.peerPid) this.#watchPeer(extra.peerPid);
    this.#checkPeer();
    // Whatever the peer published before we attached; and tell it we are here.
    this.#schedulePump();
    this.#ringPeer();
  }

  /**
   * Creates the channel `name` (a shared-memory segment of that name, so it shares their
   * namespace) and takes its first end. The peer takes the other with {@link ShmChannel.open}.
   * Throws ERR_IPC_EXISTS if the name is taken, RangeError for a bad `capacity`.
   */
  static create<T = unknown>(name: string, opts?: ShmChannelOptions<T>): ShmChannel<T> {
    const capacity = opts?.capacity ?? DEFAULT_CAPACITY;
    checkRingCapacity(capacity);
    const what = `shm channel '${String(name)}'`;
    const segment = SharedMemory.create(name, { size: shmChannelBytes(capacity), mode: opts?.mode ?? 0o600 });
    try {
      initLayout(segment.buffer, capacity);
      Atomics.store(new Int32Array(segment.buffer), SIDE_BASE + S.STATE, State.ATTACHED);
      return new ShmChannel<T>(what, segment, 0, opts);
    } catch (err) {
      segment.unlink();
      segment.close();
      throw err;
    }
  }

  /**
   * Opens the other end of the channel `name`. Throws ERR_IPC_NOT_FOUND if it does not exist,
   * ERR_IPC_INCOMPATIBLE if it is not a ShmChannel, ERR_IPC_EXISTS if its second end is taken.
   * Use the codec of the creating side.
   */
  static open<T = unknown>(name: string, opts?: ChannelOptions<T>): ShmChannel<T> {
    const what = `shm channel '${String(name)}'`;
    const segment = SharedMemory.open(name);
    try {
      checkLayout(segment.buffer, what);
      claimOpenerSide(segment.buffer, what);
      return new ShmChannel<T>(what, { buffer: segment.buffer, close: () => segment.close() }, 1, opts);
    } catch (err) {
      segment.close();
      throw err;
    }
  }

  /** @internal spawn(): the parent's end over an anonymous segment (see planChildShm). */
  static attachCreated<T>(
    what: string,
    segment: SegmentHandle,
    opts: ChannelOptions<T> | undefined,
    peerPid: number | undefined,
  ): ShmChannel<T> {
    return new ShmChannel<T>(what, segment, 0, opts, peerPid ? { peerPid } : undefined);
  }

  /** @internal parentChannel(): the child's end over the inherited segment fd. */
  static openInherited<T>(
    fd: number,
    opts: ChannelOptions<T> | undefined,
    onGone: () => void,
  ): ShmChannel<T> {
    const what = 'parent channel (shm)';
    const segment = mapFd(fd, what, CONTENT_PLAIN);
    const handle = { buffer: segment.data, close: () => unmapSegment(segment) };
    try {
      checkLayout(handle.buffer, what);
      claimOpenerSide(handle.buffer, what);
      return new ShmChannel<T>(what, handle, 1, opts, { onGone });
    } catch (err) {
      handle.close();
      throw err;
    }
  }

  /**
   * The next message's encoded bytes, read in place: no copy while the message fits in one record
   * (half the ring); a larger one arrives in pieces and is assembled into a buffer of its own.
   * The writer cannot reuse the space until `release()`, so hold views briefly: a ring full of
   * unreleased views makes the peer's `send` wait. Once called, the channel stays in view mode:
   * messages already queued for `receive()` are still returned by it, later ones only here.
   */
  receiveView(opts?: WaitOptions): Promise<ShmView> {
    try {
      checkWaitOptions(opts);
    } catch (err) {
      return Promise.reject(err);
    }
    if (this.#torn) return Promise.reject(closedError(this.what));
    this.#viewMode = true;
    if (this.#viewWaiters.length === 0) {
      try {
        const view = this.#takeView();
        if (view) return Promise.resolve(view);
      } catch (err) {
        return Promise.reject(err);
      }
      const ended = this.#viewEndError();
      if (ended) return Promise.reject(ended);
    }
    return new Promise<ShmView>((resolve, reject) => {
      const waiter: ViewWaiter = { resolve, reject, disarm: noop };
      this.#viewWaiters.push(waiter);
      waiter.disarm = armWait(`${this.what}: receiveView`, opts, (err) => {
        this.#viewWaiters.remove(waiter);
        reject(err);
      });
      this.#schedulePump();
    });
  }

  // ---- ChannelBase transport hooks ------------------------------------------------------------

  protected transmit(payload: Uint8Array): boolean {
    if (this.#pending.length === 0) {
      const at = writeMessage(this.#writer, payload, 0);
      if (at >= 0) this.#notifyReader();
      if (at === payload.byteLength) return true;
      // Accepted but not all in the ring: keep a copy (the caller may reuse its buffer).
      this.#pending.push({ bytes: payload.slice(), offset: Math.max(at, 0) });
    } else {
      this.#pending.push({ bytes: payload.slice(), offset: 0 });
    }
    return this.#flushPending();
  }

  protected pauseInput(): void {
    this.#inputPaused = true;
  }

  protected resumeInput(): void {
    this.#inputPaused = false;
    this.#schedulePump();
  }

  protected async endOutput(): Promise<void> {
    // GOODBYE goes after everything accepted; an empty record never needs more than the header.
    this.#pending.push({ bytes: undefined, offset: 0 });
    if (this.#flushPending()) return;
    await new Promise<void>((resolve, reject) => this.#drainWaiters.push({ resolve, reject }));
  }

  protected teardown(): void {
    this.#torn = true;
    this.#unsubscribe();
    this.#releaseHold();
    this.#unwatch?.();
    this.#unwatch = undefined;
    if (this.#pumpScheduled) clearImmediate(this.#pumpScheduled);
    if (this.#ringScheduled) clearImmediate(this.#ringScheduled);
    const err = closedError(this.what);
    for (const waiter of this.#viewWaiters.drain()) {
      waiter.disarm();
      waiter.reject(err);
    }
    for (const waiter of this.#drainWaiters.splice(0)) waiter.reject(err);
    this.#pending.drain();
    // Tell the peer this end is gone (after a GOODBYE, if close() wrote one, which it reads first).
    Atomics.store(this.#words, SIDE_BASE + this.#side * SIDE_WORDS + S.STATE, State.DETACHED);
    this.#ringPeer();
    this.#segment.unlink?.();
    this.#segment.close();
  }

  // ---- writing ----------------------------------------------------------------------------------

  /** Writes what is pending; true when all of it is in the ring. */
  #flushPending(): boolean {
    let flagged = false;
    for (;;) {
      const head = this.#pending.peek();
      if (!head) break;
      if (this.#writeSome(head)) {
        flagged = false;
        continue;
      }
      if (flagged) return false;
      // Full: announce that we wait, then look once more, so that a reader that freed space
      // between our attempt and the flag cannot be missed (it rings us only if it sees the flag).
      Atomics.store(this.#out, Ctl.WRITER_WAITING, 1);
      flagged = true;
    }
    for (const waiter of this.#drainWaiters.splice(0)) waiter.resolve();
    return true;
  }

  /** Puts as much of the first pending message (or the GOODBYE) in the ring as fits; true on progress. */
  #writeSome(head: Outgoing): boolean {
    if (head.bytes === undefined) {
      if (this.#writer.reserve(0, 0) < 0) return false;
      this.#writer.commit(RecordKind.GOODBYE, undefined, 0, 0);
      this.#pending.shift();
    } else {
      const at = writeMessage(this.#writer, head.bytes, head.offset);
      if (at < 0) return false;
      head.offset = at;
      if (at === head.bytes.byteLength) this.#pending.shift();
    }
    this.#notifyReader();
    return true;
  }

  /**
   * Rings the reader if it parked, flipping its idle flag so that one ring answers one park. The
   * ring waits for the end of this event-loop turn: a loop of `await send()` then publishes its
   * whole burst before the reader wakes, instead of waking it (one syscall each side) per message.
   */
  #notifyReader(): void {
    if (Atomics.load(this.#out, Ctl.READER_IDLE) !== 1) return;
    // Enough queued to be worth a wake-up now: the reader then drains in parallel with us, instead
    // of after a burst that may last until the ring is full.
    if (this.#writer.capacity - this.#writer.free() >= RING_EARLY_BYTES) {
      if (Atomics.compareExchange(this.#out, Ctl.READER_IDLE, 1, 0) === 1) this.#ringPeer();
      return;
    }
    if (this.#ringScheduled) return;
    this.#ringScheduled = setImmediate(() => {
      this.#ringScheduled = undefined;
      if (this.#torn) return;
      if (Atomics.compareExchange(this.#out, Ctl.READER_IDLE, 1, 0) === 1) this.#ringPeer();
    });
  }

  // ---- reading ----------------------------------------------------------------------------------

  #schedulePump(): void {
    if (this.#pumpScheduled || this.#torn) return;
    this.#pumpScheduled = setImmediate(() => {
      this.#pumpScheduled = undefined;
      this.#pump();
    });
  }

  /** Delivers published records; when the ring stays empty, spins a few turns, then parks. */
  #pump(): void {
    if (this.#torn || this.#inputDone) return;
    if (this.#viewMode) {
      this.#serveViews();
      return;
    }
    // A peer that ended without a goodbye: everything it published still counts, even past the
    // receive high-water mark, so that the error can be reported (and pending sends fail) now.
    const force = this.#peerEnded !== undefined;
    let delivered = 0;
    while ((force || !this.#inputPaused) && delivered < BATCH) {
      let rec: RingRecord | undefined;
      try {
        rec = this.#reader.next();
      } catch (err) {
        this.fail(new IpcError(ErrorCodes.BAD_FRAME, `${this.what}: ${(err as Error).message}`));
        return;
      }
      if (!rec) break;
      if (rec.kind === RecordKind.GOODBYE) {
        this.#inputDone = true;
        this.#freeRead();
        this.#releaseHold();
        this.peerClosed();
        return;
      }
      const message = this.#assemble(rec);
      if (message) {
        delivered++;
        if (message instanceof IpcError) this.deliverError(message);
        else this.deliver(message.bytes, message.owned);
      }
      if (this.#torn) return;
    }
    this.#freeRead();
    if (delivered === BATCH && !force) {
      this.#schedulePump();
      return;
    }
    if (this.#peerEnded !== undefined) {
      this.#reportPeerEnded();
      return;
    }
    if (this.#inputPaused) return;
    this.#idleOrSpin(delivered > 0);
  }

  /** After a turn that found `gotData` or not: re-poll on a later turn, or park. */
  #idleOrSpin(gotData: boolean): void {
    if (gotData) {
      // Data came while we were re-polling: polling pays off for this stream, poll longer.
      if (this.#idleTurns > 0) this.#spinLimit = Math.min(SPIN_MAX, this.#spinLimit * 2);
      this.#idleTurns = 0;
      this.#schedulePump();
      return;
    }
    if (++this.#idleTurns <= this.#spinLimit) {
      this.#schedulePump();
      return;
    }
    // Park: announce idleness, then re-check so a record published in between is not slept through.
    this.#spinLimit = Math.max(SPIN_MIN, this.#spinLimit >> 1);
    this.#idleTurns = 0;
    Atomics.store(this.#in, Ctl.READER_IDLE, 1);
    if (this.#reader.available()) {
      Atomics.store(this.#in, Ctl.READER_IDLE, 0);
      this.#schedulePump();
    }
  }

  /**
   * Turns a DATA/PIECE record into a message: returns the payload (a view into the ring, or an
   * assembled buffer of its own) when complete, undefined for a piece, an error for an oversize one.
   */
  #assemble(rec: RingRecord): { bytes: Uint8Array; owned: boolean } | IpcError | undefined {
    const data = this.#reader.data;
    if (rec.kind === RecordKind.PIECE) {
      this.#piecesBytes += rec.length;
      if (this.#piecesBytes <= this.maxMessageBytes)
        this.#pieces.push(data.slice(rec.offset, rec.offset + rec.length));
      return undefined;
    }
    if (this.#pieces.length === 0 && this.#piecesBytes === 0) {
      if (rec.length > this.maxMessageBytes) return this.#tooLarge(rec.length);
      return { bytes: data.subarray(rec.offset, rec.offset + rec.length), owned: false };
    }
    const total = this.#piecesBytes + rec.length;
    const pieces = this.#pieces;
    this.#pieces = [];
    this.#piecesBytes = 0;
    if (total > this.maxMessageBytes) return this.#tooLarge(total);
    const bytes = new Uint8Array(total);
    let at = 0;
    for (const piece of pieces) {
      bytes.set(piece, at);
      at += piece.byteLength;
    }
    bytes.set(data.subarray(rec.offset, rec.offset + rec.length), at);
    return { bytes, owned: true };
  }

  #tooLarge(bytes: number): IpcError {
    return new IpcError(
      ErrorCodes.FRAME_TOO_LARGE,
      `${this.what}: a ${bytes}-byte message exceeds maxMessageBytes (${this.maxMessageBytes}); it was skipped`,
    );
  }

  /** Frees everything read (no views held) and wakes a writer waiting for space. */
  #freeRead(): void {
    if (this.#views.length > 0) return;
    this.#reader.free(this.#reader.cursor);
    this.#notifyWriter();
  }

  #notifyWriter(): void {
    if (
      Atomics.load(this.#in, Ctl.WRITER_WAITING) === 1 &&
      Atomics.compareExchange(this.#in, Ctl.WRITER_WAITING, 1, 0) === 1
    ) {
      this.#ringPeer();
    }
  }

  // ---- zero-copy views ----------------------------------------------------------------------------

  /** The next complete message as a view, or undefined if none is published yet. */
  #takeView(): ShmView | undefined {
    if (this.#torn) throw closedError(this.what);
    for (;;) {
      let rec: RingRecord | undefined;
      try {
        rec = this.#reader.next();
      } catch (err) {
        const error = new IpcError(ErrorCodes.BAD_FRAME, `${this.what}: ${(err as Error).message}`);
        this.fail(error);
        throw error;
      }
      if (!rec) return undefined;
      if (rec.kind === RecordKind.GOODBYE) {
        this.#inputDone = true;
        this.#freeRead();
        this.#releaseHold();
        this.peerClosed();
        return undefined;
      }
      const message = this.#assemble(rec);
      if (!message) {
        this.#freeRead();
        continue;
      }
      if (message instanceof IpcError) {
        this.#freeRead();
        throw message;
      }
      if (message.owned) {
        this.#freeRead();
        return { bytes: message.bytes, release: noop };
      }
      const entry = { end: rec.end, released: false };
      this.#views.push(entry);
      return {
        bytes: message.bytes,
        release: () => {
          if (entry.released) return;
          entry.released = true;
          this.#advanceViews();
        },
      };
    }
  }

  /** Frees the ring up to the oldest view still held. */
  #advanceViews(): void {
    let end: number | undefined;
    while (this.#views.length > 0 && this.#views[0]!.released) end = this.#views.shift()!.end;
    if (this.#torn) return;
    if (this.#views.length === 0) this.#freeRead();
    else if (end !== undefined) {
      this.#reader.free(end);
      this.#notifyWriter();
    }
  }

  /** Hands published messages to waiting receiveView() calls; parks when there are none. */
  #serveViews(): void {
    let served = false;
    while (this.#viewWaiters.length > 0) {
      let view: ShmView | undefined;
      try {
        view = this.#takeView();
      } catch (err) {
        const waiter = this.#viewWaiters.shift()!;
        waiter.disarm();
        waiter.reject(err);
        continue;
      }
      if (!view) break;
      served = true;
      const waiter = this.#viewWaiters.shift()!;
      waiter.disarm();
      waiter.resolve(view);
    }
    if (this.#viewWaiters.length === 0) return; // nobody waits: the next receiveView() looks itself
    const ended = this.#viewEndError();
    if (ended) {
      for (const waiter of this.#viewWaiters.drain()) {
        waiter.disarm();
        waiter.reject(ended);
      }
      return;
    }
    this.#idleOrSpin(served);
  }

  /** Why no further view can come, if none can. */
  #viewEndError(): IpcError | undefined {
    if (this.#inputDone) return new IpcError(ErrorCodes.CLOSED, `${this.what}: the peer closed the channel`);
    if (this.#peerEnded !== undefined && !this.#reader.available()) {
      return new IpcError(ErrorCodes.PEER_GONE, `${this.what}: ${this.#peerEnded}`);
    }
    return undefined;
  }

  // ---- the peer -----------------------------------------------------------------------------------

  #onBell(): void {
    if (this.#torn) return;
    this.#checkPeer();
    if (this.#pending.length > 0) {
      if (this.#flushPending()) this.writable();
    }
    if (this.#peerEnded === undefined && !this.#inputDone) {
      const peerState = Atomics.load(this.#words, SIDE_BASE + (1 - this.#side) * SIDE_WORDS + S.STATE);
      if (peerState === State.DETACHED) {
        this.#peerEnded = 'the peer let go of the channel without closing it';
      }
    }
    // The bell may have been for the writer side only: reading costs one atomic load if so.
    if (this.#pumpScheduled === undefined) this.#pump();
  }

  /** Learns the peer's pid and doorbell once it has attached. */
  #checkPeer(): void {
    if (this.#peerAddress) return;
    const base = SIDE_BASE + (1 - this.#side) * SIDE_WORDS;
    const pid = Atomics.load(this.#words, base + S.PID);
    if (pid === 0) return;
    this.#peerAddress = { tid: this.#words[base + S.TID]!, nonce: this.#words[base + S.NONCE]! };
    if (this.#peerPid === 0) this.#watchPeer(pid);
  }

  #watchPeer(pid: number): void {
    this.#peerPid = pid;
    // The peer being this very process (both ends here) is legal; its death is then ours.
    if (pid === process.pid) return;
    this.#unwatch = watchProcess(pid, () => {
      this.#unwatch = undefined;
      if (this.#torn || this.#inputDone) return;
      this.#peerEnded ??= `the peer process (pid ${pid}) exited without closing the channel`;
      // Settle sends at once; receives get what the peer published first (the pump drains it).
      if (this.#viewMode) this.#reportPeerEnded();
      this.#pump();
    });
  }

  #reportPeerEnded(): void {
    const detail = this.#peerEnded!;
    this.#releaseHold();
    for (const waiter of this.#drainWaiters.splice(0)) {
      waiter.reject(new IpcError(ErrorCodes.PEER_GONE, `${this.what}: ${detail}`));
    }
    this.#pending.drain();
    if (this.#viewMode) {
      const ended = this.#viewEndError();
      if (ended) {
        for (const waiter of this.#viewWaiters.drain()) {
          waiter.disarm();
          waiter.reject(ended);
        }
      }
    }
    this.peerGone(detail);
  }

  protected override peerGone(detail: string, cause?: unknown): void {
    super.peerGone(detail, cause);
    this.#onGone?.();
  }

  #ringPeer(): void {
    this.#checkPeer();
    if (this.#peerAddress && !ringDoorbell(this.#peerAddress)) {
      // Nobody owns the peer's doorbell any more: its thread or process is gone.
      if (this.#peerEnded === undefined && !this.#inputDone && !this.#torn) {
        this.#peerEnded = 'the peer is gone (its doorbell no longer exists)';
        this.#schedulePump();
      }
    }
  }

  #releaseHold(): void {
    if (!this.#holding) return;
    this.#holding = false;
    this.#bell.release();
  }
}

/** Claims side 1 of a laid-out channel for this thread, or throws ERR_IPC_EXISTS. */
function claimOpenerSide(buffer: ArrayBuffer, what: string): void {
  const words = new Int32Array(buffer, 0, CONTROL_PAGE / 4);
  const base = SIDE_BASE + SIDE_WORDS;
  if (Atomics.compareExchange(words, base + S.STATE, State.FREE, State.ATTACHED) !== State.FREE) {
    throw new IpcError(ErrorCodes.EXISTS, `${what} already has its second end open`);
  }
  claimSide(words, 1);
}

/** What spawn needs for a shm channel to a child (see src/process/channel-plan.ts). */
export interface ChildShmPlan {
  stdio: [number];
  env: Record<string, string>;
  attach<T>(
    what: string,
    opts: ChannelOptions<T> | undefined,
    extra: readonly unknown[],
    pid?: number,
  ): ShmChannel<T>;
  abort(): void;
}

/**
 * Prepares a shm channel to a child: an anonymous (memfd) segment laid out and claimed by this
 * side before the fork, handed to the child as fd `childFd`; `env` says where it is.
 */
export function planChildShm(childFd: number, envName: string, capacity = DEFAULT_CAPACITY): ChildShmPlan {
  checkRingCapacity(capacity);
  const segment = createAnonymous('shm channel segment', CONTENT_PLAIN, shmChannelBytes(capacity), (data) =>
    initLayout(data, capacity),
  );
  Atomics.store(new Int32Array(segment.data), SIDE_BASE + S.STATE, State.ATTACHED);
  const fd = segment.fd!;
  return {
    stdio: [fd],
    env: { [envName]: `shm:${childFd}` },
    attach: (what, opts, _extra, pid) => {
      // The child has its own copy of the fd now; the mapping is all this side needs.
      closeSync(fd);
      segment.fd = undefined;
      try {
        return ShmChannel.attachCreated(
          what,
          { buffer: segment.data, close: () => unmapSegment(segment) },
          opts,
          pid,
        );
      } catch (err) {
        unmapSegment(segment);
        throw err;
      }
    },
    abort: () => unmapSegment(segment),
  };
}

function noop(): void {}
