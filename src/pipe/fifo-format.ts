/**
 * The three wire formats of a FIFO. FIFOs may have several writers at once, and the kernel keeps a
 * write atomic only up to PIPE_BUF bytes, so:
 * - 'frames': a 10-byte header (magic, length, CRC-32 of the payload). Frames up to PIPE_BUF never
 *   interleave. A larger frame from concurrent writers can be cut into by another writer; the CRC
 *   detects it: the receiver reports ERR_IPC_BAD_FRAME for each corrupt stretch it skips and
 *   resynchronizes at the next intact frame. Nothing corrupt is ever delivered.
 * - 'lines': UTF-8 text, one message per line (what `echo` writes), no codec.
 * - 'bytes': chunks as they arrive, no framing.
 */
import { type Codec, codecs } from '../core/codec.js';
import { ErrorCodes, IpcError } from '../core/errors.js';
import { frameTooLarge } from '../core/framing.js';
import { lazyModule } from '../core/lazy-module.js';
import { choiceError } from '../core/options.js';

/** node:zlib for its crc32, loaded by the first 'frames' FIFO rather than by every process. */
const zlib = lazyModule<typeof import('node:zlib')>('node:zlib');

/** How messages are laid out in a FIFO. */
export type FifoFormat = 'frames' | 'lines' | 'bytes';

/** Writes up to this size are atomic on a pipe (POSIX PIPE_BUF on Linux). */
export const PIPE_BUF = 4096;

const MAGIC_0 = 0xc7;
const MAGIC_1 = 0x1f;
const FRAME_HEADER = 10;

/** Throws a RangeError for an unknown format name, a TypeError for a value that is not a string. */
export function checkFormat(format: unknown): FifoFormat {
  if (format === undefined) return 'frames';
  if (format === 'frames' || format === 'lines' || format === 'bytes') return format;
  throw choiceError(format, `options.format must be 'frames', 'lines' or 'bytes', got ${String(format)}`);
}

// ignoreBOM: a line that starts with U+FEFF arrives with it (by default TextDecoder drops it).
const textDecoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const NEWLINE = 0x0a;

/** The codec of the 'lines' format: a string per line, which must not itself contain a newline. */
export const lineCodec: Codec<string> = {
  name: 'lines',
  encode(line: string) {
    if (typeof line !== 'string') throw new TypeError('lines format sends strings only');
    if (line.includes('\n')) throw new TypeError('a line message must not contain a newline');
    return Buffer.from(line, 'utf8');
  },
  decode: (bytes: Uint8Array) => textDecoder.decode(bytes),
};

/** The codec a format imposes, or undefined when the user's codec applies ('frames'). */
export function formatCodec(format: FifoFormat): Codec<unknown> | undefined {
  if (format === 'lines') return lineCodec as Codec<unknown>;
  if (format === 'bytes') return codecs.raw as Codec<unknown>;
  return undefined;
}

/** The bytes one encoded message occupies in the FIFO. */
export function wireBytes(format: FifoFormat, payload: Uint8Array): Uint8Array {
  if (format === 'bytes') return payload;
  if (format === 'lines') {
    const wire = Buffer.allocUnsafe(payload.byteLength + 1);
    wire.set(payload, 0);
    wire[payload.byteLength] = NEWLINE;
    return wire;
  }
  const wire = Buffer.allocUnsafe(FRAME_HEADER + payload.byteLength);
  wire[0] = MAGIC_0;
  wire[1] = MAGIC_1;
  wire.writeUInt32BE(payload.byteLength, 2);
  wire.writeUInt32BE(zlib().crc32(payload), 6);
  wire.set(payload, FRAME_HEADER);
  return wire;
}

/** Where a splitter sends what it finds. */
export interface SplitSink {
  frame(payload: Uint8Array): void;
  error(err: IpcError): void;
}

/** Finds message boundaries in the bytes a FIFO yields. */
export interface Splitter {
  push(chunk: Buffer): void;
}

