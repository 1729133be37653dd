/**
 * Wake-ups for the Redis store: a dedicated subscriber connection on the queue's channel, where the
 * scripts publish 'm' (a message may be claimable) and 'r' (a full queue may have room).
 *
 * Pub/sub is fire-and-forget: whatever is published while the connection is down never arrives.
 * So each time the subscription is (re-)established after a reconnect, both wake-ups fire once:
 * every pending wait looks again, and re-arms if there still is nothing.
 */
import type { Redis } from 'ioredis';
import type { WakeKind } from './store.js';

/** The subscriber side of one queue. */
export class RedisWake {
  readonly #connection: Redis;
  readonly #channel: string;
  readonly #onWake: (kind: WakeKind) => void;
  #subscribed: Promise<void> | undefined;
  #first = true;
  #closed = false;

  /** `base` is the store's command connection; the subscriber is a duplicate of it, connecting now. */
  constructor(base: Redis, channel: string, onWake: (kind: WakeKind) => void) {
    // Our own resubscription (below) knows when the subscription is back; ioredis's does not say.
    this.#connection = base.duplicate({ lazyConnect: false, autoResubscribe: false });
    this.#channel = channel;
    this.#onWake = onWake;
    this.#connection.on('error', () => {
      // Reconnection is ioredis's; the errors it reports meanwhile are not ours to raise.
    });
    this.#connection.on('message', (_channel: string, what: string) => {
      if (this.#closed) return;
      if (what === 'm') this.#onWake('messages');
      else if (what === 'r') this.#onWake('room');
    });
    this.#connection.on('ready', () => {
      if (this.#first || this.#closed) return;
      this.#connection.subscribe(this.#channel).then(
        () => {
          if (this.#closed) return;
          this.#onWake('messages');
          this.#onWake('room');
        },
        () => {},
      );
    });
  }

  /** Resolves once subscribed: a wake-up armed after this is delivered. */
  ready(): Promise<void> {
    this.#subscribed ??= (async () => {
      // Queued by ioredis until the connection is up (or back).
      await this.#connection.subscribe(this.#channel);
      this.#first = false;
    })().catch((err) => {
      this.#subscribed = undefined;
      throw err;
    });
    return this.#subscribed;
  }

  close(): void {
    this.#closed = true;
    this.#connection.disconnect();
  }
}
