/**
 * RwLock: many readers or one writer, between processes and worker threads. Writers are
 * preferred: a writer first claims the writer word (new readers then wait), then waits for the
 * readers inside to leave, so a stream of readers cannot starve it.
 *
 * Robustness: the writer word holds the writer's thread id (with an owner record, as in Mutex);
 * readers are counted per thread in a holder table. A dead writer's claim is taken over (by a
 * writer: `ownerDied`) or cleared (by a reader: `ownerDied` too), and a dead reader's read locks are
 * dropped when a writer waits for readers, which then also reports `ownerDied`.
 *
 * Not recursive and not upgradable: a thread holding a read lock that asks for the write lock waits
 * for itself (the …Sync variants detect it: ERR_IPC_DEADLOCK).
 *
 * Layout (32-bit words): 0-3 header, 4 writer word, 5 recoveries, 6-11 writer owner record,
 * 12.. reader holder table, then the wait queue.
 */
import { ErrorCodes, IpcError } from '../core/errors.js';
import type { WaitOptions } from '../core/wait.js';
import { type Guard, HeldGuard } from './guard.js';
import { HOLDERS_WORDS, Holders } from './holders.js';
import { OwnerRecord } from './owner.js';
import {
  type KindSpec,
  openNamedStorage,
  Primitive,
  type PrimitiveOptions,
  placedStorage,
  type Storage,
  unlinkNamedPrimitive,
} from './primitive.js';
import type { PlacementTarget } from './region.js';
import { selfThread } from './thread.js';
import { WAIT_QUEUE_WORDS, WaitQueue } from './wait-queue.js';
import { type WaitTarget, waitAsync, waitSync } from './waiter.js';

const WRITER = 4;
const RECOVERIES = 5;
const OWNER = 6;
const READERS = 12;
const QUEUE = READERS + HOLDERS_WORDS;
const WORDS = QUEUE + WAIT_QUEUE_WORDS;

const spec: KindSpec = {
  kind: 'rwlock',
  byteLength: WORDS * 4,
  init: (region) => {
    Holders.init(region, READERS);
    WaitQueue.init(region, QUEUE);
  },
};

/** A held read or write lock. */
export type RwLockGuard = Guard;

/** A cross-process, cross-thread readers-writer lock. */
export class RwLock extends Primitive {
  /** Bytes an RwLock occupies when placed with {@link RwLock.createAt}. */
  static readonly byteLength = spec.byteLength;
  readonly #i32: Int32Array;
  readonly #queue: WaitQueue;
  readonly #owner: OwnerRecord;
  readonly #readers: Holders;
  #slot = -1;

  private constructor(storage: Storage) {
    super('rwlock', storage);
    this.#i32 = this.region.i32;
    this.#queue = new WaitQueue(this.region, QUEUE);
    this.#owner = new OwnerRecord(this.region, OWNER);
    this.#readers = new Holders(this.region, READERS);
  }

  /** Creates the named lock `name`. ERR_IPC_EXISTS if it exists. */
  static create(name: string, opts?: PrimitiveOptions): RwLock {
    return new RwLock(openNamedStorage(spec, name, 'create', 0, opts));
  }

  /** Opens the existing named lock `name`. */
  static open(name: string): RwLock {
    return new RwLock(openNamedStorage(spec, name, 'open', 0, undefined));
  }

  /** Opens `name`, creating it if needed. */
  static openOrCreate(name: string, opts?: PrimitiveOptions): RwLock {
    return new RwLock(openNamedStorage(spec, name, 'openOrCreate', 0, opts));
  }

  /** Initializes a lock at `offset` of memory you own. */
  static createAt(target: PlacementTarget, offset = 0): RwLock {
    return new RwLock(placedStorage(spec, target, offset, 'create', 0));
  }

  /** Attaches to a lock placed at `offset`. */
  static openAt(target: PlacementTarget, offset = 0): RwLock {
    return new RwLock(placedStorage(spec, target, offset, 'open', 0));
  }

  /** Removes the named lock `name`. ERR_IPC_NOT_FOUND if it does not exist. */
  static unlink(name: string): void {
    unlinkNamedPrimitive('rwlock', name);
  }

  /** Read locks held right now, over all threads (a snapshot). */
  get readers(): number {
    this.assertOpen();
    return this.#readers.total();
  }

