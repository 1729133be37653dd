/**
 * A Channel over byte streams (pipes, Unix sockets, TCP): the shared framing on top of Node sockets.
 * Frames sent within one tick are gathered into one buffer and leave in one write syscall; a batch
 * that reaches 64 KiB is flushed at once, so a tight `await send()` loop still streams.
 */
import type { Socket } from 'node:net';
import { ChannelBase, type ChannelOptions } from './channel.js';
import { ErrorCodes, IpcError } from './errors.js';
import {
  flushAtExit,
  flushedBeforeExit,
  lastBytes,
  socketFd,
  unsentBytes,
  writeFdAtExit,
} from './exit-flush.js';
import { Control, encodeHello, FrameBatch, FrameDecoder, parseHello } from './framing.js';

/** Options for a {@link StreamChannel}. */
export interface StreamChannelOptions<T> extends ChannelOptions<T> {
  /** Exchange a versioned hello first (connection-oriented streams). Default true. */
  handshake?: boolean;
}

const FLUSH_BYTES = 64 * 1024;

/**
 * After the process at the other end exited, input quiet this long (and one more poll of the loop)
 * means nothing more will come, even if the pipe never reaches its end: a process the peer left
 * behind holds its write end.
 */
const PEER_EXIT_QUIET_MS = 250;

/**
 * A framed channel over an input stream and an output stream, which may be one duplex socket.
 * Either may be absent for a one-way channel (an anonymous pipe's reader or writer).
 */
