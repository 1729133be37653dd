/**
 * Who holds a lock: a thread, not a process, because the primitives also work between worker
 * threads of one process. A thread is its kernel thread id (gettid; the pid on the main thread),
 * its process id, and its start time (field 22 of /proc/<tid>/stat), which tells a reused id apart.
 */
import { identityOf, isAlive } from '../core/process-identity.js';
import { native } from '../native/binding.js';

/** A thread that can own a lock. */
export interface ThreadIdentity {
  /** Kernel thread id (unique among live threads of the pid namespace). */
  tid: number;
  /** Its process. */
  pid: number;
  /** Clock ticks since boot when the thread started; 0 if unknown. */
  startTime: number;
}

let self: ThreadIdentity | undefined;

/** The calling thread's identity (module state is per thread in Node, so this is cached per thread). */
export function selfThread(): ThreadIdentity {
  // Read again while the start time is unknown (a first read out of file descriptors).
  if (!self?.startTime) {
    const tid = self?.tid ?? native().gettid();
    // /proc/<tid>/stat works for any thread id, listed in /proc or not.
    self = { tid, pid: process.pid, startTime: identityOf(tid)?.startTime ?? 0 };
  }
  return self;
}

/**
 * True while thread `tid` runs and (when `startTime` is known) started at `startTime`. A zombie is
 * dead; a missing /proc entry is dead; a thread with the same id and another start time is a reused
 * id, so the original is dead.
 */
export function threadAlive(tid: number, startTime: number): boolean {
  if (tid <= 0) return false;
  return isAlive({ pid: tid, startTime });
}
