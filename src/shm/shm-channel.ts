/**
 * ShmChannel: a duplex Channel whose bytes go through two single-producer single-consumer rings
 * (ring.ts) in one shared segment, one ring each way. No syscall per message: a writer copies into
 * the ring and publishes with one atomic store.
 *
 * Wake-ups follow the doorbell pattern: a reader that finds its ring empty re-polls once per event
 * loop turn for 5–250 µs (an adaptive spin that never blocks the loop), then sets READER_IDLE,
 * re-checks, and parks on its thread's doorbell, which the event loop watches. A writer rings only when it flips
 * READER_IDLE from 1 to 0, so a busy stream costs no syscalls. A writer that finds the ring full
 * sets WRITER_WAITING the same way and the reader rings it after freeing space. Both flags and the
 * ring indices are accessed with sequentially consistent Atomics, so "set flag, re-check" on one
 * side and "publish, check flag" on the other can never both miss.
 *
 * Peer death: each side records its pid in the segment and watches the other's with a pidfd; a
 * peer that exits without its GOODBYE record ends the channel with ERR_IPC_PEER_GONE once what it
 * published is received. Records are published only when complete, so nothing torn is delivered.
 * An anonymous segment (spawn's) is then unmapped without close(), once everything the peer sent
 * is out of the ring and no view into it is held (#releaseIfDone), as a pipe channel's fds are
 * closed at the end of its input.
 * A new process may take a dead end over (ShmChannel.open; shm-channel-layout.ts); the survivor
 * accepts it with reattach(), which hands its end to a new channel object in a new session. Each
 * session starts with a RESET record in both rings, and readers skip what came before theirs.
 *
 * `producers: 'many'`: ring 1 takes records from any number of producer processes (mp-ring.ts);
 * the creator only receives from it, the openers only send.
 *
 * Segment layout: a 4 KiB control page (magic, version, capacity, session, flags, one block per
 * side, two ring control blocks at byte 512, producer slots at byte 1024), then ring 0 (creator ->
 * opener) and ring 1 (opener -> creator).
 */
import { ChannelBase, type ChannelOptions, decodeView, type MessageView } from '../core/channel.js';
import { closedError, ErrorCodes, IpcError } from '../core/errors.js';
import { exitDeadline, flushAtExit, flushedBeforeExit } from '../core/exit-flush.js';
import { checkMaxMessageBytes } from '../core/framing.js';
import { choiceError } from '../core/options.js';
import { isAlive } from '../core/process-identity.js';
import { Queue } from '../core/queue.js';
import { ReadAhead } from '../core/read-ahead.js';
import { sleepSync } from '../core/sleep.js';
import { abortedError, armWait, checkWaitOptions, type WaitOptions } from '../core/wait.js';
import { native } from '../native/binding.js';
import { AdaptiveSpin } from './adaptive-spin.js';
import { type DoorbellAddress, ringDoorbell, type ThreadDoorbell, threadDoorbell } from './doorbell.js';
import { CONTENT_PLAIN } from './header.js';
import { createAnonymous, mapFd, unmapSegment } from './mapping.js';
import { MpRingWriter, ProducerSlots, SLOT_COUNT } from './mp-ring.js';
import { PieceAssembler } from './piece-assembler.js';
import { watchProcess } from './process-watch.js';
import {
  Ctl,
  checkRingCapacity,
  maxRecordPayload,
  RecordKind,
  type RecordWriter,
  RING_CONTROL_BYTES,
  RingReader,
  type RingRecord,
  RingWriter,
  ringViews,
  writeMessage,
} from './ring.js';
import { SharedMemory } from './shared-memory.js';
import {
  CONTROL_PAGE,
  checkLayout,
  claimOpenerSide,
  controlWords,
  Flag,
  initLayout,
  ringControlOffset,
  S,
  SIDE_BASE,
  SIDE_WORDS,
  State,
  shmChannelBytes,
  W,
} from './shm-channel-layout.js';
import { Spill } from './spill.js';

export { shmChannelBytes } from './shm-channel-layout.js';

/** Options for {@link ShmChannel.create}. */
export interface ShmChannelOptions<T = unknown> extends ChannelOptions<T> {
  /** Bytes of each ring (one per direction): a power of two from 4 KiB to 1 GiB. Default 1 MiB. */
  capacity?: number;
  /**
   * How readers wait, for both ends (the creator decides): `'default'` re-polls an empty ring every
   * event-loop turn for 5–250 µs, learnt from how long it stayed empty, then parks (no CPU while
   * idle); `'latency'` busy-polls up to 50 µs per turn and re-polls for 2 ms before parking: the
   * lowest round trip, at the cost of a busy core per reading end while messages come less than
   * 2 ms apart.
   * A number is taken as `permissions` (the option's meaning before modes existed).
   */
  mode?: ShmChannelMode | number;
  /** Permission bits of the segment. Default 0o600. */
  permissions?: number;
  /**
   * `'many'`: any number of processes (up to 96 at once) open the channel and send into one ring;
   * the creator only receives, each opener only sends, and a message must fit in one record (half
   * the ring). Default `'one'`: a duplex channel between two ends.
   */
  producers?: 'one' | 'many';
}

/**
 * A message received without copying: `bytes` stays valid (in the ring) until `release()`, which
 * gives the space back to the writer.
 */
export type ShmView = MessageView;

/** The segment bytes a channel lives in, and how to let go of them. */
interface SegmentHandle {
  buffer: ArrayBuffer;
  close(): void;
  /** Removes the segment's name (named segments created by this side). */
  unlink?(): void;
  /** True for a named segment, which a new process can open to take over a dead end. */
  named?: boolean;
}

/** Which end a channel object is, and in which session (see shm-channel-layout.ts). */
interface Attachment {
  side: 0 | 1;
  session: number;
  /** A new conversation on used rings: write a RESET first and skip the old one's records. */
  fresh: boolean;
  /** The peer's side must belong to at least this session to count as attached. */
  peerSession?: number;
  peerPid?: number;
  onGone?: () => void;
  /** `producers: 'many'`: this producer's slot. */
  slot?: number;
}

const DEFAULT_CAPACITY = 1 << 20;
/** Records delivered per event-loop turn before yielding to other work. */
const BATCH = 4096;
/** Bytes queued for a parked reader that make the writer ring at once rather than at the end of its turn. */
const RING_EARLY_BYTES = 16 * 1024;
/** `mode: 'latency'`: how long a reader keeps re-polling an empty ring, every event-loop turn, before parking. */
const LATENCY_SPIN_MS = 2;
/** `mode: 'latency'`: how long one event-loop turn may busy-poll an empty ring (50 µs). */
const LATENCY_SYNC_SPIN_MS = 0.05;

/** How readers wait for the next record: see {@link ShmChannelOptions.mode}. */
export type ShmChannelMode = 'default' | 'latency';

/** Checks `options.producers`; returns its flag. */
function producersFlag(producers: unknown): number {
  if (producers === undefined || producers === 'one') return 0;
  if (producers === 'many') return Flag.MANY_PRODUCERS;
  throw choiceError(producers, `options.producers must be 'one' or 'many', got ${String(producers)}`);
}