export class StreamChannel<T> extends ChannelBase<T> {
  readonly #input: Socket | undefined;
  readonly #output: Socket | undefined;
  readonly #batch = new FrameBatch();
  readonly #decoder: FrameDecoder;
  #flushScheduled = false;
  /** True while an incoming chunk is being decoded; the batch is flushed when it is done. */
  #reading = false;
  /** One closure per channel, not one per flush. */
  readonly #flushTick = (): void => this.#flush();
  /**
   * Writes handed to the output that the kernel had not taken all of when they were made, oldest
   * first, trimmed to what the output may still hold: at exit, the stream's unsent bytes are their
   * tail (see #flushAtExit).
   */
  #unfinished: Uint8Array[] = [];
  #unfinishedBytes = 0;
  /** The peer process has exited (see {@link StreamChannel.peerExited}). */
  #peerExited = false;
  #peerExitTimer: NodeJS.Timeout | undefined;
  /**
   * The input is stopped (pauseInput), whoever asked: the receive queue, or a subclass's own (views
   * not yet taken). Quiet then says nothing of the peer: its messages wait unread in the pipe.
   */
  #inputStopped = false;
  /** Input chunks read so far: the quiet bound's last look tells whether any came meanwhile. */
  #chunksRead = 0;
  /**
   * The process is exiting (process.exit() runs no tick): the batch whose tick did not come, and
   * the tail of earlier writes that libuv still held, are written synchronously, tail first. Without
   * the tail, a large message over a Unix socket (the kernel takes about 200 KiB at once) was lost
   * after its send had resolved.
   */
  readonly #flushAtExit = (): void => {
    const output = this.#output;
    if (!output || output.destroyed) return;
    const pending = this.#batch.byteLength > 0 ? [this.#batch.take()] : [];
    const unsent = this.#unfinishedBytes > 0 ? unsentBytes(output) : 0;
    const fd = socketFd(output);
    // TLS writes ciphertext to the fd; and a tail the stream cannot account for exactly is left.
    if ('encrypted' in output || fd === undefined || unsent === undefined || unsent > this.#unfinishedBytes) {
      for (const chunk of pending) output.write(chunk);
      return;
    }
    writeFdAtExit(fd, [...lastBytes(this.#unfinished, unsent), ...pending]);
  };
  #outputFull = false;
  #hello: Buffer | undefined;
  #goodbyeReceived = false;
  #settleReady: ((err?: IpcError) => void) | undefined;
  /**
   * Resolves once the peer's hello arrived (at once without a handshake); rejects if the stream
   * ended or spoke another protocol first. Connects await it so a mismatch fails the connect.
   */
  readonly ready: Promise<void>;

  constructor(
    what: string,
    input: Socket | undefined,
    output: Socket | undefined,
    opts?: StreamChannelOptions<T>,
  ) {
    super(what, opts);
    this.#input = input;
    this.#output = output;
    this.#decoder = new FrameDecoder(what, this.maxMessageBytes, {
      frame: (payload, owned) => this.receiveFrame(payload, owned),
      frameAt: (data, start, end) => this.receiveFrameAt(data, start, end),
      control: (code) => this.#onControl(code),
    });
    const handshake = (opts?.handshake ?? true) && input !== undefined && output !== undefined;
    this.ready = handshake
      ? new Promise<void>((resolve, reject) => {
          this.#settleReady = (err) => {
            this.#settleReady = undefined;
            if (err) reject(err);
            else resolve();
          };
        })
      : Promise.resolve();
    this.ready.catch(() => {}); // the same error reaches receive(); an unawaited ready is not a crash
    if (handshake) {
      this.#hello = Buffer.alloc(0);
      output!.write(encodeHello(this.codec.name));
    }
    if (input) {
      input.on('data', (chunk: Buffer) => this.#onData(chunk));
      input.on('end', () => this.#onEnd());
      input.on('error', (err) => this.#onError(err));
    } else {
      this.oneWay('receive');
    }
    if (output) {
      output.on('drain', () => {
        this.#outputFull = false;
        this.#forgetIfWritten();
        this.writable();
      });
      // A stream that ended, failed or was destroyed writes nothing more: nothing to keep for exit.
      output.once('close', () => {
        if (this.#unfinishedBytes > 0) this.#forgetUnfinished();
      });
      // With an input of its own, an output error ends sending only (see #onError).
      const outputOnly = input !== undefined;
      if (output !== input) output.on('error', (err) => this.#onError(err, outputOnly));
      if (input && output !== input) StreamChannel.#releaseOutputWithInput(input, output);
    } else {
      this.oneWay('send');
    }
  }

  /**
   * Two streams, one each way (a pair of pipes): closes the write end once the peer's side has
   * ended (it exited, or closed the channel). Nothing more can be sent by then (a peer that closed
   * or vanished takes no more), but the fd would otherwise stay open until the user closes the
   * channel: one leaked fd per child whose channel nobody closed. An output already ending (a
   * close() in progress) finishes on its own.
   */
  static #releaseOutputWithInput(input: Socket, output: Socket): void {
    input.once('close', () => {
      if (!output.writableEnded) output.destroy();
    });
  }

  // The write batch takes a copy.
  protected override readonly copiesPayload = true;

  protected transmit(payload: Uint8Array): boolean {
    this.#batch.add(payload);
    this.#scheduleFlush();
    return !this.#outputFull;
  }

  // ---- hooks for protocols layered on the stream (sockets) --------------------------------------

  /**
   * One frame whose payload is a small `head` (an envelope) followed by `body`, sent without
   * concatenating them first. Returns false when the output is now full.
   */
  protected transmitParts(head: Uint8Array, body: Uint8Array): boolean {
    this.#batch.addParts(head, body);
    this.#scheduleFlush();
    return !this.#outputFull;
  }

  /**
   * {@link transmitParts} for a frame its sender is now waiting on (a request, when it is the only
   * one): with nothing else batched it is written at once rather than at the end of the tick;
   * otherwise it joins the batch.
   */
  protected transmitPartsNow(head: Uint8Array, body: Uint8Array): boolean {
    this.#batch.addParts(head, body);
    if (this.#flushScheduled && this.#batch.byteLength < FLUSH_BYTES) return !this.#outputFull;
    this.#flush();
    return !this.#outputFull;
  }

  /** A control frame (a heartbeat), sent with this tick's batch. */
  protected transmitControl(code: number): void {
    this.#batch.addControl(code);
    this.#scheduleFlush();
  }

  /** True while the output stream is over its high-water mark (the peer is not keeping up). */
  protected get outputFull(): boolean {
    return this.#outputFull;
  }

  /** Hands what is batched to the output now (before ending or destroying it). */
  protected flushNow(): void {
    this.#flush();
  }

  /**
   * Assembles the frames that span reads in memory from `allocate` (a receiver that gives messages
   * back recycles it): with memory used before, a large message costs copies out of the read buffer
   * into pages already in place, and no fresh pages to fault in.
   */
  protected assembleFramesIn(allocate: (bytes: number) => Buffer): void {
    this.#decoder.allocate = allocate;
  }

  /** Changes the largest incoming frame accepted from now on (small until a handshake is done). */
  protected setInputLimit(bytes: number): void {
    this.#decoder.maxMessageBytes = bytes;
  }

  /**
   * One incoming data frame. The default delivers it as a message; a protocol that wraps messages
   * in an envelope overrides this. It may throw an IpcError: the stream then fails with it.
   */
  protected receiveFrame(payload: Uint8Array, owned?: boolean): void {
    this.deliver(payload, owned);
  }

  /**
   * One incoming data frame that lies whole in a chunk: `data` from `start` to `end`, valid during
   * the call. The default delivers it as a message, which the codec may decode where it lies. A
   * protocol that overrides {@link StreamChannel.receiveFrame} overrides this too.
   */
  protected receiveFrameAt(data: Uint8Array, start: number, end: number): void {
    this.deliverRange(data, start, end);
  }

  /**
   * The input broke the protocol (a bad frame, a wrong hello) or a receive hook refused it: the
   * channel fails with `err` and the input is dropped. A protocol that can tell its peer why
   * (sockets: ABORT) overrides this.
   */
  protected inputFailed(err: IpcError): void {
    this.fail(err);
    this.#input?.destroy();
  }

  #scheduleFlush(): void {
    if (this.#batch.byteLength >= FLUSH_BYTES) this.#flush();
    else if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      // While a chunk is being read, its end flushes: no tick needed.
      if (!this.#reading) {
        process.nextTick(this.#flushTick);
        flushAtExit(this.#flushAtExit);
      }
    }
  }

  protected pauseInput(): void {
    // Paused, unread bytes wait in the pipe: quiet says nothing then.
    this.#inputStopped = true;
    this.#disarmPeerExit();
    this.#input?.pause();
  }

  protected resumeInput(): void {
    this.#inputStopped = false;
    this.#input?.resume();
    this.#armPeerExit();
  }

  /**
   * @internal The process at the other end has exited (spawn() sees it). Its pipe normally ends
   * too, once read to the end; but a process it started inherits the pipe's ends, and the pipe
   * then never ends while that one lives. So input that stays quiet for PEER_EXIT_QUIET_MS from now
   * (counted only while reading) ends the channel with ERR_IPC_PEER_GONE, as its end would have.
   */
  peerExited(): void {
    if (this.#peerExited || !this.#input) return;
    this.#peerExited = true;
    this.#armPeerExit();
  }

  #armPeerExit(): void {
    if (!this.#peerExited || this.#inputStopped) return;
    this.#disarmPeerExit();
    const chunks = this.#chunksRead;
    this.#peerExitTimer = setTimeout(() => {
      // A loop blocked past the bound runs timers before it reads: what is already in the pipe is
      // read in this turn's poll, and only then does quiet mean nothing more is coming.
      setImmediate(() => {
        if (this.#peerExitTimer === undefined || this.#inputStopped) return;
        if (this.#chunksRead !== chunks) {
          this.#armPeerExit();
          return;
        }
        this.#onEnd('the peer exited, and a process it left running holds the pipe open');
        // Its fds are released as if the pipe had ended (the output goes with the input).
        this.#input?.destroy();
      });
    }, PEER_EXIT_QUIET_MS);
    this.#peerExitTimer.unref();
  }

  #disarmPeerExit(): void {
    clearTimeout(this.#peerExitTimer);
    this.#peerExitTimer = undefined;
  }

  protected async endOutput(): Promise<void> {
    const output = this.#output;
    if (!output) return;
    this.#batch.addControl(Control.GOODBYE);
    this.#flush();
    if (output.destroyed || output.writableFinished) return;
    await new Promise<void>((resolve, reject) => {
      output.once('error', reject);
      output.end(() => resolve());
    });
  }

  protected teardown(): void {
    this.#disarmPeerExit();
    this.#unfinished = [];
    this.#unfinishedBytes = 0;
    flushedBeforeExit(this.#flushAtExit);
    this.#settleReady?.(
      new IpcError(ErrorCodes.CLOSED, `${this.what} was closed before the peer said hello`),
    );
    this.#output?.destroy();
    if (this.#input !== this.#output) this.#input?.destroy();
  }

  #flush(): void {
    const scheduled = this.#flushScheduled;
    this.#flushScheduled = false;
    const output = this.#output;
    if (this.#unfinishedBytes > 0) this.#forgetIfWritten();
    else if (scheduled) flushedBeforeExit(this.#flushAtExit);
    if (this.#batch.byteLength === 0 || !output || output.destroyed) return;
    // With nothing queued, the write usually completes at once: a small batch then leaves from
    // the batch's own memory, uncopied, and the memory is free again right after. If the stream
    // keeps it after all (the kernel's buffer was full), the batch leaves it to the stream.
    const idle = output.writableLength === 0;
    const bytes = idle ? this.#batch.takeView() : this.#batch.take();
    // Once written, a large batch's memory goes back to the batch for reuse. A small batch gets no
    // callback: a write without one that completes at once costs the stream no tick and no
    // allocation (a fresh callback per write costs both), which a round trip feels.
    const lent = this.#batch.lends(bytes);
    const written = lent
      ? output.write(bytes, () => {
          this.#batch.release(bytes);
          this.#forgetIfWritten();
        })
      : output.write(bytes);
    if (output.writableLength === 0) {
      // The kernel took it all at once: the memory is free now. Its callback comes only a tick
      // later, and a sender looping on trySend() gives no tick: waiting for it, a flood over
      // loopback TCP (which takes megabytes at once) allocated a fresh batch per flush.
      if (lent) this.#batch.release(bytes);
      if (this.#unfinishedBytes > 0) this.#forgetUnfinished();
    } else {
      if (idle) this.#batch.kept(bytes);
      this.#trackUnfinished(bytes, output.writableLength);
    }
    if (!written) this.#outputFull = true;
  }

  /** Keeps `bytes` for #flushAtExit while the output may still hold up to `held` bytes. */
  #trackUnfinished(bytes: Uint8Array, held: number): void {
    this.#unfinished.push(bytes);
    this.#unfinishedBytes += bytes.length;
    // Older writes wholly before the last `held` bytes are done.
    while (this.#unfinishedBytes - this.#unfinished[0]!.length >= held) {
      this.#unfinishedBytes -= this.#unfinished.shift()!.length;
    }
    flushAtExit(this.#flushAtExit);
  }

  /** Once everything handed to the output is in the kernel, nothing is kept for exit. */
  #forgetIfWritten(): void {
    const output = this.#output;
    if (this.#unfinishedBytes > 0 && (!output || output.destroyed || output.writableLength === 0)) {
      this.#forgetUnfinished();
    }
  }

  #forgetUnfinished(): void {
    this.#unfinished = [];
    this.#unfinishedBytes = 0;
    if (!this.#flushScheduled) flushedBeforeExit(this.#flushAtExit);
  }

  #onData(chunk: Buffer): void {
    this.#chunksRead++;
    try {
      if (this.#hello) {
        chunk = this.#readHello(chunk);
        if (chunk.length === 0) return;
      }
      this.#reading = true;
      this.#decoder.push(chunk);
    } catch (err) {
      this.#settleReady?.(err as IpcError);
      this.inputFailed(err as IpcError);
    } finally {
      this.#reading = false;
    }
    // What this chunk's frames made us send (replies from synchronous handlers) leaves now, in one
    // write, rather than at the end of this turn of the event loop: a peer waiting on a round trip
    // waits for exactly that. Each chunk's replies got one write before too; this one is sooner.
    if (this.#flushScheduled) this.#flush();
  }

  /** Consumes the peer's hello; returns what follows it in the chunk. */
  #readHello(chunk: Buffer): Buffer {
    const bytes = this.#hello!.length ? Buffer.concat([this.#hello!, chunk]) : chunk;
    const used = parseHello(bytes, this.codec.name, this.what);
    if (used === 0) {
      // A copy: the chunk may be a view into a read buffer the transport reuses.
      this.#hello = Buffer.from(bytes);
      return Buffer.alloc(0);
    }
    this.#hello = undefined;
    this.#settleReady?.();
    return bytes.subarray(used);
  }

  #onControl(code: number): void {
    if (code === Control.PING) return; // a heartbeat: its arrival is all it says
    if (code === Control.GOODBYE) {
      this.#goodbyeReceived = true;
      this.peerClosed();
      return;
    }
    throw new IpcError(ErrorCodes.BAD_FRAME, `${this.what}: unknown control frame ${code}`);
  }

  /** The input ended; `exited`: ended by the peer's exit rather than the pipe's end, and why. */
  #onEnd(exited?: string): void {
    this.#disarmPeerExit();
    this.#peerExited = false;
    if (this.#goodbyeReceived) return;
    const midMessage = this.#decoder.midFrame || (this.#hello && this.#hello.length > 0);
    const detail = exited
      ? `${exited}${midMessage ? '; the partial message was dropped' : ''}`
      : midMessage
        ? 'the peer went away mid-message; the partial message was dropped'
        : 'the peer went away without closing the channel';
    this.#settleReady?.(new IpcError(ErrorCodes.PEER_GONE, `${this.what}: ${detail}`));
    this.peerGone(detail);
  }

  /**
   * A transport error. `outputOnly`: a write to the output of a pair of streams failed (the peer
   * closed its read end, or exited). What it wrote before that (messages, its goodbye) may still
   * wait in the input, so only sending ends; the input is read to its end, which says how the
   * peer left (a peer that closes at once, before this end even wrote its hello, loses nothing).
   */
  #onError(err: Error & { code?: string }, outputOnly = false): void {
    if (this.#goodbyeReceived && err.code === 'EPIPE') return;
    const cut = !outputOnly && this.#decoder.midFrame ? ' mid-message; the partial message was dropped' : '';
    const detail = `transport error ${err.code ?? err.message}${cut}`;
    if (outputOnly) {
      this.outputGone(detail, err);
      return;
    }
    this.#settleReady?.(new IpcError(ErrorCodes.PEER_GONE, `${this.what}: ${detail}`, { cause: err }));
    this.peerGone(detail, err);
  }
}
