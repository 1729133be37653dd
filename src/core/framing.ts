/**
 * The one framing every stream transport shares: a 4-byte big-endian header, then the payload.
 * Header bit 31 marks a control frame whose low bits are a small code (GOODBYE, …); any other
 * value is a payload length, checked against `maxMessageBytes` before a byte is allocated for it.
 * Connection-oriented streams start with a hello: magic, protocol version and codec name.
 */
import { ErrorCodes, IpcError } from './errors.js';
import { numberError } from './options.js';

/** Bytes in a frame header. */
export const FRAME_HEADER_BYTES = 4;
/** Default bound on one message's encoded size: 64 MiB. */
export const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024;
/** The largest `maxMessageBytes` the header can express (bit 31 is the control flag). */
export const MAX_FRAME_PAYLOAD = 0x7fff_ffff;

const CONTROL_FLAG = 0x8000_0000;
const MAX_CONTROL_CODE = 0xff;

/** Control frame codes. */
export const Control = {
  /** The sender closed its end on purpose: the receiver ends cleanly instead of reporting a dead peer. */
  GOODBYE: 1,
  /**
   * "Still here": a heartbeat with no content. Every stream ignores it; transports that watch for
   * a frozen peer (sockets) send it on a timer and count any incoming byte as a sign of life.
   */
  PING: 2,
} as const;

/** Checks a `maxMessageBytes` option, returning the default when absent. */
export function checkMaxMessageBytes(value: number | undefined): number {
  if (value === undefined) return DEFAULT_MAX_MESSAGE_BYTES;
  if (!Number.isInteger(value) || value < 1 || value > MAX_FRAME_PAYLOAD) {
    throw numberError(
      value,
      `options.maxMessageBytes must be an integer in 1..${MAX_FRAME_PAYLOAD}, got ${String(value)}`,
    );
  }
  return value;
}

/** The error for a message larger than the bound, raised before anything is allocated for it. */
export function frameTooLarge(what: string, bytes: number, max: number, limit = 'maxMessageBytes'): IpcError {
  return new IpcError(
    ErrorCodes.FRAME_TOO_LARGE,
    `${what}: message of ${bytes} bytes exceeds ${limit} (${max})`,
  );
}

const EMPTY = Buffer.alloc(0);
/** Batches up to this size are copied out on take, and their buffer is kept for the next batch. */
const SMALL_BATCH_BYTES = 4096;
/** The first allocation of a batch: enough for a handshake or a few small messages. */
const FIRST_BATCH_BYTES = 256;
/**
 * Written batches' memory kept for reuse, at most this many and this many bytes in all (larger
 * batches, of huge messages, are left to the GC). Under a flood over a socket, one or two batches
 * are in the kernel's hands while the next fills, and the stream signals 'drain' (so the next batch
 * starts) before it hands back the written one: with a single spare, a third of the batches were
 * fresh allocations.
 */
const MAX_SPARES = 3;
const MAX_SPARE_BYTES = 2 * 1024 * 1024;
/**
 * Small batches in a row after which traffic counts as small again and the spares are let go (an
 * idle connection holds no more than its batch buffer). Not after one: a flood that waits for
 * 'drain' sends the message that waited alone, as a small batch, before the big ones resume.
 */
const SMALL_TAKES_TO_SHRINK = 4;

/**
 * Collects frames into one buffer so a tick's worth of messages leaves in one write syscall.
 * The caller takes the bytes with {@link FrameBatch.take} and hands them to the transport.
 */
export class FrameBatch {
  // Allocated on the first add, not up front, and small until traffic needs more: an idle
  // connection (a server may hold thousands) costs FIRST_BATCH_BYTES of batch memory.
  #buffer: Buffer = EMPTY;
  #length = 0;
  #count = 0;
  /** Size of the next allocation: what the last large batch reached. */
  #nextBytes: number;
  /** Memory of large batches handed out by take() and not yet given back with release(). */
  readonly #lent = new WeakSet<ArrayBufferLike>();
  /** Written large batches' memory, reused by the next large batches instead of fresh allocations. */
  readonly #spares: Buffer[] = [];
  #smallTakes = 0;

