/**
 * How long a ShmChannel end that waits (a reader for records, a writer for room) re-polls the ring,
 * once per event-loop turn, before it parks on its doorbell. A wake-up costs a syscall on each side
 * and a sleeping core's wake latency, tens of µs on a VM: a wait that would have ended within the
 * window costs neither. Each wake-up teaches the window how long the last wait lasted.
 */

/** The smallest re-polling window (ms), where a slow stream settles. */
export const SPIN_MIN_MS = 0.005;
/** The largest learned window (ms): a waiter gap longer than this is a slow stream, not worth a core. */
export const SPIN_MAX_MS = 0.25;

/** One waiting end's re-polling window and the clock of its current wait. */
export class AdaptiveSpin {
  /** When the current wait began (0: not waiting). */
  #since = 0;
  /** Whether this wait has parked: it stays parked until what it waits for comes. */
  #parked = false;
  /** When the parked wait began, to learn from the wake-up how long it lasted. */
  #parkedSince = 0;
  #windowMs = SPIN_MIN_MS;

  /**
   * The thing waited for is not there yet: true while the window (from the wait's first miss) is
   * open, so the caller re-polls on a later turn; false once it has passed, so the caller parks.
   * A parked wait stays parked: a doorbell rung for something else (it serves every channel of
   * the thread) does not open a new window. `windowMs` replaces the learned window (a mode that
   * always spins longer).
   */
  polling(windowMs = this.#windowMs): boolean {
    if (this.#parked) return false;
    const now = performance.now();
    if (this.#since === 0) this.#since = now;
    return now - this.#since < windowMs;
  }

  /**
   * The caller parks (or parks again, after a wake-up that brought nothing): the wake-up that
   * brings what it waits for will tell how long the whole wait lasted.
   */
  park(): void {
    if (this.#parked) return;
    this.#parked = true;
    this.#parkedSince = this.#since;
    this.#since = 0;
  }

  /**
   * What was waited for came: the wait ends. Had it come after a park but within SPIN_MAX_MS of the
   * wait's start, re-polling that long would have caught it without a wake-up: the window grows to
   * cover it. A longer wait means a slow stream, for which re-polling only burns CPU: it shrinks.
   */
  came(): void {
    this.#since = 0;
    if (!this.#parked) return;
    this.#parked = false;
    const waited = performance.now() - this.#parkedSince;
    this.#windowMs =
      waited <= SPIN_MAX_MS
        ? Math.min(SPIN_MAX_MS, Math.max(this.#windowMs * 2, waited * 1.5))
        : Math.max(SPIN_MIN_MS, this.#windowMs / 2);
  }

  /** The wait does not count (the reader stopped on its own, at its high-water mark). */
  forget(): void {
    this.#since = 0;
    this.#parked = false;
  }
}
