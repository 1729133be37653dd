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
 *
 * A 'frames' chunk, all integers big-endian:
 *
 *   offset  size  field
 *   0       2     magic 0xc7 0xf2 (the first 'frames' layout used 0xc7 0x1f: refused as BAD_FRAME)
 *   2       1     flags: 0x01 first chunk, 0x02 last chunk (a small message is both, 0x03; a middle
 *                 chunk neither), or alone 0x04 mark (a receiver's own barrier, see below) or
 *                 0x08 abort (the writer gives up its message in progress); other values are invalid
 *   3       2     length of this chunk's payload; header + payload is at most PIPE_BUF
 *   5       4     writer pid
 *   9       4     writer nonce, random per sender
 *   -- first chunks only --
 *   13      4     total payload length of the message (at most maxMessageBytes)
 *   17      4     CRC-32 of the message's whole payload
 *   13|21   n     payload
 *
 * A message's chunks are laid out back to back, every one but the last exactly PIPE_BUF bytes.
 */
import { type Codec, codecs } from '../core/codec.js';
import { ErrorCodes, IpcError } from '../core/errors.js';
import { frameTooLarge } from '../core/framing.js';
import { lazyModule } from '../core/lazy-module.js';
import { choiceError } from '../core/options.js';
import { identityOf, isAlive, type ProcessIdentity } from '../core/process-identity.js';

/** node:zlib for its crc32, loaded by the first 'frames' FIFO rather than by every process. */
const zlib = lazyModule<typeof import('node:zlib')>('node:zlib');

/** How messages are laid out in a FIFO. */
export type FifoFormat = 'frames' | 'lines' | 'bytes';

/** Writes up to this size are atomic on a pipe (POSIX PIPE_BUF on Linux). */
export const PIPE_BUF = 4096;

const MAGIC_0 = 0xc7;
const MAGIC_1 = 0xf2;
const FIRST = 0x01;
const LAST = 0x02;
const MARK = 0x04;
const ABORT = 0x08;
/** Header of a chunk that is not the first of its message. */
const CHUNK_HEADER = 13;
/** Header of a message's first chunk: the chunk header plus total length and CRC. */
export const FIRST_HEADER = 21;
/** The most payload a first chunk carries: a message up to this size is one chunk. */
export const SINGLE_CHUNK_PAYLOAD = PIPE_BUF - FIRST_HEADER;
const NEXT_CHUNK_PAYLOAD = PIPE_BUF - CHUNK_HEADER;

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

/** Who wrote a 'frames' chunk: a process and one of its senders (a process may open several). */
export interface FrameWriter {
  readonly pid: number;
  /** Random per sender, 32 bits. */
  readonly nonce: number;
}

/** A fresh identity for one sender of this process. */
export function newFrameWriter(): FrameWriter {
  // Not a secret, only distinct among this process's senders: Math.random spares loading node:crypto.
  return { pid: process.pid, nonce: Math.floor(Math.random() * 0x1_0000_0000) >>> 0 };
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
    const wire = Buffer.allocUnsafe(payload.byteLength + 1);
    wire.set(payload, 0);
    wire[payload.byteLength] = NEWLINE;
    return wire;
  }
  writer ??= defaultWriter ??= newFrameWriter();
  if (payload.byteLength <= SINGLE_CHUNK_PAYLOAD) {
    const wire = Buffer.allocUnsafe(FIRST_HEADER + payload.byteLength);
    writeSingleChunk(wire, 0, payload, writer);
    return wire;
  }
  return chunkedWire(payload, writer);
}

/**
 * Writes a message of at most SINGLE_CHUNK_PAYLOAD bytes as one chunk into `out` at `offset`;
 * returns the bytes written. The sender's hot path: no allocation.
 */
