/**
 * The two ends of a FIFO as message channels. The receiver holds the FIFO open read-write, so it
 * outlives any one writer and never sees end-of-file between writers; it ends when closed. The
 * sender writes each group of whole messages that fits in PIPE_BUF with one write(2), and a
 * 'frames' message larger than that one chunk (PIPE_BUF bytes) per write(2), one write at a time,
 * so the kernel never interleaves them with another writer's (see fifo-format.ts).
 */
import { writeSync } from 'node:fs';
import type { Socket } from 'node:net';
import { ChannelBase, type ChannelOptions } from '../core/channel.js';
import { flushAtExit, flushedBeforeExit, unsentBytes, writeFdAtExit } from '../core/exit-flush.js';
import { readStream, writeStream } from './fd-stream.js';
import { createSplitter, type FifoFormat, type Splitter, wireBytes } from './fifo-format.js';
import {
  abortChunk,
  FIRST_HEADER,
  type FrameWriter,
  newFrameWriter,
  PIPE_BUF,
  SINGLE_CHUNK_PAYLOAD,
  writeSingleChunk,
} from './fifo-frames.js';

/** One write(2) of at most PIPE_BUF bytes that never blocks; false if it did not happen. */
function writeWhole(fd: number, chunk: Uint8Array): boolean {
  try {
    return writeSync(fd, chunk) === chunk.length;
  } catch {
    return false; // EAGAIN (the pipe is full) or the fd is gone
  }
}

/** Receives messages from every writer of a FIFO. */
export class FifoReceiver<T> extends ChannelBase<T> {
  readonly #input: Socket;
  readonly #splitter: Splitter;

  /** `fd`: the FIFO opened read-write; the receiver owns it. */
  constructor(what: string, fd: number, format: FifoFormat, opts: ChannelOptions<T>) {
    super(what, opts);
    const input = readStream(fd);
    this.#input = input;
    this.#splitter = createSplitter(format, what, this.maxMessageBytes, {
      frame: (payload, owned) => this.deliver(payload, owned),
      error: (err) => this.deliverError(err),
      // The fd is open for writing too: the 'frames' barrier goes into the FIFO behind what is there.
      writeBack: (chunk) => !input.destroyed && writeWhole(fd, chunk),
    });
    this.oneWay('send');
    input.on('data', (chunk: Buffer) => this.#splitter.push(chunk));
    input.on('error', (err) => this.peerGone(`read error ${(err as NodeJS.ErrnoException).code}`, err));
  }

  protected transmit(): boolean {
    return false; // oneWay('send') rejects every send before it gets here
  }

  protected pauseInput(): void {
    this.#input.pause();
    this.#splitter.paused?.(true);
  }

  protected resumeInput(): void {
    this.#splitter.paused?.(false);
    this.#input.resume();
  }

  protected async endOutput(): Promise<void> {}

  protected teardown(): void {
    this.#splitter.close();
    this.#input.destroy();
  }
}

const QUEUE_LIMIT = 256 * 1024;

