/**
 * The channel a Supervisor gives for one named child: one stable Channel for the parent's code
 * while the process behind it is replaced. Each child's own channel is attached when it starts;
 * a pump moves its messages into this channel's queue, so messages a dying child sent are still
 * received, in order, before its successor's.
 *
 * While no child is up, `send` buffers up to `maxBuffered` messages (resolving at once) and
 * delivers them to the next child; beyond that it rejects with ERR_IPC_QUEUE_FULL. A send the old
 * child's transport refused because the child just died is buffered the same way. Messages the
 * transport had accepted before the child died are lost with it (at most once): use a message queue
 * where every message must be processed.
 */
import type { Channel } from '../core/channel.js';
import { closedError, ErrorCodes, IpcError, isIpcError } from '../core/errors.js';
import { Queue } from '../core/queue.js';
import { armWait, checkWaitOptions, type WaitOptions, withWait } from '../core/wait.js';

type Received<T> = { ok: true; value: T } | { ok: false; error: IpcError };

interface ReceiveWaiter<T> {
  resolve(value: T): void;
  reject(err: unknown): void;
  disarm(): void;
}

/** Messages held here before pumps stop reading from the children's channels. */
const HIGH_WATER = 1024;

/**
 * Once a child has exited, a receive on its channel that waits this long means all it wrote has
 * been read: what a dead process wrote is in the pipe already. Its channel is then released, even
 * if a process it left behind (one that inherited the pipe) keeps the end-of-file from coming.
 */
const DEAD_CHILD_QUIET_MS = 250;

function isTransportEnd(err: unknown): boolean {
  return isIpcError(err, ErrorCodes.PEER_GONE) || isIpcError(err, ErrorCodes.CLOSED);
}

/** A Channel to whichever process currently runs under one name of a Supervisor. */
export class SupervisedChannel<T> implements Channel<T> {
  readonly #what: string;
  readonly #maxBuffered: number;
  #current: Channel<T> | undefined;
  /** Sends waiting for the next child. */
  readonly #buffer = new Queue<T>();
  #flushing: Promise<void> | undefined;
  readonly #received = new Queue<Received<T>>();
  readonly #receivers = new Queue<ReceiveWaiter<T>>();
  /** Pumps parked because the receive queue is full. */
  #pumpWaiters: (() => void)[] = [];
  #pumps = 0;
  /** The latest child's pump: the next child's starts once it is done, so messages stay in order. */
  #lastPump: Promise<void> = Promise.resolve();
  /** Per attached child's channel: aborted when that child has exited (see #pump). */
  readonly #exited = new Map<Channel<T>, AbortController>();
  /** Set when no child will come any more: why receives and sends end. */
  #ended: IpcError | undefined;
  #closed = false;
  #closing: Promise<void> | undefined;
  /** The child's channel that close() is closing in order: its pump must not destroy it. */
  #closingChild: Channel<T> | undefined;

  /** @internal Made by the Supervisor. */
  constructor(what: string, maxBuffered: number) {
    this.#what = what;
    this.#maxBuffered = maxBuffered;
  }

  // ---- what the Supervisor calls ------------------------------------------------------------------

