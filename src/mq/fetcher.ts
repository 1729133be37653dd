/**
 * Demand for messages of one type filter, and the waiting that goes with it. `receive()` calls
 * share one fetcher per filter that claims exactly as many messages as there are callers (and is
 * dropped once idle); a `consume()` loop has its own that keeps up to `prefetch` leased ahead.
 *
 * Waiting is event-driven: a claim that finds nothing arms the store's wake-up in the same
 * transaction, and the fetcher claims again when the store calls back. A timer covers what no
 * wake-up announces (a delay or lease running out: the store says when) and, as a safety net only,
 * re-checks every `pollIntervalMs`.
 */
import { closedError, type IpcError } from '../core/errors.js';
import { Queue } from '../core/queue.js';
import { armWait, timeoutError, type WaitOptions } from '../core/wait.js';
import type { ClaimedMessage, ClaimResult } from './store.js';

/** What a fetcher needs from its queue. */
export interface FetchSource {
  /** A label for errors. */
  readonly what: string;
  readonly pollIntervalMs: number;
  /** How long a claim leases its messages. */
  readonly leaseMs: number;
  claim(types: readonly string[] | undefined, max: number, arm: boolean): Promise<ClaimResult>;
  /** Gives leased messages nobody will take back to the queue; resolves once they are back. */
  release(messages: ClaimedMessage[]): Promise<void>;
}

/**
 * A message leased ahead, with when its lease ends by this process's clock: no later than the
 * claim's start plus the lease. Never `leaseUntil`, which a Redis store gives in the server's
 * clock: compared with ours, a host whose clock runs ahead took every message it leased ahead
 * for expired, and dropped it, until the messages ran out of attempts.
 */
interface Leased {
  message: ClaimedMessage;
  expiresAt: number;
}

interface Waiter {
  resolve(message: ClaimedMessage): void;
  reject(err: unknown): void;
  disarm(): void;
  /**
   * `timeout: 0` (a poll): the number of the claim whose answer it waits for, and no longer. A
   * timer of 0 ms would race the claim and could time out with messages ready in the store.
   */
  pollClaim?: number;
}

/** Claims messages for callers of {@link Fetcher.next}. */
export class Fetcher {
  readonly #source: FetchSource;
  readonly #types: readonly string[] | undefined;
  readonly #prefetch: number;
  readonly #buffer = new Queue<Leased>();
  readonly #waiters = new Queue<Waiter>();
  #claiming = false;
  /** Claims started so far (the number of the latest). */
  #claims = 0;
  /** The latest claim that answered. */
  #answered = 0;
  /** The claim the newest poll waits for (0: none yet). */
  #newestPoll = 0;
  #again = false;
  /** The last claim got fewer messages than it asked for. */
  #drained = false;
  #timer: NodeJS.Timeout | undefined;
  #closed: IpcError | undefined;
  /** The latest claim, settled once its answer was handled (and, after close, given back). */
  #lastClaim: Promise<void> = Promise.resolve();
  readonly #onIdle: (() => void) | undefined;

  /**
   * @param prefetch 0: claim only for waiting callers (receive); n: keep up to n leased ahead (consume).
   * @param onIdle called whenever the fetcher becomes {@link idle}, so that its owner can drop it.
   */
  constructor(
    source: FetchSource,
    types: readonly string[] | undefined,
    prefetch: number,
    onIdle?: () => void,
  ) {
    this.#source = source;
    this.#types = types;
    this.#prefetch = prefetch;
    this.#onIdle = onIdle;
  }

  /** True while a caller waits. */
  get waiting(): boolean {
    return this.#waiters.length > 0;
  }

  /**
   * True when nobody waits, nothing is leased ahead and no claim is in flight or due: the fetcher
   * holds nothing, and a new one would carry on exactly where it stands.
   */
  get idle(): boolean {
    return this.#waiters.length === 0 && this.#buffer.length === 0 && !this.#claiming && !this.#timer;
  }