/** A splitter for `format`, bounded by `max` bytes per message. */
export function createSplitter(format: FifoFormat, what: string, max: number, sink: SplitSink): Splitter {
  if (format === 'bytes') return { push: (chunk) => sink.frame(chunk) };
  if (format === 'lines') return new LineSplitter(what, max, sink);
  return new FrameSplitter(what, max, sink);
}

class LineSplitter implements Splitter {
  #pending: Buffer = Buffer.alloc(0);
  #discarding = false;

  constructor(
    readonly what: string,
    readonly max: number,
    readonly sink: SplitSink,
  ) {}

  push(chunk: Buffer): void {
    let start = 0;
    let newline = chunk.indexOf(NEWLINE);
    while (newline >= 0) {
      const piece = chunk.subarray(start, newline);
      if (this.#discarding) this.#discarding = false;
      else if (this.#pending.length + piece.length > this.max) {
        this.sink.error(frameTooLarge(this.what, this.#pending.length + piece.length, this.max));
      } else {
        this.sink.frame(this.#pending.length ? Buffer.concat([this.#pending, piece]) : piece);
      }
      this.#pending = Buffer.alloc(0);
      start = newline + 1;
      newline = chunk.indexOf(NEWLINE, start);
    }
    if (start >= chunk.length || this.#discarding) return;
    const rest = chunk.subarray(start);
    if (this.#pending.length + rest.length > this.max) {
      // A line longer than the bound: report it now, then skip to its end without buffering it.
      this.sink.error(frameTooLarge(this.what, this.#pending.length + rest.length, this.max));
      this.#pending = Buffer.alloc(0);
      this.#discarding = true;
      return;
    }
    this.#pending = Buffer.concat([this.#pending, rest]);
  }
}

class FrameSplitter implements Splitter {
  #pending: Buffer = Buffer.alloc(0);
  /** Set after a corrupt frame until the next good one, so one corruption is reported once. */
  #resyncing = false;

  constructor(
    readonly what: string,
    readonly max: number,
    readonly sink: SplitSink,
  ) {}

  push(chunk: Buffer): void {
    const bytes = this.#pending.length ? Buffer.concat([this.#pending, chunk]) : chunk;
    let pos = 0;
    while (bytes.length - pos >= FRAME_HEADER) {
      if (bytes[pos] !== MAGIC_0 || bytes[pos + 1] !== MAGIC_1) {
        pos = this.#skip(bytes, pos, 'bytes that are not an ipckit frame');
        continue;
      }
      const length = bytes.readUInt32BE(pos + 2);
      if (length > this.max) {
        if (!this.#resyncing) this.sink.error(frameTooLarge(this.what, length, this.max));
        this.#resyncing = true;
        pos = this.#skip(bytes, pos, '');
        continue;
      }
      if (bytes.length - pos - FRAME_HEADER < length) break;
      const payload = bytes.subarray(pos + FRAME_HEADER, pos + FRAME_HEADER + length);
      if (zlib().crc32(payload) !== bytes.readUInt32BE(pos + 6)) {
        pos = this.#skip(
          bytes,
          pos,
          'a frame whose checksum does not match (interleaved writers or corruption)',
        );
        continue;
      }
      this.#resyncing = false;
      this.sink.frame(payload);
      pos += FRAME_HEADER + length;
    }
    // Copy the leftover so a small tail does not pin a large chunk.
    this.#pending = pos >= bytes.length ? Buffer.alloc(0) : Buffer.from(bytes.subarray(pos));
  }

  /** Reports corruption (once per run of it) and returns where the next candidate frame starts. */
  #skip(bytes: Buffer, badFrameAt: number, problem: string): number {
    if (!this.#resyncing && problem) {
      this.sink.error(new IpcError(ErrorCodes.BAD_FRAME, `${this.what}: skipped ${problem}`));
    }
    this.#resyncing = true;
    const next = bytes.indexOf(MAGIC_0, badFrameAt + 1);
    // Keep a trailing magic byte: its partner may arrive in the next chunk.
    return next < 0 ? bytes.length : next;
  }
}
