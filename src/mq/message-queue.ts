/**
 * MessageQueue: a durable, named, typed, prioritized queue shared by any number of producer and
 * consumer processes, with at-least-once delivery. Written against the Store interface only: the
 * store decides where messages live; this class gives them a codec, options, group commit, waiting
 * by wake-up, and leases as objects (Message).
 */

import { AsyncLocalStorage } from 'node:async_hooks';
import { type MessageCodec, resolveCodec } from '../core/codec.js';
import { closedError, ErrorCodes, IpcError, isIpcError } from '../core/errors.js';
import { frameTooLarge } from '../core/framing.js';
import { checkName } from '../core/runtime-dir.js';
import { checkWaitOptions, type WaitOptions, watchAbort } from '../core/wait.js';
import { Batcher } from './batcher.js';
import { Fetcher, type FetchSource } from './fetcher.js';
import { newMessageId } from './ids.js';
import { kSettled, Message, type Settle } from './message.js';
import {
  type BatchMessage,
  type ConsumeOptions,
  checkReceiveOptions,
  checkSignal,
  intOption,
  type MessageQueueOptions,
  type MessageSettings,
  type ProcessOptions,
  type QueueSettings,
  type ReceiveOptions,
  resolveMessageSettings,
  resolveSettings,
  resolveTypes,
  type SendOptions,
  type StoreSpec,
} from './options.js';
import { SendPipeline } from './send-pipeline.js';
import type {
  ClaimedMessage,
  OutgoingMessage,
  QueueStats,
  SettleOp,
  SettleResult,
  Store,
  StoredMessage,
  WakeKind,
} from './store.js';
import { resolveStoreDriver } from './store-drivers.js';

/** How long close() waits for a remote store to answer a claim in flight (see #shutdown). */
const CLAIM_ANSWER_WAIT_MS = 2000;

const DEFAULT_PREFETCH = 32;
const MAX_PREFETCH = 10_000;
const MAX_LIST = 100_000;

/**
 * The process() handler the current code runs in, while it runs: close() there would wait for
 * itself. `running` is cleared when the handler returns, so work the handler scheduled (a timer,
 * a callback) that runs after it may close the queue as any other code does.
 */
const handlerScope = new AsyncLocalStorage<{ queue: MessageQueue<unknown>; running: boolean }>();

/** A durable message queue shared by every process that opens its name. */
export class MessageQueue<T = unknown> implements AsyncDisposable {
  /** The queue's name: its key in the store. */
  readonly name: string;
  readonly #what: string;
  readonly #store: Store;
  readonly #codec: MessageCodec<T>;
  /** Decodes listed messages without the schema: a dead letter is often one that failed it. */
  readonly #listCodec: MessageCodec<unknown>;
  readonly #settings: QueueSettings;
  readonly #sends: SendPipeline;
  readonly #settles: Batcher<SettleOp, SettleResult>;
  readonly #source: FetchSource;
  readonly #receivers = new Map<string, Fetcher>();
  readonly #fetchers = new Set<Fetcher>();
  readonly #runs = new Set<Promise<void>>();
  /**
   * Messages whose schema validates asynchronously, with what abandons their receive: close()
   * gives them back rather than wait for a validator (see #toMessage).
   */
  readonly #validating = new Map<ClaimedMessage, (err: IpcError) => void>();
  /** Claims the store has not answered yet: close() waits for them (see #shutdown). */
  readonly #claimsInFlight = new Set<Promise<unknown>>();
  readonly #settle: Settle;
  #closing: Promise<void> | undefined;
  #storeClosed = false;

