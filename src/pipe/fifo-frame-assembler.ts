/**
 * Reassembly of 'frames' messages on the receiving side of a FIFO, per writer (see fifo-frames.ts
 * for the chunk layout).
 */
import { ErrorCodes, IpcError } from '../core/errors.js';
import { frameTooLarge } from '../core/framing.js';
import { identityOf, isAlive, type ProcessIdentity } from '../core/process-identity.js';
import type { SplitSink, Splitter } from './fifo-format.js';
import {
  ABORT,
  CHUNK_HEADER,
  FIRST,
  FIRST_HEADER,
  LAST,
  MAGIC_0,
  MAGIC_1,
  MARK,
  markChunk,
  newFrameWriter,
  PIPE_BUF,
  zlib,
} from './fifo-frames.js';

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
export class FrameAssembler implements Splitter {
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
