/**
 * The one framing every stream transport shares: a 4-byte big-endian header, then the payload.
 * Header bit 31 marks a control frame whose low bits are a small code (GOODBYE, …); any other
 * value is a payload length, checked against `maxMessageBytes` before a byte is allocated for it.
 * Connection-oriented streams start with a hello: magic, protocol version and codec name.
 */
import { ErrorCodes, IpcError } from './errors.js';

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
} as const;

/** Checks a `maxMessageBytes` option, returning the default when absent. */
export function checkMaxMessageBytes(value: number | undefined): number {
  if (value === undefined) return DEFAULT_MAX_MESSAGE_BYTES;
  if (!Number.isInteger(value) || value < 1 || value > MAX_FRAME_PAYLOAD) {
    throw new RangeError(
      `options.maxMessageBytes must be an integer in 1..${MAX_FRAME_PAYLOAD}, got ${value}`,
    );
  }
  return value;
}

/** The error for a message larger than the bound, raised before anything is allocated for it. */
export function frameTooLarge(what: string, bytes: number, max: number): IpcError {
  return new IpcError(
    ErrorCodes.FRAME_TOO_LARGE,
    `${what}: message of ${bytes} bytes exceeds maxMessageBytes (${max})`,
  );
}

/**
 * Collects frames into one buffer so a tick's worth of messages leaves in one write syscall.
 * The caller takes the bytes with {@link FrameBatch.take} and hands them to the transport.
 */
export class FrameBatch {
  #buffer: Buffer;
  #length = 0;
  #count = 0;

  constructor(initialBytes = 64 * 1024) {
    this.#buffer = Buffer.allocUnsafe(initialBytes);
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
    const offset = this.#reserve(FRAME_HEADER_BYTES + payload.byteLength);
    this.#buffer.writeUInt32BE(payload.byteLength, offset);
    this.#buffer.set(payload, offset + FRAME_HEADER_BYTES);
  }

  /** Appends one control frame. */
  addControl(code: number): void {
    const offset = this.#reserve(FRAME_HEADER_BYTES);
    this.#buffer.writeUInt32BE((CONTROL_FLAG | code) >>> 0, offset);
  }

  /** Returns the collected bytes (owned by the caller from now on) and starts a fresh batch. */
  take(): Buffer {
    const bytes = this.#buffer.subarray(0, this.#length);
    // The transport keeps `bytes` until written, so the next batch needs its own memory. Start it at
    // the size this batch reached: steady traffic allocates one buffer per flush, never more.
    this.#buffer = Buffer.allocUnsafe(Math.max(64 * 1024, Math.min(this.#length, 1 << 20)));
    this.#length = 0;
    this.#count = 0;
    return bytes;
  }

  #reserve(bytes: number): number {
    const offset = this.#length;
    if (offset + bytes > this.#buffer.length) {
      const grown = Buffer.allocUnsafe(Math.max(this.#buffer.length * 2, offset + bytes));
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
  /** A complete payload. The view is valid until the sink returns; copy what you keep. */
  frame(payload: Uint8Array): void;
  control(code: number): void;
}

/**
 * Splits a byte stream into frames. Frames that lie whole inside one chunk are passed as views
 * (no copy); a frame split across chunks is assembled in a buffer of exactly its size, allocated
 * only after its length has been checked.
 */
export class FrameDecoder {
  readonly #max: number;
  readonly #what: string;
  readonly #sink: FrameSink;
  #header = Buffer.alloc(FRAME_HEADER_BYTES);
  #headerFill = 0;
  #partial: Buffer | undefined;
  #partialFill = 0;

  constructor(what: string, maxMessageBytes: number, sink: FrameSink) {
    this.#what = what;
    this.#max = maxMessageBytes;
    this.#sink = sink;
  }

  /** True while a frame has begun but not ended: EOF now means a truncated message. */
  get midFrame(): boolean {
    return this.#headerFill > 0 || this.#partial !== undefined;
  }

  /** Feeds a chunk. Throws ERR_IPC_FRAME_TOO_LARGE or ERR_IPC_BAD_FRAME; the stream is then unusable. */
  push(chunk: Uint8Array): void {
    let pos = 0;
    const end = chunk.byteLength;
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
          this.#sink.frame(payload);
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
        this.#sink.frame(chunk.subarray(pos, pos + header));
        pos += header;
      } else {
        this.#partial = Buffer.allocUnsafe(header);
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

/** The hello a connection-oriented stream starts with: magic, version, codec name. */
export function encodeHello(codecName: string): Buffer {
  const name = Buffer.from(codecName.slice(0, 255), 'utf8').subarray(0, 255);
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
  const peerCodec = Buffer.from(bytes.subarray(6, 6 + nameLength)).toString('utf8');
  if (peerCodec !== codecName) {
    throw new IpcError(
      ErrorCodes.INCOMPATIBLE,
      `${what}: the peer uses codec '${peerCodec}', this side '${codecName}'`,
    );
  }
  return 6 + nameLength;
}