export function writeSingleChunk(
  out: Buffer,
  offset: number,
  payload: Uint8Array,
  writer: FrameWriter,
): number {
  const length = payload.byteLength;
  writeHeader(out, offset, FIRST | LAST, length, writer);
  out.writeUInt32BE(length, offset + 13);
  out.writeUInt32BE(zlib().crc32(payload), offset + 17);
  out.set(payload, offset + FIRST_HEADER);
  return FIRST_HEADER + length;
}

/** A message larger than one chunk, cut into chunks laid out back to back. */
export function chunkedWire(payload: Uint8Array, writer: FrameWriter): Buffer {
  const total = payload.byteLength;
  const later = Math.ceil(Math.max(0, total - SINGLE_CHUNK_PAYLOAD) / NEXT_CHUNK_PAYLOAD);
  const wire = Buffer.allocUnsafe(FIRST_HEADER + total + later * CHUNK_HEADER);
  const first = Math.min(total, SINGLE_CHUNK_PAYLOAD);
  writeHeader(wire, 0, first === total ? FIRST | LAST : FIRST, first, writer);
  wire.writeUInt32BE(total, 13);
  wire.writeUInt32BE(zlib().crc32(payload), 17);
  wire.set(payload.subarray(0, first), FIRST_HEADER);
  let at = FIRST_HEADER + first;
  for (let from = first; from < total; ) {
    const length = Math.min(total - from, NEXT_CHUNK_PAYLOAD);
    writeHeader(wire, at, from + length === total ? LAST : 0, length, writer);
    wire.set(payload.subarray(from, from + length), at + CHUNK_HEADER);
    at += CHUNK_HEADER + length;
    from += length;
  }
  return wire;
}

/** The chunk by which `writer` gives up its message in progress (a sender destroyed mid-message). */
export function abortChunk(writer: FrameWriter): Buffer {
  const chunk = Buffer.allocUnsafe(CHUNK_HEADER);
  writeHeader(chunk, 0, ABORT, 0, writer);
  return chunk;
}

function markChunk(writer: FrameWriter, seq: number): Buffer {
  const chunk = Buffer.allocUnsafe(CHUNK_HEADER + 4);
  writeHeader(chunk, 0, MARK, 4, writer);
  chunk.writeUInt32BE(seq >>> 0, CHUNK_HEADER);
  return chunk;
}

function writeHeader(out: Buffer, at: number, flags: number, length: number, writer: FrameWriter): void {
  out[at] = MAGIC_0;
  out[at + 1] = MAGIC_1;
  out[at + 2] = flags;
  out.writeUInt16BE(length, at + 3);
  out.writeUInt32BE(writer.pid, at + 5);
  out.writeUInt32BE(writer.nonce, at + 9);
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
  /** Stops timers and drops what is buffered. */
  close(): void;
}

/** A splitter for `format`, bounded by `max` bytes per message. */
export function createSplitter(format: FifoFormat, what: string, max: number, sink: SplitSink): Splitter {
  if (format === 'bytes') return { push: (chunk) => sink.frame(chunk), close() {} };
  if (format === 'lines') return new LineSplitter(what, max, sink);
  return new FrameAssembler(what, max, sink);
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

  close(): void {
    this.#pending = Buffer.alloc(0);
  }
}

/** How many writers may have a message in progress at once; past it the oldest is dropped. */
const MAX_PARTIAL_WRITERS = 64;
/** A message in progress with no new chunk for this long has its writer's liveness checked. */
const STALE_MS = 100;
/** How often, while messages are in progress, their writers' liveness is checked. */
const SWEEP_MS = 250;
/** A barrier not read back within this long (another receiver took it) is written again. */
const MARK_RETRY_MS = 1000;

/** A writer's identity as a Map key: a number without allocation for every real pid (< 2^21). */
type WriterKey = number | string;
function writerKey(pid: number, nonce: number): WriterKey {
  return pid < 0x20_0000 ? pid * 0x1_0000_0000 + nonce : `${pid}:${nonce}`;
}

