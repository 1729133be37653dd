/**
 * Requests awaiting their reply, by id: bounded, so a caller that fires requests faster than the
 * server answers gets ERR_IPC_QUEUE_FULL instead of unbounded memory.
 */

import { SlotMap } from './slot-map.js';

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

/** The requests in flight, by id (a {@link SlotMap}: one at a time never touches a Map). */
export class PendingRequests {
  readonly #entries = new SlotMap<PendingRequest>();
  readonly max: number;
  #next = 0;

  constructor(max: number) {
    this.max = max;
  }

  get size(): number {
    return this.#entries.size;
  }

  get full(): boolean {
    return this.size >= this.max;
  }

  /** Registers a request under a fresh id (u32, wrapping, never 0 nor one still in use). */
  add(entry: PendingRequest): number {
    do {
      this.#next = this.#next === 0xffff_ffff ? 1 : this.#next + 1;
    } while (this.has(this.#next));
    this.#entries.set(this.#next, entry);
    return this.#next;
  }

  has(id: number): boolean {
    return this.#entries.has(id);
  }

  get(id: number): PendingRequest | undefined {
    return this.#entries.get(id);
  }

  /** Removes and returns the request with `id` (undefined for a late or unknown reply). */
  take(id: number): PendingRequest | undefined {
    return this.#entries.take(id);
  }

  /** Fails every request written to connection `generation`; `error` builds each one's error. */
  failGeneration(generation: number, error: (entry: PendingRequest) => unknown): void {
    for (const [id, entry] of this.#entries.entries()) {
      if (entry.generation !== generation) continue;
      this.take(id);
      entry.disarm();
      entry.reject(error(entry));
    }
  }

  /** Fails every request. */
  failAll(error: (entry: PendingRequest) => unknown): void {
    const entries = this.#entries.entries();
    this.#entries.clear();
    for (const [, entry] of entries) {
      entry.disarm();
      entry.reject(error(entry));
    }
  }
}
