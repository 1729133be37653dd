/**
 * The producer side of a queue: sends issued in the same turn of the event loop go to the store in
 * one transaction (group commit), in the order they were issued. Each entry (a `send`, or a whole
 * `sendBatch`) is stored whole or not at all. When the queue is full, the first entry that did not
 * fit and every entry after it wait together for room (`onFull: 'wait'`), so one producer's
 * messages keep their order; with `onFull: 'reject'` they fail with ERR_IPC_QUEUE_FULL.
 */
import { closedError, ErrorCodes, IpcError } from '../core/errors.js';
import { Queue } from '../core/queue.js';
import { armWait, timeoutError, type WaitOptions } from '../core/wait.js';
import type { OutgoingMessage, SendOutcome, Store } from './store.js';

/** Messages per transaction, at most. */
const MAX_BATCH_MESSAGES = 1024;
/** Body bytes per transaction, at most (one message may exceed it alone). */
const MAX_BATCH_BYTES = 4 << 20;

interface Entry {
  /** Stored whole or not at all: one run of SendRequest.groups. */
  messages: OutgoingMessage[];
  inFlight: boolean;
  /** `timeout: 0`: never waits for room. */
  noWait: boolean;
  /**
   * A timeout or abort that fired while in flight, or `timeout: 0` from the start: applies if the
   * entry then has to wait for room.
   */
  expired: IpcError | undefined;
  /** Resolve with the id alone (`send`) rather than the array of ids (`sendBatch`). */
  single: boolean;
  resolve(result: string | string[]): void;
  reject(err: unknown): void;
  disarm(): void;
}

/** What the pipeline needs from its queue. */
export interface SendTarget {
  readonly what: string;
  readonly store: Store;
  readonly maxMessages: number | undefined;
  readonly maxBytes: number | undefined;
  readonly onFull: 'wait' | 'reject';
  readonly pollIntervalMs: number;
}

/** Group-commits sends to a store. */
export class SendPipeline {
  readonly #target: SendTarget;
  /** Waiting entries that come first: the ones that found the queue full, in order. */
  #head: Entry[] = [];
  readonly #queue = new Queue<Entry>();
  #scheduled = false;
  #running = false;
  /** True while the head waits for room. */
  #parked = false;
  /**
   * The store said there may be room while a send was with it. Redis hears wake-ups on a
   * connection of their own, so one armed by that very send can come before its answer: parking
   * then would wait for a wake-up that already came.
   */
  #roomMeanwhile = false;
  #retryTimer: NodeJS.Timeout | undefined;
  #closed: IpcError | undefined;
  #idle: (() => void)[] = [];

  constructor(target: SendTarget) {
    this.#target = target;
  }

  /** Sends one message; resolves with its id. */
  pushOne(message: OutgoingMessage, opts: WaitOptions | undefined): Promise<string> {
    return this.#push([message], true, opts) as Promise<string>;
  }

  /** Sends `messages` in one transaction, all or none; resolves with their ids. */
  push(messages: OutgoingMessage[], opts: WaitOptions | undefined): Promise<string[]> {
    return this.#push(messages, false, opts) as Promise<string[]>;
  }

