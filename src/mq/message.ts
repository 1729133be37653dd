/**
 * A delivered message: its body and metadata, and the lease that lets this consumer settle it.
 * A message is settled once (ack or nack); extend only while unsettled. Messages listed by `peek`
 * and `deadLetters` carry no lease: settling them is refused.
 */
import { ErrorCodes, IpcError } from '../core/errors.js';
import { intOption, MAX_MS, type NackOptions } from './options.js';
import type { Receipt, SettleOp, SettleResult } from './store.js';

/** Settles one delivery through the queue's group commit: false if the lease was lost (see SettleResult). */
export type Settle = (op: SettleOp) => Promise<SettleResult>;

/** What a Message is made of (internal). */
export interface MessageInit<T> {
  id: string;
  body: T;
  type: string;
  priority: number;
  attempts: number;
  enqueuedAt: number;
  /** Absent for listed (peeked, dead) messages. */
  lease?: { receipt: Receipt; until: number; settle: Settle; queue: string };
}

/** Set by the queue's `process` loop to learn whether a handler settled its message itself. */
export const kSettled = Symbol('settled');

/** A message received from a {@link MessageQueue}. */
export class Message<T = unknown> {
  /** Its id: the one given to `send`, or generated. */
  readonly id: string;
  /** The decoded body. */
  readonly body: T;
  readonly type: string;
  readonly priority: number;
  /** Deliveries so far including this one: 1 on the first. */
  readonly attempts: number;
  /** When it was sent, ms since the epoch. */
  readonly enqueuedAt: number;
  #lease: MessageInit<T>['lease'];
  #settled = false;
  /** ack or nack was called, whatever came of it. */
  #settleCalled = false;

  /** @internal Messages are made by the queue. */
  constructor(init: MessageInit<T>) {
    this.id = init.id;
    this.body = init.body;
    this.type = init.type;
    this.priority = init.priority;
    this.attempts = init.attempts;
    this.enqueuedAt = init.enqueuedAt;
    this.#lease = init.lease;
  }

  /**
   * When this delivery's lease runs out (ms since the epoch; the store's clock); after `extend`,
   * the end it set, earlier than before too. Undefined for listed messages.
   */
  get leaseUntil(): number | undefined {
    return this.#lease?.until;
  }

  /**
   * @internal True once ack or nack was called, even if the call failed: process() then leaves the
   * message to its lease rather than settle it the other way (an ack after a failed nack lost it).
   */
  get [kSettled](): boolean {
    return this.#settleCalled;
  }

  /**
   * Done: removes the message for good. Rejects with ERR_IPC_LEASE_LOST if the lease ran out or the
   * message was settled already (it may then be delivered again, to this or another consumer).
   */
  ack(): Promise<void> {
    return this.#settle('ack', (receipt) => ({ kind: 'ack', receipt }));
  }

  /**
   * Failed: the message goes back to the queue (after `delayMs`) or, if this was delivery
   * `maxAttempts`, to the dead letters. ERR_IPC_LEASE_LOST as for `ack`.
   */
  nack(opts?: NackOptions): Promise<void> {
    let delayMs: number;
    try {
      if (opts !== undefined && (typeof opts !== 'object' || opts === null)) {
        throw new TypeError('options must be an object');
      }
      delayMs = intOption(opts?.delayMs, 'options.delayMs', 0, MAX_MS, 0);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#settle('nack', (receipt) => ({ kind: 'nack', receipt, delayMs }));
  }

  /** Still working: the lease now ends `ms` from now (not `ms` later than before). */
  extend(ms: number): Promise<void> {
    let leaseMs: number;
    try {
      if (ms === undefined) throw new TypeError('ms is required');
      leaseMs = intOption(ms, 'ms', 1, MAX_MS, 0);
    } catch (err) {
      return Promise.reject(err);
    }
    const lease = this.#lease;
    if (!lease || this.#settled) return Promise.reject(this.#lost('extend'));
    const until = Date.now() + leaseMs;
    return lease.settle({ kind: 'extend', receipt: lease.receipt, leaseMs }).then((result) => {
      if (result === false) throw this.#lost('extend');
      // The end the store set, shorter than before too; failing that, reckoned from before the
      // call, so never later than the store's.
      lease.until = typeof result === 'number' ? result : until;
    });
  }

  #settle(verb: string, op: (receipt: Receipt) => SettleOp): Promise<void> {
    const lease = this.#lease;
    if (!lease || this.#settled) return Promise.reject(this.#lost(verb));
    this.#settled = true;
    this.#settleCalled = true;
    return lease.settle(op(lease.receipt)).then(
      (result) => {
        if (result === false) throw this.#lost(verb);
      },
      (err: unknown) => {
        // The store failed (closed, I/O error): nothing was settled, so a retry is not refused.
        this.#settled = false;
        throw err;
      },
    );
  }

  #lost(verb: string): IpcError {
    const where = this.#lease ? `message queue '${this.#lease.queue}'` : 'message queue';
    const why = !this.#lease
      ? 'it was listed, not delivered to this consumer'
      : this.#settled
        ? 'its lease was lost or it was settled already'
        : 'its lease was lost';
    return new IpcError(ErrorCodes.LEASE_LOST, `${where}: cannot ${verb} message ${this.id}: ${why}`);
  }
}
