/**
 * A ttl running out, or a lease running out at a message's last attempt (it goes to the dead
 * letters), frees room in a full queue without anyone writing to the store, so no process rings
 * the 'room' wake-up for it: a producer waiting for room would wait for its next poll. A store whose
 * send found the queue full therefore tells its own waiting producers, with this timer, when the
 * earliest of those moments comes. Rings may be early or spurious (the message may have been
 * delivered or acked meanwhile, or its lease was not its last): the send that follows sweeps and
 * finds out, as for any ring.
 */
import { MAX_TIMEOUT_MS } from '../core/wait.js';

/** Rings once at the earliest moment it was given; a later moment never delays it. */
export class RoomAlarm {
  readonly #ring: () => void;
  #timer: NodeJS.Timeout | undefined;
  #at = Number.POSITIVE_INFINITY;

  /** `ring` is called when the moment comes, unless the alarm was closed. */
  constructor(ring: () => void) {
    this.#ring = ring;
  }

  /** Rings at `at` (ms, this process's clock) unless it is set to ring sooner already. */
  set(at: number): void {
    if (at >= this.#at) return;
    clearTimeout(this.#timer);
    this.#at = at;
    // +1: a ttl or lease runs out once the store's clock has passed its moment, not at it.
    const delay = Math.min(Math.max(at - Date.now() + 1, 0), MAX_TIMEOUT_MS);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#at = Number.POSITIVE_INFINITY;
      this.#ring();
    }, delay);
    // The producer's own wait keeps the process alive (its poll timer); the alarm only hurries it.
    this.#timer.unref();
  }

  /** Rings no more. */
  close(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#at = Number.POSITIVE_INFINITY;
  }
}
