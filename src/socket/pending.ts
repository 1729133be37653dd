/**
 * Requests awaiting their reply, by id: bounded, so a caller that fires requests faster than the
 * server answers gets ERR_IPC_QUEUE_FULL instead of unbounded memory.
 */

/** One request in flight. */
export interface PendingRequest {
  method: string;
  resolve(value: unknown): void;
  reject(err: unknown): void;
  /** Clears its timeout and abort listener. */
  disarm(): void;
  /** The connection (by generation) it was written to; 0 while it waits in the reconnect queue. */
  generation: number;
}

/** The map of requests in flight. */
export class PendingRequests {
  readonly #map = new Map<number, PendingRequest>();
  readonly max: number;
  #next = 0;

  constructor(max: number) {
    this.max = max;
  }

  get size(): number {
    return this.#map.size;
  }

  get full(): boolean {
    return this.#map.size >= this.max;
  }

  /** Registers a request under a fresh id (u32, wrapping, never one still in use). */
  add(entry: PendingRequest): number {
    do {
      this.#next = this.#next === 0xffff_ffff ? 1 : this.#next + 1;
    } while (this.#map.has(this.#next));
    this.#map.set(this.#next, entry);
    return this.#next;
  }

  has(id: number): boolean {
    return this.#map.has(id);
  }

  get(id: number): PendingRequest | undefined {
    return this.#map.get(id);
  }

  /** Removes and returns the request with `id` (undefined for a late or unknown reply). */
  take(id: number): PendingRequest | undefined {
    const entry = this.#map.get(id);
    if (entry) this.#map.delete(id);
    return entry;
  }

  /** Fails every request written to connection `generation`; `error` builds each one's error. */
  failGeneration(generation: number, error: (entry: PendingRequest) => unknown): void {
    for (const [id, entry] of this.#map) {
      if (entry.generation !== generation) continue;
      this.#map.delete(id);
      entry.disarm();
      entry.reject(error(entry));
    }
  }

  /** Fails every request. */
  failAll(error: (entry: PendingRequest) => unknown): void {
    const entries = [...this.#map.values()];
    this.#map.clear();
    for (const entry of entries) {
      entry.disarm();
      entry.reject(error(entry));
    }
  }
}
