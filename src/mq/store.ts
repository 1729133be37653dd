/**
 * The Store interface: everything a message queue needs from the place its messages live. The
 * MessageQueue (codec, options, group commit, waiting, leases as objects) is written against this
 * interface only, so the embedded SQLite store and the Redis store give the same semantics, and the
 * conformance suite in test/conformance/ holds every store to them.
 *
 * Every method takes a batch where batching pays: the queue gathers the sends, acks and nacks
 * issued in one tick and hands them over together, and a store commits each call atomically.
 */

/** A message on its way into the store: encoded, its options resolved. */
export interface OutgoingMessage {
  /** The public id: the caller's (`send(body, { id })`) or one the queue generated. */
  id: string;
  /** True when the caller chose the id: a second message with it inside the dedupe window is dropped. */
  dedupe: boolean;
  body: Uint8Array;
  type: string;
  /** Higher first. */
  priority: number;
  /** Deliverable only after this many ms (0: at once). */
  delayMs: number;
  /** Dropped if not delivered within this many ms of sending (0: never). */
  ttlMs: number;
}

/** What became of one outgoing message. */
export type SendOutcome =
  /** Durable in the store. */
  | 'sent'
  /** A message with its id was sent within the dedupe window (or is still queued): nothing was added. */
  | 'duplicate'
  /** The queue is at `maxMessages` / `maxBytes`: nothing was added. */
  | 'full';

/** One call of {@link Store.send}. */
export interface SendRequest {
  messages: readonly OutgoingMessage[];
  /** Live messages (ready, delayed, in flight; not dead) allowed in the queue; undefined: no bound. */
  maxMessages: number | undefined;
  /** Total body bytes of live messages allowed; undefined: no bound. */
  maxBytes: number | undefined;
  /**
   * Sizes of consecutive runs of `messages` (summing to its length) that are committed whole or
   * not at all: a `sendBatch` is one run, a `send` a run of one. A run that does not fit entirely
   * is 'full' in every message, none of it is stored, and every run after it is 'full' too.
   * Messages that turn out 'duplicate' take no room.
   */
  groups: readonly number[];
  /**
   * When a message does not fit, arm the 'room' wake-up: {@link StoreOpenOptions.onWake} is then
   * called with 'room' after the next ack, dead-lettering, expiry or purge frees space.
   */
  armRoom: boolean;
}

/**
 * What a store hands out for a delivered message, to be given back to settle it. Opaque to the
 * queue: it names the message and this delivery's lease (a later delivery has another one).
 */
export type Receipt = unknown;

/** A message as the store holds it. */
export interface StoredMessage {
  id: string;
  body: Uint8Array;
  type: string;
  priority: number;
  /** Deliveries so far, including the current one. */
  attempts: number;
  /** When it was sent, ms since the epoch. */
  enqueuedAt: number;
}

/** A message delivered to this consumer under a lease. */
export interface ClaimedMessage extends StoredMessage {
  receipt: Receipt;
  /** When the lease runs out, ms since the epoch. */
  leaseUntil: number;
}

/** One call of {@link Store.claim}. */
export interface ClaimRequest {
  /** Only these types; undefined: any type. */
  types: readonly string[] | undefined;
  /** Claim at most this many (>= 1), highest priority first, then oldest first. */
  max: number;
  /** Lease length: the message comes back to the queue if not settled by then. */
  leaseMs: number;
  /**
   * When nothing is claimable, arm the 'messages' wake-up: {@link StoreOpenOptions.onWake} is then
   * called with 'messages' after the next send, nack or release by any process. Arming and finding
   * nothing are one atomic step, so a message sent in between is never missed.
   */
  arm: boolean;
  /**
   * Settles to apply first, in the same transaction (a consumer's acks ride along with its next
   * claim); their results come back in {@link ClaimResult.settled}. A store that cannot do this
   * leaves `settled` undefined, and the queue then commits them with {@link Store.settle}.
   */
  settle?: readonly SettleOp[] | undefined;
}

/** What {@link Store.claim} returns. */
export interface ClaimResult {
  /** One result per {@link ClaimRequest.settle} op, as {@link Store.settle} returns them. */
  settled?: SettleResult[] | undefined;
  /** In delivery order. */
  messages: ClaimedMessage[];
  /**
   * When nothing was claimable: the earliest moment (ms since the epoch, by this process's clock:
   * a store with a clock of its own converts) a delayed message becomes ready or a lease runs out,
   * which no wake-up announces; undefined if there is none.
   */
  nextDueAt?: number | undefined;
}