/** Checks `options.mode` (a number is permission bits, as in SharedMemory.create); returns the flags. */
function modeFlags(mode: unknown): number {
  if (mode === undefined || mode === 'default' || typeof mode === 'number') return 0;
  if (mode === 'latency') return Flag.LATENCY;
  throw choiceError(mode, `options.mode must be 'default' or 'latency', got ${String(mode)}`);
}

/**
 * A producer of a `producers: 'many'` channel sends only what fits in one record (pieces of
 * producers would interleave): its `maxMessageBytes` is capped at half the ring.
 */
function producerOptions<T>(
  buffer: ArrayBuffer,
  side: number,
  opts: ChannelOptions<T> | undefined,
): ChannelOptions<T> | undefined {
  const words = controlWords(buffer);
  if (side !== 1 || (words[W.FLAGS]! & Flag.MANY_PRODUCERS) === 0) return opts;
  const limit = maxRecordPayload(words[W.CAPACITY]!);
  const max = checkMaxMessageBytes(opts?.maxMessageBytes);
  return { ...opts, maxMessageBytes: Math.min(max, limit) };
}

interface Outgoing {
  /** A message (DATA), the session of a RESET, or undefined for the GOODBYE. */
  bytes: Uint8Array | undefined;
  offset: number;
  kind: number;
  /** `bytes` is the rest of a message whose first pieces are in the ring already. */
  continued?: boolean;
}

interface ReattachWaiter<T> {
  resolve(channel: ShmChannel<T>): void;
  reject(err: unknown): void;
  disarm(): void;
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
  readonly #opts: ChannelOptions<T> | undefined;
  readonly #side: 0 | 1;
  readonly #session: number;
  readonly #peerSession: number;
  readonly #latency: boolean;
  readonly #words: Int32Array;
  readonly #writer: RecordWriter;
  /** `producers: 'many'`: the producer slots (both ends), and this producer's slot (-1 for the reader). */
  readonly #slots: ProducerSlots | undefined;
  readonly #slot: number;
  /** `producers: 'many'`: producer pids the reader watches, to skip claims they leave uncommitted. */
  readonly #producerWatches = new Map<number, () => void>();
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
  /** reattach() moved the segment and this end to a new channel object: teardown lets go of nothing. */
  #handedOver = false;
  /**
   * The channel ended without close() and its segment was unmapped (#releaseIfDone): nothing may
   * touch the ring any more. The channel object lives on as an ended channel.
   */
  #released = false;
  /** Skipping the previous session's records until this session's RESET. */
  #skipping: boolean;

  readonly #pending = new Queue<Outgoing>();
  /** Memory for the rest of a message that did not all fit in the ring. */
  readonly #spill: Spill;
  #drainWaiters: Array<{ resolve(): void; reject(err: unknown): void }> = [];

  #inputPaused = false;
  /** The peer's GOODBYE was read: nothing more will arrive. */
  #inputDone = false;
  /** Why the peer ended without a goodbye (reported once its published records are received). */
  #peerEnded: string | undefined;
  /** ERR_IPC_PEER_GONE was reported: the reader stops (what follows belongs to a later session). */
  #peerReported = false;
  /** View mode: the peer's GOODBYE was found ahead of the records receiveView() has yet to take. */
  #goodbyeAhead = false;
  /** The reader stopped before a later session's RESET. */
  #replaced = false;
  /** A message arriving in pieces. */
  readonly #pieces: PieceAssembler;
  /** Whether the last message #assemble returned is a buffer of its own (not a view into the ring). */
  #owned = false;
  readonly #rawCodec: boolean;
  /**
   * The codec passes owned bytes through (the raw codec without a schema): a copy of a record's
   * bytes is the message (see #deliverPublished).
   */
  readonly #bytesAreMessages: boolean;
  #pumpScheduled: NodeJS.Immediate | undefined;
  #ringScheduled: NodeJS.Immediate | undefined;
  /** trySend left records unpublished: a microtask publishes them (see #publishLate). */
  #publishScheduled = false;
  /** A trySend went out since the last receive or publication: the next ones may wait (#schedulePublish). */
  #trySendRun = false;
  /** How long the reader re-polls an empty ring before it parks (the default mode's window). */
  readonly #readSpin = new AdaptiveSpin();
  /** How long the writer re-polls a full ring before it parks. */
  readonly #writeSpin = new AdaptiveSpin();
  #retryScheduled: NodeJS.Immediate | undefined;
  #pumping = false;
  /**
   * Messages receive() and tryReceive() took from the ring themselves (see pollInput) since the
   * pump last ran; at BATCH they leave the rest to the pump, one event-loop turn later.
   */
  #pulledSincePump = 0;

  #viewMode = false;
  /** Messages read ahead for receive() before the first receiveView(): it returns them first. */
  readonly #readAhead = new ReadAhead<T>();
  readonly #views: Array<{ end: number; released: boolean }> = [];
  readonly #viewWaiters = new Queue<ViewWaiter>();
  readonly #reattachWaiters = new Queue<ReattachWaiter<T>>();
  /** A producer of a `producers: 'many'` channel: it has nothing to read. */
  #sendOnly = false;

