/**
 * The channel over a pair of anonymous pipes (`spawn(..., { channel: 'pipe' })` and
 * `parentChannel()`) or one pipe's read end (`PipeReader.receiver()`): a StreamChannel that can also
 * hand messages out as views, `receiveView()`, as the shared-memory channel does. A large message
 * is then assembled in memory that earlier messages gave back: no fresh pages to fault in.
 */
import { decodeView, type MessageView } from '../core/channel.js';
import { codecs, plainBytes } from '../core/codec.js';
import type { IpcError } from '../core/errors.js';
import { Queue } from '../core/queue.js';
import { ReadAhead } from '../core/read-ahead.js';
import { StreamChannel } from '../core/stream-channel.js';
import { abortedError, armWait, checkWaitOptions, type WaitOptions } from '../core/wait.js';
import { RecycledMemory } from './recycled-memory.js';

interface ViewWaiter {
  resolve(view: MessageView): void;
  reject(err: unknown): void;
  disarm(): void;
}

function noop(): void {}

/**
 * A pipe channel. `receive()`, iteration and sending are those of every channel; `receiveView()`
 * adds a receive without a copy of its own.
 */
export class PipeChannel<T = unknown> extends StreamChannel<T> {
  #viewMode = false;
  readonly #memory = new RecycledMemory();
  /** Messages read ahead for receive() before the first receiveView(): it returns them first. */
  readonly #readAhead = new ReadAhead<T>();
  readonly #views = new Queue<MessageView>();
  readonly #viewWaiters = new Queue<ViewWaiter>();
  #viewsPaused = false;
  /** Closed or destroyed: nothing more is queued. */
  #torn = false;

  /**
   * The next message as its encoded bytes (with `codecs.raw`, the message itself), valid until
   * `release()`. A message larger than what one read of the pipe takes (64 KiB at first) is
   * assembled in memory that released views gave back: hold views briefly and release them, and a
   * stream of large messages costs two copies and no fresh pages. Smaller messages come as
   * copies, and their `release()` does nothing. Views not released are ordinary memory: the channel
   * only stops reusing it.
   *
   * After the first call the channel hands out views: `receive()`, `tryReceive()` and iteration go
   * on in order by decoding a view and releasing it. Messages that `receive()` had read ahead come
   * first, encoded again (to `receive()` as they were decoded). Once the peer closes
   * (ERR_IPC_CLOSED) or is gone (ERR_IPC_PEER_GONE), this returns what the peer sent before, then
   * fails the same way.
   */
  receiveView(opts?: WaitOptions): Promise<MessageView> {
    return this.#nextView(opts, 'receiveView');
  }

  /** receiveView(), for `operation` (receiveView, or receive in view mode): its errors name that. */
  #nextView(opts: WaitOptions | undefined, operation: string): Promise<MessageView> {
    try {
      checkWaitOptions(opts);
    } catch (err) {
      return Promise.reject(err);
    }
    if (opts?.signal?.aborted) return Promise.reject(abortedError(`${this.what}: ${operation}`, opts.signal));
    this.#enterViewMode();
    if (this.#viewWaiters.length === 0) {
      let view: MessageView | undefined;
      try {
        view = this.#takeView();
      } catch (err) {
        return Promise.reject(err);
      }
      if (view) return Promise.resolve(view);
      const ended = this.receiveEnded;
      if (ended) return Promise.reject(ended);
    }
    return new Promise<MessageView>((resolve, reject) => {
      const waiter: ViewWaiter = { resolve, reject, disarm: noop };
      this.#viewWaiters.push(waiter);
      waiter.disarm = armWait(`${this.what}: ${operation}`, opts, (err) => {
        this.#viewWaiters.remove(waiter);
        reject(err);
      });
    });
  }

  override receive(opts?: WaitOptions): Promise<T> {
    if (!this.#viewMode) return super.receive(opts);
    return (
      this.#readAhead.receive(opts) ??
      this.#nextView(opts, 'receive').then((view) => decodeView(this.codec, view))
    );
  }

  override tryReceive(): { message: T } | undefined {
    if (!this.#viewMode) return super.tryReceive();
    // A receiveView() or receive() waiting has the next message first.
    if (this.#viewWaiters.length > 0 || this.receiversWaiting > 0) return undefined;
    const early = this.#readAhead.take();
    if (early) return early;
    const view = this.#takeView();
    if (view) return { message: decodeView(this.codec, view) };
    const ended = this.receiveEnded;
    if (ended) throw ended;
    return undefined;
  }

  #enterViewMode(): void {
    if (this.#viewMode) return;
    this.#viewMode = true;
    this.#readAhead.fill(this.takeQueued());
    const memory = this.#memory;
    this.assembleFramesIn((bytes) => memory.take(bytes));
  }

  /** The next message as a view, or undefined if none has come. */
  #takeView(): MessageView | undefined {
    const early = this.#readAhead.takeView(this.codec);
    if (early) return early;
    const view = this.#views.shift();
    if (this.#viewsPaused && this.#views.length <= this.lowWaterMark && !this.#torn) {
      this.#viewsPaused = false;
      this.resumeInput();
    }
    return view;
  }

  // ---- frames, in view mode ---------------------------------------------------------------------

  protected override receiveFrame(payload: Uint8Array, owned?: boolean): void {
    // receive() calls that were waiting when view mode began come first, as they asked first.
    if (!this.#viewMode || this.receiversWaiting > 0) {
      super.receiveFrame(payload, owned);
      return;
    }
    if (!owned) {
      this.receiveFrameAt(payload, 0, payload.length);
      return;
    }
    // Memory of its own (assembled across reads): given back on release, for a later message.
    let released = false;
    this.#accept({
      bytes: plainBytes(payload),
      release: () => {
        if (released) return;
        released = true;
        this.#memory.give(payload);
      },
    });
  }

  protected override receiveFrameAt(data: Uint8Array, start: number, end: number): void {
    if (!this.#viewMode || this.receiversWaiting > 0) {
      super.receiveFrameAt(data, start, end);
      return;
    }
    // The chunk's memory is the stream's read buffer, reused by the next read: a copy (the raw
    // codec's, a plain Uint8Array of its own).
    this.#accept({ bytes: codecs.raw.decode(data.subarray(start, end)), release: noop });
  }

  #accept(view: MessageView): void {
    if (this.#torn) return;
    const waiter = this.#viewWaiters.shift();
    if (waiter) {
      waiter.disarm();
      waiter.resolve(view);
      return;
    }
    this.#views.push(view);
    if (!this.#viewsPaused && this.#views.length >= this.highWaterMark) {
      this.#viewsPaused = true;
      this.pauseInput();
    }
  }

  // ---- the end, for views waited on -------------------------------------------------------------

  protected override peerClosed(): void {
    super.peerClosed();
    this.#endViewWaiters();
  }

  protected override peerGone(detail: string, cause?: unknown): void {
    super.peerGone(detail, cause);
    this.#endViewWaiters();
  }

  protected override fail(err: IpcError): void {
    super.fail(err);
    this.#endViewWaiters();
  }

  protected override teardown(): void {
    this.#torn = true;
    // As receive() after close(): what was queued is not handed out any more.
    this.#views.drain();
    this.#readAhead.clear();
    super.teardown();
    this.#endViewWaiters();
  }

  /** Waiters exist only while nothing is queued: once input has ended, none will be served. */
  #endViewWaiters(): void {
    const ended = this.receiveEnded;
    if (!ended) return;
    for (const waiter of this.#viewWaiters.drain()) {
      waiter.disarm();
      waiter.reject(ended);
    }
  }
}
