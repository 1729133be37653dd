/**
 * A ShmChannel message too large for one ring record arrives as PIECE records and a last DATA
 * record. Each piece must leave the ring as it is read (the writer needs the room for the next),
 * and the total is known only at the last one. The pieces are copied straight into one buffer,
 * sized for the size of the last such message (a stream of large messages is usually of one size)
 * and grown by doubling when a message is larger: in the usual case every byte is copied out of the
 * ring once, into memory nobody zeroes first. (Keeping the pieces and joining them at the end cost
 * two copies and a zero-fill: at 1 MiB, the receiver's time went to that.)
 */

/** A buffer of `bytes` whose memory is not zeroed: every byte of it is written before anyone reads it. */
function uninitialized(bytes: number): Uint8Array {
  const buffer = Buffer.allocUnsafeSlow(bytes);
  return new Uint8Array(buffer.buffer, buffer.byteOffset, bytes);
}

/** Collects one message's pieces at a time, within a bound on the message's size. */
export class PieceAssembler {
  readonly #maxBytes: number;
  #buffer: Uint8Array | undefined;
  /** Bytes of the message so far, counted past the bound too (to report its size). */
  #length = 0;
  #collecting = false;
  /** Size of the last message assembled: the likely size of the next one. */
  #lastTotal = 0;

  constructor(maxBytes: number) {
    this.#maxBytes = maxBytes;
  }

  /** Whether pieces of a message are waiting for its last record. */
  get collecting(): boolean {
    return this.#collecting;
  }

  /** One PIECE record's payload: `data` from `start` to `end`. */
  add(data: Uint8Array, start: number, end: number): void {
    if (!this.#collecting) {
      this.#collecting = true;
      this.#buffer = undefined;
      this.#length = 0;
    }
    this.#append(data, start, end);
  }

  /**
   * The last record's payload: returns the whole message, or its size if that exceeds the bound
   * (its bytes were dropped as they came). Only while {@link collecting}.
   */
  finish(data: Uint8Array, start: number, end: number): Uint8Array | number {
    this.#append(data, start, end);
    const total = this.#length;
    const buffer = this.#buffer;
    this.reset();
    if (total > this.#maxBytes || !buffer) return total;
    this.#lastTotal = total;
    // Larger than the message (the guess was high): an exact copy, so that the message's
    // ArrayBuffer is the message, as it is for every other message.
    return buffer.length === total ? buffer : buffer.slice(0, total);
  }

  /** Drops what was collected (the sender's session was reset mid-message). */
  reset(): void {
    this.#collecting = false;
    this.#buffer = undefined;
    this.#length = 0;
  }

  #append(data: Uint8Array, start: number, end: number): void {
    const at = this.#length;
    this.#length += end - start;
    if (this.#length > this.#maxBytes) {
      this.#buffer = undefined;
      return;
    }
    let buffer = this.#buffer;
    if (!buffer) {
      buffer = uninitialized(Math.min(this.#maxBytes, Math.max(this.#lastTotal, 2 * this.#length)));
    } else if (this.#length > buffer.length) {
      const grown = uninitialized(Math.min(this.#maxBytes, Math.max(2 * buffer.length, this.#length)));
      grown.set(buffer.subarray(0, at));
      buffer = grown;
    }
    buffer.set(data.subarray(start, end), at);
    this.#buffer = buffer;
  }
}
