/**
 * The three wire formats of a FIFO. FIFOs may have several writers at once, and the kernel keeps a
 * write atomic only up to PIPE_BUF bytes, so:
 * - 'frames': every message is cut into chunks of at most PIPE_BUF bytes, header included, and each
 *   chunk is written by a write(2) of its own (or shared with other whole chunks, still at most
 *   PIPE_BUF), so the kernel never interleaves a chunk with another writer's bytes. Each chunk names
 *   its writer (pid and a random per-sender nonce), and the receiver reassembles per writer: chunks
 *   of concurrent writers may interleave freely and every message still arrives whole. A message
 *   that can never complete (its writer died, or started another message, mid-way) is reported as
 *   ERR_IPC_BAD_FRAME and dropped; nothing corrupt or partial is ever delivered.
 * - 'lines': UTF-8 text, one message per line (what `echo` writes), no codec.
 * - 'bytes': chunks as they arrive, no framing.
 * The 'frames' chunk layout is in fifo-frames.ts, its reassembly in fifo-frame-assembler.ts.
 */
import { type Codec, codecs } from '../core/codec.js';
import type { IpcError } from '../core/errors.js';
import { frameTooLarge } from '../core/framing.js';
import { choiceError } from '../core/options.js';
import { FrameAssembler } from './fifo-frame-assembler.js';
import { chunkedWire, type FrameWriter, newFrameWriter } from './fifo-frames.js';

export { PIPE_BUF } from './fifo-frames.js';

/** How messages are laid out in a FIFO. */
export type FifoFormat = 'frames' | 'lines' | 'bytes';

/** Throws a RangeError for an unknown format name, a TypeError for a value that is not a string. */
export function checkFormat(format: unknown): FifoFormat {
  if (format === undefined) return 'frames';
  if (format === 'frames' || format === 'lines' || format === 'bytes') return format;
  throw choiceError(format, `options.format must be 'frames', 'lines' or 'bytes', got ${String(format)}`);
}

// ignoreBOM: a line that starts with U+FEFF arrives with it (by default TextDecoder drops it).
const textDecoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const NEWLINE = 0x0a;
const CARRIAGE_RETURN = 0x0d;

/**
 * The codec of the 'lines' format: a string per line, which must not itself contain a newline.
 * A line ending "\r\n" (a file from Windows, a network tool's output) arrives without its "\r",
 * as readline, Python and Go read lines; so a string ending in "\r" is refused, as it would not
 * arrive as it was sent.
 */
export const lineCodec: Codec<string> = {
  name: 'lines',
  encode(line: string) {
    if (typeof line !== 'string') throw new TypeError('lines format sends strings only');
    if (line.includes('\n')) throw new TypeError('a line message must not contain a newline');
    if (line.endsWith('\r')) {
      throw new TypeError(
        'a line message must not end in a carriage return (it ends the line with the newline)',
      );
    }
    return Buffer.from(line, 'utf8');
  },
  decode: (bytes: Uint8Array) =>
    textDecoder.decode(bytes.at(-1) === CARRIAGE_RETURN ? bytes.subarray(0, -1) : bytes),
};

/** The codec a format imposes, or undefined when the user's codec applies ('frames'). */
export function formatCodec(format: FifoFormat): Codec<unknown> | undefined {
  if (format === 'lines') return lineCodec as Codec<unknown>;
  if (format === 'bytes') return codecs.raw as Codec<unknown>;
  return undefined;
}

/** The writer of this process's wireBytes calls that name none. */
let defaultWriter: FrameWriter | undefined;

/**
 * The bytes one encoded message occupies in the FIFO. For 'frames', the message's chunks back to
 * back (every one but the last exactly PIPE_BUF bytes, so cutting at multiples of PIPE_BUF gives
 * whole chunks), written as `writer` (by default one identity per process).
 */
export function wireBytes(format: FifoFormat, payload: Uint8Array, writer?: FrameWriter): Uint8Array {
  if (format === 'bytes') return payload;
  if (format === 'lines') {
    const wire = Buffer.allocUnsafe(payload.length + 1);
    wire.set(payload, 0);
    wire[payload.length] = NEWLINE;
    return wire;
  }
  writer ??= defaultWriter ??= newFrameWriter();
  return chunkedWire(payload, writer);
}

/** Where a splitter sends what it finds. */
export interface SplitSink {
  /** A whole message; `owned`: a buffer of its own that the message may keep. */
  frame(payload: Uint8Array, owned?: boolean): void;
  error(err: IpcError): void;
  /**
   * Writes `chunk` (at most PIPE_BUF bytes) into the FIFO being read, with one write(2) that does
   * not block; false if it could not be written now. 'frames' uses it for its barrier (see
   * FrameAssembler); without it, a dead writer's message is reported without that barrier.
   */
  writeBack?(chunk: Uint8Array): boolean;
}

/** Finds message boundaries in the bytes a FIFO yields. */
export interface Splitter {
  push(chunk: Buffer): void;
  /** The receiver stopped reading (its queue is full) or started again. */
  paused?(paused: boolean): void;
  /** Stops timers and drops what is buffered. */
  close(): void;
}

/** A splitter for `format`, bounded by `max` bytes per message. */
export function createSplitter(format: FifoFormat, what: string, max: number, sink: SplitSink): Splitter {
  if (format === 'bytes') {
    return {
      // No boundaries to keep: a read longer than maxMessageBytes arrives as several messages,
      // each within the bound the receiver asked for.
      push(chunk) {
        if (chunk.length <= max) sink.frame(chunk);
        else for (let at = 0; at < chunk.length; at += max) sink.frame(chunk.subarray(at, at + max));
      },
      close() {},
    };
  }
  if (format === 'lines') return new LineSplitter(what, max, sink);
  return new FrameAssembler(what, max, sink);
}

class LineSplitter implements Splitter {
  /**
   * The start of the current line, one copied piece per read: joined once, at its newline, so a
   * long line costs its length, not its length times the number of reads it took.
   */
  #pending: Buffer[] = [];
  #pendingBytes = 0;
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
      const length = this.#pendingBytes + piece.length;
      if (this.#discarding) this.#discarding = false;
      else if (length > this.max) {
        this.sink.error(frameTooLarge(this.what, length, this.max));
      } else {
        this.sink.frame(this.#pending.length ? Buffer.concat([...this.#pending, piece], length) : piece);
      }
      this.#clear();
      start = newline + 1;
      newline = chunk.indexOf(NEWLINE, start);
    }
    if (start >= chunk.length || this.#discarding) return;
    const rest = chunk.subarray(start);
    if (this.#pendingBytes + rest.length > this.max) {
      // A line longer than the bound: report it now, then skip to its end without buffering it.
      this.sink.error(frameTooLarge(this.what, this.#pendingBytes + rest.length, this.max));
      this.#clear();
      this.#discarding = true;
      return;
    }
    // A copy: the reader reuses the chunk's memory for its next read.
    this.#pending.push(Buffer.from(rest));
    this.#pendingBytes += rest.length;
  }

  #clear(): void {
    this.#pending = [];
    this.#pendingBytes = 0;
  }

  close(): void {
    this.#clear();
  }
}
