/**
 * A map from request ids whose most common state, one entry at a time, never touches a Map: the
 * entry sits in a single slot. A Map that keeps gaining and losing its one entry rehashes
 * (allocates a new table) every few requests, which a request/reply round trip measurably feels.
 */
export class SlotMap<V> {
  readonly #map = new Map<number, V>();
  #slotUsed = false;
  #slotKey = 0;
  #slot: V | undefined;

  get size(): number {
    return this.#map.size + (this.#slotUsed ? 1 : 0);
  }

  has(key: number): boolean {
    return (this.#slotUsed && key === this.#slotKey) || this.#map.has(key);
  }

  get(key: number): V | undefined {
    return this.#slotUsed && key === this.#slotKey ? this.#slot : this.#map.get(key);
  }

  /** Adds or replaces the entry of `key`. */
  set(key: number, value: V): void {
    if (this.#slotUsed ? key === this.#slotKey : !this.#map.has(key)) {
      this.#slotUsed = true;
      this.#slotKey = key;
      this.#slot = value;
    } else {
      this.#map.set(key, value);
    }
  }

  /** Removes and returns the entry of `key` (undefined if there is none). */
  take(key: number): V | undefined {
    if (this.#slotUsed && key === this.#slotKey) {
      const value = this.#slot;
      this.#slotUsed = false;
      this.#slot = undefined;
      return value;
    }
    const value = this.#map.get(key);
    if (value !== undefined) this.#map.delete(key);
    return value;
  }

  /** A snapshot of every entry, the slot's first. */
  entries(): [number, V][] {
    const entries = [...this.#map];
    if (this.#slotUsed) entries.unshift([this.#slotKey, this.#slot!]);
    return entries;
  }

  clear(): void {
    this.#map.clear();
    this.#slotUsed = false;
    this.#slot = undefined;
  }
}
