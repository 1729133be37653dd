/**
 * Where the rest of a message that did not all fit in the ring waits for room. A channel has at
 * most one such message at a time (its later sends wait behind it), so one buffer is kept and
 * reused from message to message. A fresh buffer per message cost more than the copy into it:
 * fresh memory takes a page fault per page on first touch (about 3 ms per MiB in a busy process on
 * the benchmark VM, against about 50 µs to copy a MiB into memory already mapped).
 */
const EMPTY = new Uint8Array(0);

export class Spill {
  /** Messages larger than this get a buffer of their own, dropped once written. */
  readonly #keepBytes: number;
  #buffer: Uint8Array = EMPTY;
  #inUse = false;

  constructor(keepBytes: number) {
    this.#keepBytes = keepBytes;
  }

  /** A copy of `bytes`, in the kept buffer when it is free and `bytes` not too large to keep. */
  copy(bytes: Uint8Array): Uint8Array {
    const length = bytes.length;
    if (this.#inUse || length > this.#keepBytes) return new Uint8Array(bytes);
    if (this.#buffer.length < length) {
      this.#buffer = new Uint8Array(Math.min(this.#keepBytes, Math.max(length, this.#buffer.length * 2)));
    }
    this.#buffer.set(bytes, 0);
    this.#inUse = true;
    return this.#buffer.subarray(0, length);
  }

  /** A copy from {@link Spill.copy} is written out: its memory may serve the next. */
  release(copy: Uint8Array): void {
    if (copy.buffer === this.#buffer.buffer) this.#inUse = false;
  }
}