  constructor(initialBytes = FIRST_BATCH_BYTES) {
    this.#nextBytes = initialBytes;
  }

  /** Bytes waiting to be taken. */
  get byteLength(): number {
    return this.#length;
  }

  /** Frames waiting to be taken. */
  get count(): number {
    return this.#count;
  }

  /** Appends one data frame. */
  add(payload: Uint8Array): void {
    const offset = this.#reserve(FRAME_HEADER_BYTES + payload.length);
    this.#buffer.writeUInt32BE(payload.length, offset);
    this.#buffer.set(payload, offset + FRAME_HEADER_BYTES);
  }

  /** Appends one data frame whose payload is `head` followed by `body` (an envelope and a message). */
  addParts(head: Uint8Array, body: Uint8Array): void {
    const offset = this.#reserve(FRAME_HEADER_BYTES + head.length + body.length);
    this.#buffer.writeUInt32BE(head.length + body.length, offset);
    this.#buffer.set(head, offset + FRAME_HEADER_BYTES);
    this.#buffer.set(body, offset + FRAME_HEADER_BYTES + head.length);
  }

  /** Appends one control frame. */
  addControl(code: number): void {
    const offset = this.#reserve(FRAME_HEADER_BYTES);
    this.#buffer.writeUInt32BE((CONTROL_FLAG | code) >>> 0, offset);
  }

  /** Returns the collected bytes (owned by the caller from now on) and starts a fresh batch. */
  take(): Buffer {
    const length = this.#length;
    this.#length = 0;
    this.#count = 0;
    if (length <= SMALL_BATCH_BYTES) {
      // A request or a few messages: copying them into a slice of Node's buffer pool is cheaper
      // than a fresh allocation per flush, and this buffer is kept for the next batch.
      const bytes = Buffer.allocUnsafe(length);
      this.#buffer.copy(bytes, 0, 0, length);
      this.#tookSmall();
      return bytes;
    }
    // The transport keeps `bytes` until written, so the next batch needs its own memory. Size it
    // at what this batch reached, rounded up to a power of two so that batches of steady traffic
    // (which vary by a message or so) all fit in one another's memory, allocated on the next add.
    const bytes = this.#buffer.subarray(0, length);
    this.#smallTakes = 0;
    this.#nextBytes = 2 ** Math.ceil(Math.log2(Math.max(64 * 1024, Math.min(length, 1 << 20))));
    this.#lent.add(this.#buffer.buffer);
    this.#buffer = EMPTY;
    return bytes;
  }

  /**
   * Like {@link FrameBatch.take}, but a small batch comes as a view of the batch's own memory, not
   * a copy: for a transport with nothing queued, whose write usually completes at once and leaves
   * the memory free for the next batch. If the transport keeps the bytes after all, say so with
   * {@link FrameBatch.kept} before the next add.
   */
  takeView(): Buffer {
    const length = this.#length;
    if (length > SMALL_BATCH_BYTES) return this.take();
    this.#length = 0;
    this.#count = 0;
    this.#tookSmall();
    return this.#buffer.subarray(0, length);
  }