  /** The next message, waiting for one if need be. */
  next(opts?: WaitOptions): Promise<ClaimedMessage> {
    if (this.#closed) return Promise.reject(this.#closed);
    const ready = this.#take();
    if (ready) {
      this.#pump();
      return Promise.resolve(ready);
    }
    return new Promise<ClaimedMessage>((resolve, reject) => {
      const waiter: Waiter = { resolve, reject, disarm: noop };
      const poll = opts?.timeout === 0;
      // A poll waits for the next claim to start (one in flight now did not ask for it).
      if (poll) {
        waiter.pollClaim = this.#claims + 1;
        this.#newestPoll = waiter.pollClaim;
      }
      const bounds = poll ? { signal: opts.signal } : opts;
      waiter.disarm = armWait(`${this.#source.what}: receive`, bounds, (err) => this.#fail(waiter, err));
      if (opts?.signal?.aborted) return;
      this.#waiters.push(waiter);
      this.#pump();
    });
  }

  /** Ends one waiter's wait with `err` (its timeout or abort). */
  #fail(waiter: Waiter, err: IpcError): void {
    this.#waiters.remove(waiter);
    if (this.#waiters.length === 0) this.#clearTimer();
    waiter.reject(err);
    this.#idled();
  }

  /** Polls (`timeout: 0`) whose claim has answered without a message for them time out. */
  #endPolls(answered: number): void {
    // Every answer ends the polls up to its claim: none can wait unless one came since the last.
    const pending = this.#newestPoll > this.#answered;
    this.#answered = answered;
    if (!pending || this.#waiters.length === 0) return;
    const expired: Waiter[] = [];
    for (const waiter of this.#waiters.drain()) {
      if (waiter.pollClaim !== undefined && waiter.pollClaim <= answered) expired.push(waiter);
      else this.#waiters.push(waiter);
    }
    if (expired.length === 0) return;
    if (this.#waiters.length === 0) this.#clearTimer();
    for (const waiter of expired) {
      waiter.disarm();
      waiter.reject(timeoutError(`${this.#source.what}: receive`, 0));
    }
    this.#idled();
  }

  /** Something may have changed: claim again if anyone waits. */
  wake(): void {
    if (this.#waiters.length > 0 || this.#wantsPrefetch()) this.#pump();
  }

  /**
   * Stops: waiting callers reject with `err` (default ERR_IPC_CLOSED); returns the leased messages
   * nobody took, for the caller to release.
   */
  close(err?: IpcError): ClaimedMessage[] {
    if (!this.#closed) {
      this.#closed = err ?? closedError(this.#source.what);
      this.#clearTimer();
      for (const waiter of this.#waiters.drain()) {
        waiter.disarm();
        waiter.reject(this.#closed);
      }
    }
    return this.#buffer.drain().map((leased) => leased.message);
  }

  /**
   * Resolves once no claim is in flight: after {@link close}, a claim that was in flight has given
   * its messages back by then.
   */
  whenQuiet(): Promise<void> {
    return this.#lastClaim;
  }

  /** A buffered message whose lease still runs; expired ones are left for the store to redeliver. */
  #take(): ClaimedMessage | undefined {
    const now = Date.now();
    for (;;) {
      const leased = this.#buffer.shift();
      if (!leased || leased.expiresAt > now) return leased?.message;
    }
  }

  /**
   * Whether to top the buffer up ahead of demand: below half of `prefetch`, unless the last claim
   * found the queue nearly empty. Then the fetcher waits until the buffer runs dry, so that a
   * consumer keeping up with its producers claims in batches instead of one transaction per few
   * messages.
   */
  #wantsPrefetch(): boolean {
    return this.#prefetch > 0 && !this.#drained && this.#buffer.length <= this.#prefetch >> 1;
  }

  #pump(): void {
    if (this.#closed) return;
    if (this.#claiming) {
      this.#again = true;
      return;
    }
    const waiting = this.#waiters.length;
    let want = 0;
    if (this.#prefetch > 0) {
      if (waiting > 0 || this.#wantsPrefetch())
        want = Math.max(this.#prefetch, waiting) - this.#buffer.length;
    } else {
      want = waiting - this.#buffer.length;
    }
    if (want <= 0) return;
    this.#claiming = true;
    this.#again = false;
    this.#clearTimer();
    // The claim runs on the next turn of the event loop, not in this microtask chain: a store
    // that answers synchronously (SQLite) would otherwise let a consumer with a backlog drain it
    // without ever yielding, starving timers and I/O (its own wake-ups and IPC included).
    const claim = ++this.#claims;
    setImmediate(() => this.#claim(claim, want, waiting > 0));
  }

  #claim(claim: number, want: number, arm: boolean): void {
    if (this.#closed) {
      this.#claiming = false;
      return;
    }
    const expiresAt = Date.now() + this.#source.leaseMs;
    this.#lastClaim = this.#source.claim(this.#types, want, arm || this.#waiters.length > 0).then(
      (result) => {
        this.#drained = result.messages.length < want;
        const released = this.#claimed(result, expiresAt);
        this.#endPolls(claim);
        return released;
      },
      (err) => {
        this.#claiming = false;
        for (const waiter of this.#waiters.drain()) {
          waiter.disarm();
          waiter.reject(err);
        }
        this.#idled();
      },
    );
  }

  #idled(): void {
    if (!this.#closed && this.idle) this.#onIdle?.();
  }

  /** Hands the claimed messages out; after close, gives them back (the promise: until they are). */
  #claimed(result: ClaimResult, expiresAt: number): Promise<void> | undefined {
    this.#claiming = false;
    if (this.#closed) return this.#source.release(result.messages);
    for (const message of result.messages) this.#buffer.push({ message, expiresAt });
    while (this.#waiters.length > 0) {
      const message = this.#take();
      if (!message) break;
      const waiter = this.#waiters.shift()!;
      waiter.disarm();
      waiter.resolve(message);
    }
    if (this.#prefetch === 0 && this.#buffer.length > 0) {
      // A caller gave up while its claim was in flight: nobody asked for these.
      void this.#source.release(this.#buffer.drain().map((leased) => leased.message));
    }
    if (this.#waiters.length === 0) {
      if (this.#again && this.#wantsPrefetch()) this.#pump();
      else this.#idled();
      return;
    }
    if (result.messages.length > 0 || this.#again) {
      this.#pump();
      return;
    }
    // Nothing to claim and the wake-up is armed: wait for it, or for the next due moment.
    const now = Date.now();
    const due = result.nextDueAt === undefined ? Number.POSITIVE_INFINITY : result.nextDueAt - now;
    const delay = Math.max(1, Math.min(due, this.#source.pollIntervalMs));
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#pump();
    }, delay);
  }

  #clearTimer(): void {
    if (this.#timer) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
  }
}

function noop(): void {}
