/**
 * The Channel contract and the lifecycle base every transport extends. The base owns what is the
 * same everywhere: encoding with the codec, the bounded receive queue and its waiters, send
 * backpressure, `{ signal, timeout }`, async iteration, and close/destroy semantics. A transport
 * supplies only how bytes move (`transmit`, `pauseInput`, `resumeInput`, `endOutput`, `teardown`)
 * and reports what happens to it (`deliver`, `writable`, `peerClosed`, `peerGone`, `fail`).
 */
import { type CodecOptions, type MessageCodec, resolveCodec } from './codec.js';
import { closedError, ErrorCodes, IpcError } from './errors.js';
import { checkMaxMessageBytes, frameTooLarge } from './framing.js';
import { numberError } from './options.js';
import { Queue } from './queue.js';
import { abortedError, armWait, checkWaitOptions, type WaitOptions } from './wait.js';

export type { WaitOptions } from './wait.js';

/** The sending half of a channel. `await using` closes it. */
export interface Sender<T> extends AsyncDisposable {
  /** Resolves once the transport accepted the message; waits while the peer is behind. */
  send(message: T, opts?: WaitOptions): Promise<void>;
  /**
   * Sends only if the transport takes the message now, without a promise: `true` when it was
   * accepted (as a `send` that resolves at once), `false` when the transport is full or sends are
   * already waiting, and then nothing was sent (`await send()` it instead). Errors that `send`
   * would reject with (closed channel, gone peer, codec failure, oversized message) are thrown.
   */
  trySend(message: T): boolean;
  /** Flushes what was sent, ends the channel, and is idempotent. */
  close(): Promise<void>;
  /** Ends the channel at once; pending operations reject with ERR_IPC_CLOSED. */
  destroy(reason?: Error): void;
  readonly closed: boolean;
}

/**
 * The receiving half of a channel. Async iteration ends cleanly when the peer closes. `await using`
 * closes it.
 */
export interface Receiver<T> extends AsyncIterable<T>, AsyncDisposable {
  /** The next message; ERR_IPC_TIMEOUT / ERR_IPC_ABORTED leave the channel intact. */
  receive(opts?: WaitOptions): Promise<T>;
  /**
   * The next message if one has arrived, without a promise: `{ message }`, or `undefined` when
   * none is there now (or a `receive` is already waiting for it). Throws what `receive` would reject
   * with: the message's codec or schema error (the next call goes on with the next message),
   * ERR_IPC_CLOSED once the channel or the peer closed and everything sent was received,
   * ERR_IPC_PEER_GONE.
   */
  tryReceive(): { message: T } | undefined;
  close(): Promise<void>;
  destroy(reason?: Error): void;
  readonly closed: boolean;
}

/** A duplex, message-oriented connection between two processes. `await using` closes it. */
export interface Channel<T> extends Sender<T>, Receiver<T> {}

/**
 * A message received without a copy of its own (`receiveView()` of the shared-memory and pipe
 * channels): `bytes` stays valid until `release()`, which gives the memory back for later messages.
 */
export interface MessageView {
  /** The encoded message (with `codecs.raw`, the message itself). */
  readonly bytes: Uint8Array;
  /** Gives the bytes back. Idempotent; `bytes` must not be used afterwards. */
  release(): void;
}

/** A view's message, decoded with `codec` into memory of its own; the view is released either way. */
export function decodeView<T>(codec: MessageCodec<T>, view: MessageView): T {
  try {
    return codec.decode(view.bytes, false);
  } finally {
    view.release();
  }
}

/** Options every channel accepts. */
export interface ChannelOptions<T = unknown> extends CodecOptions<T> {
  /** Largest encoded message accepted either way, in bytes. Default 64 MiB. */
  maxMessageBytes?: number;
  /**
   * Messages buffered on the receiving side before the transport is paused, which in turn makes the
   * peer's `send` wait. Default 1024.
   */
  receiveHighWaterMark?: number;
}

