/**
 * Fast process-death notification: pidfd_open(2) on the process, watched by the event loop, fires
 * about a millisecond after the process exits (zombie or reaped alike). Used by lock waiters to
 * recover a dead owner's lock at once, and by ShmChannel to notice a dead peer. One pidfd per
 * watched process, shared by all listeners of this thread; it does not keep the loop alive.
 */
import { DrainMode, type NativeFdWatcher, native } from '../native/binding.js';

interface Watch {
  watcher: NativeFdWatcher;
  listeners: Set<() => void>;
  idle: NodeJS.Timeout | undefined;
}

const watches = new Map<number, Watch>();

/** A pidfd is kept this long after its last listener leaves, since waiters come back to the same owner. */
const IDLE_MS = 2000;

function closeWatch(pid: number, watch: Watch): void {
  if (watches.get(pid) === watch) watches.delete(pid);
  if (watch.idle) clearTimeout(watch.idle);
  // The watcher owns the pidfd and closes it (also when a worker thread is torn down).
  watch.watcher.close();
}

/**
 * Calls `onExit` once when process `pid` exits (at once, on a later turn, if it is already gone).
 * Returns a function that cancels the subscription. Where pidfd is unavailable it never fires:
 * callers keep a slower liveness check as well.
 */
export function watchProcess(pid: number, onExit: () => void): () => void {
  let watch = watches.get(pid);
  if (!watch) {
    const n = native();
    let fd: number;
    try {
      fd = n.pidfdOpen(pid);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ESRCH') {
        const immediate = setImmediate(onExit);
        return () => clearImmediate(immediate);
      }
      return () => {};
    }
    const created: Watch = {
      listeners: new Set(),
      idle: undefined,
      watcher: new n.FdWatcher(
        fd,
        DrainMode.NONE,
        () => {
          closeWatch(pid, created);
          for (const listener of [...created.listeners]) listener();
          created.listeners.clear();
        },
        true,
      ),
    };
    created.watcher.start();
    created.watcher.unref();
    watches.set(pid, created);
    watch = created;
  }
  const current = watch;
  if (current.idle) {
    clearTimeout(current.idle);
    current.idle = undefined;
  }
  // Each subscription is its own entry, so the same function may subscribe twice.
  const entry = () => onExit();
  current.listeners.add(entry);
  return () => {
    if (!current.listeners.delete(entry) || current.listeners.size > 0) return;
    if (watches.get(pid) !== current) return;
    current.idle = setTimeout(() => closeWatch(pid, current), IDLE_MS);
    current.idle.unref();
  };
}
