/**
 * What a stream channel has accepted but not yet written when the process exits. Sends are batched
 * and written on the next tick, and `process.exit()` runs no tick: `await ch.send(result);
 * process.exit(0)`, the commonest way for a worker to finish, would lose the result. Channels with
 * a batch waiting register here, and the process's 'exit' event writes their batches synchronously.
 */
import { writeSync } from 'node:fs';
import type { Socket } from 'node:net';

/** Flushes of the channels whose batch waits for its tick. */
const waiting = new Set<() => void>();
let hooked = false;

/** Calls `flush` at exit unless {@link flushedBeforeExit} says it ran first. Cheap to call per tick. */
export function flushAtExit(flush: () => void): void {
  if (!hooked) {
    hooked = true;
    process.on('exit', () => {
      for (const pending of waiting) pending();
      waiting.clear();
    });
  }
  waiting.add(flush);
}

/** The batch `flush` was registered for has been written (or dropped with its channel). */
export function flushedBeforeExit(flush: () => void): void {
  waiting.delete(flush);
}

/** How long an exiting process waits for a full pipe or socket to take the last batch. */
const EXIT_WRITE_MS = 2000;
const pause = new Int32Array(new SharedArrayBuffer(4));

/**
 * Writes `chunks`, in order, to `output` from an 'exit' handler, where nothing asynchronous
 * completes. When the stream has nothing queued, each chunk goes straight to its fd with one
 * write(2) as far as the kernel allows (a chunk of up to PIPE_BUF bytes stays atomic), waiting up
 * to EXIT_WRITE_MS while the kernel's buffer is full, so a reader that keeps reading gets them all.
 * Otherwise (bytes of earlier writes still queued in the stream, or a TLS stream, whose fd carries
 * ciphertext) the stream writes what the kernel takes at once, and the rest is lost with the process.
 */
export function writeAtExit(output: Socket, chunks: readonly Uint8Array[]): void {
  // net.Socket has no public fd; its libuv handle's is the one it writes to (-1 where there is none).
  const fd = (output as unknown as { _handle?: { fd?: number } })._handle?.fd;
  const plain = !('encrypted' in output);
  if (output.writableLength !== 0 || !plain || typeof fd !== 'number' || fd < 0) {
    for (const chunk of chunks) output.write(chunk);
    return;
  }
  const deadline = Date.now() + EXIT_WRITE_MS;
  for (const chunk of chunks) {
    let offset = 0;
    while (offset < chunk.byteLength) {
      try {
        offset += writeSync(fd, chunk, offset);
      } catch (err) {
        // The fd is non-blocking: EAGAIN means the kernel's buffer is full for now.
        if ((err as NodeJS.ErrnoException).code !== 'EAGAIN' || Date.now() >= deadline) return;
        Atomics.wait(pause, 0, 0, 1);
      }
    }
  }
}
