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
  crc32,
  FIRST,
  FIRST_HEADER,
  LAST,
  MAGIC_0,
  MAGIC_1,
  MARK,
  markChunk,
  newFrameWriter,
  PIPE_BUF,
} from './fifo-frames.js';

const EMPTY = Buffer.alloc(0);

/** How many writers may have a message in progress at once; past it the oldest is dropped. */
const MAX_PARTIAL_WRITERS = 64;
/** A message in progress with no new chunk for this long has its writer's liveness checked. */
const STALE_MS = 100;
/** How often, while messages are in progress, their writers' liveness is checked. */
const SWEEP_MS = 250;
/** A barrier not read back within this long (another receiver took it) is written again. */
const MARK_RETRY_MS = 1000;
/**
 * Barriers written again this many times without one coming back (another receiver on the FIFO
 * reads them all): the suspects are settled without one, on what has been read.
 */
const MARK_RETRIES = 3;
/** A message in progress starts with a buffer of at most this size, doubled as its chunks arrive. */
const INITIAL_PARTIAL_BYTES = 64 * 1024;

/**
 * A writer's identity as a Map key: a number without allocation while pid * 2^32 + nonce is exact
 * (pid < 2^21; Linux's pid_max may be up to 2^22), else a string.
 */
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
  /** The bytes received so far, at `filled`; grown (doubled, up to `total`) as chunks arrive. */
  bytes: Buffer;
  filled: number;
  /** Date.now() of the last chunk. */
  progressAt: number;
  /**
   * The writer process, captured when its message began (so a pid reused later is not taken for
   * it); undefined if no process had that pid then: it is dead.
   */
  readonly identity: ProcessIdentity | undefined;
  /** Found dead: the barrier whose return settles it (0: not suspected), and `filled` then. */
  suspectMark: number;
  suspectFilled: number;
}

/**
 * Whether a chunk header can be a real chunk's: a known flag value, and a size the writer side
 * produces (every chunk of a message but its last is exactly PIPE_BUF bytes; a mark carries 4
 * bytes, an abort none). Anything else is corrupt, and resynchronizing skips it.
 */
function plausible(flags: number, size: number, length: number): boolean {
  switch (flags) {
    case FIRST | LAST:
    case LAST:
      return size <= PIPE_BUF;
    case FIRST:
    case 0:
      return size === PIPE_BUF;
    case MARK:
      return length === 4;
    case ABORT:
      return length === 0;
    default:
      return false;
  }
}

/** A buffer of `size` bytes, or undefined if there is no memory for it. */
function allocate(size: number): Buffer | undefined {
  try {
    return Buffer.allocUnsafe(size);
  } catch {
    return undefined;
  }
}

/**
 * Reassembles 'frames' messages per writer. A writer whose message stays incomplete is checked
 * (its pid, in /proc) on a timer and when other writers' chunks arrive. A writer found dead may
 * still have chunks in the pipe, unread: so the receiver writes a barrier (a mark chunk of its own)
 * into the FIFO, and when it reads the barrier back, every byte the dead writer wrote has been
 * read; a message still incomplete then (and not progressed since) is reported as truncated. A
 * barrier never read back (another receiver of the FIFO took it) is written again, MARK_RETRIES
 * times, and then the suspects are settled without one.
 */
export class FrameAssembler implements Splitter {
  #pending: Buffer = EMPTY;
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
  /** Barriers written again since one last came back. */
  #markRetries = 0;
  #sweptAt = 0;
  #timer: NodeJS.Timeout | undefined;
  /**
   * The receiver is not reading (its queue is full): a barrier cannot come back, so its absence
   * says nothing, and a dead writer's last chunks wait unread behind the bytes ahead of them.
   */
  #paused = false;

  constructor(
    readonly what: string,
    readonly max: number,
    readonly sink: SplitSink,
  ) {}

