/**
 * `{ signal, timeout }` for every wait: one place that turns them into ERR_IPC_ABORTED and
 * ERR_IPC_TIMEOUT, and that cleans its timer and listener up whichever way the wait ends.
 */
import { ErrorCodes, IpcError } from './errors.js';
import { numberError } from './options.js';

/** Options accepted by every operation that can wait. */
export interface WaitOptions {
  /** Abort the wait; it rejects with ERR_IPC_ABORTED and the signal's reason as `cause`. */
  signal?: AbortSignal;
  /** Give up after this many milliseconds with ERR_IPC_TIMEOUT. */
  timeout?: number;
}

/** The longest timeout a Node timer holds: 2^31 - 1 ms. */
export const MAX_TIMEOUT_MS = 2 ** 31 - 1;

/** Throws a TypeError (wrong type) or RangeError (out of range) for malformed wait options, naming the option. */
export function checkWaitOptions(opts: WaitOptions | undefined): void {
  if (opts === undefined) return;
  if (typeof opts !== 'object' || opts === null) throw new TypeError('options must be an object');
  const { timeout, signal } = opts;
  if (
    timeout !== undefined &&
    (typeof timeout !== 'number' || !(timeout >= 0) || !Number.isFinite(timeout))
  ) {
    throw numberError(timeout, `options.timeout must be a finite number >= 0, got ${String(timeout)}`);
  }
  // Past this, Node's setTimeout fires after 1 ms instead: refused rather than misread.
  if (timeout !== undefined && timeout > MAX_TIMEOUT_MS) {
    throw new RangeError(
      `options.timeout must be at most ${MAX_TIMEOUT_MS} ms (about 24.8 days, the longest Node timer); omit it to wait without one, got ${timeout}`,
    );
  }
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new TypeError('options.signal must be an AbortSignal');
  }
}

/** The error a wait rejects with when its signal fires. */
export function abortedError(what: string, signal: AbortSignal): IpcError {
  return new IpcError(ErrorCodes.ABORTED, `${what} was aborted`, { cause: signal.reason });
}

/** The error a wait rejects with when its timeout runs out. */
export function timeoutError(what: string, ms: number): IpcError {
  return new IpcError(ErrorCodes.TIMEOUT, `${what} timed out after ${ms} ms`);
}

/**
 * Arms `opts` around a pending wait: calls `fail` once with the abort or timeout error and returns
 * a disarm function the caller runs when the wait ends any other way.
 */
export function armWait(
  what: string,
  opts: WaitOptions | undefined,
  fail: (err: IpcError) => void,
): () => void {
  if (!opts || (opts.signal === undefined && opts.timeout === undefined)) return noop;
  const { signal, timeout } = opts;
  let timer: NodeJS.Timeout | undefined;
  let unwatch: (() => void) | undefined;
  const disarm = () => {
    if (timer) clearTimeout(timer);
    unwatch?.();
  };
  if (signal) {
    if (signal.aborted) {
      fail(abortedError(what, signal));
      return noop;
    }
    unwatch = watchAbort(signal, () => {
      disarm();
      fail(abortedError(what, signal));
    });
  }
  if (timeout !== undefined) {
    timer = setTimeout(() => {
      disarm();
      fail(timeoutError(what, timeout));
    }, timeout);
  }
  return disarm;
}

/** Runs `work` (which may finish on its own) bounded by `opts`; used by opens and connects. */
export function withWait<T>(what: string, opts: WaitOptions | undefined, work: Promise<T>): Promise<T> {
  if (!opts || (opts.signal === undefined && opts.timeout === undefined)) return work;
  return new Promise<T>((resolve, reject) => {
    const disarm = armWait(what, opts, reject);
    work.then(
      (value) => {
        disarm();
        resolve(value);
      },
      (err) => {
        disarm();
        reject(err);
      },
    );
  });
}

function noop(): void {}

/** The waits armed on each signal, behind one 'abort' listener per signal (see watchAbort). */
const abortWatchers = new WeakMap<AbortSignal, Set<() => void>>();

/**
 * Calls `onAbort` when `signal` aborts, until the returned function is called. However many waits
 * share a signal (a pool of receives under one AbortController), the signal gets one listener:
 * Node warns of a leak (MaxListenersExceededWarning) past ten on one signal. The listener stays
 * until the signal aborts or is collected, so a signal reused wait after wait keeps just the one.
 */
export function watchAbort(signal: AbortSignal, onAbort: () => void): () => void {
  const armed = abortWatchers.get(signal) ?? listenOnce(signal);
  armed.add(onAbort);
  return () => {
    armed.delete(onAbort);
  };
}

/** Adds the one 'abort' listener of `signal`, which fails every wait armed on it. */
function listenOnce(signal: AbortSignal): Set<() => void> {
  const armed = new Set<() => void>();
  abortWatchers.set(signal, armed);
  signal.addEventListener(
    'abort',
    () => {
      abortWatchers.delete(signal);
      for (const fail of armed) fail();
      armed.clear();
    },
    { once: true },
  );
  return armed;
}
