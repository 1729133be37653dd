/**
 * What a stream channel has accepted but not yet written when the process exits. Sends are batched
 * and written on the next tick, and `process.exit()` runs no tick: `await ch.send(result);
 * process.exit(0)`, the commonest way for a worker to finish, would lose the result. Channels with
 * a batch waiting register here, and the process's 'exit' event writes their batches synchronously.
 */
import { writeSync } from 'node:fs';
import type { Socket } from 'node:net';
import { sleepSync } from './sleep.js';

/** The time an exiting process stops waiting for readers (Date.now() ms), the same for every channel. */
export function exitDeadline(): number {
  return exitDeadlineMs ?? Date.now() + EXIT_WRITE_MS;
}

/** Flushes of the channels whose batch waits for its tick. */
const waiting = new Set<() => void>();
let hooked = false;

/** Calls `flush` at exit unless {@link flushedBeforeExit} says it ran first. Cheap to call per tick. */
export function flushAtExit(flush: () => void): void {
  if (!hooked) {
    hooked = true;
    process.on('exit', () => {
      // One deadline for every channel's writes: an exit waits EXIT_WRITE_MS in all, not per channel.
      exitDeadlineMs = Date.now() + EXIT_WRITE_MS;
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

/** How long an exiting process waits, in all, for full pipes and sockets to take the last batches. */
const EXIT_WRITE_MS = 2000;
/** When the exiting process stops waiting; set as the 'exit' event begins. */
let exitDeadlineMs: number | undefined;

/** The fd a net.Socket writes to (it has no public one; its libuv handle's), or undefined. */
export function socketFd(output: Socket): number | undefined {
  const fd = (output as unknown as { _handle?: { fd?: number } | null })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

/**
 * Bytes a stream was handed and has not put in the kernel: what libuv's queue still holds of the
 * write in progress, plus the writes the stream buffers behind it. Its writableLength alone also
 * counts the part of the write in progress that is already written (only the write's callback, a
 * tick process.exit() never gives, is missing). Undefined when the stream does not say exactly:
 * an estimate would repeat or skip bytes in the middle of a frame.
 */
export function unsentBytes(output: Socket): number | undefined {
  const queued = (output as unknown as { _handle?: { writeQueueSize?: unknown } | null })._handle
    ?.writeQueueSize;
  const state = (output as unknown as { _writableState?: { writing?: unknown; writelen?: unknown } })
    ._writableState;
  if (
    typeof queued !== 'number' ||
    typeof state?.writing !== 'boolean' ||
    typeof state.writelen !== 'number'
  ) {
    return undefined;
  }
  const inProgress = state.writing ? state.writelen : 0;
  return queued + output.writableLength - inProgress;
}

/** The last `bytes` bytes of `chunks` taken as one sequence, as views of them. */
export function lastBytes(chunks: readonly Uint8Array[], bytes: number): Uint8Array[] {
  const tail: Uint8Array[] = [];
  let need = bytes;
  for (let i = chunks.length - 1; i >= 0 && need > 0; i--) {
    const chunk = chunks[i]!;
    const take = Math.min(need, chunk.length);
    tail.unshift(take === chunk.length ? chunk : chunk.subarray(chunk.length - take));
    need -= take;
  }
  return tail;
}

/**
 * Writes `chunks`, in order, to the non-blocking `fd` from an 'exit' handler, where nothing
 * asynchronous completes: each with write(2) as far as the kernel takes it (a chunk of up to
 * PIPE_BUF bytes stays atomic), waiting up to EXIT_WRITE_MS in all while the kernel's buffer is
 * full, so that a reader that keeps reading gets them all.
 */
export function writeFdAtExit(fd: number, chunks: readonly Uint8Array[]): void {
  const deadline = exitDeadline();
  for (const chunk of chunks) {
    let offset = 0;
    while (offset < chunk.length) {
      try {
        offset += writeSync(fd, chunk, offset);
      } catch (err) {
        // EAGAIN: the kernel's buffer is full for now.
        if ((err as NodeJS.ErrnoException).code !== 'EAGAIN' || Date.now() >= deadline) return;
        sleepSync(1);
      }
    }
  }
}