  private constructor(
    what: string,
    segment: SegmentHandle,
    attachment: Attachment,
    opts: ChannelOptions<T> | undefined,
  ) {
    super(what, producerOptions(segment.buffer, attachment.side, opts));
    this.#segment = segment;
    this.#opts = opts;
    this.#rawCodec = this.codec.name === 'raw';
    this.#bytesAreMessages = this.codec.passesOwnedThrough;
    this.#pieces = new PieceAssembler(this.maxMessageBytes);
    const { side, session } = attachment;
    this.#side = side;
    this.#session = session;
    this.#peerSession = attachment.peerSession ?? 0;
    this.#skipping = attachment.fresh;
    const buffer = segment.buffer;
    const capacity = checkLayout(buffer, what);
    this.#words = controlWords(buffer);
    this.#latency = (this.#words[W.FLAGS]! & Flag.LATENCY) !== 0;
    const outRing = side;
    const inRing = 1 - side;
    const outViews = ringViews(
      buffer,
      ringControlOffset(outRing),
      CONTROL_PAGE + outRing * capacity,
      capacity,
    );
    const inViews = ringViews(buffer, ringControlOffset(inRing), CONTROL_PAGE + inRing * capacity, capacity);
    const many = (this.#words[W.FLAGS]! & Flag.MANY_PRODUCERS) !== 0;
    this.#slots = many ? new ProducerSlots(this.#words) : undefined;
    this.#slot = attachment.slot ?? -1;
    this.#writer =
      many && side === 1 ? new MpRingWriter(outViews, this.#slots!, this.#slot) : new RingWriter(outViews);
    this.#reader = new RingReader(inViews, many && side === 0);
    // Memory for the rest of a message larger than the room in the ring, kept up to a ring's size.
    this.#spill = new Spill(capacity);
    this.#out = outViews.control;
    this.#in = inViews.control;
    this.#onGone = attachment.onGone;
    this.#bell = threadDoorbell();
    this.#unsubscribe = this.#bell.subscribe(() => this.#onBell());
    // An open channel keeps the process alive while its peer may still send, like a readable pipe.
    this.#bell.hold();
    this.#holding = true;
    if (attachment.fresh) {
      // The previous writer of our ring may have died between the pieces of a message: the RESET
      // tells the reader to drop it, and marks where this session's records begin.
      const mark = new Uint8Array(4);
      new DataView(mark.buffer).setUint32(0, session, true);
      this.#pending.push({ bytes: mark, offset: 0, kind: RecordKind.RESET });
      this.#flushPending();
    }
    if (many) {
      // One reader, many producers: the reader only receives, producers only send.
      this.#sendOnly = side === 1;
      this.oneWay(side === 0 ? 'send' : 'receive');
    }
    if (attachment.peerPid) this.#watchPeer(attachment.peerPid);
    this.#checkPeer();
    // Whatever the peer published before we attached; and tell it we are here.
    this.#schedulePump();
    this.#ringPeer();
  }

  /**
   * Creates the channel `name` (a shared-memory segment of that name, so it shares their
   * namespace) and takes its first end. The peer takes the other with {@link ShmChannel.open}.
   * Throws ERR_IPC_EXISTS if the name is taken, TypeError/RangeError for a bad `capacity` or `mode`.
   */
  static create<T = unknown>(name: string, opts?: ShmChannelOptions<T>): ShmChannel<T> {
    const capacity = opts?.capacity ?? DEFAULT_CAPACITY;
    checkRingCapacity(capacity);
    const flags = modeFlags(opts?.mode) | producersFlag(opts?.producers);
    const permissions = opts?.permissions ?? (typeof opts?.mode === 'number' ? opts.mode : 0o600);
    const what = `shm channel '${String(name)}'`;
    // The layout is written before the segment's header: an opener never sees a segment that is not
    // a ShmChannel yet (it got ERR_IPC_INCOMPATIBLE in that instant).
    const segment = SharedMemory.createInitialized(
      name,
      { size: shmChannelBytes(capacity), mode: permissions },
      (data) => initLayout(data, capacity, flags),
    );
    try {
      const handle: SegmentHandle = {
        buffer: segment.buffer,
        close: () => segment.close(),
        unlink: () => segment.unlink(),
        named: true,
      };
      return new ShmChannel<T>(what, handle, { side: 0, session: 0, fresh: false }, opts);
    } catch (err) {
      segment.unlink();
      segment.close();
      throw err;
    }
  }

  /**
   * Opens the other end of the channel `name`. If an end's process died (or let go of it without
   * closing the channel), this takes that end over: the previous conversation's records still in
   * the rings are dropped, and the survivor talks to this process once it calls
   * {@link ShmChannel.reattach}. Throws ERR_IPC_NOT_FOUND if the channel does not exist,
   * ERR_IPC_INCOMPATIBLE if it is not a ShmChannel, ERR_IPC_EXISTS if both ends are held by live
   * processes. Use the codec of the creating side.
   */
  static open<T = unknown>(name: string, opts?: ChannelOptions<T>): ShmChannel<T> {
    const what = `shm channel '${String(name)}'`;
    const segment = SharedMemory.open(name);
    try {
      checkLayout(segment.buffer, what);
      const handle: SegmentHandle = { buffer: segment.buffer, close: () => segment.close(), named: true };
      if (controlWords(segment.buffer)[W.FLAGS]! & Flag.MANY_PRODUCERS) {
        return new ShmChannel<T>(
          what,
          handle,
          { side: 1, session: 0, fresh: false, slot: registerProducer(segment.buffer, what) },
          opts,
        );
      }
      const claim = claimOpenerSide(segment.buffer, what);
      return new ShmChannel<T>(
        what,
        handle,
        { side: claim.side, session: claim.session, fresh: claim.takenOver },
        opts,
      );
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
    return new ShmChannel<T>(what, segment, { side: 0, session: 0, fresh: false, peerPid }, opts);
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
      const claim = claimOpenerSide(handle.buffer, what);
      return new ShmChannel<T>(
        what,
        handle,
        { side: claim.side, session: claim.session, fresh: claim.takenOver, onGone },
        opts,
      );
    } catch (err) {
      handle.close();
      throw err;
    }
  }

  /**
   * After the peer died (ERR_IPC_PEER_GONE) or closed its end: waits until a new process takes the
   * peer's end over with {@link ShmChannel.open}, then returns a channel to it, with this one's
   * options. This channel is then closed (without closing the segment, which the new one keeps).
   * Nothing of the old conversation crosses over: what the dead peer had not received is dropped.
   * Release views first: the new channel frees the ring under them.
   * Rejects with ERR_IPC_EXISTS while the peer is still attached, ERR_IPC_INCOMPATIBLE for a
   * channel no other process can open (spawn's), ERR_IPC_CLOSED once this channel is closed, and
   * ERR_IPC_TIMEOUT / ERR_IPC_ABORTED per `opts`.
   */
  reattach(opts?: WaitOptions): Promise<ShmChannel<T>> {
    try {
      checkWaitOptions(opts);
    } catch (err) {
      return Promise.reject(err);
    }
    if (this.#torn) return Promise.reject(closedError(this.what));
    if (!this.#segment.named || this.#slots) {
      return Promise.reject(
        new IpcError(
          ErrorCodes.INCOMPATIBLE,
          `${this.what}: only a named channel with one producer (ShmChannel.create/open) has an end to take over`,
        ),
      );
    }
    if (this.#peerEnded === undefined && !this.#inputDone) {
      return Promise.reject(
        new IpcError(
          ErrorCodes.EXISTS,
          `${this.what}: the peer is still attached; reattach() is for after it died or closed`,
        ),
      );
    }
    return new Promise<ShmChannel<T>>((resolve, reject) => {
      const waiter: ReattachWaiter<T> = { resolve, reject, disarm: noop };
      this.#reattachWaiters.push(waiter);
      // Waiting for a newcomer keeps the process alive, like any pending receive.
      this.#bell.hold();
      waiter.disarm = armWait(`${this.what}: reattach`, opts, (err) => {
        this.#reattachWaiters.remove(waiter);
        this.#bell.release();
        reject(err);
      });
      this.#tryReattach();
    });
  }

  /** Hands this end to a new channel object if a newcomer has taken the peer's side over. */
  #tryReattach(): void {
    if (this.#reattachWaiters.length === 0 || this.#torn) return;
    const peer = 1 - this.#side;
    const base = SIDE_BASE + peer * SIDE_WORDS;
    if (Atomics.load(this.#words, base + S.STATE) !== State.ATTACHED) return;
    const session = Atomics.load(this.#words, base + S.SESSION);
    if (session <= this.#session || session <= this.#peerSession) return;
    const waiter = this.#reattachWaiters.shift()!;
    waiter.disarm();
    this.#bell.release();
    // The new channel's writer starts at the published head: what trySend left unpublished goes
    // first, or the new writer would reuse its space and this one's teardown publish a stale head.
    this.#publishLate();
    let next: ShmChannel<T>;
    try {
      next = new ShmChannel<T>(
        this.what,
        this.#segment,
        { side: this.#side, session, fresh: true, peerSession: session },
        this.#opts,
      );
    } catch (err) {
      waiter.reject(err);
      return;
    }
    Atomics.store(this.#words, SIDE_BASE + this.#side * SIDE_WORDS + S.SESSION, session);
    this.#handedOver = true;
    this.destroy();
    waiter.resolve(next);
  }

  /**
   * The next message's encoded bytes, read in place: no copy while the message fits in one record
   * (half the ring); a larger one arrives in pieces and is assembled into a buffer of its own.
   * The writer cannot reuse the space until `release()`, so hold views briefly: a ring full of
   * unreleased views makes the peer's `send` wait. Once called, the channel stays in view mode and
   * every message not yet received comes here, in order: first those already read ahead for
   * `receive()` (encoded again, into bytes of their own), then the rest in place. `receive()` goes
   * on working, in order with this: it decodes a copy of the next view.
   * Once the peer closes (ERR_IPC_CLOSED) or is gone (ERR_IPC_PEER_GONE), sends fail at once;
   * this (and `receive()`) returns what the peer sent before, then fails the same way.
   */
  receiveView(opts?: WaitOptions): Promise<ShmView> {
    return this.#nextView(opts, 'receiveView');
  }

  /** receiveView(), for `operation` (receiveView, or receive in view mode): its errors name that. */
  #nextView(opts: WaitOptions | undefined, operation: string): Promise<ShmView> {
    try {
      checkWaitOptions(opts);
    } catch (err) {
      return Promise.reject(err);
    }
    // As receive(): a signal aborted before the call takes nothing, even a view that is there.
    if (opts?.signal?.aborted) return Promise.reject(abortedError(`${this.what}: ${operation}`, opts.signal));
    if (this.#torn) return Promise.reject(closedError(this.what));
    if (!this.#viewMode) {
      this.#viewMode = true;
      // What the channel read ahead for receive() before this first call comes here first, in
      // order, so that a reader that only takes views misses nothing sent before it started.
      this.#readAhead.fill(this.takeQueued());
    }
    // A receive() that waited from before view mode began comes first (the pump serves it).
    if (this.#viewWaiters.length === 0 && this.receiversWaiting === 0) {
      try {
        const view = this.#takeView();
        if (view) return Promise.resolve(view);
      } catch (err) {
        return Promise.reject(err);
      }
      // The ring may have just shown that the peer was replaced: sends learn it now too.
      this.#settleViewPeer();
      const ended = this.#viewEndError();
      if (ended) return Promise.reject(ended);
    }
    return new Promise<ShmView>((resolve, reject) => {
      const waiter: ViewWaiter = { resolve, reject, disarm: noop };
      this.#viewWaiters.push(waiter);
      waiter.disarm = armWait(`${this.what}: ${operation}`, opts, (err) => {
        this.#viewWaiters.remove(waiter);
        reject(err);
      });
      this.#schedulePump();
    });
  }

  /**
   * The next message. In view mode (after a first `receiveView()`) it takes the next view, decodes
   * a copy of its bytes and releases it, so `receive()`, `tryReceive()` and iteration go on in
   * order with `receiveView()` instead of waiting for messages that only views are given.
   */
  override receive(opts?: WaitOptions): Promise<T> {
    if (!this.#viewMode) return super.receive(opts);
    return (
      this.#readAhead.receive(opts) ??
      this.#nextView(opts, 'receive').then((view) => decodeView(this.codec, view))
    );
  }

  override tryReceive(): { message: T } | undefined {
    if (!this.#viewMode) return super.tryReceive();
    // A receiveView() or receive() waiting has the next message first.
    if (this.#viewWaiters.length > 0 || this.receiversWaiting > 0) return undefined;
    const early = this.#readAhead.take();
    if (early) return early;
    const view = this.#takeView();
    if (view) return { message: decodeView(this.codec, view) };
    this.#settleViewPeer();
    const ended = this.#viewEndError();
    if (ended) throw ended;
    return undefined;
  }

  // ---- ChannelBase transport hooks ------------------------------------------------------------

  protected override readonly copiesPayload = true;

  protected transmit(payload: Uint8Array, lazy = false): boolean {
    // What is not all in the ring now waits as a copy: the caller may reuse its buffer once send
    // resolves, and the payload may be the codec's scratch memory.
    let at = 0;
    if (this.#pending.length === 0) {
      at = writeMessage(this.#writer, payload, 0, false, lazy && this.#trySendRun);
      if (lazy) this.#trySendRun = true;
      if (at >= 0) {
        if (this.#writer.unpublished) this.#schedulePublish();
        else this.#notifyReader();
      }
      if (at === payload.length) return true;
      at = Math.max(at, 0);
    }
    const rest = this.#spill.copy(at === 0 ? payload : payload.subarray(at));
    this.#pending.push({ bytes: rest, offset: 0, kind: RecordKind.DATA, continued: at > 0 });
    if (this.#flushPending()) return true;
    flushAtExit(this.#drainAtExit);
    return false;
  }

  /**
   * The process is exiting (process.exit() runs no tick) with a message still going out in pieces,
   * larger than the ring's free space: the pieces go on as the reader makes room, while the peer is
   * there, up to the exit's deadline (2 s in all, shared with every channel; see exit-flush.ts).
   * Without it, `await send(big); process.exit(0)` lost the message its send had accepted.
   */
  readonly #drainAtExit = (): void => {
    if (this.#torn || this.#released) return;
    const deadline = exitDeadline();
    let lookedAtPeer = Date.now();
    while (!this.#flushPending()) {
      // Nothing runs the event loop now: wake the reader here, not in a setImmediate.
      if (Atomics.compareExchange(this.#out, Ctl.READER_IDLE, 1, 0) === 1) this.#ringPeer();
      const now = Date.now();
      if (now >= deadline || this.#peerEnded !== undefined) return;
      if (now - lookedAtPeer >= 10) {
        lookedAtPeer = now;
        if (!this.#peerMayRead()) return;
      }
      // A short pause: a small ring may need refilling hundreds of times for one large message.
      sleepSync(0.05);
    }
  };

  /** False once the peer let go of its side or its process is gone (a check for the exit drain). */
  #peerMayRead(): boolean {
    const base = SIDE_BASE + (1 - this.#side) * SIDE_WORDS;
    if (Atomics.load(this.#words, base + S.STATE) === State.DETACHED) return false;
    const pid = Atomics.load(this.#words, base + S.PID);
    return pid === 0 || pid === process.pid || isAlive({ pid, startTime: 0 });
  }

  protected pauseInput(): void {
    this.#inputPaused = true;
  }

  protected resumeInput(): void {
    this.#inputPaused = false;
    this.#schedulePump();
  }

  protected async endOutput(): Promise<void> {
    // Not reached in practice: the channel lets go of its segment only after its output ended.
    if (this.#released) return;
    if (this.#slots) {
      // One producer's goodbye must not end the reader, which others may still feed: none is sent.
      if (this.#flushPending()) return;
      await new Promise<void>((resolve, reject) => this.#drainWaiters.push({ resolve, reject }));
      return;
    }
    // GOODBYE goes after everything accepted; an empty record never needs more than the header.
    this.#pending.push({ bytes: undefined, offset: 0, kind: RecordKind.GOODBYE });
    if (this.#flushPending()) return;
    await new Promise<void>((resolve, reject) => this.#drainWaiters.push({ resolve, reject }));
  }

  protected teardown(): void {
    // Sent is sent: what trySend accepted goes out even if the channel is destroyed right after.
    this.#publishLate();
    this.#torn = true;
    this.#stopListening();
    for (const waiter of this.#reattachWaiters.drain()) {
      waiter.disarm();
      this.#bell.release();
      waiter.reject(closedError(this.what));
    }
    const err = closedError(this.what);
    for (const waiter of this.#viewWaiters.drain()) {
      waiter.disarm();
      waiter.reject(err);
    }
    for (const waiter of this.#drainWaiters.splice(0)) waiter.reject(err);
    this.#pending.drain();
    // reattach(): this end lives on in a new channel object, which owns the segment now. Released:
    // the segment is unmapped already.
    if (this.#handedOver || this.#released) return;
    if (this.#slots) {
      if (this.#slot >= 0) {
        // A producer leaves: its slot serves the next one; the reader and the others go on.
        this.#slots.release(this.#slot);
        // The ring a send scheduled for the parked reader was cancelled above: ring it now, or
        // the last messages would wait unseen until another producer rang or this process died.
        if (Atomics.compareExchange(this.#out, Ctl.READER_IDLE, 1, 0) === 1) this.#ringPeer();
        this.#segment.close();
        return;
      }
      // The reader leaves: producers learn it from its side's state, each on its doorbell.
      Atomics.store(this.#words, SIDE_BASE + S.STATE, State.DETACHED);
      for (const address of this.#slots.doorbells()) ringDoorbell(address);
      this.#segment.unlink?.();
      this.#segment.close();
      return;
    }
    this.#detach();
  }

  /**
   * Stops everything that could run for this channel later (doorbell, peer watches, scheduled
   * turns, the exit flush) and lets the process exit as far as this channel is concerned.
   */
  #stopListening(): void {
    flushedBeforeExit(this.#drainAtExit);
    this.#unsubscribe();
    this.#releaseHold();
    this.#unwatch?.();
    this.#unwatch = undefined;
    for (const unwatch of this.#producerWatches.values()) unwatch();
    this.#producerWatches.clear();
    if (this.#pumpScheduled) clearImmediate(this.#pumpScheduled);
    if (this.#ringScheduled) clearImmediate(this.#ringScheduled);
    if (this.#retryScheduled) clearImmediate(this.#retryScheduled);
    this.#pumpScheduled = undefined;
    this.#ringScheduled = undefined;
    this.#retryScheduled = undefined;
  }

  /** Marks this end detached, rings whoever holds the peer's side, and lets go of the segment. */
  #detach(): void {
    // Tell the peer this end is gone (after a GOODBYE, if close() wrote one, which it reads first).
    // The peer may be a newcomer we never talked to: ring whoever holds its side now.
    Atomics.store(this.#words, SIDE_BASE + this.#side * SIDE_WORDS + S.STATE, State.DETACHED);
    const peer = SIDE_BASE + (1 - this.#side) * SIDE_WORDS;
    if (Atomics.load(this.#words, peer + S.PID) !== 0) {
      ringDoorbell({ tid: this.#words[peer + S.TID]!, nonce: this.#words[peer + S.NONCE]! });
    }
    this.#segment.unlink?.();
    this.#segment.close();
  }

  /**
   * Unmaps the segment of a channel that ended without close(), as a pipe channel's fds are closed
   * once its input has ended: the peer said goodbye or is gone (and that was reported), everything
   * it published has been taken out of the ring (into the receive queue, or as views), and no view
   * into the ring is held (a view stays valid until its release(), so the last release() lets go).
   * The channel stays what it was, an ended one: what was received stays receivable, then
   * receive() and send() fail as before; close() and destroy() have nothing left to release.
   *
   * Only an anonymous segment (spawn's, and the child's inherited one): a named channel keeps its
   * segment for reattach() and for its name. Without this, a parent spawning short-lived children
   * kept each child's segment (2 MiB with the default rings) mapped until it closed the channel:
   * the thread doorbell's listener keeps the channel object, hence its mapping, alive.
   */
  #releaseIfDone(): void {
    if (this.#released || this.#torn || this.#handedOver || this.#segment.named || this.closed) return;
    if (!this.#inputDone && !this.#peerReported && !this.#goodbyeAhead) return;
    if (this.#views.length > 0) return;
    // View mode: the peer's GOODBYE, found ahead, may be all that is left. It is taken now, as the
    // next receiveView() would take it, so that a reader that stops at the last message lets go too.
    if (!this.#inputDone && this.#goodbyeAhead) this.#takeGoodbyeIfNext();
    if (!this.#inputDone && !this.#peerReported) return;
    if (this.#reader.available()) return;
    this.#released = true;
    // What trySend committed but did not publish has no reader any more.
    this.#publishScheduled = false;
    this.#trySendRun = false;
    latePublications.delete(this.#publishLate);
    this.#stopListening();
    this.#pending.drain();
    this.#pieces.reset();
    this.#detach();
  }

  /** Reads the next record if it is the peer's GOODBYE (the end of its input); leaves any other. */
  #takeGoodbyeIfNext(): void {
    const reader = this.#reader;
    const cursor = reader.cursor;
    let rec: RingRecord | undefined;
    try {
      rec = reader.next();
    } catch {
      // A corrupt record: receiveView() reports it (ERR_IPC_BAD_FRAME) when it gets there.
    }
    if (rec?.kind === RecordKind.GOODBYE && !this.#skipping) {
      this.#inputDone = true;
      this.#freeRead();
    } else reader.rewind(cursor);
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
      // The reader frees only what it can see: records trySend left unpublished must go out first.
      this.#publishLate();
      // Many producers do not re-poll: several of them spinning on one full ring would take the
      // cores its reader needs to empty it.
      if (!this.#slots && this.#writeSpin.polling()) {
        this.#retryNextTurn();
        return false;
      }
      // Full: announce that we wait, then look once more, so that a reader that freed space
      // between our attempt and the flag cannot be missed (it rings us only if it sees the flag).
      this.#writeSpin.park();
      Atomics.store(this.#out, Ctl.WRITER_WAITING, 1);
      flagged = true;
    }
    for (const waiter of this.#drainWaiters.splice(0)) waiter.resolve();
    flushedBeforeExit(this.#drainAtExit);
    return true;
  }

  /**
   * The ring is full and the writer re-polls it (see AdaptiveSpin): the pending messages are tried
   * again on the next turn, without the flag that makes the reader ring us.
   */
  #retryNextTurn(): void {
    this.#retryScheduled ??= setImmediate(() => {
      this.#retryScheduled = undefined;
      if (!this.#torn && !this.#released && this.#pending.length > 0 && this.#flushPending()) this.writable();
    });
  }

  /**
   * No room for the next record: false. A producer that lost its claim to another withdrew the
   * intent it had announced; a reader parked on that intent (the winner having died) looks again.
   */
  #noRoom(): false {
    if (this.#writer.lostRace && Atomics.compareExchange(this.#out, Ctl.READER_IDLE, 1, 0) === 1)
      this.#ringPeer();
    return false;
  }

  /** Puts as much of the first pending message (or the GOODBYE) in the ring as fits; true on progress. */
  #writeSome(head: Outgoing): boolean {
    if (head.kind !== RecordKind.DATA) {
      const length = head.bytes?.length ?? 0;
      if (this.#writer.reserve(length, length) < 0) return this.#noRoom();
      this.#writer.commit(head.kind, head.bytes, 0, length);
      this.#pending.shift();
    } else if (head.bytes) {
      const at = writeMessage(this.#writer, head.bytes, head.offset, head.continued);
      if (at < 0) return this.#noRoom();
      head.offset = at;
      if (at === head.bytes.length) {
        this.#pending.shift();
        this.#spill.release(head.bytes);
      }
    }
    this.#writeSpin.came();
    this.#notifyReader();
    return true;
  }

  /**
   * trySend's records (committed lazily, see RingWriter.commit) are published in a microtask: once
   * per synchronous run of trySend calls, or once per 8 KiB, instead of once per message. A process
   * that exits in that run (process.exit() runs no microtask) publishes them in its 'exit' event.
   *
   * Only the second trySend of a run and later ones wait: the first one after a receive (or a
   * publication) is published at once. A request whose reply is awaited next must not wait for a
   * microtask (scheduling one, and the delay, added 0.4 µs per side to a 4 µs round trip), and a
   * burst loses nothing by publishing its first message alone.
   */
  #schedulePublish(): void {
    if (this.#publishScheduled) return;
    this.#publishScheduled = true;
    queueMicrotask(this.#publishLate);
    publishAtExit(this.#publishLate);
  }

  /** Publishes what trySend committed lazily, if a publication is scheduled, and rings the reader. */
  readonly #publishLate = (): void => {
    this.#trySendRun = false;
    if (!this.#publishScheduled) return;
    this.#publishScheduled = false;
    latePublications.delete(this.#publishLate);
    if (!this.#torn && !this.#released && this.#writer.publish()) this.#notifyReader();
  };

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
      if (this.#torn || this.#released) return;
      if (Atomics.compareExchange(this.#out, Ctl.READER_IDLE, 1, 0) === 1) this.#ringPeer();
    });
  }

  // ---- reading ----------------------------------------------------------------------------------

  /**
   * receive() or tryReceive() found nothing queued: what the peer published is delivered now, in a
   * batch as the pump takes it (one release of ring space per batch), so a reader that keeps up
   * takes message after message without waiting for the pump's turn of the event loop, and
   * tryReceive() sees what has arrived (docs/benchmarks.md has the numbers). `mode: 'latency'` also
   * busy-polls an empty ring for receive() (see #spinSync): a reply that arrives within
   * microseconds costs no event-loop turn at all.
   */
  protected override pollInput(mayWait: boolean): void {
    // The reply awaited may answer a message trySend has not published yet.
    this.#publishLate();
    if (this.#pumping || this.#viewMode || this.#sendOnly || this.#torn || this.#released) return;
    if (this.#inputDone) return;
    if (this.#inputPaused || this.#peerReported || this.#peerEnded !== undefined) return;
    if (this.#pulledSincePump >= BATCH) {
      // A reader keeping up with a writer that keeps the ring full would never yield: the rest
      // comes with the pump, on the next turn of the event loop.
      this.#schedulePump();
      return;
    }
    // tryReceive() never waits: it takes what is there, without a spin.
    if (!this.#reader.available() && !(this.#latency && mayWait && this.#spinSync())) return;
    // Only delivery: the spin-or-park bookkeeping stays with the scheduled pump (or the doorbell).
    const delivered = this.#deliverPublished(false);
    if (delivered > 0) this.#pulledSincePump += delivered;
    if (delivered === BATCH || (delivered >= 0 && this.#peerEnded !== undefined)) this.#schedulePump();
  }

  #schedulePump(): void {
    if (this.#pumpScheduled || this.#torn || this.#released || this.#sendOnly) return;
    this.#pumpScheduled = setImmediate(() => {
      this.#pumpScheduled = undefined;
      this.#pump();
    });
  }

  /** Delivers published records; when the ring stays empty, spins a few turns, then parks. */
  #pump(): void {
    this.#pulledSincePump = 0;
    if (this.#torn || this.#released || this.#inputDone || this.#peerReported) return;
    if (this.#viewMode) {
      this.#serveViews();
      this.#settleViewPeer();
      return;
    }
    // A peer that ended without a goodbye: everything it published still counts, even past the
    // receive high-water mark, so that the error can be reported (and pending sends fail) now.
    const force = this.#peerEnded !== undefined;
    const delivered = this.#deliverPublished(force);
    if (delivered < 0) return;
    if (delivered === BATCH) {
      // Forced or not, a full batch may have more behind it (a goodbye, too): the peer's end is
      // reported once everything it published has been delivered.
      this.#schedulePump();
      return;
    }
    if (this.#peerEnded !== undefined) {
      this.#reportPeerEnded();
      return;
    }
    if (this.#inputPaused) {
      // Not idle: the reader is full. The spin learns nothing from this gap.
      this.#readSpin.forget();
      return;
    }
    this.#idleOrSpin(delivered > 0);
  }

  /**
   * Delivers up to BATCH published messages (past the receive high-water mark if `force`); the
   * count, or -1 when the channel ended or failed on the way.
   */
  #deliverPublished(force: boolean): number {
    // A codec or schema that calls receive() while decoding must not re-enter the ring reader.
    this.#pumping = true;
    try {
      const reader = this.#reader;
      const from = reader.cursor;
      let delivered = 0;
      while ((force || !this.#inputPaused) && delivered < BATCH) {
        if (this.#bytesAreMessages && !this.#skipping && !this.#pieces.collecting) {
          // The common case of the raw codec, a whole message, in one call: the general path's
          // record object, session and piece checks and #assemble took 16–20 % of the reader's
          // time per 64 B message (docs/benchmarks.md, 2026-11-29).
          const message = reader.copyNextData(this.maxMessageBytes);
          if (message) {
            delivered++;
            this.deliverDecoded(message as T);
            continue;
          }
        }
        let rec: RingRecord | undefined;
        try {
          rec = this.#next();
        } catch (err) {
          this.fail(new IpcError(ErrorCodes.BAD_FRAME, `${this.what}: ${(err as Error).message}`));
          return -1;
        }
        if (!rec) break;
        if (rec.kind === RecordKind.GOODBYE) {
          this.#inputDone = true;
          this.#freeRead();
          this.#peerSaidGoodbye();
          return -1;
        }
        if (this.#inPlace(rec)) {
          delivered++;
          this.deliverRange(this.#reader.data, rec.offset, rec.offset + rec.length);
        } else {
          const message = this.#assemble(rec, this.#rawCodec);
          if (message) {
            delivered++;
            if (message instanceof IpcError) this.deliverError(message);
            else if (this.#owned && this.#bytesAreMessages) this.deliverDecoded(message as T);
            else this.deliver(message, this.#owned);
          }
        }
        if (this.#torn) return -1;
      }
      // Records were read (pieces count): whoever asked (the pump, receive()'s poll), the wait is over.
      if (reader.cursor !== from) this.#readSpin.came();
      this.#freeRead();
      return delivered;
    } finally {
      this.#pumping = false;
    }
  }

  /** After a turn that found `gotData` or not: re-poll on a later turn, or park. */
  #idleOrSpin(gotData: boolean): void {
    if (!gotData && Atomics.load(this.#in, Ctl.READER_IDLE) === 1) {
      // Still parked (a writer clears the flag when it rings us): the wake-up was for something else
      // of this thread (its doorbell serves every channel and lock of the thread). Stay parked: a
      // spin here burnt 50 µs per parked latency-mode end on every unrelated wake-up.
      if (this.#reader.available()) {
        Atomics.store(this.#in, Ctl.READER_IDLE, 0);
        this.#schedulePump();
      }
      return;
    }
    if (!gotData && this.#latency && this.#spinSync()) {
      // Caught the next record without an event-loop turn in between: the lowest round trip.
      this.#pump();
      return;
    }
    if (gotData) {
      this.#schedulePump();
      return;
    }
    if (this.#readSpin.polling(this.#latency ? LATENCY_SPIN_MS : undefined)) {
      this.#schedulePump();
      return;
    }
    if (this.#skipDeadClaim()) return;
    // Park: announce idleness, then re-check so a record published in between is not slept through.
    this.#readSpin.park();
    Atomics.store(this.#in, Ctl.READER_IDLE, 1);
    if (this.#reader.available()) {
      Atomics.store(this.#in, Ctl.READER_IDLE, 0);
      this.#schedulePump();
    }
  }

  /**
   * The next record of this session: skips what a previous session left in the ring, drops a
   * message cut short by a RESET, and stops before the RESET of a later session (the peer was
   * replaced: what follows is for the channel that reattach() returns).
   */
  #next(): RingRecord | undefined {
    for (;;) {
      const rec = this.#reader.next();
      if (!rec) return undefined;
      if (rec.kind === RecordKind.RESET) {
        const session = this.#resetSession(rec);
        if (session > this.#session) {
          this.#reader.rewind(rec.start);
          this.#peerEnded ??= 'the peer was replaced by a new process that took over its end';
          this.#replaced = true;
          return undefined;
        }
        this.#pieces.reset();
        if (session === this.#session) this.#skipping = false;
        continue;
      }
      if (!this.#skipping) return rec;
    }
  }

  /** The session a RESET record starts. */
  #resetSession(rec: RingRecord): number {
    const data = this.#reader.data;
    return rec.length >= 4 ? new DataView(data.buffer).getUint32(data.byteOffset + rec.offset, true) : 0;
  }

  /**
   * `mode: 'latency'`: busy-polls the ring for up to LATENCY_SYNC_SPIN_MS, blocking the event loop
   * that long; true if a record came. Only after a turn that delivered nothing, so that the code a
   * delivery resolves (a reply to send) runs first.
   */
  #spinSync(): boolean {
    const until = performance.now() + LATENCY_SYNC_SPIN_MS;
    // The clock costs about 15 polls of the ring, so it is read once per 32: a record is seen
    // within a few nanoseconds of its publication, not after a clock read.
    for (let i = 1; ; i++) {
      if (this.#reader.available()) return true;
      this.#reader.prefetchNext();
      if ((i & 31) === 0 && performance.now() >= until) return false;
    }
  }

  /**
   * Many producers: when the next record stays uncommitted because its producer died between claim
   * and commit, skips the claimed bytes (and schedules reading on). True if it skipped.
   */
  #skipDeadClaim(): boolean {
    if (!this.#slots || !this.#reader.stalled()) return false;
    const size = this.#slots.deadClaimAt(this.#reader.cursor);
    if (size === 0) return false;
    if (size < 0) {
      this.fail(
        new IpcError(
          ErrorCodes.BAD_FRAME,
          `${this.what}: producers that died at the same position left claims of different sizes`,
        ),
      );
      return true;
    }
    this.#reader.skip(size);
    this.#freeRead();
    this.#schedulePump();
    return true;
  }

  /**
   * A whole message in one record, for a codec that decodes it where it lies (the raw codec takes
   * a copy instead, which is then the message itself).
   */
  #inPlace(rec: RingRecord): boolean {
    return (
      !this.#rawCodec &&
      rec.kind === RecordKind.DATA &&
      !this.#pieces.collecting &&
      rec.length <= this.maxMessageBytes
    );
  }

  /**
   * Turns a DATA/PIECE record into a message: returns the payload (a view into the ring, or a
   * buffer of its own: see #owned) when complete, undefined for a piece, an error for an oversize
   * one. `copy`: the caller wants a buffer of its own even for a message in one record.
   */
  #assemble(rec: RingRecord, copy: boolean): Uint8Array | IpcError | undefined {
    const data = this.#reader.data;
    const end = rec.offset + rec.length;
    if (rec.kind === RecordKind.PIECE) {
      this.#pieces.add(data, rec.offset, end);
      return undefined;
    }
    if (!this.#pieces.collecting) {
      if (rec.length > this.maxMessageBytes) return this.#tooLarge(rec.length);
      // The raw codec would copy a view anyway: one copy of our own spares it the view.
      this.#owned = copy;
      return copy ? data.slice(rec.offset, end) : data.subarray(rec.offset, end);
    }
    const message = this.#pieces.finish(data, rec.offset, end);
    if (typeof message === 'number') return this.#tooLarge(message);
    this.#owned = true;
    return message;
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
      if (this.#slots) {
        // Which producers wait is not recorded: ring them all, each re-checks for room.
        for (const address of this.#slots.doorbells()) ringDoorbell(address);
      } else this.#ringPeer();
    }
  }

  /** Many producers: watches every registered producer, to skip a claim one dies holding. */
  #watchProducers(): void {
    if (!this.#slots || this.#side !== 0) return;
    for (const pid of this.#slots.pids()) {
      if (pid === process.pid || this.#producerWatches.has(pid)) continue;
      this.#producerWatches.set(
        pid,
        watchProcess(pid, () => {
          this.#producerWatches.delete(pid);
          if (!this.#torn) this.#schedulePump();
        }),
      );
    }
  }

  // ---- zero-copy views ----------------------------------------------------------------------------

  /** The next complete message as a view, or undefined if none is published yet. */
  #takeView(): ShmView | undefined {
    if (this.#torn) throw closedError(this.what);
    const early = this.#readAhead.takeView(this.codec);
    if (early) return early;
    if (this.#released) return undefined;
    for (;;) {
      let rec: RingRecord | undefined;
      try {
        rec = this.#next();
      } catch (err) {
        const error = new IpcError(ErrorCodes.BAD_FRAME, `${this.what}: ${(err as Error).message}`);
        this.fail(error);
        throw error;
      }
      if (!rec) {
        this.#releaseIfDone();
        return undefined;
      }
      this.#readSpin.came();
      if (rec.kind === RecordKind.GOODBYE) {
        this.#inputDone = true;
        this.#freeRead();
        this.#peerSaidGoodbye();
        return undefined;
      }
      const message = this.#assemble(rec, false);
      if (!message) {
        this.#freeRead();
        continue;
      }
      if (message instanceof IpcError) {
        this.#freeRead();
        throw message;
      }
      if (this.#owned) {
        this.#freeRead();
        // A buffer of its own: the last message of a peer that is gone leaves nothing in the ring.
        this.#releaseIfDone();
        return { bytes: message, release: noop };
      }
      const entry = { end: rec.end, released: false };
      this.#views.push(entry);
      return {
        bytes: message,
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
    if (this.#torn || this.#released) return;
    if (this.#views.length === 0) {
      this.#freeRead();
      // The last view of an ended channel: the segment can go.
      this.#releaseIfDone();
    } else if (end !== undefined) {
      this.#reader.free(end);
      this.#notifyWriter();
    }
  }

  /** Hands published messages to waiting receiveView() calls; parks when there are none. */
  #serveViews(): void {
    let served = false;
    while (this.#viewWaiters.length > 0 || this.receiversWaiting > 0) {
      // receive() calls that were waiting when view mode began come first, as they asked first.
      const forReceive = this.receiversWaiting > 0;
      let view: ShmView | undefined;
      try {
        view = this.#takeView();
      } catch (err) {
        if (forReceive) {
          this.deliverError(err as IpcError);
          continue;
        }
        const waiter = this.#viewWaiters.shift()!;
        waiter.disarm();
        waiter.reject(err);
        continue;
      }
      if (!view) break;
      served = true;
      if (forReceive) {
        this.deliver(view.bytes);
        view.release();
        continue;
      }
      const waiter = this.#viewWaiters.shift()!;
      waiter.disarm();
      waiter.resolve(view);
    }
    // Nobody waits: the next receiveView() looks itself.
    if (this.#viewWaiters.length === 0 && this.receiversWaiting === 0) return;
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
    if (this.#peerEnded !== undefined && (this.#replaced || this.#released || !this.#reader.available())) {
      return new IpcError(ErrorCodes.PEER_GONE, `${this.what}: ${this.#peerEnded}`);
    }
    return undefined;
  }

  /**
   * View mode: the peer ended (it let go of its end, died or was replaced). Nothing reads the ring
   * until receiveView() is called, but the peer reads nothing more either: sends, receive() and
   * the process hold settle now, as the non-view path settles them once it has read up to the end:
   * ERR_IPC_CLOSED if the peer's GOODBYE is published, else ERR_IPC_PEER_GONE. receiveView() still
   * returns the messages before the end first (#viewEndError).
   */
  #settleViewPeer(): void {
    if (this.#peerEnded === undefined || this.#goodbyeAhead || this.#peerReported) return;
    if (this.#torn || this.#released || this.#inputDone) return;
    if (!this.#findGoodbye()) {
      this.#reportPeerEnded();
      return;
    }
    this.#goodbyeAhead = true;
    this.#peerSaidGoodbye();
  }

  /**
   * Whether the peer's GOODBYE is among the published records not read yet. Reads ahead and puts
   * the cursor back: once, when the peer ends in view mode, never per message.
   */
  #findGoodbye(): boolean {
    const reader = this.#reader;
    const cursor = reader.cursor;
    let skipping = this.#skipping;
    try {
      for (let rec = reader.next(); rec; rec = reader.next()) {
        if (rec.kind === RecordKind.GOODBYE && !skipping) return true;
        if (rec.kind !== RecordKind.RESET) continue;
        const session = this.#resetSession(rec);
        // What follows a later session's RESET is a newcomer's, not this peer's (see #next).
        if (session > this.#session) return false;
        if (session === this.#session) skipping = false;
      }
      return false;
    } catch {
      // A corrupt record: receiveView() reports it (ERR_IPC_BAD_FRAME) when it gets there.
      return false;
    } finally {
      reader.rewind(cursor);
    }
  }

  // ---- the peer -----------------------------------------------------------------------------------

  #onBell(): void {
    // A ring being dispatched may reach a channel that let go of its segment during the dispatch.
    if (this.#torn || this.#released) return;
    this.#tryReattach();
    if (this.#torn) return;
    this.#watchProducers();
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
    // After reattach(): the newcomer we were handed, or a later one that replaced it already.
    const session = Atomics.load(this.#words, base + S.SESSION);
    if (session < this.#peerSession) return;
    if (this.#peerSession > 0 && session > this.#peerSession) {
      this.#peerEnded ??= 'the peer was replaced by another process before it was reached';
      this.#schedulePump();
      return;
    }
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
      // Settle sends at once; receives get what the peer published first (the pump drains it, or in
      // view mode leaves it to receiveView(): #settleViewPeer).
      this.#pump();
    });
  }

  /**
   * The peer's GOODBYE was read (or, in view mode, found ahead): it sends and reads nothing more.
   * What waits for room in its ring never goes out, so a close() waiting to write ours ends too.
   */
  #peerSaidGoodbye(): void {
    this.#releaseHold();
    const err = new IpcError(ErrorCodes.CLOSED, `${this.what}: the peer closed the channel`);
    for (const waiter of this.#drainWaiters.splice(0)) waiter.reject(err);
    this.#pending.drain();
    this.peerClosed();
    this.#releaseIfDone();
  }

  #reportPeerEnded(): void {
    if (this.#peerReported) return;
    this.#peerReported = true;
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
    this.#releaseIfDone();
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
export function planChildShm(
  childFd: number,
  envName: string,
  opts?: { capacity?: number | undefined; mode?: ShmChannelMode | undefined },
): ChildShmPlan {
  const capacity = opts?.capacity ?? DEFAULT_CAPACITY;
  checkRingCapacity(capacity);
  const flags = modeFlags(opts?.mode);
  const segment = createAnonymous('shm channel segment', CONTENT_PLAIN, shmChannelBytes(capacity), (data) =>
    initLayout(data, capacity, flags),
  );
  const fd = segment.fd!;
  return {
    stdio: [fd],
    env: { [envName]: `shm:${childFd}` },
    attach: (what, opts, _extra, pid) => {
      // The child has its own copy of the fd now; the mapping is all this side needs. The addon
      // made the memfd, so the addon closes it (fs would warn in a worker thread).
      native().close(fd);
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

/** Takes a producer slot of a `producers: 'many'` channel, or throws ERR_IPC_EXISTS if all are taken. */
function registerProducer(buffer: ArrayBuffer, what: string): number {
  const words = controlWords(buffer);
  const tail = new Int32Array(buffer, ringControlOffset(1), RING_CONTROL_BYTES / 4);
  // A dead producer's intent matters until the reader has freed past it.
  const slot = new ProducerSlots(words).register(
    (position) => ((Atomics.load(tail, Ctl.TAIL) - position) | 0) > 0,
  );
  if (slot < 0) {
    throw new IpcError(
      ErrorCodes.EXISTS,
      `${what} has as many live producers as it can take (${SLOT_COUNT})`,
    );
  }
  return slot;
}

function noop(): void {}

/** Channels whose trySend records wait for a microtask: published at exit if it never runs. */
const latePublications = new Set<() => void>();
let exitHooked = false;

function publishAtExit(publish: () => void): void {
  if (!exitHooked) {
    exitHooked = true;
    process.on('exit', () => {
      for (const late of latePublications) late();
    });
  }
  latePublications.add(publish);
}