  /** The transport still holds `bytes` from {@link FrameBatch.takeView}: that memory is its own now. */
  kept(bytes: Uint8Array): void {
    if (bytes.buffer === this.#buffer.buffer) this.#buffer = EMPTY;
  }

  /**
   * True when `bytes` (from {@link FrameBatch.take}) is the batch's own memory, lent until
   * {@link FrameBatch.release}; false for a small batch's copy, which needs no release.
   */
  lends(bytes: Uint8Array): boolean {
    return bytes.length > SMALL_BATCH_BYTES && this.#lent.has(bytes.buffer);
  }

  /**
   * Says the transport has written `bytes` (from {@link FrameBatch.take}) and holds it no more.
   * A large batch's memory then serves a later batch: steady large traffic reuses a buffer instead
   * of allocating, and page-faulting in, a fresh one per flush (that cost several times the copy
   * itself for 1 MiB messages). Bytes that did not come from a large take are ignored.
   */
  release(bytes: Uint8Array): void {
    const memory = bytes.buffer;
    if (!this.#lent.delete(memory) || this.#spares.length >= MAX_SPARES) return;
    const spareBytes = this.#spares.reduce((sum, spare) => sum + spare.length, 0);
    if (spareBytes + memory.byteLength > MAX_SPARE_BYTES) return;
    this.#spares.push(Buffer.from(memory, 0, memory.byteLength));
  }

  #tookSmall(): void {
    if (++this.#smallTakes >= SMALL_TAKES_TO_SHRINK) this.#spares.length = 0;
  }

  #reserve(bytes: number): number {
    const offset = this.#length;
    if (offset + bytes > this.#buffer.length) {
      // A spare too small for this batch is dropped: traffic changed size.
      const spare = this.#spares.pop();
      let grown: Buffer;
      if (spare && spare.length >= offset + bytes) {
        grown = spare;
      } else {
        // Never from Node's shared pool: release() may reuse this memory as a whole.
        grown = Buffer.allocUnsafeSlow(Math.max(this.#buffer.length * 2, this.#nextBytes, offset + bytes));
      }
      this.#buffer.copy(grown, 0, 0, offset);
      this.#buffer = grown;
    }
    this.#length = offset + bytes;
    this.#count++;
    return offset;
  }
}

/** Receives what a {@link FrameDecoder} finds in the byte stream. */
export interface FrameSink {
  /**
   * A complete payload. The view is valid until the sink returns; copy what you keep. `owned`: the
   * payload is a buffer of its own that nothing else refers to, which the sink may keep as it is.
   */
  frame(payload: Uint8Array, owned?: boolean): void;
  /**
   * A complete payload that lies whole in a chunk: `data` from `start` to `end`, valid until the
   * sink returns. Optional: without it, such a payload comes to {@link FrameSink.frame} as a view.
   */
  frameAt?(data: Uint8Array, start: number, end: number): void;
  control(code: number): void;
}

/**
 * Splits a byte stream into frames. Frames that lie whole inside one chunk are passed as views
 * (no copy); a frame split across chunks is assembled in a buffer of exactly its size, allocated
 * only after its length has been checked.
 */
export class FrameDecoder {
  #max: number;
  readonly #what: string;
  readonly #sink: FrameSink;
  #header = Buffer.alloc(FRAME_HEADER_BYTES);
  #headerFill = 0;
  #partial: Buffer | undefined;
  #partialFill = 0;
  /**
   * Where a frame split across chunks is assembled: memory of its own, of exactly the frame's size.
   * A channel whose receiver gives messages back (views) hands out recycled memory instead.
   */
  allocate: (bytes: number) => Buffer = Buffer.allocUnsafeSlow;

  constructor(what: string, maxMessageBytes: number, sink: FrameSink) {
    this.#what = what;
    this.#max = maxMessageBytes;
    this.#sink = sink;
  }

  /** The largest payload accepted from now on, checked before anything is allocated for a frame. */
  get maxMessageBytes(): number {
    return this.#max;
  }

  /**
   * Changes the bound, for protocols that accept only small frames until the peer is known (a
   * socket handshake) and the full `maxMessageBytes` after.
   */
  set maxMessageBytes(bytes: number) {
    this.#max = Math.min(bytes, MAX_FRAME_PAYLOAD);
  }

  /** True while a frame has begun but not ended: EOF now means a truncated message. */
  get midFrame(): boolean {
    return this.#headerFill > 0 || this.#partial !== undefined;
  }

  /** Feeds a chunk. Throws ERR_IPC_FRAME_TOO_LARGE or ERR_IPC_BAD_FRAME; the stream is then unusable. */
  push(chunk: Uint8Array): void {
    let pos = 0;
    const end = chunk.length;
    while (pos < end) {
      if (this.#partial) {
        const need = this.#partial.length - this.#partialFill;
        const take = Math.min(need, end - pos);
        this.#partial.set(chunk.subarray(pos, pos + take), this.#partialFill);
        this.#partialFill += take;
        pos += take;
        if (this.#partialFill === this.#partial.length) {
          const payload = this.#partial;
          this.#partial = undefined;
          this.#sink.frame(payload, true);
        }
        continue;
      }
      let header: number;
      if (this.#headerFill === 0 && end - pos >= FRAME_HEADER_BYTES) {
        header = readUInt32BE(chunk, pos);
        pos += FRAME_HEADER_BYTES;
      } else {
        const take = Math.min(FRAME_HEADER_BYTES - this.#headerFill, end - pos);
        this.#header.set(chunk.subarray(pos, pos + take), this.#headerFill);
        this.#headerFill += take;
        pos += take;
        if (this.#headerFill < FRAME_HEADER_BYTES) return;
        this.#headerFill = 0;
        header = this.#header.readUInt32BE(0);
      }
      if (header >= CONTROL_FLAG && header - CONTROL_FLAG <= MAX_CONTROL_CODE) {
        this.#sink.control(header - CONTROL_FLAG);
        continue;
      }
      if (header > this.#max) throw frameTooLarge(`${this.#what}: incoming frame`, header, this.#max);
      if (end - pos >= header) {
        // A view per frame costs about as much as decoding a small message's fields: a sink that
        // can read the range where it lies gets the range.
        const sink = this.#sink;
        if (sink.frameAt) sink.frameAt(chunk, pos, pos + header);
        else sink.frame(chunk.subarray(pos, pos + header));
        pos += header;
      } else {
        // Its own memory, never a slice of Node's shared pool: it is handed on as `owned`.
        this.#partial = this.allocate(header);
        this.#partialFill = 0;
      }
    }
  }
}

function readUInt32BE(bytes: Uint8Array, pos: number): number {
  return ((bytes[pos]! << 24) | (bytes[pos + 1]! << 16) | (bytes[pos + 2]! << 8) | bytes[pos + 3]!) >>> 0;
}

const HELLO_MAGIC = [0x49, 0x50, 0x43, 0x4b]; // "IPCK"
/** Version of the stream protocol; a peer speaking another one is ERR_IPC_INCOMPATIBLE. */
export const PROTOCOL_VERSION = 1;

/** A codec's name as a hello carries it: its first 255 bytes of UTF-8, compared as bytes by both ends. */
function helloName(codecName: string): Buffer {
  return Buffer.from(codecName.slice(0, 255), 'utf8').subarray(0, 255);
}

/** The hello a connection-oriented stream starts with: magic, version, codec name. */
export function encodeHello(codecName: string): Buffer {
  const name = helloName(codecName);
  const hello = Buffer.allocUnsafe(6 + name.length);
  hello.set(HELLO_MAGIC, 0);
  hello[4] = PROTOCOL_VERSION;
  hello[5] = name.length;
  hello.set(name, 6);
  return hello;
}

/**
 * Parses the peer's hello from the start of `bytes`. Returns the bytes it used, or 0 while more are
 * needed. Throws ERR_IPC_BAD_FRAME for a stream that is not ipckit, ERR_IPC_INCOMPATIBLE for a
 * different version or codec.
 */
export function parseHello(bytes: Uint8Array, codecName: string, what: string): number {
  for (let i = 0; i < Math.min(4, bytes.length); i++) {
    if (bytes[i] !== HELLO_MAGIC[i]) {
      throw new IpcError(ErrorCodes.BAD_FRAME, `${what}: the peer did not start with an ipckit hello`);
    }
  }
  if (bytes.length < 6) return 0;
  const nameLength = bytes[5]!;
  if (bytes.length < 6 + nameLength) return 0;
  if (bytes[4] !== PROTOCOL_VERSION) {
    throw new IpcError(
      ErrorCodes.INCOMPATIBLE,
      `${what}: the peer speaks protocol version ${bytes[4]}, this side ${PROTOCOL_VERSION}`,
    );
  }
  const peerName = bytes.subarray(6, 6 + nameLength);
  if (!helloName(codecName).equals(peerName)) {
    const peerCodec = Buffer.from(peerName).toString('utf8');
    throw new IpcError(
      ErrorCodes.INCOMPATIBLE,
      `${what}: the peer uses codec '${peerCodec}', this side '${codecName}'`,
    );
  }
  return 6 + nameLength;
}
