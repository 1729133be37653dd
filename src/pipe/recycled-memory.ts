/**
 * Memory for large incoming messages that the receiver gives back (PipeChannel.receiveView): the
 * buffer of a released message serves a later message of about its size. A process that receives
 * 1 MiB messages into fresh memory spends more on faulting the pages in than on the copy (see
 * docs/benchmarks.md, "Why 1 MiB through a pipe stops near 2x"); memory it has touched before
 * costs only the copy.
 */

/** Released buffers kept for reuse: enough for a receiver that holds one view while taking the next. */
const MAX_SPARES = 2;
/**
 * Smaller buffers are not kept: a small message split across two reads is assembled apart too, and
 * its buffer, given back, pushed a large one out of the spares (which large messages are what they
 * are for); a small allocation costs little.
 */
const MIN_SPARE_BYTES = 64 * 1024;
/**
 * At most this much released memory is kept, the newest first: a receiver of 64 MiB messages keeps
 * one, not two, and memory does not stay with the channel in multiples of maxMessageBytes.
 */
const MAX_SPARE_TOTAL = 64 * 1024 * 1024;

export class RecycledMemory {
  readonly #spares: Buffer[] = [];

  /**
   * `bytes` bytes of memory nothing else refers to: a released buffer at least that large (and at
   * most twice: a small message does not hold a large buffer), or a new one.
   */
  take(bytes: number): Buffer {
    const spares = this.#spares;
    for (let i = 0; i < spares.length; i++) {
      const spare = spares[i]!;
      if (spare.length >= bytes && spare.length <= bytes * 2) {
        spares.splice(i, 1);
        return spare.subarray(0, bytes);
      }
    }
    // Never from Node's shared pool: the whole buffer is given back and reused.
    return Buffer.allocUnsafeSlow(bytes);
  }

  /**
   * Gives back memory from {@link RecycledMemory.take} (or any memory of its own: the whole
   * ArrayBuffer behind `bytes` is reused). The newest buffers are kept, if of 64 KiB or more, up to
   * two and 64 MiB in all.
   */
  give(bytes: Uint8Array): void {
    const size = bytes.buffer.byteLength;
    if (size < MIN_SPARE_BYTES || size > MAX_SPARE_TOTAL) return;
    const spares = this.#spares;
    spares.push(Buffer.from(bytes.buffer, 0, size));
    let total = 0;
    for (const spare of spares) total += spare.length;
    while (spares.length > MAX_SPARES || total > MAX_SPARE_TOTAL) total -= spares.shift()!.length;
  }
}
