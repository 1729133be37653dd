/**
 * Group commit: operations issued in the same turn of the event loop are handed to the store in one
 * call, hence one transaction. While a call is in flight, new operations gather for the next one,
 * so a slow commit makes the next batch bigger instead of the queue of commits longer.
 */

interface Pending<I, O> {
  item: I;
  resolve(value: O): void;
  reject(err: unknown): void;
}

/** Batches items into calls of `run`, which returns one result per item, in order. */
export class Batcher<I, O> {
  readonly #run: (items: I[]) => Promise<O[]>;
  readonly #maxBatch: number;
  #pending: Pending<I, O>[] = [];
  #scheduled = false;
  #running = false;
  /** Batches taken by `take` and not yet settled. */
  #outside = 0;
  #idle: (() => void)[] = [];

  constructor(run: (items: I[]) => Promise<O[]>, maxBatch = 1024) {
    this.#run = run;
    this.#maxBatch = maxBatch;
  }

  /** Adds an item to the next batch; resolves with its result. */
  push(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.#pending.push({ item, resolve, reject });
      this.#schedule();
    });
  }

  /**
   * Takes the items waiting for the next batch, to run them elsewhere (in another transaction);
   * the caller must `settle` them with the results, or `fail` them.
   */
  take(
    max = this.#maxBatch,
  ): { items: I[]; settle(results: O[]): void; fail(err: unknown): void } | undefined {
    if (this.#pending.length === 0) return undefined;
    const taken = this.#pending.length <= max ? this.#pending : this.#pending.slice(0, max);
    this.#pending = taken === this.#pending ? [] : this.#pending.slice(max);
    this.#outside++;
    return {
      items: taken.map((p) => p.item),
      settle: (results) => {
        this.#outside--;
        for (let i = 0; i < taken.length; i++) taken[i]!.resolve(results[i]!);
        this.#wakeIdle();
      },
      fail: (err) => {
        this.#outside--;
        for (const p of taken) p.reject(err);
        this.#wakeIdle();
      },
    };
  }

  /** Resolves once every item pushed so far has been run. */
  drained(): Promise<void> {
    if (!this.#running && this.#pending.length === 0 && this.#outside === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  #schedule(): void {
    if (this.#scheduled || this.#running) return;
    this.#scheduled = true;
    // setImmediate, not a microtask: it also gathers what the other callbacks of this turn issue.
    setImmediate(() => {
      this.#scheduled = false;
      void this.#flush();
    });
  }

  async #flush(): Promise<void> {
    if (this.#running || this.#pending.length === 0) return;
    this.#running = true;
    const batch =
      this.#pending.length <= this.#maxBatch ? this.#pending : this.#pending.slice(0, this.#maxBatch);
    this.#pending = batch === this.#pending ? [] : this.#pending.slice(this.#maxBatch);
    try {
      const results = await this.#run(batch.map((p) => p.item));
      for (let i = 0; i < batch.length; i++) batch[i]!.resolve(results[i]!);
    } catch (err) {
      for (const p of batch) p.reject(err);
    }
    this.#running = false;
    if (this.#pending.length > 0) this.#schedule();
    else this.#wakeIdle();
  }

  #wakeIdle(): void {
    if (this.#running || this.#pending.length > 0 || this.#outside > 0) return;
    const idle = this.#idle;
    this.#idle = [];
    for (const resolve of idle) resolve();
  }
}
