/**
 * A synchronous sleep for the few places that must wait without an event loop turn (…Sync waits
 * that poll, an open that meets a segment its creator is still initializing). Atomics.wait on a
 * private cell is allowed on Node's main thread and costs no CPU.
 */
const cell = new Int32Array(new SharedArrayBuffer(4));

/** Blocks the calling thread for `ms` milliseconds. */
export function sleepSync(ms: number): void {
  if (ms > 0) Atomics.wait(cell, 0, 0, ms);
}
