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

/**
 * The map of requests in flight. The most common case, one request at a time, never touches the
 * Map: the entry sits in a single slot. A Map that keeps gaining and losing its one entry rehashes
 * (allocates a new table) every few requests, which a request/reply round trip measurably feels.
 */
export class PendingRequests {
  readonly #map = new Map<number, PendingRequest>();
  readonly max: number;
  #next = 0;
  /** The id in the slot; 0 when the slot is empty (ids start at 1). */
  #slotId = 0;
  #slot: PendingRequest | undefined;

  constructor(max: number) {
    this.max = max;
  }

  get size(): number {
    return this.#map.size + (this.#slotId === 0 ? 0 : 1);
  }

  get full(): boolean {
    return this.size >= this.max;
  }

  /** Registers a request under a fresh id (u32, wrapping, never one still in use). */
  add(entry: PendingRequest): number {
    do {
      this.#next = this.#next === 0xffff_ffff ? 1 : this.#next + 1;
    } while (this.has(this.#next));
    const id = this.#next;
    if (this.#slotId === 0) {
      this.#slotId = id;
      this.#slot = entry;
    } else {
      this.#map.set(id, entry);
    }
    return id;
  }

  has(id: number): boolean {
    return id === this.#slotId || this.#map.has(id);
  }

  get(id: number): PendingRequest | undefined {
    return id === this.#slotId ? this.#slot : this.#map.get(id);
  }

  /** Removes and returns the request with `id` (undefined for a late or unknown reply). */
  take(id: number): PendingRequest | undefined {
    if (id === this.#slotId && id !== 0) {
      const entry = this.#slot;
      this.#slotId = 0;
      this.#slot = undefined;
      return entry;
    }
    const entry = this.#map.get(id);
    if (entry) this.#map.delete(id);
    return entry;
  }

  /** Fails every request written to connection `generation`; `error` builds each one's error. */
  failGeneration(generation: number, error: (entry: PendingRequest) => unknown): void {
    for (const [id, entry] of this.#entries()) {
      if (entry.generation !== generation) continue;
      this.take(id);
      entry.disarm();
      entry.reject(error(entry));
    }
  }

  /** Fails every request. */
  failAll(error: (entry: PendingRequest) => unknown): void {
    const entries = this.#entries();
    this.#map.clear();
    this.#slotId = 0;
    this.#slot = undefined;
    for (const [, entry] of entries) {
      entry.disarm();
      entry.reject(error(entry));
    }
  }

  /** A snapshot of every entry with its id. */
  #entries(): [number, PendingRequest][] {
    const entries = [...this.#map];
    if (this.#slotId !== 0) entries.unshift([this.#slotId, this.#slot!]);
    return entries;
  }
}
