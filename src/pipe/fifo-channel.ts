/**
 * The two ends of a FIFO as message channels. The receiver holds the FIFO open read-write, so it
 * outlives any one writer and never sees end-of-file between writers; it ends when closed. The
 * sender writes each group of whole messages that fits in PIPE_BUF with one write(2), one at a
 * time, so the kernel never interleaves them with another writer's.
 */
import type { Socket } from 'node:net';
import { ChannelBase, type ChannelOptions } from '../core/channel.js';
import { flushAtExit, flushedBeforeExit, writeAtExit } from '../core/exit-flush.js';
import { createSplitter, type FifoFormat, PIPE_BUF, type Splitter, wireBytes } from './fifo-format.js';

/** Receives messages from every writer of a FIFO. */
export class FifoReceiver<T> extends ChannelBase<T> {
  readonly #input: Socket;
  readonly #splitter: Splitter;

  constructor(what: string, input: Socket, format: FifoFormat, opts: ChannelOptions<T>) {
    super(what, opts);
    this.#input = input;
    this.#splitter = createSplitter(format, what, this.maxMessageBytes, {
      frame: (payload) => this.deliver(payload),
      error: (err) => this.deliverError(err),
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
  }

  protected resumeInput(): void {
    this.#input.resume();
  }

  protected async endOutput(): Promise<void> {}

  protected teardown(): void {
    this.#input.destroy();
  }
}

const QUEUE_LIMIT = 256 * 1024;

/** Sends messages into a FIFO, with writes that stay atomic among concurrent writers. */
export class FifoSender<T> extends ChannelBase<T> {
  readonly #output: Socket;
  readonly #format: FifoFormat;
  /** Groups of whole messages, each to be written by one write(2). */
  readonly #groups: Uint8Array[] = [];
  #group: Buffer = Buffer.allocUnsafe(PIPE_BUF);
  #groupLength = 0;
  #queuedBytes = 0;
  #writing = false;
  #flushScheduled = false;
  #idle: (() => void) | undefined;
  /** The process exits with groups not yet written (process.exit() runs no tick): written now. */
  readonly #flushAtExit = (): void => {
    this.#closeGroup();
    if (this.#output.destroyed || this.#groups.length === 0) return;
    writeAtExit(this.#output, this.#groups.splice(0));
  };

  constructor(what: string, output: Socket, format: FifoFormat, opts: ChannelOptions<T>) {
    super(what, opts);
    this.#output = output;
    this.#format = format;
    this.oneWay('receive');
    output.on('error', (err: NodeJS.ErrnoException) =>
      this.peerGone(
        err.code === 'EPIPE' ? 'the FIFO has no reader any more' : `write error ${err.code ?? err.message}`,
        err,
      ),
    );
  }

  protected transmit(payload: Uint8Array): boolean {
    const wire = wireBytes(this.#format, payload);
    this.#queuedBytes += wire.byteLength;
    flushAtExit(this.#flushAtExit);
    if (wire.byteLength > PIPE_BUF) {
      this.#closeGroup();
      // Queued until the pipe takes it, while send has resolved: 'bytes' passes the caller's own
      // buffer through, which it may refill now, so that one is queued as a copy.
      this.#groups.push(wire === payload ? new Uint8Array(payload) : wire);
    } else {
      if (this.#groupLength + wire.byteLength > PIPE_BUF) this.#closeGroup();
      this.#group.set(wire, this.#groupLength);
      this.#groupLength += wire.byteLength;
      if (!this.#flushScheduled) {
        this.#flushScheduled = true;
        process.nextTick(() => {
          this.#flushScheduled = false;
          this.#closeGroup();
          this.#pump();
        });
      }
    }
    this.#pump();
    return this.#queuedBytes < QUEUE_LIMIT;
  }

  protected pauseInput(): void {}
  protected resumeInput(): void {}

  protected async endOutput(): Promise<void> {
    this.#closeGroup();
    this.#pump();
    if (this.#writing) await new Promise<void>((resolve) => (this.#idle = resolve));
    await new Promise<void>((resolve) => this.#output.end(resolve));
  }

  protected teardown(): void {
    this.#output.destroy();
  }

  #closeGroup(): void {
    if (this.#groupLength === 0) return;
    this.#groups.push(this.#group.subarray(0, this.#groupLength));
    this.#group = Buffer.allocUnsafe(PIPE_BUF);
    this.#groupLength = 0;
  }

  #pump(): void {
    if (this.#writing || this.#output.destroyed) return;
    const next = this.#groups.shift();
    if (!next) {
      if (this.#groupLength === 0) flushedBeforeExit(this.#flushAtExit);
      this.#idle?.();
      this.#idle = undefined;
      return;
    }
    this.#writing = true;
    this.#output.write(next, (err?: Error | null) => {
      this.#writing = false;
      if (err) return; // reported by the 'error' event
      this.#queuedBytes -= next.byteLength;
      this.#pump();
      if (this.#queuedBytes < QUEUE_LIMIT) this.writable();
    });
  }
}