/** A message that failed to decode, queued in order among the good ones (which are queued bare). */
class ReceiveFailure {
  constructor(readonly error: IpcError) {}
}

/** What {@link ChannelBase}'s queue hands out when it holds nothing. */
const NOTHING: unique symbol = Symbol('nothing received');

interface ReceiveWaiter<T> {
  resolve(value: T): void;
  reject(err: unknown): void;
  disarm(): void;
}

interface SendWaiter {
  payload: Uint8Array;
  resolve(): void;
  reject(err: unknown): void;
  disarm(): void;
}

const RESOLVED: Promise<void> = Promise.resolve();

/** Where a channel is in its life. */
type State =
  | 'open'
  /** close() was called: flushing queued sends, then ending the output. */
  | 'closing'
  /** Our side is finished; nothing more can be sent or received. */
  | 'closed';

/**
 * The lifecycle base of every ipckit channel. Subclasses call {@link ChannelBase.deliver} for each
 * incoming payload and report transport events; everything users see is implemented here.
 */
export abstract class ChannelBase<T> implements Channel<T> {
  /** A label for messages: the resource name or transport. */
  protected readonly what: string;
  protected readonly codec: MessageCodec<T>;
  protected readonly maxMessageBytes: number;
  /** The largest message a send may carry: maxMessageBytes, or less (see {@link limitSends}). */
  protected sendLimit: number;
  #sendLimitName = 'maxMessageBytes';
  readonly #highWater: number;
  readonly #lowWater: number;

  #state: State = 'open';
  /** Why input ended: undefined while the peer may still send. */
  #inputEnd: IpcError | undefined;
  /** Why output is unusable: undefined while sends can go out. */
  #outputEnd: IpcError | undefined;
  #received = new Queue<T | ReceiveFailure>();
  #receivers = new Queue<ReceiveWaiter<T>>();
  #senders = new Queue<SendWaiter>();
  #blocked = false;
  #inputPaused = false;
  #closing: Promise<void> | undefined;

  protected constructor(what: string, opts: ChannelOptions<T> | undefined) {
    this.what = what;
    this.codec = resolveCodec(opts, what);
    this.maxMessageBytes = checkMaxMessageBytes(opts?.maxMessageBytes);
    this.sendLimit = this.maxMessageBytes;
    const high = checkHighWaterMark(opts?.receiveHighWaterMark);
    this.#highWater = high;
    this.#lowWater = Math.max(0, Math.floor(high / 2));
  }

  // ---- what transports implement -------------------------------------------------------------

  /**
   * True for a transport whose {@link ChannelBase.transmit} copies the payload before it returns
   * (into a write batch, a ring): `send` may then encode into the codec's scratch memory.
   */
  protected readonly copiesPayload: boolean = false;

  /**
   * Hands one encoded payload to the transport. Returns false when the transport is now full.
   * `lazy` (from `trySend`, whose callers send in a synchronous loop): the transport may make the
   * payload visible to the peer later in the same synchronous run, at the latest in a microtask.
   */
  protected abstract transmit(payload: Uint8Array, lazy?: boolean): boolean;
  /** Stops reading input (the receive queue is full). */
  protected abstract pauseInput(): void;
  /** Starts reading input again. */
  protected abstract resumeInput(): void;
  /** Flushes everything transmitted, tells the peer goodbye and ends the output. */
  protected abstract endOutput(): Promise<void>;
  /** Releases every resource at once (fds, handles, timers). Called exactly once. */
  protected abstract teardown(): void;
  /**
   * Called by `receive()` (and `tryReceive()`, with `mayWait` false) when nothing is queued: a
   * transport that can see input without an event-loop turn (shared memory) delivers it now, so a
   * reply that is already there costs no turn of the loop. `mayWait`: the caller is about to wait
   * anyway, so the transport may spin a moment for a reply about to come. The default does nothing.
   */
  protected pollInput(_mayWait: boolean): void {}