/** Sends messages into a FIFO, with writes that stay atomic among concurrent writers. */
export class FifoSender<T> extends ChannelBase<T> {
  readonly #output: Socket;
  readonly #fd: number;
  readonly #format: FifoFormat;
  /** This sender's identity in 'frames' chunks. */
  readonly #writer: FrameWriter | undefined;
  /**
   * Groups of whole messages, each to be written by one write(2); for 'frames', also a large
   * message's chunks back to back, written PIPE_BUF bytes (one chunk) at a time.
   */
  readonly #groups: Uint8Array[] = [];
  /** A chunk of a large 'frames' message has been written, and its last one not yet. */
  #midMessage = false;
  /** The write in progress, until its callback. */
  #inFlight: Uint8Array | undefined;
  #group: Buffer = Buffer.allocUnsafe(PIPE_BUF);
  #groupLength = 0;
  #queuedBytes = 0;
  #flushScheduled = false;
  #idle: (() => void) | undefined;
  /**
   * The process exits with groups not yet written (process.exit() runs no tick): written now. A
   * write in flight is one a sender issues at a time: what libuv still holds of it (a write the
   * kernel refused, EAGAIN) would never happen, and what follows would be written first, so its
   * unwritten tail goes first. libuv's queue says how much that is (see unsentBytes): asking the
   * stream instead wrote a chunk libuv had retried successfully a second time.
   */
  readonly #flushAtExit = (): void => {
    this.#closeGroup();
    if (this.#output.destroyed) return;
    const inFlight = this.#inFlight;
    const unwritten = inFlight
      ? Math.min(unsentBytes(this.#output) ?? this.#output.writableLength, inFlight.length)
      : 0;
    const refused = unwritten > 0 ? [inFlight!.subarray(inFlight!.length - unwritten)] : [];
    writeFdAtExit(this.#fd, [...refused, ...this.#groups.splice(0).flatMap(pieces)]);
  };

  /** `fd`: the FIFO opened write-only; the sender owns it. */
  constructor(what: string, fd: number, format: FifoFormat, opts: ChannelOptions<T>) {
    super(what, opts);
    const output = writeStream(fd);
    this.#output = output;
    this.#fd = fd;
    this.#format = format;
    this.#writer = format === 'frames' ? newFrameWriter() : undefined;
    this.oneWay('receive');
    output.on('error', (err: NodeJS.ErrnoException) =>
      this.peerGone(
        err.code === 'EPIPE' ? 'the FIFO has no reader any more' : `write error ${err.code ?? err.message}`,
        err,
      ),
    );
  }

  protected transmit(payload: Uint8Array): boolean {
    const writer = this.#writer;
    if (writer && payload.length <= SINGLE_CHUNK_PAYLOAD) {
      // The hot path: the chunk is encoded straight into the group, no allocation.
      if (this.#groupLength + FIRST_HEADER + payload.length > PIPE_BUF) this.#closeGroup();
      const written = writeSingleChunk(this.#group, this.#groupLength, payload, writer);
      this.#groupLength += written;
      this.#queuedBytes += written;
      this.#scheduleFlush();
      this.#pump();
      return this.#queuedBytes < QUEUE_LIMIT;
    }
    const wire = wireBytes(this.#format, payload, writer);
    this.#queuedBytes += wire.length;
    if (wire.length > PIPE_BUF) {
      this.#closeGroup();
      // Queued until the pipe takes it, while send has resolved: 'bytes' passes the caller's own
      // buffer through, which it may refill now, so that one is queued as a copy.
      this.#groups.push(wire === payload ? new Uint8Array(payload) : wire);
      flushAtExit(this.#flushAtExit);
    } else {
      if (this.#groupLength + wire.length > PIPE_BUF) this.#closeGroup();
      this.#group.set(wire, this.#groupLength);
      this.#groupLength += wire.length;
      this.#scheduleFlush();
    }
    this.#pump();
    return this.#queuedBytes < QUEUE_LIMIT;
  }

  /**
   * Sends on in this tick join the group; it is written on the next, or at the process's exit if
   * that comes first (registered once per group, not per message).
   */
  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    flushAtExit(this.#flushAtExit);
    process.nextTick(() => {
      this.#flushScheduled = false;
      this.#closeGroup();
      this.#pump();
    });
  }

  protected pauseInput(): void {}
  protected resumeInput(): void {}

  protected async endOutput(): Promise<void> {
    this.#closeGroup();
    this.#pump();
    if (this.#inFlight) await new Promise<void>((resolve) => (this.#idle = resolve));
    // The reader went away (EPIPE): the failed write destroyed the stream, nothing is left to end.
    if (this.#output.destroyed) return;
    await new Promise<void>((resolve) => this.#output.end(resolve));
  }

  protected teardown(): void {
    // Destroyed in the middle of a large message: tell the receiver now that it will not complete,
    // rather than leave it waiting for this process to exit (best effort: a full pipe refuses it).
    if (this.#midMessage && this.#writer && !this.#output.destroyed) {
      writeWhole(this.#fd, abortChunk(this.#writer));
    }
    this.#output.destroy();
    // Nothing is written for it at exit any more: dropped now, with its buffers.
    flushedBeforeExit(this.#flushAtExit);
  }

  #closeGroup(): void {
    if (this.#groupLength === 0) return;
    this.#groups.push(this.#group.subarray(0, this.#groupLength));
    this.#group = Buffer.allocUnsafe(PIPE_BUF);
    this.#groupLength = 0;
  }

  #pump(): void {
    if (this.#inFlight || this.#output.destroyed) return;
    const head = this.#groups[0];
    if (!head) {
      if (this.#groupLength === 0) flushedBeforeExit(this.#flushAtExit);
      this.#idle?.();
      this.#idle = undefined;
      return;
    }
    let next = head;
    if (this.#writer && head.length > PIPE_BUF) {
      // One chunk of a large message; the rest stays at the head of the queue.
      next = head.subarray(0, PIPE_BUF);
      this.#groups[0] = head.subarray(PIPE_BUF);
      this.#midMessage = true;
    } else {
      this.#groups.shift();
    }
    const ends = next === head;
    this.#inFlight = next;
    this.#output.write(next, (err?: Error | null) => {
      this.#inFlight = undefined;
      if (err) {
        // Reported by the 'error' event; a close() waiting for this write goes on.
        this.#idle?.();
        this.#idle = undefined;
        return;
      }
      if (ends) this.#midMessage = false;
      this.#queuedBytes -= next.length;
      this.#pump();
      if (this.#queuedBytes < QUEUE_LIMIT) this.writable();
    });
  }
}

/** A queued group cut into writes of at most PIPE_BUF bytes (for 'frames', each a whole chunk). */
function pieces(group: Uint8Array): Uint8Array[] {
  if (group.length <= PIPE_BUF) return [group];
  const out: Uint8Array[] = [];
  for (let at = 0; at < group.length; at += PIPE_BUF) out.push(group.subarray(at, at + PIPE_BUF));
  return out;
}