  #push(
    messages: OutgoingMessage[],
    single: boolean,
    opts: WaitOptions | undefined,
  ): Promise<string | string[]> {
    if (this.#closed) return Promise.reject(this.#closed);
    const what = `${this.#target.what}: send`;
    // `timeout: 0` asks not to wait for room, as receive's poll asks the store once: a timer of
    // 0 ms would fire while a healthy store commits the send, rejecting sends that are stored.
    const noWait = opts?.timeout === 0;
    // Sends already wait for room: the queue is full, and this one would wait behind them.
    if (noWait && this.#parked && !opts?.signal?.aborted) return Promise.reject(timeoutError(what, 0));
    const armed = noWait ? { signal: opts?.signal } : opts;
    return new Promise<string | string[]>((resolve, reject) => {
      const entry: Entry = {
        messages,
        inFlight: false,
        noWait,
        expired: noWait ? timeoutError(what, 0) : undefined,
        single,
        resolve,
        reject,
        disarm: noop,
      };
      entry.disarm = armWait(what, armed, (err) => {
        if (entry.inFlight) {
          // Already with the store, which may yet commit it (a Redis that is away gets it when it
          // is back): the caller learns of the timeout now, not when the store answers, and
          // gives messages an id to retry them without duplicates. Nothing is retried for it.
          entry.expired = err;
          reject(err);
          return;
        }
        this.#withdraw(entry);
        reject(err);
      });
      if (opts?.signal?.aborted) return;
      this.#queue.push(entry);
      this.#schedule();
    });
  }

  /** The store says there may be room now. */
  room(): void {
    if (this.#running) this.#roomMeanwhile = true;
    if (!this.#parked) return;
    this.#unpark();
    this.#schedule();
  }

  /** Nothing waits for room any more (a send now goes to the store as soon as it comes). */
  #unpark(): void {
    this.#parked = false;
    this.#clearRetry();
  }

  /**
   * Stops taking sends; what is queued is still committed, except sends waiting for room, which
   * reject with ERR_IPC_CLOSED. Resolves when nothing is in flight.
   */
  close(): Promise<void> {
    this.#closed ??= closedError(this.#target.what);
    if (this.#parked) this.#failWaiting(this.#closed);
    if (!this.#running && this.#head.length === 0 && this.#queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  #withdraw(entry: Entry): void {
    const index = this.#head.indexOf(entry);
    if (index < 0) {
      this.#queue.remove(entry);
      return;
    }
    this.#head.splice(index, 1);
    if (index !== 0 || !this.#parked) return;
    // The entry that did not fit gave up. One behind it that is smaller in messages or in bytes
    // may fit: it must not wait for a wake-up that only room freed in the store would bring.
    // One as large cannot: trying it would ask the store again for every send that times out.
    const next = this.#head[0] ?? this.#queue.peek();
    if (next === undefined) this.#unpark();
    else if (next.messages.length < entry.messages.length || bodyBytes(next) < bodyBytes(entry)) this.room();
  }

  #failWaiting(err: IpcError): void {
    this.#unpark();
    for (const entry of [...this.#head, ...this.#queue.drain()]) {
      entry.disarm();
      entry.reject(err);
    }
    this.#head = [];
  }

  #schedule(): void {
    if (this.#scheduled || this.#running || this.#parked) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      void this.#flush();
    });
  }

  /** Takes entries for one transaction: whole entries, up to the batch limits. */
  #takeBatch(): Entry[] {
    const batch: Entry[] = [];
    let count = 0;
    let bytes = 0;
    for (;;) {
      const entry = this.#head.length > 0 ? this.#head[0] : this.#queue.peek();
      if (!entry) break;
      const remaining = entry.messages.length;
      const size = bodyBytes(entry);
      if (batch.length > 0 && (count + remaining > MAX_BATCH_MESSAGES || bytes + size > MAX_BATCH_BYTES))
        break;
      if (this.#head.length > 0) this.#head.shift();
      else this.#queue.shift();
      batch.push(entry);
      count += remaining;
      bytes += size;
      if (count >= MAX_BATCH_MESSAGES || bytes >= MAX_BATCH_BYTES) break;
    }
    return batch;
  }

  async #flush(): Promise<void> {
    if (this.#running || this.#parked) return;
    const batch = this.#takeBatch();
    if (batch.length === 0) return this.#settleIdle();
    this.#running = true;
    this.#roomMeanwhile = false;
    const messages: OutgoingMessage[] = [];
    const groups: number[] = [];
    for (const entry of batch) {
      entry.inFlight = true;
      for (const m of entry.messages) messages.push(m);
      groups.push(entry.messages.length);
    }
    let outcomes: SendOutcome[] | undefined;
    let failure: unknown;
    try {
      outcomes = await this.#target.store.send({
        messages,
        groups,
        maxMessages: this.#target.maxMessages,
        maxBytes: this.#target.maxBytes,
        armRoom: this.#target.onFull === 'wait',
      });
    } catch (err) {
      failure = err;
    }
    this.#running = false;
    const waiting: Entry[] = [];
    let at = 0;
    for (const entry of batch) {
      entry.inFlight = false;
      if (!outcomes) {
        entry.disarm();
        entry.reject(failure);
        continue;
      }
      const count = entry.messages.length;
      let full = 0;
      let sent = false;
      for (let i = at; i < at + count; i++) {
        if (outcomes[i] === 'full') full++;
        else if (outcomes[i] === 'sent') sent = true;
      }
      at += count;
      if (full === 0) {
        entry.disarm();
        entry.resolve(entry.single ? entry.messages[0]!.id : entry.messages.map((m) => m.id));
      } else if (sent) {
        // A store that ignores SendRequest.groups stored part of the batch: retrying the rest
        // would reorder it, and the part stored cannot be taken back.
        entry.disarm();
        entry.reject(
          new IpcError(
            ErrorCodes.SYSTEM,
            `${this.#target.what}: the store accepted ${count - full} of a batch of ${count} messages; it does not keep a batch whole`,
          ),
        );
      } else if (this.#target.onFull === 'reject') {
        entry.disarm();
        entry.reject(this.#fullError());
      } else if (entry.expired || this.#closed) {
        entry.disarm();
        entry.reject(entry.expired ?? this.#closed);
      } else {
        waiting.push(entry);
      }
    }
    if (waiting.length > 0) {
      this.#head = [...waiting, ...this.#head];
      if (this.#closed) this.#failWaiting(this.#closed);
      else if (!this.#roomMeanwhile) {
        this.#parked = true;
        this.#refuseNoWait();
        // The store rings when room appears; this re-check is only the safety net.
        this.#retryTimer = setTimeout(() => this.room(), this.#target.pollIntervalMs);
      }
    }
    if (!this.#parked) this.#schedule();
    this.#settleIdle();
  }

  /**
   * The queue is full and the pipeline waits for room: sends with `timeout: 0` queued behind it
   * would wait too, which they asked not to. They fail as a full queue fails them.
   */
  #refuseNoWait(): void {
    // Only the queued ones: one that met the full queue itself was refused as it came back.
    for (const entry of this.#queue.drain()) {
      if (entry.noWait) {
        entry.disarm();
        entry.reject(entry.expired ?? timeoutError(`${this.#target.what}: send`, 0));
      } else {
        this.#queue.push(entry);
      }
    }
  }

  #fullError(): IpcError {
    const { maxMessages, maxBytes, what } = this.#target;
    const limits = [
      maxMessages === undefined ? '' : `maxMessages ${maxMessages}`,
      maxBytes === undefined ? '' : `maxBytes ${maxBytes}`,
    ]
      .filter(Boolean)
      .join(', ');
    return new IpcError(ErrorCodes.QUEUE_FULL, `${what} is full (${limits})`);
  }

  #settleIdle(): void {
    if (this.#running || this.#scheduled || this.#head.length > 0 || this.#queue.length > 0) return;
    const idle = this.#idle;
    this.#idle = [];
    for (const resolve of idle) resolve();
  }

  #clearRetry(): void {
    if (this.#retryTimer) {
      clearTimeout(this.#retryTimer);
      this.#retryTimer = undefined;
    }
  }
}

function noop(): void {}

/** The body bytes of an entry's messages. */
function bodyBytes(entry: Entry): number {
  let bytes = 0;
  for (const m of entry.messages) bytes += m.body.length;
  return bytes;
}
