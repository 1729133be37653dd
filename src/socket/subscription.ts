/**
 * A client's subscription to a topic: an async iterable of publications with a bounded buffer.
 * When the application reads slower than publications arrive, the oldest buffered one is dropped
 * and counted in `dropped` (as are those the server dropped for this connection): a slow reader
 * never stalls the connection, which carries requests and other subscriptions too.
 */
import { closedError, ErrorCodes, IpcError } from '../core/errors.js';
import { Queue } from '../core/queue.js';
import { armWait, checkWaitOptions, type WaitOptions } from '../core/wait.js';

type Item<T> = { ok: true; value: T } | { ok: false; error: IpcError };

interface Waiter<T> {
  resolve(value: T): void;
  reject(err: unknown): void;
  disarm(): void;
}

/** Options of `client.subscribe`. */
export interface SubscribeOptions {
  /** Publications buffered before the oldest is dropped. Default: the client's subscriptionHighWaterMark. */
  highWaterMark?: number;
}

/** A subscription. Iterate it; leaving the loop (break, return, throw) unsubscribes. */
export class Subscription<T = unknown> implements AsyncIterableIterator<T>, AsyncDisposable {
  /** The topic. */
  readonly topic: string;
  /** Resolves once the server has registered the subscription (publications after it arrive). */
  readonly ready: Promise<void>;
  readonly #limit: number;
  readonly #onEnd: (sub: Subscription<T>) => void;
  readonly #items = new Queue<Item<T>>();
  readonly #waiters = new Queue<Waiter<T>>();
  #dropped = 0;
  #end: IpcError | undefined;

  /** Made by `client.subscribe`. */
  constructor(topic: string, limit: number, ready: Promise<void>, onEnd: (sub: Subscription<T>) => void) {
    this.topic = topic;
    this.#limit = limit;
    this.ready = ready;
    this.ready.catch(() => {}); // the same error ends the subscription
    this.#onEnd = onEnd;
  }

  /** Publications lost for this subscription: dropped here (reader too slow) or by the server. */
  get dropped(): number {
    return this.#dropped;
  }

  /** True once unsubscribed or ended. */
  get closed(): boolean {
    return this.#end !== undefined;
  }

  /** The next publication; ERR_IPC_TIMEOUT / ERR_IPC_ABORTED leave the subscription intact. */
  receive(opts?: WaitOptions): Promise<T> {
    try {
      checkWaitOptions(opts);
    } catch (err) {
      return Promise.reject(err);
    }
    const item = this.#items.shift();
    if (item) return item.ok ? Promise.resolve(item.value) : Promise.reject(item.error);
    if (this.#end) return Promise.reject(this.#end);
    return new Promise<T>((resolve, reject) => {
      const waiter: Waiter<T> = { resolve, reject, disarm: () => {} };
      this.#waiters.push(waiter);
      waiter.disarm = armWait(`subscription '${this.topic}': receive`, opts, (err) => {
        this.#waiters.remove(waiter);
        reject(err);
      });
    });
  }

  async next(): Promise<IteratorResult<T>> {
    try {
      return { done: false, value: await this.receive() };
    } catch (err) {
      if (err instanceof IpcError && err.code === ErrorCodes.CLOSED) return { done: true, value: undefined };
      throw err;
    }
  }

  /** Called when a for-await loop is left early: unsubscribes. */
  async return(): Promise<IteratorResult<T>> {
    this.unsubscribe();
    return { done: true, value: undefined };
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /** Stops the subscription; iteration ends after nothing more (buffered publications are dropped). */
  unsubscribe(): void {
    if (this.#end) return;
    this.end(closedError(`subscription '${this.topic}'`));
    this.#items.drain();
  }

  [Symbol.asyncDispose](): Promise<void> {
    this.unsubscribe();
    return Promise.resolve();
  }

  // ---- fed by the client ------------------------------------------------------------------------

  /** One publication (or the error decoding it). */
  push(item: Item<T>): void {
    if (this.#end) return;
    const waiter = this.#waiters.shift();
    if (waiter) {
      waiter.disarm();
      if (item.ok) waiter.resolve(item.value);
      else waiter.reject(item.error);
      return;
    }
    this.#items.push(item);
    if (this.#items.length > this.#limit) {
      this.#items.shift();
      this.#dropped++;
    }
  }

  /** Publications the server dropped for this connection. */
  addDropped(count: number): void {
    this.#dropped += count;
  }

  /**
   * Ends the subscription: ERR_IPC_CLOSED ends iteration cleanly after what is buffered; any other
   * error is thrown by the next receive once the buffer is empty.
   */
  end(err: IpcError): void {
    if (this.#end) return;
    this.#end = err;
    for (const waiter of this.#waiters.drain()) {
      waiter.disarm();
      waiter.reject(err);
    }
    this.#onEnd(this);
  }
}
