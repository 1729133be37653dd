/**
 * Doorbells: how a process makes another thread's event loop look at shared memory again, without
 * anybody blocking or polling. Each thread that parks async waits owns one doorbell: a Unix datagram
 * socket bound to the abstract name `ipckit.db.<tid>.<nonce>`, watched by that thread's event loop.
 * Its address (tid, nonce) fits in two 32-bit words of shared memory; ringing it is one sendto().
 *
 * Why this and not an eventfd or a FIFO: an eventfd cannot reach an unrelated process without
 * passing fds; a FIFO leaves a file behind when its owner is killed. An abstract socket name
 * disappears with its owner (a ring to it then reports 'gone', which is how wakers find dead
 * waiters), needs no cleanup, and a full queue (EAGAIN) just means the bell is already ringing.
 * A ring carries no data: it means "re-check"; the state lives in shared memory.
 *
 * ShmChannel (the ring buffer) uses the same doorbells for its reader/writer wake-ups.
 */

import { randomInt } from 'node:crypto';
import { DrainMode, type NativeFdWatcher, native } from '../native/binding.js';

/** Where a doorbell can be rung: its thread id and a random nonce (0 is never a valid nonce). */
export interface DoorbellAddress {
  tid: number;
  nonce: number;
}

/** The abstract socket name of a doorbell. */
export function doorbellName(tid: number, nonce: number): string {
  return `ipckit.db.${tid}.${(nonce >>> 0).toString(16)}`;
}

/** The calling thread's doorbell. Listeners run on this thread's event loop when it is rung. */
export class ThreadDoorbell {
  readonly tid: number;
  readonly nonce: number;
  readonly #watcher: NativeFdWatcher;
  readonly #listeners = new Set<() => void>();
  #holds = 0;
  #localPending = false;
  #closed = false;

  /** @internal Use {@link threadDoorbell}. */
  constructor() {
    const n = native();
    this.tid = n.gettid();
    let fd = -1;
    let nonce = 0;
    // A collision with a live name is astronomically unlikely; retry anyway rather than fail.
    for (let i = 0; fd < 0; i++) {
      nonce = randomInt(1, 0x7fffffff);
      try {
        fd = n.doorbellBind(doorbellName(this.tid, nonce));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || i > 8) throw err;
      }
    }
    this.nonce = nonce;
    // The watcher owns the socket: it closes with the watcher, or when a worker thread is torn down.
    // Only rings of this user (or root) count: another user can learn the name from /proc/net/unix
    // and send to it, and its rings are dropped unseen. A libuv error still dispatches, so waiters
    // re-check rather than miss a ring.
    this.#watcher = new n.FdWatcher(
      fd,
      DrainMode.RINGS,
      (rings, status) => {
        if (rings > 0 || status < 0) this.#dispatch();
      },
      true,
    );
    this.#watcher.start();
    this.#watcher.unref();
  }

  /** Runs `listener` on every ring until the returned function is called. */
  subscribe(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Keeps the event loop alive while someone waits on this doorbell (a parked wait must not let
   * the process exit under it). Balanced by {@link ThreadDoorbell.release}.
   */
  hold(): void {
    if (this.#holds++ === 0 && !this.#closed) this.#watcher.ref();
  }

  /** Ends one {@link ThreadDoorbell.hold}. */
  release(): void {
    if (--this.#holds === 0 && !this.#closed) this.#watcher.unref();
  }

  /** Rings this doorbell from its own thread without a syscall (coalesced into one dispatch). */
  ringLocal(): void {
    if (this.#localPending) return;
    this.#localPending = true;
    setImmediate(() => {
      this.#localPending = false;
      this.#dispatch();
    });
  }

  #dispatch(): void {
    for (const listener of [...this.#listeners]) listener();
  }

  /** @internal Closes the socket (thread exit). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#watcher.close();
  }
}

let local: ThreadDoorbell | undefined;

/** The calling thread's doorbell, created on first use (module state is per thread in Node). */
export function threadDoorbell(): ThreadDoorbell {
  local ??= new ThreadDoorbell();
  return local;
}

/**
 * Rings the doorbell at `address`. Returns false if nobody owns it any more (its thread or process
 * is gone): the caller should treat that waiter as dead.
 */
export function ringDoorbell(address: DoorbellAddress): boolean {
  if (local && address.tid === local.tid && address.nonce === local.nonce) {
    local.ringLocal();
    return true;
  }
  try {
    // -1: the process-wide sending socket (one per process, so terminated workers leak nothing).
    return native().doorbellRing(-1, doorbellName(address.tid, address.nonce)) !== 2;
  } catch {
    // No socket to ring with (out of file descriptors): the ring is lost, not the waiter, whose
    // own periodic check finds what the ring would have told it. A release that threw here would
    // leave its guard unreleased over a lock it had already passed on.
    return true;
  }
}
