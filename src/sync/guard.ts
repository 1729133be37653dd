/**
 * Guards: what a successful lock or acquire returns. Releasing is idempotent, and `using` /
 * `await using` release at the end of the block. `ownerDied` tells the new holder that the previous
 * one died holding it, so the data it protects may be half-updated.
 */

/** A held lock (or permit). */
export interface Guard extends Disposable, AsyncDisposable {
  /** True when this acquisition recovered the lock from a holder that died holding it. */
  readonly ownerDied: boolean;
  /** True once released. */
  readonly released: boolean;
  /** Releases it. Idempotent. */
  release(): void;
}

/** @internal The one Guard implementation; `unlock` is the primitive's release for this hold. */
export class HeldGuard implements Guard {
  ownerDied: boolean;
  /** @internal What issued it (a Condition checks that a guard is a Mutex's). */
  readonly source: object;
  #released = false;
  readonly #unlock: () => void;

  constructor(source: object, unlock: () => void, ownerDied: boolean) {
    this.source = source;
    this.#unlock = unlock;
    this.ownerDied = ownerDied;
  }

  get released(): boolean {
    return this.#released;
  }

  release(): void {
    if (this.#released) return;
    this.#unlock();
    this.#released = true;
  }

  [Symbol.dispose](): void {
    this.release();
  }

  [Symbol.asyncDispose](): Promise<void> {
    try {
      this.release();
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(err);
    }
  }
}