/** How a delivered message is settled. */
export type SettleOp =
  /** Done: delete it. */
  | { kind: 'ack'; receipt: Receipt }
  /** Failed: back to the queue after `delayMs` or, past `maxAttempts`, to the dead letters. */
  | { kind: 'nack'; receipt: Receipt; delayMs: number }
  /** Still working: the lease now ends `leaseMs` from now. */
  | { kind: 'extend'; receipt: Receipt; leaseMs: number }
  /** Never handed to the application (prefetched, then the consumer stopped): back at once, this delivery not counted. */
  | { kind: 'release'; receipt: Receipt };

/**
 * What became of one settle: false if the lease was lost, else true; an applied extend may
 * instead give the lease's new end (ms since the epoch, the store's clock), which the message
 * then reports as its `leaseUntil` (with true, the queue reckons it from its own clock).
 */
export type SettleResult = boolean | number;

/** Counts of a queue, as `q.stats()` returns them. */
export interface QueueStats {
  /** Deliverable now. */
  ready: number;
  /** Waiting for their `delayMs` (or a nack's delay) to pass. */
  delayed: number;
  /** Delivered and not yet settled. */
  inflight: number;
  /** In the dead-letter list. */
  dead: number;
  /** Ready messages by priority (keys are the priorities as strings). */
  byPriority: Record<string, number>;
  /** Ready messages by type. */
  byType: Record<string, number>;
}

/** One queue in one store, opened by one process. */
export interface Store {
  /**
   * A server that may be away (Redis): close() then waits only briefly for the answer to a claim
   * in flight. A local store (SQLite) always answers in the end, busy or not. Default false.
   */
  readonly remote?: boolean;
  /**
   * Adds messages in one atomic commit, in order; resolves only once they are durable. A run of
   * {@link SendRequest.groups} is stored whole or not at all, and the runs after the first 'full'
   * one are 'full' too, so a producer's order survives a full queue.
   * A rejection means the outcome is unknown (the commit may have reached the disk): the queue
   * reports it and a retry with the same ids is deduplicated.
   */
  send(request: SendRequest): Promise<SendOutcome[]>;
  /** Leases up to `max` ready messages to the caller, in one atomic step. */
  claim(request: ClaimRequest): Promise<ClaimResult>;
  /**
   * Settles deliveries in one atomic commit. Each result is true if applied (for an extend, the
   * lease's new end, if the store knows it: see {@link SettleResult}), false if the lease was
   * lost (it ran out, or the message was settled, redelivered or purged meanwhile).
   */
  settle(ops: readonly SettleOp[]): Promise<SettleResult[]>;
  stats(): Promise<QueueStats>;
  /** Ready messages in delivery order, without leasing them. */
  peek(limit: number): Promise<StoredMessage[]>;
  /** Dead letters, oldest first. */
  deadLetters(limit: number): Promise<StoredMessage[]>;
  /** Moves every dead letter back to ready with its attempts reset; returns how many. */
  replayDead(): Promise<number>;
  /** Deletes every message (ready, delayed, in flight and dead); returns how many. */
  purge(): Promise<number>;
  /** Releases what this process holds (connections, wake-up registration). Idempotent. */
  close(): Promise<void>;
}

/** Which wake-up fired: a message may be claimable, or a full queue may have room. */
export type WakeKind = 'messages' | 'room';

/** What a queue tells its store when it opens it. */
export interface StoreOpenOptions {
  /** 'normal': survives any process crash; 'fsync': also survives power loss, slower. */
  durability: 'normal' | 'fsync';
  /** A caller-chosen id is remembered this long after sending, ms. */
  dedupeWindowMs: number;
  /** Deliveries after which a nack or lease expiry dead-letters a message. */
  maxAttempts: number;
  /** Called when an armed wake-up fires; may be called spuriously. */
  onWake(kind: WakeKind): void;
}

/** A kind of store: opens queues and removes them. */
export interface StoreDriver {
  /** 'sqlite', 'redis', … */
  readonly name: string;
  /** Opens (creating if needed) the queue `name`. */
  open(name: string, options: StoreOpenOptions): Promise<Store>;
  /** Deletes the queue `name` and everything in it; false if there was none. */
  remove(name: string): Promise<boolean>;
}