  /** True while a writer holds or is claiming the lock (a snapshot). */
  get writing(): boolean {
    this.assertOpen();
    return Atomics.load(this.#i32, WRITER) !== 0;
  }

  /** Takes a read lock if no writer holds or claims it. Never waits. */
  tryReadLock(): RwLockGuard | undefined {
    this.assertOpen();
    const died = this.#readAttempt(true);
    return died === undefined ? undefined : this.#readGuard(died);
  }

  /** Waits for a read lock without blocking the event loop. */
  readLock(opts?: WaitOptions): Promise<RwLockGuard> {
    if (this.closed) return Promise.reject(this.closedError());
    return waitAsync(this.#readTarget(), opts);
  }

  /**
   * Waits for a read lock blocking this thread. ERR_IPC_DEADLOCK if this thread is the writer, or
   * holds a read lock while another thread's writer waits (that writer waits for this thread).
   */
  readLockSync(opts?: WaitOptions): RwLockGuard {
    this.assertOpen();
    const me = selfThread();
    const writer = Atomics.load(this.#i32, WRITER);
    if (this.#owner.isMe(writer, me)) {
      throw new IpcError(
        ErrorCodes.DEADLOCK,
        `${this.what}: readLockSync by the thread that holds the write lock`,
      );
    }
    // A dead writer's claim is not a wait for us: the read attempt clears it.
    if (writer !== 0 && !this.#owner.isDead(writer)) {
      const slot = this.#readers.slotOf(me, false, this.#slot);
      if (slot >= 0 && this.#readers.count(slot) > 0) {
        throw new IpcError(
          ErrorCodes.DEADLOCK,
          `${this.what}: readLockSync by a thread that holds a read lock while a writer waits for it to leave`,
        );
      }
    }
    return waitSync(this.#readTarget(), opts);
  }

  /** Takes the write lock if nobody holds the lock at all. Never waits. */
  tryWriteLock(): RwLockGuard | undefined {
    this.assertOpen();
    const target = this.#writeTarget();
    const died = target.attempt(true);
    if (died === undefined) {
      target.cancel!();
      return undefined;
    }
    return this.#writeGuard(died);
  }

  /** Waits for the write lock without blocking the event loop. */
  writeLock(opts?: WaitOptions): Promise<RwLockGuard> {
    if (this.closed) return Promise.reject(this.closedError());
    return waitAsync(this.#writeTarget(), opts).then((died) => this.#writeGuard(died));
  }

  /** Waits for the write lock blocking this thread. ERR_IPC_DEADLOCK if this thread holds a lock on it. */
  writeLockSync(opts?: WaitOptions): RwLockGuard {
    this.assertOpen();
    const me = selfThread();
    const slot = this.#readers.slotOf(me, false, this.#slot);
    if (
      this.#owner.isMe(Atomics.load(this.#i32, WRITER), me) ||
      (slot >= 0 && this.#readers.count(slot) > 0)
    ) {
      throw new IpcError(
        ErrorCodes.DEADLOCK,
        `${this.what}: writeLockSync by a thread that already holds a read or write lock on it`,
      );
    }
    return this.#writeGuard(waitSync(this.#writeTarget(), opts));
  }

  #pids(): number[] {
    const pids = this.#readers.holders().map((h) => h.pid);
    const writer = Atomics.load(this.#i32, WRITER);
    if (writer !== 0) pids.push(this.#owner.pidOf(writer));
    return [...new Set(pids)];
  }

  /** Clears a dead writer's claim; true if this call did. */
  #clearDeadWriter(writer: number): boolean {
    if (this.#owner.isMe(writer, selfThread()) || !this.#owner.isDead(writer)) return false;
    if (Atomics.compareExchange(this.#i32, WRITER, writer, 0) !== writer) return false;
    Atomics.add(this.#i32, RECOVERIES, 1);
    this.#queue.wake(Number.POSITIVE_INFINITY);
    return true;
  }

  /** One try at a read lock: undefined, or whether a dead writer was cleared on the way. */
  #readAttempt(deathCheck: boolean): boolean | undefined {
    const i32 = this.#i32;
    let died = false;
    const writer = Atomics.load(i32, WRITER);
    if (writer !== 0) {
      if (!deathCheck || !this.#clearDeadWriter(writer)) return undefined;
      died = true;
    }
    const me = selfThread();
    const slot = this.#readers.slotOf(me, true, this.#slot);
    if (slot < 0) {
      // 64 threads already hold read locks: wait for one to leave (or die and be reclaimed).
      if (deathCheck) this.#readers.reclaimDead(() => {}, true);
      return undefined;
    }
    this.#slot = slot;
    this.#readers.add(slot, 1);
    // A writer that claimed the word meanwhile either saw our count or we see its claim: back off.
    if (Atomics.load(i32, WRITER) !== 0) {
      this.#readers.add(slot, -1);
      this.#readers.freeIfEmpty(slot, me);
      if (this.#queue.waiting > 0) this.#queue.wake(Number.POSITIVE_INFINITY);
      return undefined;
    }
    return died;
  }

  #readTarget(): WaitTarget<RwLockGuard> {
    return {
      what: `${this.what}: read lock`,
      queue: this.#queue,
      spin: this.spinner,
      attempt: (deathCheck) => {
        this.assertOpen();
        const died = this.#readAttempt(deathCheck);
        return died === undefined ? undefined : this.#readGuard(died);
      },
      watchPids: () => this.#pids(),
      track: (kick) => this.trackWait(kick),
    };
  }

  #readGuard(ownerDied: boolean): RwLockGuard {
    const slot = this.#slot;
    return new HeldGuard(
      this,
      () => {
        this.assertOpen();
        this.#readers.add(slot, -1);
        this.#readers.freeIfEmpty(slot, selfThread());
        if (Atomics.load(this.#i32, WRITER) !== 0 && this.#queue.waiting > 0) {
          this.#queue.wake(Number.POSITIVE_INFINITY);
        }
      },
      ownerDied,
    );
  }

  /** A write wait: claim the writer word (phase 1), then wait for readers to leave (phase 2). */
  #writeTarget(): WaitTarget<boolean> {
    const i32 = this.#i32;
    let claimed = false;
    let died = false;
    return {
      what: `${this.what}: write lock`,
      queue: this.#queue,
      spin: this.spinner,
      attempt: (deathCheck) => {
        this.assertOpen();
        const me = selfThread();
        if (!claimed) {
          const prev = Atomics.compareExchange(i32, WRITER, 0, me.tid);
          if (prev === 0) {
            claimed = true;
          } else if (deathCheck && !this.#owner.isMe(prev, me) && this.#owner.isDead(prev)) {
            if (Atomics.compareExchange(i32, WRITER, prev, me.tid) !== prev) return undefined;
            Atomics.add(i32, RECOVERIES, 1);
            claimed = true;
            died = true;
          } else {
            return undefined;
          }
          this.#owner.record(me);
        }
        // Only a dead reader's read locks mean a holder died: the slots of a reader killed while
        // claiming one, or of a reclaimer killed after taking the share out, are freed silently.
        if (deathCheck) {
          this.#readers.reclaimDead(() => {
            died = true;
          });
        }
        return this.#readers.total() === 0 ? died : undefined;
      },
      watchPids: () => this.#pids(),
      cancel: () => {
        if (!claimed) return;
        claimed = false;
        // Also when close() ended the wait: its memory is still mapped then, and a claim left behind
        // would bar every reader and writer until this process exits.
        if (
          !this.region.detached &&
          Atomics.compareExchange(i32, WRITER, selfThread().tid, 0) === selfThread().tid
        ) {
          this.#queue.wake(Number.POSITIVE_INFINITY);
        }
      },
      track: (kick) => this.trackWait(kick),
    };
  }

  #writeGuard(ownerDied: boolean): RwLockGuard {
    return new HeldGuard(
      this,
      () => {
        this.assertOpen();
        const me = selfThread();
        if (Atomics.compareExchange(this.#i32, WRITER, me.tid, 0) !== me.tid) {
          throw new IpcError(
            ErrorCodes.OWNER_DIED,
            `${this.what}: write lock released by a thread that does not hold it`,
          );
        }
        if (this.#queue.waiting > 0) this.#queue.wake(Number.POSITIVE_INFINITY);
      },
      ownerDied,
    );
  }
}
