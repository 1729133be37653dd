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
  /** Lent to a Condition wait, which releases the lock and takes it back for this guard. */
  #lent = false;
  readonly #unlock: () => void;

  constructor(source: object, unlock: () => void, ownerDied: boolean) {
    this.source = source;
    this.#unlock = unlock;
    this.ownerDied = ownerDied;
  }

  get released(): boolean {
    return this.#released;
  }

  /** @internal True while a Condition wait has the lock released on this guard's behalf. */
  get lent(): boolean {
    return this.#lent;
  }

  /** @internal A Condition wait releases the lock for this guard until it gives it back, held. */
  lend(lent: boolean): void {
    this.#lent = lent;
  }

  release(): void {
    if (this.#released) return;
    // Meanwhile the lock may be another task's (a thread owns it, not a guard): freeing it would
    // let a third in beside that one.
    if (this.#lent) {
      throw new TypeError('this guard is lent to a Condition wait that has not returned: release it after');
    }
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
