/**
 * FileLock: an advisory whole-file lock (flock(2)), shared or exclusive, interoperable with
 * flock(1) and any other program that uses flock. The kernel releases it when the holder's fd
 * closes, so a holder that dies releases it, with no recovery protocol needed.
 *
 * flock has no way to wait that the event loop can watch, so the async `lock()` retries a
 * non-blocking attempt with a backoff (1 ms doubling to 32 ms): the event loop stays free and no
 * thread is parked anywhere, at the cost of up to ~32 ms of latency after the holder lets go.
 * `lockSync()` without a timeout uses the kernel's blocking wait (it blocks the calling thread).
 *
 * Each FileLock opens its own fd, so two locks in one process (or its worker threads) conflict
 * with each other exactly as two processes would.
 */
import { closeSync, constants, openSync } from 'node:fs';
import { resolve } from 'node:path';
import { ErrorCodes, fromSystemError, IpcError } from '../core/errors.js';
import { booleanOption } from '../core/options.js';
import { sleepSync } from '../core/sleep.js';
import { abortedError, armWait, checkWaitOptions, timeoutError, type WaitOptions } from '../core/wait.js';
import { native } from '../native/binding.js';

/** Options for {@link FileLock.lock}. */
export interface FileLockOptions extends WaitOptions {
  /** A shared (read) lock instead of an exclusive one. Default false. */
  shared?: boolean;
}

const FIRST_RETRY_MS = 1;
const MAX_RETRY_MS = 32;

const OPEN_FLAGS = constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY;

function openForLock(path: string): number {
  try {
    // flock(1) creates the file if it is missing; so do we (0600). libuv opens with O_CLOEXEC.
    // O_NONBLOCK: opening a FIFO for reading would otherwise block the thread until a writer came.
    return openSync(path, OPEN_FLAGS | constants.O_CREAT, 0o600);
  } catch (err) {
    // A directory can be locked too, but not opened with O_CREAT.
    if ((err as NodeJS.ErrnoException).code === 'EISDIR') {
      return openSync(path, OPEN_FLAGS);
    }
    throw err;
  }
}

function checkPath(path: unknown): string {
  if (typeof path !== 'string' || path === '') throw new TypeError('path must be a non-empty string');
  return resolve(path);
}

/** `options.shared`: a boolean, default false. */
function sharedOption(opts: { shared?: boolean } | undefined): boolean {
  return booleanOption(opts?.shared, 'options.shared', false);
}

/** A held flock on a file. */
export class FileLock implements Disposable, AsyncDisposable {
  /** The absolute path of the locked file. */
  readonly path: string;
  /** True for a shared lock. */
  readonly shared: boolean;
  #fd: number | undefined;

  private constructor(path: string, shared: boolean, fd: number) {
    this.path = path;
    this.shared = shared;
    this.#fd = fd;
  }

  /** Takes the lock if nobody holds a conflicting one; undefined otherwise. Never waits. */
  static tryLock(path: string, opts?: { shared?: boolean }): FileLock | undefined {
    const absolute = checkPath(path);
    const shared = sharedOption(opts);
    const fd = FileLock.#open(absolute);
    try {
      if (native().flock(fd, !shared, false)) return new FileLock(absolute, shared, fd);
    } catch (err) {
      closeSync(fd);
      throw fromSystemError(err, `file lock ${absolute}`);
    }
    closeSync(fd);
    return undefined;
  }

  /** Waits for the lock without blocking the event loop (non-blocking attempts with backoff). */
  static lock(path: string, opts?: FileLockOptions): Promise<FileLock> {
    let absolute: string;
    let shared: boolean;
    let fd: number;
    try {
      absolute = checkPath(path);
      checkWaitOptions(opts);
      shared = sharedOption(opts);
      fd = FileLock.#open(absolute);
    } catch (err) {
      return Promise.reject(err);
    }
    const what = `file lock ${absolute}`;
    return new Promise<FileLock>((resolvePromise, reject) => {
      let timer: NodeJS.Timeout | undefined;
      let done = false;
      let delay = FIRST_RETRY_MS;
      // Unset while armWait runs: a signal already aborted fails the wait from inside it.
      let disarm: (() => void) | undefined;
      const finish = (err: unknown, lock?: FileLock) => {
        if (done) return;
        done = true;
        disarm?.();
        if (timer) clearTimeout(timer);
        if (lock) resolvePromise(lock);
        else {
          try {
            closeSync(fd);
          } catch {}
          reject(err);
        }
      };
      const attempt = () => {
        if (done) return;
        try {
          if (native().flock(fd, !shared, false)) {
            finish(undefined, new FileLock(absolute, shared, fd));
            return;
          }
        } catch (err) {
          finish(fromSystemError(err, what));
          return;
        }
        timer = setTimeout(attempt, delay);
        delay = Math.min(delay * 2, MAX_RETRY_MS);
      };
      disarm = armWait(what, opts, (err) => finish(err));
      attempt();
    });
  }

  /**
   * Waits for the lock blocking this thread. Without a timeout the kernel does the waiting; with
   * one, non-blocking attempts with backoff up to the deadline.
   */
  static lockSync(path: string, opts?: FileLockOptions): FileLock {
    const absolute = checkPath(path);
    checkWaitOptions(opts);
    const shared = sharedOption(opts);
    const what = `file lock ${absolute}`;
    // As lock(): a signal aborted before the call fails it (the only look: it cannot fire while
    // this thread is blocked).
    if (opts?.signal?.aborted) throw abortedError(what, opts.signal);
    const fd = FileLock.#open(absolute);
    try {
      const n = native();
      if (opts?.timeout === undefined) {
        n.flock(fd, !shared, true);
        return new FileLock(absolute, shared, fd);
      }
      const deadline = Date.now() + opts.timeout;
      let delay = FIRST_RETRY_MS;
      for (;;) {
        if (n.flock(fd, !shared, false)) return new FileLock(absolute, shared, fd);
        const remaining = deadline - Date.now();
        if (remaining <= 0) throw timeoutError(what, opts.timeout);
        sleepSync(Math.min(delay, remaining));
        delay = Math.min(delay * 2, MAX_RETRY_MS);
      }
    } catch (err) {
      closeSync(fd);
      throw err instanceof IpcError ? err : fromSystemError(err, what);
    }
  }

  static #open(path: string): number {
    try {
      return openForLock(path);
    } catch (err) {
      throw fromSystemError(err, `file lock ${path}`);
    }
  }

  /** True once released. */
  get released(): boolean {
    return this.#fd === undefined;
  }

  /** Releases the lock (closing its fd). Idempotent. */
  release(): void {
    const fd = this.#fd;
    if (fd === undefined) return;
    this.#fd = undefined;
    try {
      closeSync(fd);
    } catch (err) {
      throw new IpcError(ErrorCodes.SYSTEM, `file lock ${this.path}: close failed`, { cause: err });
    }
  }

  [Symbol.dispose](): void {
    this.release();
  }

  [Symbol.asyncDispose](): Promise<void> {
    this.release();
    return Promise.resolve();
  }
}
