/**
 * The owner record next to a lock word. The lock word itself holds the owner's thread id (so
 * taking the lock is one compare-and-swap, as in Linux robust futexes); this record adds the
 * owner's pid (for pidfd) and start time (so a reused thread id is not mistaken for the owner).
 *
 * The record is written by the new owner right after it wins the lock word, under a seqlock:
 * readers take only a consistent snapshot, and a reader that judges an owner dead re-validates the
 * seqlock afterwards, so a record being rewritten is never read as "dead".
 *
 * Layout (words from `base`, which must be even): +0 seq, +1 tid, +2 pid, +3 reserved, +4 start (f64).
 */
import type { Region } from './region.js';
import { type ThreadIdentity, threadAlive } from './thread.js';

/** Words an owner record occupies. */
export const OWNER_WORDS = 6;

/** The owner record of one lock word. */
export class OwnerRecord {
  readonly #i32: Int32Array;
  readonly #f64: Float64Array;
  readonly #base: number;

  constructor(region: Region, base: number) {
    this.#i32 = region.i32;
    this.#f64 = region.f64;
    this.#base = base;
  }

  /** Records `me` as owner. Called by the thread that just won the lock word; cheap if unchanged. */
  record(me: ThreadIdentity): void {
    const i32 = this.#i32;
    const b = this.#base;
    if (Atomics.load(i32, b + 1) === me.tid && this.#f64[(b + 4) >> 1] === me.startTime) return;
    // Only the owner writes, so an odd count here is a previous owner killed mid-update: start
    // from the next odd number, or the count would stay odd, and the record unreadable, for good.
    const writing = Atomics.load(i32, b) | 1;
    Atomics.store(i32, b, writing);
    i32[b + 2] = me.pid;
    this.#f64[(b + 4) >> 1] = me.startTime;
    Atomics.store(i32, b + 1, me.tid);
    Atomics.store(i32, b, writing + 1);
  }

  /** A consistent snapshot, or undefined while a writer is mid-update. */
  #snapshot(): { seq: number; tid: number; pid: number; startTime: number } | undefined {
    const i32 = this.#i32;
    const b = this.#base;
    for (let i = 0; i < 4; i++) {
      const seq = Atomics.load(i32, b);
      if (seq & 1) continue;
      const tid = Atomics.load(i32, b + 1);
      const pid = i32[b + 2]!;
      const startTime = this.#f64[(b + 4) >> 1]!;
      if (Atomics.load(i32, b) === seq) return { seq, tid, pid, startTime };
    }
    return undefined;
  }

  /**
   * True if thread `tid`, found in the lock word, is dead. When the record describes `tid`, its
   * start time is checked too (pid reuse); otherwise `tid` just won the lock and has not written
   * the record yet, and only the existence of the thread can be checked.
   */
  isDead(tid: number): boolean {
    const snap = this.#snapshot();
    if (snap && snap.tid === tid) {
      if (threadAlive(tid, snap.startTime)) return false;
      // Judged dead on the recorded start time: make sure the record did not change meanwhile.
      return Atomics.load(this.#i32, this.#base) === snap.seq;
    }
    return !threadAlive(tid, 0);
  }

  /**
   * True if `tid`, found in the lock word, is `me`: the same id and not an earlier thread that had
   * it. A holder that died without releasing leaves its id in the word; once the kernel gives that
   * id to `me`, only the recorded start time tells the two apart, and `me` must then recover the
   * lock rather than take it for its own (or refuse it as a deadlock).
   */
  isMe(tid: number, me: ThreadIdentity): boolean {
    if (tid !== me.tid) return false;
    const snap = this.#snapshot();
    // Unknown start times (either side) cannot tell: `me`, as before start times were recorded.
    return (
      !snap ||
      snap.tid !== tid ||
      snap.startTime === 0 ||
      me.startTime === 0 ||
      snap.startTime === me.startTime
    );
  }

  /** The process of thread `tid` if the record knows it (for pidfd watching), else 0. */
  pidOf(tid: number): number {
    const snap = this.#snapshot();
    return snap && snap.tid === tid ? snap.pid : 0;
  }
}