  private constructor(
    name: string,
    store: Store,
    codec: MessageCodec<T>,
    listCodec: MessageCodec<unknown>,
    settings: QueueSettings,
  ) {
    this.name = name;
    this.#what = `message queue '${name}'`;
    this.#store = store;
    this.#codec = codec;
    this.#listCodec = listCodec;
    this.#settings = settings;
    this.#sends = new SendPipeline({
      what: this.#what,
      store,
      maxMessages: settings.maxMessages,
      maxBytes: settings.maxBytes,
      onFull: settings.onFull,
      pollIntervalMs: settings.pollIntervalMs,
    });
    this.#settles = new Batcher((ops) => store.settle(ops));
    this.#settle = (op) =>
      this.#storeClosed ? Promise.reject(closedError(this.#what)) : this.#settles.push(op);
    this.#source = {
      what: this.#what,
      pollIntervalMs: settings.pollIntervalMs,
      leaseMs: settings.visibilityTimeoutMs,
      claim: (types, max, arm) => {
        const claim = this.#claim(types, max, arm);
        this.#claimsInFlight.add(claim);
        const done = () => this.#claimsInFlight.delete(claim);
        claim.then(done, done);
        return claim;
      },
      release: (messages) => this.#release(messages),
    };
  }

  /**
   * Opens the queue `name`, creating it if needed. Every process that opens the same name (on the
   * same runtime directory, or the same Redis) shares the queue.
   */
  static open<T = unknown>(name: string, opts?: MessageQueueOptions<T>): Promise<MessageQueue<T>> {
    let settings: QueueSettings;
    let codec: MessageCodec<T>;
    let listCodec: MessageCodec<unknown>;
    let driver: ReturnType<typeof resolveStoreDriver>;
    try {
      checkName(name, 'message queue');
      settings = resolveSettings(opts as MessageQueueOptions<unknown> | undefined);
      codec = resolveCodec(opts, `message queue '${name}'`);
      listCodec = resolveCodec(
        opts?.codec === undefined ? undefined : { codec: opts.codec as never },
        `message queue '${name}'`,
      );
      driver = resolveStoreDriver(opts?.store);
    } catch (err) {
      return Promise.reject(err);
    }
    let queue: MessageQueue<T> | undefined;
    const wakeUps: WakeKind[] = [];
    return driver
      .open(name, {
        durability: settings.durability,
        dedupeWindowMs: settings.dedupeWindowMs,
        maxAttempts: settings.maxAttempts,
        onWake: (kind) => (queue ? queue.#wake(kind) : wakeUps.push(kind)),
      })
      .then((store) => {
        queue = new MessageQueue<T>(name, store, codec, listCodec, settings);
        for (const kind of wakeUps) queue.#wake(kind);
        return queue;
      });
  }

  /**
   * Deletes the queue `name` and every message in it; false if there was none. The SQLite store
   * also removes the doorbell sockets that consumers killed with SIGKILL left in the runtime
   * directory (a live process's are left alone).
   */
  static remove(name: string, opts?: { store?: StoreSpec }): Promise<boolean> {
    try {
      checkName(name, 'message queue');
      return resolveStoreDriver(opts?.store).remove(name);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** True once `close()` was called. */
  get closed(): boolean {
    return this.#closing !== undefined;
  }

  /**
   * Sends one message; resolves with its id once it is durable in the store. A rejection other
   * than a bad argument or ERR_IPC_QUEUE_FULL means the outcome is unknown: retry with the same
   * `id` and the dedupe makes the retry safe. That includes a timeout or an abort that fired while
   * the store was committing the send (it may still be stored); `timeout: 0` never fires then: it
   * rejects with ERR_IPC_TIMEOUT only when the queue is full.
   */
  send(body: T, opts?: SendOptions): Promise<string> {
    let message: OutgoingMessage;
    try {
      this.#checkOpen();
      checkWaitOptions(opts);
      message = this.#outgoing(body, resolveMessageSettings(opts, 'options'));
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#sends.pushOne(message, opts);
  }

  /**
   * Sends several messages in one transaction, in order, all or none; resolves with their ids.
   * With `onFull: 'wait'` it waits until the whole batch fits; a batch that can never fit
   * (more messages than `maxMessages`, more bytes than `maxBytes`) rejects at once with
   * ERR_IPC_QUEUE_FULL.
   */
  sendBatch(messages: readonly BatchMessage<T>[], opts?: WaitOptions): Promise<string[]> {
    let outgoing: OutgoingMessage[];
    try {
      this.#checkOpen();
      checkWaitOptions(opts);
      if (!Array.isArray(messages)) throw new TypeError('messages must be an array of { body, … }');
      outgoing = messages.map((m, i) => {
        if (typeof m !== 'object' || m === null) throw new TypeError(`messages[${i}] must be an object`);
        return this.#outgoing(m.body, resolveMessageSettings(m, `messages[${i}]`));
      });
      this.#checkFits(outgoing);
    } catch (err) {
      return Promise.reject(err);
    }
    if (outgoing.length === 0) return Promise.resolve([]);
    return this.#sends.push(outgoing, opts);
  }

  /**
   * The next message (of `types`, if given), leased to this consumer for `visibilityTimeoutMs`:
   * `ack()` it when done. Waits for one; `timeout` and `signal` bound the wait.
   */
  receive(opts?: ReceiveOptions): Promise<Message<T>> {
    let types: readonly string[] | undefined;
    try {
      this.#checkOpen();
      types = checkReceiveOptions(opts);
    } catch (err) {
      return Promise.reject(err);
    }
    const key = types ? types.join('\0') : '';
    let fetcher = this.#receivers.get(key);
    if (!fetcher) {
      // Dropped once it holds nothing (a receive with a filter of its own each time must not grow
      // the map until close); the next receive of the filter makes a new one, which loses nothing.
      const created: Fetcher = new Fetcher(this.#source, types, 0, () => {
        if (this.#receivers.get(key) !== created) return;
        this.#receivers.delete(key);
        this.#fetchers.delete(created);
      });
      fetcher = created;
      this.#receivers.set(key, fetcher);
      this.#fetchers.add(fetcher);
    }
    return fetcher.next(opts).then((claimed) => this.#toMessage(claimed));
  }

  /**
   * Messages as an async iterable, leasing up to `prefetch` ahead. Leaving the loop gives the
   * prefetched ones back at once; the loop ends when the queue closes or `signal` fires.
   */
  consume(opts?: ConsumeOptions): AsyncIterableIterator<Message<T>> {
    if (opts !== undefined && (typeof opts !== 'object' || opts === null)) {
      throw new TypeError('options must be an object');
    }
    const types = resolveTypes(opts?.types, 'options.types');
    const prefetch = intOption(opts?.prefetch, 'options.prefetch', 1, MAX_PREFETCH, DEFAULT_PREFETCH);
    const signal = checkSignal(opts?.signal, 'options.signal');
    // As process() and every other call: a loop started on a closed queue is an error, not a loop
    // that ends at once unnoticed. A loop already running when the queue closes ends cleanly.
    this.#checkOpen();
    const fetcher = new Fetcher(this.#source, types, prefetch);
    let finished = false;
    let unwatch: (() => void) | undefined;
    // The loop ends once its prefetched messages are back in the queue: a stats(), a receive() or
    // another consumer right after it sees them there, not leased to a loop that is gone.
    let givenBack: Promise<void> = Promise.resolve();
    const finish = () => {
      if (finished) return givenBack;
      finished = true;
      unwatch?.();
      this.#fetchers.delete(fetcher);
      givenBack = Promise.all([this.#release(fetcher.close()), fetcher.whenQuiet()]).then(() => {});
      return givenBack;
    };
    if (signal?.aborted) finish();
    else {
      this.#fetchers.add(fetcher);
      if (signal) unwatch = watchAbort(signal, finish);
    }
    const done = { done: true, value: undefined } as IteratorReturnResult<undefined>;
    // Left by the user (return(), the signal): once the prefetched messages are back. The queue
    // closing: close() waits for them itself, by its own rule for a store that does not answer.
    const settleLeaving = (givingBack: Promise<void>) => (this.#closing ? undefined : givingBack);
    // Ends the loop on `err`: done when the loop was left or the queue closed, else the error.
    const leave = async (err: unknown): Promise<IteratorReturnResult<undefined>> => {
      const ended = finished || isIpcError(err, ErrorCodes.CLOSED);
      const givingBack = finish();
      if (!ended) throw err;
      await settleLeaving(givingBack);
      return done;
    };
    const iterator: AsyncIterableIterator<Message<T>> = {
      next: async () => {
        if (finished) {
          await settleLeaving(givenBack);
          return done;
        }
        let claimed: ClaimedMessage;
        try {
          claimed = await fetcher.next();
        } catch (err) {
          return leave(err);
        }
        try {
          return { done: false, value: await this.#toMessage(claimed) };
        } catch (err) {
          // The queue closed while the message was being validated: the loop ends, as it would have.
          return leave(err);
        }
      },
      return: async () => {
        await settleLeaving(finish());
        return done;
      },
      [Symbol.asyncIterator]() {
        return iterator;
      },
    };
    return iterator;
  }

  /**
   * Runs `handler` for each message, `concurrency` at a time: a handler that returns acks its
   * message, one that throws nacks it (unless it settled the message itself). Resolves when
   * `signal` fires or the queue closes, once the running handlers are done.
   */
  process(handler: (body: T, message: Message<T>) => unknown, opts?: ProcessOptions): Promise<void> {
    let run: Promise<void>;
    try {
      this.#checkOpen();
      if (typeof handler !== 'function') throw new TypeError('handler must be a function');
      if (opts !== undefined && (typeof opts !== 'object' || opts === null)) {
        throw new TypeError('options must be an object');
      }
      const concurrency = intOption(opts?.concurrency, 'options.concurrency', 1, MAX_PREFETCH, 1);
      const prefetch = intOption(
        opts?.prefetch,
        'options.prefetch',
        1,
        MAX_PREFETCH,
        Math.max(16, Math.min(MAX_PREFETCH, concurrency * 2)),
      );
      const types = resolveTypes(opts?.types, 'options.types');
      const signal = checkSignal(opts?.signal, 'options.signal');
      if (opts?.onError !== undefined && typeof opts.onError !== 'function') {
        throw new TypeError('options.onError must be a function');
      }
      run = this.#process(handler, { concurrency, prefetch, types, signal, onError: opts?.onError });
    } catch (err) {
      return Promise.reject(err);
    }
    this.#runs.add(run);
    const forget = () => this.#runs.delete(run);
    run.then(forget, forget);
    return run;
  }

  async #process(
    handler: (body: T, message: Message<T>) => unknown,
    o: {
      concurrency: number;
      prefetch: number;
      types: readonly string[] | undefined;
      signal: AbortSignal | undefined;
      onError: ProcessOptions['onError'];
    },
  ): Promise<void> {
    const fetcher = new Fetcher(this.#source, o.types, o.prefetch);
    this.#fetchers.add(fetcher);
    let givenBack: Promise<void> = Promise.resolve();
    const stop = () => {
      const releasing = this.#release(fetcher.close());
      givenBack = Promise.all([givenBack, releasing]).then(() => {});
    };
    if (o.signal?.aborted) stop();
    const unwatch = o.signal ? watchAbort(o.signal, stop) : undefined;
    const report = (err: unknown, message: { id: string } | undefined) => {
      try {
        o.onError?.(err, message);
      } catch {}
    };
    // Settles are not awaited one by one: the next message starts while the ack joins a group
    // commit; at most `prefetch` settles are outstanding.
    let settling = 0;
    let waiting: (() => void)[] = [];
    const track = (settle: Promise<void>, message: Message<T>) => {
      settling++;
      const done = () => {
        settling--;
        const wake = waiting;
        waiting = [];
        for (const resolve of wake) resolve();
      };
      settle.then(done, (err) => {
        report(err, message);
        done();
      });
    };
    const settledBelow = async (limit: number) => {
      while (settling > limit) await new Promise<void>((resolve) => waiting.push(resolve));
    };
    let failure: unknown;
    const worker = async () => {
      for (;;) {
        let claimed: ClaimedMessage;
        try {
          claimed = await fetcher.next();
        } catch (err) {
          if (!isIpcError(err, ErrorCodes.CLOSED)) {
            failure ??= err;
            stop();
          }
          return;
        }
        let message: Message<T>;
        try {
          const decoded = this.#toMessage(claimed);
          message = decoded instanceof Promise ? await decoded : decoded;
        } catch (err) {
          // The queue closed while the message was being validated: no handler starts any more.
          if (isIpcError(err, ErrorCodes.CLOSED)) return;
          report(err, { id: claimed.id });
          continue;
        }
        const scope = { queue: this as MessageQueue<unknown>, running: true };
        try {
          await handlerScope.run(scope, handler, message.body, message);
          if (!message[kSettled]) track(message.ack(), message);
        } catch (err) {
          report(err, message);
          if (!message[kSettled]) track(message.nack(), message);
        } finally {
          scope.running = false;
        }
        if (settling >= o.prefetch) await settledBelow(o.prefetch - 1);
      }
    };
    await Promise.all(Array.from({ length: o.concurrency }, worker));
    await settledBelow(0);
    unwatch?.();
    this.#fetchers.delete(fetcher);
    stop();
    // As a consume() loop: resolved once the prefetched messages are back in the queue, unless the
    // queue is closing: close() waits for them by its own rule (it awaits this run, too).
    if (!this.#closing) await Promise.all([givenBack, fetcher.whenQuiet()]);
    if (failure !== undefined) throw failure;
  }

  /** Counts: ready, delayed, in flight, dead, and the ready ones by priority and by type. */
  stats(): Promise<QueueStats> {
    return this.#ifOpen(() => this.#store.stats());
  }

  /** The next `limit` ready messages in delivery order, without leasing them. */
  peek(limit = 10): Promise<Message<T>[]> {
    return this.#ifOpen(() => {
      const n = intOption(limit, 'limit', 1, MAX_LIST, 10);
      return this.#store.peek(n).then((list) => list.map((m) => this.#listed(m)));
    });
  }

  /** The dead letters, oldest first (at most `limit`, default 1000). */
  deadLetters(limit = 1000): Promise<Message<T>[]> {
    return this.#ifOpen(() => {
      const n = intOption(limit, 'limit', 1, MAX_LIST, 1000);
      return this.#store.deadLetters(n).then((list) => list.map((m) => this.#listed(m)));
    });
  }

  /** Moves every dead letter back to the queue with its attempts reset; resolves with how many. */
  replayDead(): Promise<number> {
    return this.#ifOpen(() => this.#store.replayDead());
  }

  /** Deletes every message, dead letters included; resolves with how many. */
  purge(): Promise<number> {
    return this.#ifOpen(() => this.#store.purge());
  }

  /**
   * Flushes sends issued before it, stops consumers (waiting receives reject with ERR_IPC_CLOSED,
   * `consume` loops end, `process` runs finish their handlers), gives prefetched messages back, and
   * closes the store. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    const scope = handlerScope.getStore();
    if (scope?.running && scope.queue === this) {
      // Awaited here, it would wait for the very handler that awaits it: nothing would ever end.
      return Promise.reject(
        new IpcError(
          ErrorCodes.DEADLOCK,
          `${this.#what}: close() called from inside a process() handler waits for that handler; the queue is closing and closes once it returns (stop with process()'s signal, or close after process() resolves)`,
        ),
      );
    }
    return this.#closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #shutdown(): Promise<void> {
    const err = closedError(this.#what);
    const sendsDone = this.#sends.close();
    for (const fetcher of this.#fetchers) void this.#release(fetcher.close(err));
    this.#fetchers.clear();
    this.#receivers.clear();
    // Their receives reject as waiting ones do; whatever the validator answers later is ignored.
    for (const [claimed, abandon] of this.#validating) {
      void this.#release([claimed]);
      abandon(err);
    }
    this.#validating.clear();
    await Promise.allSettled([...this.#runs]);
    await sendsDone;
    // A claim in flight as the fetchers closed leases its messages to nobody: its fetcher gives
    // them back when it answers (its handler runs before this wait ends, having been attached
    // first), and those releases must commit before the store closes. Otherwise they stayed leased
    // until the lease ran out, and came back with an attempt counted that nobody made.
    // A server that has not answered a claim in that time is away (Redis down), and close() must
    // not wait for it; what that claim leased comes back when its lease ends. A local store is
    // only busy (another process's write lock): its answer comes, and its own close waits anyway.
    await this.#claimsAnswered(
      this.#store.remote
        ? Math.min(this.#settings.visibilityTimeoutMs, CLAIM_ANSWER_WAIT_MS)
        : Number.POSITIVE_INFINITY,
    );
    await this.#settles.drained();
    this.#storeClosed = true;
    await this.#store.close();
  }

  /**
   * Resolves once the claims in flight have answered, or after `ms`. No claim starts any more:
   * every fetcher is closed by now, and a closed fetcher claims nothing.
   */
  async #claimsAnswered(ms: number): Promise<void> {
    const answered = Promise.allSettled([...this.#claimsInFlight]);
    if (!Number.isFinite(ms)) {
      await answered;
      return;
    }
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([answered, new Promise((resolve) => (timer = setTimeout(resolve, ms)))]);
    clearTimeout(timer);
  }

  /** Claims for a fetcher; the settles waiting for their group commit ride along in the same transaction. */
  async #claim(types: readonly string[] | undefined, max: number, arm: boolean) {
    const settles = this.#settles.take();
    try {
      const result = await this.#store.claim({
        types,
        max,
        leaseMs: this.#settings.visibilityTimeoutMs,
        arm: arm && !this.#closing,
        settle: settles?.items,
      });
      if (settles && result.settled === undefined) {
        // A store that does not take settles along with a claim: commit them on their own.
        this.#store.settle(settles.items).then(settles.settle, settles.fail);
      } else {
        settles?.settle(result.settled ?? []);
      }
      return result;
    } catch (err) {
      settles?.fail(err);
      throw err;
    }
  }

  #wake(kind: WakeKind): void {
    if (kind === 'room') {
      this.#sends.room();
      return;
    }
    for (const fetcher of this.#fetchers) fetcher.wake();
  }

  #checkOpen(): void {
    if (this.#closing) throw closedError(this.#what);
  }

  #ifOpen<R>(work: () => Promise<R>): Promise<R> {
    try {
      this.#checkOpen();
      return work();
    } catch (err) {
      return Promise.reject(err);
    }
  }

  #outgoing(body: T, settings: MessageSettings): OutgoingMessage {
    const bytes = this.#codec.encode(body);
    if (bytes.length > this.#settings.maxMessageBytes) {
      throw frameTooLarge(this.#what, bytes.length, this.#settings.maxMessageBytes);
    }
    const maxBytes = this.#settings.maxBytes;
    if (maxBytes !== undefined && bytes.length > maxBytes) {
      throw new IpcError(
        ErrorCodes.QUEUE_FULL,
        `${this.#what}: a message of ${bytes.length} bytes can never fit in maxBytes ${maxBytes}`,
      );
    }
    return {
      id: settings.id ?? newMessageId(),
      dedupe: settings.id !== undefined,
      body: bytes,
      type: settings.type,
      priority: settings.priority,
      delayMs: settings.delayMs,
      ttlMs: settings.ttlMs,
    };
  }

  /**
   * Refuses a batch larger than the bounds: it could never be stored whole, and waiting for room
   * would wait forever. A repeated caller-chosen id counts once (the store drops the copy); an id
   * sent before, which the store may also drop, still counts, as the batch cannot know.
   */
  #checkFits(batch: readonly OutgoingMessage[]): void {
    const { maxMessages, maxBytes } = this.#settings;
    if (maxMessages === undefined && maxBytes === undefined) return;
    const ids = new Set<string>();
    let count = 0;
    let bytes = 0;
    for (const m of batch) {
      if (m.dedupe && this.#settings.dedupeWindowMs > 0) {
        if (ids.has(m.id)) continue;
        ids.add(m.id);
      }
      count++;
      bytes += m.body.length;
    }
    const over =
      maxMessages !== undefined && count > maxMessages
        ? `${count} messages can never fit in maxMessages ${maxMessages}`
        : maxBytes !== undefined && bytes > maxBytes
          ? `${bytes} bytes can never fit in maxBytes ${maxBytes}`
          : undefined;
    if (over) throw new IpcError(ErrorCodes.QUEUE_FULL, `${this.#what}: a batch of ${over}`);
  }

  /**
   * A delivered message. One whose body fails the codec or schema is reported and nacked with a
   * delay of visibilityTimeoutMs: at once, it would come straight back to this consumer, which
   * cannot use it, and hold up the messages behind it until its attempts ran out. Delayed, the
   * receives behind it go on, and another consumer (one with a newer schema, in a rolling
   * upgrade) may still take it; after maxAttempts deliveries it is a dead letter, as any other.
   */
  #toMessage(claimed: ClaimedMessage): Message<T> | Promise<Message<T>> {
    if (this.#closing) {
      // Taken from a fetcher before close() and reaching here after it: given back, as prefetched ones are.
      void this.#release([claimed]);
      throw closedError(this.#what);
    }
    let body: T | Promise<T>;
    try {
      // A schema that validates asynchronously is awaited: a receive can wait, a channel's cannot.
      body = this.#codec.decodeAsync(claimed.body);
    } catch (err) {
      throw this.#undecodable(claimed, err);
    }
    if (!(body instanceof Promise)) return this.#message(claimed, body);
    const checking = body;
    return new Promise<Message<T>>((resolve, reject) => {
      this.#validating.set(claimed, reject);
      checking.then(
        (checked) => {
          if (this.#validating.delete(claimed)) resolve(this.#message(claimed, checked));
        },
        (err: unknown) => {
          if (this.#validating.delete(claimed)) reject(this.#undecodable(claimed, err));
        },
      );
    });
  }

  /** Nacks a message whose body fails the codec or schema (see #toMessage); returns the error. */
  #undecodable(claimed: ClaimedMessage, err: unknown): unknown {
    const delayMs = this.#settings.visibilityTimeoutMs;
    this.#settle({ kind: 'nack', receipt: claimed.receipt, delayMs }).catch(() => {});
    return err;
  }

  #message(claimed: ClaimedMessage, body: T): Message<T> {
    return new Message<T>({
      id: claimed.id,
      body,
      type: claimed.type,
      priority: claimed.priority,
      attempts: claimed.attempts,
      enqueuedAt: claimed.enqueuedAt,
      lease: { receipt: claimed.receipt, until: claimed.leaseUntil, settle: this.#settle, queue: this.name },
    });
  }

  /** A listed message: decoded without the schema, raw bytes if even that fails. */
  #listed(stored: StoredMessage): Message<T> {
    let body: unknown;
    try {
      body = this.#listCodec.decode(stored.body);
    } catch {
      body = Uint8Array.prototype.slice.call(stored.body);
    }
    return new Message<T>({
      id: stored.id,
      body: body as T,
      type: stored.type,
      priority: stored.priority,
      attempts: stored.attempts,
      enqueuedAt: stored.enqueuedAt,
    });
  }

  /** Gives leased messages back; resolves once they are back (or their release failed). */
  #release(messages: ClaimedMessage[]): Promise<void> {
    if (messages.length === 0) return Promise.resolve();
    return Promise.all(
      messages.map((message) => this.#settle({ kind: 'release', receipt: message.receipt }).catch(() => {})),
    ).then(() => {});
  }
}