  /** @internal A child started; `channel` is its channel (undefined if it was spawned without one). */
  attach(channel: Channel<T> | undefined): void {
    if (!channel) {
      this.end(new IpcError(ErrorCodes.NOT_FOUND, `${this.#what}: the child was spawned without a channel`));
      return;
    }
    if (this.#closed || this.#ended) {
      void channel.close();
      return;
    }
    this.#current = channel;
    const exited = new AbortController();
    this.#exited.set(channel, exited);
    this.#lastPump = this.#pump(channel, this.#lastPump, exited.signal);
    if (this.#buffer.length > 0) void this.#flush(channel);
  }

  /**
   * @internal The current child exited (`channel` was its channel): sends buffer until the next
   * one, and its channel is read on only until it has been quiet (see #pump). Its channel is named
   * by the caller: a send its transport refused no longer counts it as the current one.
   */
  detach(channel: Channel<T> | undefined): void {
    this.#current = undefined;
    if (channel) this.#exited.get(channel)?.abort();
  }

  /** @internal No child will come any more (given up, not restarted, supervisor stopped). */
  end(err: IpcError): void {
    if (this.#ended) return;
    this.#ended = err;
    this.#current = undefined;
    this.#buffer.drain();
    this.#rejectReceiversIfDone();
  }

  // ---- Channel ------------------------------------------------------------------------------------

  get closed(): boolean {
    return this.#closed || this.#closing !== undefined;
  }

  send(message: T, opts?: WaitOptions): Promise<void> {
    try {
      checkWaitOptions(opts);
    } catch (err) {
      return Promise.reject(err);
    }
    if (this.closed) return Promise.reject(closedError(this.#what));
    if (this.#ended) return Promise.reject(this.#ended);
    if (this.#flushing) return this.#sendAfterFlush(this.#flushing, message, opts);
    const current = this.#current;
    if (!current) return this.#bufferOrRefuse(message);
    return current.send(message, opts).catch((err) => {
      // The child's transport refused it because the child is going away: it waits for the next.
      if (isTransportEnd(err) && !this.closed && !this.#ended) {
        if (this.#current === current) this.#current = undefined;
        return this.#bufferOrRefuse(message);
      }
      throw err;
    });
  }

  /**
   * Hands the message to the current child's channel if it takes it now; false (nothing sent) while
   * no child is up, buffered messages are being flushed, or the child's transport is full or ending:
   * `await send()` then buffers or waits as usual.
   */
  trySend(message: T): boolean {
    if (this.closed) throw closedError(this.#what);
    if (this.#ended) throw this.#ended;
    const current = this.#current;
    if (!current || this.#flushing) return false;
    try {
      return current.trySend(message);
    } catch (err) {
      if (isTransportEnd(err)) return false;
      throw err;
    }
  }

  receive(opts?: WaitOptions): Promise<T> {
    try {
      checkWaitOptions(opts);
    } catch (err) {
      return Promise.reject(err);
    }
    const item = this.#takeReceived();
    if (item) return item.ok ? Promise.resolve(item.value) : Promise.reject(item.error);
    const ended = this.#inputError();
    if (ended) return Promise.reject(ended);
    return new Promise<T>((resolve, reject) => {
      const waiter: ReceiveWaiter<T> = { resolve, reject, disarm: () => {} };
      this.#receivers.push(waiter);
      waiter.disarm = armWait(`${this.#what}: receive`, opts, (err) => {
        this.#receivers.remove(waiter);
        reject(err);
      });
    });
  }

  /** What the child's channel has handed over so far, as {@link Channel.tryReceive}. */
  tryReceive(): { message: T } | undefined {
    const item = this.#takeReceived();
    if (item) {
      if (!item.ok) throw item.error;
      return { message: item.value };
    }
    const ended = this.#inputError();
    if (ended) throw ended;
    return undefined;
  }

  /** The next message handed over, waking the pumps once the queue has room again. */
  #takeReceived(): Received<T> | undefined {
    const item = this.#received.shift();
    if (item && this.#received.length < HIGH_WATER / 2) this.#wakePumps();
    return item;
  }

  /** Why nothing more will arrive (closed, or every child's channel ended), or undefined. */
  #inputError(): IpcError | undefined {
    if (this.#closed) return closedError(this.#what);
    return this.#ended && this.#pumps === 0 ? this.#ended : undefined;
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: async (): Promise<IteratorResult<T>> => {
        try {
          return { done: false, value: await this.receive() };
        } catch (err) {
          if (isIpcError(err, ErrorCodes.CLOSED)) return { done: true, value: undefined };
          throw err;
        }
      },
      return: async (): Promise<IteratorResult<T>> => ({ done: true, value: undefined }),
    };
  }

  /**
   * Delivers what is buffered if a child is up, closes the current child's channel (the child sees
   * the channel end, as with any parent channel) and ends this one. Later children get no channel
   * from it. Idempotent.
   */
  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    if (this.#closed) return Promise.resolve();
    this.#closing = (async () => {
      await this.#flushing;
      const current = this.#current;
      this.#current = undefined;
      this.#closingChild = current;
      this.#buffer.drain();
      if (current) await current.close().catch(() => {});
      this.#finish(closedError(this.#what));
    })();
    return this.#closing;
  }

  destroy(reason?: Error): void {
    if (this.#closed) return;
    this.#current?.destroy(reason);
    this.#current = undefined;
    this.#buffer.drain();
    this.#finish(closedError(this.#what, reason));
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  // ---- internals ----------------------------------------------------------------------------------

  /**
   * A send behind buffered messages going out to a new child: it waits for them, within its
   * `timeout`/`signal` (a child that does not read holds the flush up for as long as it lives).
   * One deadline for the whole send: what is left of it bounds the send to the child, which is
   * cut short through a signal of its own so that the error is the caller's timeout or abort.
   */
  #sendAfterFlush(flushing: Promise<void>, message: T, opts: WaitOptions | undefined): Promise<void> {
    const cut = new AbortController();
    const sent = flushing.then(() =>
      cut.signal.aborted ? undefined : this.send(message, { signal: cut.signal }),
    );
    return withWait(`${this.#what}: send`, opts, sent).catch((err: unknown) => {
      cut.abort(err);
      throw err;
    });
  }

  #bufferOrRefuse(message: T): Promise<void> {
    if (this.#buffer.length >= this.#maxBuffered) {
      return Promise.reject(
        new IpcError(
          ErrorCodes.QUEUE_FULL,
          `${this.#what}: the child is restarting and ${this.#buffer.length} messages already wait for it (maxBuffered)`,
        ),
      );
    }
    this.#buffer.push(message);
    return Promise.resolve();
  }

  /** Sends what waited for `channel`'s child, in order; new sends wait behind it. */
  #flush(channel: Channel<T>): Promise<void> {
    const flushing = (async () => {
      while (this.#buffer.length > 0 && this.#current === channel) {
        const message = this.#buffer.peek() as T;
        try {
          await channel.send(message);
          this.#buffer.shift();
        } catch (err) {
          // That child went too: keep the rest for the next one.
          if (isTransportEnd(err)) break;
          // A message that cannot be encoded or is too large can never be delivered: drop it.
          this.#buffer.shift();
        }
      }
    })();
    const tracked: Promise<void> = flushing.finally(() => {
      if (this.#flushing === tracked) this.#flushing = undefined;
    });
    this.#flushing = tracked;
    return tracked;
  }

  /**
   * Moves one child's messages into this channel until that child's channel ends, then releases
   * that channel (its fds, an shm channel's segment). Starts once `previous`, the pump of the child
   * before, is done: what a dying child sent is all received before its successor's first message.
   */
  async #pump(channel: Channel<T>, previous: Promise<void>, exited: AbortSignal): Promise<void> {
    this.#pumps++;
    try {
      await previous;
      /** The quiet bound has passed and a poll of the loop since: nothing more is on its way. */
      let lastLook = false;
      for (;;) {
        if (this.#closed) break;
        if (this.#received.length >= HIGH_WATER) {
          await new Promise<void>((resolve) => this.#pumpWaiters.push(resolve));
          continue;
        }
        let value: T;
        try {
          const next = channel.tryReceive();
          if (!next && lastLook) break;
          lastLook = false;
          value = next
            ? next.message
            : await channel.receive(exited.aborted ? { timeout: DEAD_CHILD_QUIET_MS } : { signal: exited });
        } catch (err) {
          // The child exited while this waited: wait again, bounded (DEAD_CHILD_QUIET_MS).
          if (exited.aborted && isIpcError(err, ErrorCodes.ABORTED)) continue;
          if (exited.aborted && isIpcError(err, ErrorCodes.TIMEOUT)) {
            // Timers run before I/O in a turn of the loop: after a loop blocked longer than the
            // bound, the timeout comes before bytes already waiting are read. One more poll first.
            await new Promise<void>((resolve) => setImmediate(resolve));
            lastLook = true;
            continue;
          }
          if (isTransportEnd(err)) break;
          this.#deliver({ ok: false, error: err as IpcError });
          // A message the codec or schema refused leaves the channel usable; anything else ends it.
          if (isIpcError(err, ErrorCodes.INVALID_MESSAGE)) continue;
          break;
        }
        this.#deliver({ ok: true, value });
      }
    } finally {
      this.#pumps--;
      this.#exited.delete(channel);
      if (this.#current === channel) this.#current = undefined;
      // Its input has ended, or this channel is closing: nothing more will be read from it, and
      // nothing can be sent through it (a dead child's channel otherwise kept its fds or segment).
      if (channel !== this.#closingChild) channel.destroy();
      this.#rejectReceiversIfDone();
    }
  }

  #deliver(item: Received<T>): void {
    if (this.#closed) return;
    const waiter = this.#receivers.shift();
    if (waiter) {
      waiter.disarm();
      if (item.ok) waiter.resolve(item.value);
      else waiter.reject(item.error);
      return;
    }
    this.#received.push(item);
  }

  #wakePumps(): void {
    for (const wake of this.#pumpWaiters.splice(0)) wake();
  }

  #rejectReceiversIfDone(): void {
    if (!this.#ended || this.#pumps > 0 || this.#received.length > 0) return;
    for (const waiter of this.#receivers.drain()) {
      waiter.disarm();
      waiter.reject(this.#ended);
    }
  }

  #finish(err: IpcError): void {
    this.#closed = true;
    this.#ended ??= err;
    for (const waiter of this.#receivers.drain()) {
      waiter.disarm();
      waiter.reject(err);
    }
    this.#received.drain();
    this.#wakePumps();
  }
}