/** A message whose first chunks have arrived. */
interface Partial {
  readonly key: WriterKey;
  readonly pid: number;
  readonly total: number;
  readonly crc: number;
  readonly bytes: Buffer;
  filled: number;
  /** Date.now() of the last chunk. */
  progressAt: number;
  /** The writer process, captured at the first liveness check (pid reuse). */
  identity: ProcessIdentity | undefined;
  /** Found dead: the barrier whose return settles it (0: not suspected), and `filled` then. */
  suspectMark: number;
  suspectFilled: number;
}

/**
 * Reassembles 'frames' messages per writer. A writer whose message stays incomplete is checked
 * (its pid, in /proc) on a timer and when other writers' chunks arrive. A writer found dead may
 * still have chunks in the pipe, unread: so the receiver writes a barrier (a mark chunk of its own)
 * into the FIFO, and when it reads the barrier back, every byte the dead writer wrote has been
 * read; a message still incomplete then (and not progressed since) is reported as truncated.
 */
class FrameAssembler implements Splitter {
  #pending: Buffer = Buffer.alloc(0);
  /** Set after corrupt bytes until the next chunk, so one corrupt stretch is reported once. */
  #resyncing = false;
  /** Messages in progress, oldest first. */
  readonly #partials = new Map<WriterKey, Partial>();
  /** Writers whose message in progress was reported: their further chunks are skipped quietly. */
  readonly #dropped = new Set<WriterKey>();
  /** This receiver's identity in its barriers. */
  readonly #self = newFrameWriter();
  #markSent = 0;
  #markSentAt = 0;
  #sweptAt = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(
    readonly what: string,
    readonly max: number,
    readonly sink: SplitSink,
  ) {}

  push(chunk: Buffer): void {
    const bytes = this.#pending.length ? Buffer.concat([this.#pending, chunk]) : chunk;
    let pos = 0;
    while (bytes.length - pos >= CHUNK_HEADER) {
      if (bytes[pos] !== MAGIC_0 || bytes[pos + 1] !== MAGIC_1) {
        pos = this.#skip(bytes, pos);
        continue;
      }
      const flags = bytes[pos + 2]!;
      const length = bytes.readUInt16BE(pos + 3);
      const header = flags & FIRST ? FIRST_HEADER : CHUNK_HEADER;
      if ((flags > (FIRST | LAST) && flags !== MARK && flags !== ABORT) || header + length > PIPE_BUF) {
        pos = this.#skip(bytes, pos);
        continue;
      }
      if (bytes.length - pos < header + length) break;
      this.#resyncing = false;
      this.#chunk(bytes, pos, flags, length);
      pos += header + length;
    }
    // Copy the leftover (less than one chunk) so a small tail does not pin a large read.
    this.#pending = pos >= bytes.length ? Buffer.alloc(0) : Buffer.from(bytes.subarray(pos));
  }

  close(): void {
    this.#stopTimer();
    this.#partials.clear();
    this.#dropped.clear();
    this.#pending = Buffer.alloc(0);
  }

  #chunk(bytes: Buffer, pos: number, flags: number, length: number): void {
    if (flags === (FIRST | LAST) && this.#partials.size === 0 && this.#dropped.size === 0) {
      // The hot path: a whole small message while no writer has one in progress.
      this.#whole(bytes, pos, length);
      return;
    }
    const pid = bytes.readUInt32BE(pos + 5);
    const nonce = bytes.readUInt32BE(pos + 9);
    if (flags === MARK) {
      // Another receiver's barrier (two receivers on one FIFO) is none of ours.
      const own = length === 4 && pid === this.#self.pid && nonce === this.#self.nonce;
      if (own) this.#settle(bytes.readUInt32BE(pos + CHUNK_HEADER));
      return;
    }
    const key = writerKey(pid, nonce);
    const now = Date.now();
    if (this.#partials.size > 0 && now - this.#sweptAt >= STALE_MS) this.#sweep(now, key);
    if (flags & FIRST || flags === ABORT) {
      this.#dropped.delete(key);
      const unfinished = this.#partials.get(key);
      if (unfinished) {
        const why = flags === ABORT ? 'its sender was destroyed' : 'its writer started another message';
        this.#truncated(unfinished, why);
      }
      if (flags === ABORT) return;
      if (flags & LAST) {
        this.#whole(bytes, pos, length);
        return;
      }
      this.#begin(bytes, pos, length, key, pid, now);
      return;
    }
    const partial = this.#partials.get(key);
    if (!partial) {
      if (this.#dropped.has(key)) {
        if (flags & LAST) this.#dropped.delete(key);
        return;
      }
      this.#badChunk(`part of a message from process ${pid} whose beginning never arrived`, key, flags);
      return;
    }
    const filled = partial.filled + length;
    if (filled > partial.total || (flags & LAST && filled !== partial.total)) {
      this.#partials.delete(partial.key);
      this.#badChunk(`a message from process ${pid} whose chunks do not add up to its length`, key, flags);
      this.#stopTimerIfIdle();
      return;
    }
    bytes.copy(partial.bytes, partial.filled, pos + CHUNK_HEADER, pos + CHUNK_HEADER + length);
    partial.filled = filled;
    partial.progressAt = now;
    if (!(flags & LAST)) return;
    this.#partials.delete(key);
    this.#stopTimerIfIdle();
    if (zlib().crc32(partial.bytes) !== partial.crc) this.#checksumMismatch();
    else this.sink.frame(partial.bytes, true);
  }

  /** A message in one chunk (first and last): delivered as a view, checked first. */
  #whole(bytes: Buffer, pos: number, length: number): void {
    const total = bytes.readUInt32BE(pos + 13);
    if (total !== length) {
      this.#badChunk('a chunk whose lengths do not agree', undefined, FIRST | LAST);
      return;
    }
    if (total > this.max) {
      this.sink.error(frameTooLarge(this.what, total, this.max));
      return;
    }
    const payload = bytes.subarray(pos + FIRST_HEADER, pos + FIRST_HEADER + length);
    if (zlib().crc32(payload) !== bytes.readUInt32BE(pos + 17)) this.#checksumMismatch();
    else this.sink.frame(payload);
  }

  /** The first chunk of a longer message: checked against the bound before anything is allocated. */
  #begin(bytes: Buffer, pos: number, length: number, key: WriterKey, pid: number, now: number): void {
    const total = bytes.readUInt32BE(pos + 13);
    if (total > this.max) {
      this.sink.error(frameTooLarge(this.what, total, this.max));
      this.#drop(key);
      return;
    }
    if (total <= length) {
      this.#badChunk('a chunk whose lengths do not agree', key, FIRST);
      return;
    }
    if (this.#partials.size >= MAX_PARTIAL_WRITERS) {
      const oldest = this.#partials.values().next().value as Partial;
      this.#truncated(oldest, `more than ${MAX_PARTIAL_WRITERS} writers had messages in progress`);
      this.#drop(oldest.key);
    }
    const partial: Partial = {
      key,
      pid,
      total,
      crc: bytes.readUInt32BE(pos + 17),
      bytes: Buffer.allocUnsafe(total),
      filled: length,
      progressAt: now,
      identity: undefined,
      suspectMark: 0,
      suspectFilled: 0,
    };
    bytes.copy(partial.bytes, 0, pos + FIRST_HEADER, pos + FIRST_HEADER + length);
    this.#partials.set(key, partial);
    if (!this.#timer) {
      this.#timer = setInterval(() => this.#sweep(Date.now(), undefined), SWEEP_MS);
      this.#timer.unref();
    }
  }

  /**
   * Checks the writers of messages with no progress for STALE_MS (but `except`, whose chunk is
   * arriving): those found dead become suspects, settled by the next barrier read back.
   */
  #sweep(now: number, except: WriterKey | undefined): void {
    this.#sweptAt = now;
    let unsent = false;
    let waiting = false;
    for (const partial of this.#partials.values()) {
      if (partial.suspectMark !== 0) {
        waiting = true;
        if (partial.suspectMark > this.#markSent) unsent = true;
        continue;
      }
      if (partial.key === except || now - partial.progressAt < STALE_MS) continue;
      // No such process now: isAlive finds none either (startTime 0 only skips the reuse check).
      partial.identity ??= identityOf(partial.pid) ?? { pid: partial.pid, startTime: 0 };
      if (isAlive(partial.identity)) continue;
      partial.suspectMark = this.#markSent + 1;
      partial.suspectFilled = partial.filled;
      unsent = true;
    }
    if (unsent || (waiting && now - this.#markSentAt >= MARK_RETRY_MS)) this.#sendMark(now);
  }

  #sendMark(now: number): void {
    const seq = this.#markSent + 1;
    if (!this.sink.writeBack) {
      // No way to write a barrier: settle with what has been read (a dead writer's last chunks may
      // still be in the pipe, but only a FIFO receiver, which has writeBack, reads from one).
      this.#markSent = seq;
      this.#settle(seq);
      return;
    }
    // A full pipe (EAGAIN) holds unread bytes anyway: the next sweep tries again.
    if (!this.sink.writeBack(markChunk(this.#self, seq))) return;
    this.#markSent = seq;
    this.#markSentAt = now;
  }

  /** Barrier `seq` came back: every byte written before it has been read. */
  #settle(seq: number): void {
    for (const partial of this.#partials.values()) {
      if (partial.suspectMark === 0 || partial.suspectMark > seq) continue;
      // Progress since it was found dead means its pid did not tell the truth (another pid
      // namespace): check again later rather than drop a live writer's message.
      if (partial.filled !== partial.suspectFilled) partial.suspectMark = 0;
      else this.#truncated(partial, 'its writer died');
    }
  }

  /** Reports a message in progress that can never complete, and forgets it. */
  #truncated(partial: Partial, why: string): void {
    this.#partials.delete(partial.key);
    this.#stopTimerIfIdle();
    this.sink.error(
      new IpcError(
        ErrorCodes.BAD_FRAME,
        `${this.what}: a message of ${partial.total} bytes from process ${partial.pid} was cut off after ${partial.filled} bytes (${why})`,
      ),
    );
  }

  /** Reports a chunk that fits no message; that writer's further chunks of it are skipped. */
  #badChunk(problem: string, key: WriterKey | undefined, flags: number): void {
    this.sink.error(new IpcError(ErrorCodes.BAD_FRAME, `${this.what}: skipped ${problem}`));
    if (key !== undefined && !(flags & LAST)) this.#drop(key);
  }

  #checksumMismatch(): void {
    this.sink.error(
      new IpcError(
        ErrorCodes.BAD_FRAME,
        `${this.what}: skipped a message whose checksum does not match (corruption)`,
      ),
    );
  }

  /** Skips `key`'s chunks until its next message; remembers a bounded number of such writers. */
  #drop(key: WriterKey): void {
    this.#dropped.delete(key);
    this.#dropped.add(key);
    if (this.#dropped.size > MAX_PARTIAL_WRITERS) {
      this.#dropped.delete(this.#dropped.values().next().value as WriterKey);
    }
  }

  /** Reports corruption (once per stretch of it) and returns where the next candidate chunk starts. */
  #skip(bytes: Buffer, badAt: number): number {
    if (!this.#resyncing) {
      this.sink.error(
        new IpcError(ErrorCodes.BAD_FRAME, `${this.what}: skipped bytes that are not an ipckit frame`),
      );
    }
    this.#resyncing = true;
    const next = bytes.indexOf(MAGIC_0, badAt + 1);
    // Keep a trailing magic byte: its partner may arrive in the next chunk.
    return next < 0 ? bytes.length : next;
  }

  #stopTimerIfIdle(): void {
    if (this.#partials.size === 0) this.#stopTimer();
  }

  #stopTimer(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