  // ---- what transports report -----------------------------------------------------------------

  /**
   * One complete incoming payload; the view need only be valid during the call, unless `owned`
   * says it is a buffer of its own that the message may keep (the raw codec then skips its copy).
   */
  protected deliver(payload: Uint8Array, owned = false): void {
    if (this.#state === 'closed') return;
    let item: T | ReceiveFailure;
    try {
      item = this.codec.decode(payload, owned);
    } catch (err) {
      item = new ReceiveFailure(err as IpcError);
    }
    this.#accept(item);
  }

  /**
   * {@link ChannelBase.deliver} for a payload that is the message already: a plain Uint8Array of
   * the transport's own, for a codec that {@link MessageCodec.passesOwnedThrough}. A small message's
   * decode call, its try block and its Buffer check took 14–25 % of a shared-memory reader's
   * time per message (docs/benchmarks.md, 2026-11-29).
   */
  protected deliverDecoded(message: T): void {
    if (this.#state === 'closed') return;
    this.#accept(message);
  }

  /**
   * {@link ChannelBase.deliver} for a payload that lies in `data` from `start` to `end`, valid
   * during the call: the codec may decode it in place, without a view of the range.
   */
  protected deliverRange(data: Uint8Array, start: number, end: number): void {
    if (this.#state === 'closed') return;
    let item: T | ReceiveFailure;
    try {
      item = this.codec.decodeRange(data, start, end);
    } catch (err) {
      item = new ReceiveFailure(err as IpcError);
    }
    this.#accept(item);
  }

  /**
   * Takes every message queued ahead for `receive()`, in order, for a transport whose reader has
   * switched to another way of receiving (ShmChannel.receiveView) and hands them out there.
   */
  protected takeQueued(): Array<{ message: T } | { error: IpcError }> {
    const taken = this.#received
      .drain()
      .map((item) => (item instanceof ReceiveFailure ? { error: item.error } : { message: item as T }));
    // The queue is empty now: input paused for it goes on.
    if (this.#inputPaused && this.#state === 'open') {
      this.#inputPaused = false;
      this.resumeInput();
    }
    return taken;
  }

  /** Why nothing more will be received (the channel closed, or its input ended), or undefined. */
  protected get receiveEnded(): IpcError | undefined {
    return this.#inputError();
  }

  /** receiveHighWaterMark: input pauses when this many messages wait unreceived. */
  protected get highWaterMark(): number {
    return this.#highWater;
  }

  /** Paused input resumes once no more than this many messages wait unreceived. */
  protected get lowWaterMark(): number {
    return this.#lowWater;
  }

  /** How many receive() calls wait for a message now. */
  protected get receiversWaiting(): number {
    return this.#receivers.length;
  }

  /** Hands a decoded message (or its failure) to the first waiting receive, or queues it. */
  #accept(item: T | ReceiveFailure): void {
    const waiter = this.#receivers.shift();
    if (waiter) {
      waiter.disarm();
      if (item instanceof ReceiveFailure) waiter.reject(item.error);
      else waiter.resolve(item);
      return;
    }
    this.#received.push(item);
    if (!this.#inputPaused && this.#received.length >= this.#highWater) {
      this.#inputPaused = true;
      this.pauseInput();
    }
  }

  /**
   * A receive-side error that concerns one message only (a corrupt or oversized record the
   * transport skipped): it is received in order, and the channel stays usable. It counts toward
   * the receive high-water mark as a message does: a writer sending nothing but bad records must
   * not grow the queue of a receiver that is not reading.
   */
  protected deliverError(err: IpcError): void {
    if (this.#state === 'closed') return;
    this.#accept(new ReceiveFailure(err));
  }

  /** The transport can take more: queued sends go out. */
  protected writable(): void {
    this.#blocked = false;
    while (!this.#blocked && this.#senders.length > 0 && !this.#outputEnd) {
      const waiter = this.#senders.shift()!;
      waiter.disarm();
      // The limit may have dropped while it waited (a socket client's new server takes less).
      if (waiter.payload.length > this.sendLimit) {
        waiter.reject(this.tooLargeToSend(this.what, waiter.payload.length));
        continue;
      }
      this.#blocked = !this.transmit(waiter.payload);
      waiter.resolve();
    }
    if (this.#senders.length === 0 && this.#state === 'closing') this.#drainedForClose?.();
  }

  /** The peer said goodbye: input ends cleanly after what is queued, and the peer takes no more. */
  protected peerClosed(): void {
    const err = new IpcError(ErrorCodes.CLOSED, `${this.what}: the peer closed the channel`);
    this.#endInput(err);
    this.#endOutputWith(err);
  }

  /** The peer vanished without a goodbye (died, or the link broke). */
  protected peerGone(detail: string, cause?: unknown): void {
    const err = this.#goneError(detail, cause);
    this.#endInput(err);
    this.#endOutputWith(err);
  }

  #goneError(detail: string, cause: unknown): IpcError {
    return new IpcError(ErrorCodes.PEER_GONE, `${this.what}: ${detail}`, cause ? { cause } : undefined);
  }

  /**
   * Only the outgoing direction broke (a pipe whose reader closed: EPIPE) while the incoming one,
   * a separate stream, may still hold what the peer sent before it went: sends fail with
   * ERR_IPC_PEER_GONE, receives go on until the input ends.
   */
  protected outputGone(detail: string, cause?: unknown): void {
    this.#endOutputWith(this.#goneError(detail, cause));
  }

  /** Marks a one-way channel: the missing direction fails with ERR_IPC_CLOSED naming why. */
  protected oneWay(missing: 'send' | 'receive'): void {
    const err = new IpcError(
      ErrorCodes.CLOSED,
      `${this.what}: this end is ${missing === 'send' ? 'receive' : 'send'}-only`,
    );
    if (missing === 'send') this.#endOutputWith(err);
    else this.#endInput(err);
  }

  /** An unrecoverable transport error (bad frames, I/O error): both directions end with it. */
  protected fail(err: IpcError): void {
    this.#endInput(err);
    this.#endOutputWith(err);
  }

  // ---- the public surface ---------------------------------------------------------------------

  get closed(): boolean {
    return this.#state !== 'open';
  }

  send(message: T, opts?: WaitOptions): Promise<void> {
    try {
      checkWaitOptions(opts);
    } catch (err) {
      return Promise.reject(err);
    }
    // Node's convention, as for every wait in ipckit: a signal aborted before the call fails it,
    // even when it could complete at once. Nothing is sent.
    if (opts?.signal?.aborted) return Promise.reject(abortedError(`${this.what}: send`, opts.signal));
    const unusable = this.#outputError();
    if (unusable) return Promise.reject(unusable);
    const now = !this.#blocked && this.#senders.length === 0;
    let payload: Uint8Array;
    try {
      payload = this.#encodeForSend(message, now);
    } catch (err) {
      return Promise.reject(err);
    }
    if (now) {
      this.#blocked = !this.transmit(payload);
      return RESOLVED;
    }
    return new Promise<void>((resolve, reject) => {
      const waiter: SendWaiter = { payload, resolve, reject, disarm: noop };
      this.#senders.push(waiter);
      waiter.disarm = armWait(`${this.what}: send`, opts, (err) => {
        this.#senders.remove(waiter);
        reject(err);
      });
    });
  }

  trySend(message: T): boolean {
    const unusable = this.#outputError();
    if (unusable) throw unusable;
    if (this.#blocked || this.#senders.length > 0) return false;
    this.#blocked = !this.transmit(this.#encodeForSend(message, true), true);
    return true;
  }

  /** Why nothing can be sent now (closed, or the output ended), or undefined. */
  #outputError(): IpcError | undefined {
    if (this.#state !== 'open') return closedError(this.what);
    return this.#outputEnd;
  }

  /**
   * The payload of a message, within maxMessageBytes (or throws). `now`: it goes to the transport
   * at once, so a transport that copies it may take the codec's scratch memory.
   */
  #encodeForSend(message: T, now: boolean): Uint8Array {
    const payload =
      now && this.copiesPayload ? this.codec.encodeTransient(message) : this.codec.encode(message);
    if (payload.length > this.sendLimit) throw this.tooLargeToSend(this.what, payload.length);
    return payload;
  }

  /**
   * Lowers the send limit to `peerMax` when the peer accepts less than this end's maxMessageBytes
   * (a socket peer says so in its handshake): a larger message is then refused here, with the
   * connection intact, instead of ending the connection at the peer.
   */
  protected limitSends(peerMax: number, whose: string): void {
    this.sendLimit = Math.min(this.maxMessageBytes, peerMax);
    this.#sendLimitName =
      this.sendLimit < this.maxMessageBytes ? `${whose} maxMessageBytes` : 'maxMessageBytes';
  }

  /** ERR_IPC_FRAME_TOO_LARGE for `bytes` over the send limit, naming whose limit it is. */
  protected tooLargeToSend(what: string, bytes: number): IpcError {
    return frameTooLarge(what, bytes, this.sendLimit, this.#sendLimitName);
  }

  receive(opts?: WaitOptions): Promise<T> {
    try {
      checkWaitOptions(opts);
    } catch (err) {
      return Promise.reject(err);
    }
    // As for send: nothing is taken.
    if (opts?.signal?.aborted) return Promise.reject(abortedError(`${this.what}: receive`, opts.signal));
    const item = this.#takeReceived();
    if (item !== NOTHING)
      return item instanceof ReceiveFailure ? Promise.reject(item.error) : Promise.resolve(item);
    const ended = this.#inputError();
    if (ended) return Promise.reject(ended);
    return new Promise<T>((resolve, reject) => {
      const waiter: ReceiveWaiter<T> = { resolve, reject, disarm: noop };
      this.#receivers.push(waiter);
      waiter.disarm = armWait(`${this.what}: receive`, opts, (err) => {
        this.#receivers.remove(waiter);
        reject(err);
      });
    });
  }

  tryReceive(): { message: T } | undefined {
    const item = this.#takeReceived(false);
    if (item === NOTHING) {
      const ended = this.#inputError();
      if (ended) throw ended;
      return undefined;
    }
    if (item instanceof ReceiveFailure) throw item.error;
    return { message: item };
  }

  /** Why nothing more will be received (closed, or the input ended), or undefined. */
  #inputError(): IpcError | undefined {
    if (this.#state === 'closed') return closedError(this.what);
    return this.#inputEnd;
  }

  /** The next queued message, polling the transport once if none is queued and nobody waits. */
  #takeReceived(mayWait = true): T | ReceiveFailure | typeof NOTHING {
    const received = this.#received;
    if (received.length === 0) {
      if (this.#receivers.length > 0 || this.#state === 'closed' || this.#inputEnd) return NOTHING;
      this.pollInput(mayWait);
      if (received.length === 0) return NOTHING;
    }
    // Messages are queued bare (a message may itself be undefined), so emptiness is the length.
    const item = received.shift() as T | ReceiveFailure;
    if (this.#inputPaused && received.length <= this.#lowWater && this.#state === 'open') {
      this.#inputPaused = false;
      this.resumeInput();
    }
    return item;
  }

  /**
   * Iterates incoming messages. Ends when the peer closes; throws ERR_IPC_PEER_GONE if it died and
   * the codec/schema error of a bad message (iterate again to go on). Breaking out does not close
   * the channel: it is duplex and may still send.
   */
  [Symbol.asyncIterator](): AsyncIterator<T> {
    const endAtClose = (err: unknown): IteratorResult<T> => {
      if (err instanceof IpcError && err.code === ErrorCodes.CLOSED) return { done: true, value: undefined };
      throw err;
    };
    return {
      // Not an async function: a message already queued costs one settled promise, not three.
      next: (): Promise<IteratorResult<T>> => {
        const item = this.#takeReceived();
        if (item === NOTHING) return this.receive().then((value) => ({ done: false, value }), endAtClose);
        if (item instanceof ReceiveFailure) return Promise.reject(item.error).then(undefined, endAtClose);
        return Promise.resolve({ done: false, value: item });
      },
      return: async (): Promise<IteratorResult<T>> => ({ done: true, value: undefined }),
    };
  }

  #drainedForClose: (() => void) | undefined;
  #destroyedWhileClosing: (() => void) | undefined;

  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    if (this.#state === 'closed') return RESOLVED;
    this.#state = 'closing';
    this.#closing = (async () => {
      if (this.#senders.length > 0 && !this.#outputEnd) {
        await new Promise<void>((resolve) => {
          this.#drainedForClose = resolve;
        });
      }
      if (!this.#outputEnd && this.#state === 'closing') {
        // The peer may be gone already: what was sent before close() was accepted, nothing to undo.
        const ended = this.endOutput().catch(() => {});
        // A destroy() meanwhile ends the wait: a transport torn down may never finish its output.
        await Promise.race([
          ended,
          new Promise<void>((resolve) => {
            this.#destroyedWhileClosing = resolve;
          }),
        ]);
      }
      this.#finish(closedError(this.what));
    })();
    return this.#closing;
  }

  destroy(reason?: Error): void {
    if (this.#state === 'closed') return;
    this.#finish(closedError(this.what, reason));
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  // ---- internals ------------------------------------------------------------------------------

  #finish(err: IpcError): void {
    // A destroy() during close() finished the channel already; close() then only settles.
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    this.#inputEnd ??= err;
    this.#outputEnd ??= err;
    for (const waiter of this.#receivers.drain()) {
      waiter.disarm();
      waiter.reject(err);
    }
    for (const waiter of this.#senders.drain()) {
      waiter.disarm();
      waiter.reject(err);
    }
    this.#received.drain();
    this.#drainedForClose?.();
    this.#destroyedWhileClosing?.();
    this.teardown();
  }

  #endInput(err: IpcError): void {
    // Once close() has begun, what the transport reports is a consequence of closing: pending
    // receives reject with ERR_IPC_CLOSED when it finishes, not with a transport error.
    if (this.#inputEnd || this.#state !== 'open') return;
    this.#inputEnd = err;
    // Messages already queued stay receivable; waiters exist only when the queue is empty.
    for (const waiter of this.#receivers.drain()) {
      waiter.disarm();
      waiter.reject(err);
    }
  }

  #endOutputWith(err: IpcError): void {
    if (this.#outputEnd) return;
    this.#outputEnd = err;
    for (const waiter of this.#senders.drain()) {
      waiter.disarm();
      waiter.reject(err);
    }
    if (this.#state === 'closing') this.#drainedForClose?.();
  }
}

function noop(): void {}

function checkHighWaterMark(value: number | undefined): number {
  const high = value ?? 1024;
  if (!Number.isInteger(high) || high < 1) {
    throw numberError(high, `options.receiveHighWaterMark must be a positive integer, got ${String(high)}`);
  }
  return high;
}

/**
 * Throws what a channel's constructor would for bad options, making nothing: for a caller that must
 * check them before it takes something it cannot give back (an fd wrapped in a stream).
 */
export function checkChannelOptions<T>(opts: ChannelOptions<T> | undefined, what: string): void {
  resolveCodec(opts, what);
  checkMaxMessageBytes(opts?.maxMessageBytes);
  checkHighWaterMark(opts?.receiveHighWaterMark);
}