  push(chunk: Buffer): void {
    let from = 0;
    if (this.#pending.length > 0) {
      // The leftover is the start of one chunk (or a few stray bytes): complete it from the head of
      // this read, at most PIPE_BUF bytes, rather than copy the whole read behind it.
      const pending = this.#pending.length;
      const joined = Buffer.concat([this.#pending, chunk.subarray(0, PIPE_BUF)]);
      const pos = this.#parse(joined, 0);
      if (pos < pending) {
        // Still incomplete (a read shorter than the rest of that chunk): keep it all.
        this.#pending = Buffer.concat([this.#pending.subarray(pos), chunk]);
        return;
      }
      from = pos - pending;
    }
    const pos = this.#parse(chunk, from);
    // Copy the leftover (less than one chunk) so a small tail does not pin a large read.
    this.#pending = pos >= chunk.length ? EMPTY : Buffer.from(chunk.subarray(pos));
  }

  /** Handles the whole chunks of `bytes` from `pos`; returns where the first incomplete one starts. */
  #parse(bytes: Buffer, pos: number): number {
    while (bytes.length - pos >= CHUNK_HEADER) {
      if (bytes[pos] !== MAGIC_0 || bytes[pos + 1] !== MAGIC_1) {
        pos = this.#skip(bytes, pos);
        continue;
      }
      const flags = bytes[pos + 2]!;
      const length = bytes.readUInt16BE(pos + 3);
      const header = flags & FIRST ? FIRST_HEADER : CHUNK_HEADER;
      if (!plausible(flags, header + length, length)) {
        pos = this.#skip(bytes, pos);
        continue;
      }
      if (bytes.length - pos < header + length) break;
      this.#resyncing = false;
      this.#chunk(bytes, pos, flags, length);
      pos += header + length;
    }
    return pos;
  }

  paused(paused: boolean): void {
    this.#paused = paused;
    // Time spent not reading is no time a barrier had to come back in.
    if (!paused) this.#markSentAt = Date.now();
  }

  close(): void {
    this.#stopTimer();
    this.#partials.clear();
    this.#dropped.clear();
    this.#pending = EMPTY;
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
      if (pid === this.#self.pid && nonce === this.#self.nonce) {
        this.#markRetries = 0;
        this.#settle(bytes.readUInt32BE(pos + CHUNK_HEADER));
      }
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
    if (filled > partial.bytes.length && !this.#grow(partial, filled)) return;
    bytes.copy(partial.bytes, partial.filled, pos + CHUNK_HEADER, pos + CHUNK_HEADER + length);
    partial.filled = filled;
    partial.progressAt = now;
    if (!(flags & LAST)) return;
    this.#partials.delete(key);
    this.#stopTimerIfIdle();
    const payload = partial.bytes.subarray(0, filled);
    if (crc32(payload) !== partial.crc) this.#checksumMismatch();
    else this.sink.frame(payload, true);
  }

  /**
   * Makes room in `partial` for `needed` bytes: memory follows the bytes received, not the size a
   * first chunk declares. A failed allocation reports the message, and skips the rest of it.
   */
  #grow(partial: Partial, needed: number): boolean {
    let size = partial.bytes.length;
    while (size < needed) size *= 2;
    const bytes = allocate(Math.min(size, partial.total));
    if (!bytes) {
      this.#partials.delete(partial.key);
      this.#stopTimerIfIdle();
      this.#cannotHold(partial.total, partial.pid, partial.key);
      return false;
    }
    partial.bytes.copy(bytes, 0, 0, partial.filled);
    partial.bytes = bytes;
    return true;
  }

  #cannotHold(total: number, pid: number, key: WriterKey): void {
    this.sink.error(
      new IpcError(
        ErrorCodes.FRAME_TOO_LARGE,
        `${this.what}: skipped a message of ${total} bytes from process ${pid}: no memory to hold it`,
      ),
    );
    this.#drop(key);
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
    if (crc32(payload) !== bytes.readUInt32BE(pos + 17)) this.#checksumMismatch();
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
    const initial = allocate(Math.min(total, INITIAL_PARTIAL_BYTES));
    if (!initial) {
      this.#cannotHold(total, pid, key);
      return;
    }
    const partial: Partial = {
      key,
      pid,
      total,
      crc: bytes.readUInt32BE(pos + 17),
      bytes: initial,
      filled: length,
      progressAt: now,
      // Once per large message (a small one never gets here): who the writer is, before its pid
      // can be reused.
      identity: identityOf(pid),
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
    if (this.#paused) return;
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
      if (partial.identity && isAlive(partial.identity)) continue;
      partial.suspectMark = this.#markSent + 1;
      partial.suspectFilled = partial.filled;
      unsent = true;
    }
    if (unsent) {
      this.#sendMark(now);
    } else if (waiting && now - this.#markSentAt >= MARK_RETRY_MS) {
      if (this.#markRetries < MARK_RETRIES) {
        this.#markRetries++;
        this.#sendMark(now);
        return;
      }
      // None of the barriers came back: another receiver reads this FIFO too, and takes them.
      // Settle on what has been read (the dead writer's last chunks may have gone to it as well).
      this.#markRetries = 0;
      this.#markSentAt = now;
      this.#settle(this.#markSent);
    }
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
