/**
 * The shared half of every wait: a small table of waiter slots in the primitive's memory. A waiter
 * claims a slot (state = its ticket, plus where to wake it), re-checks the primitive, then sleeps:
 * a …Sync waiter on a futex on its slot word, an async waiter by returning to its event loop after
 * arming its thread's doorbell. A waker changes the primitive's state first, then picks the waiting
 * slot with the smallest ticket (FIFO), flips it to NOTIFIED and wakes exactly that waiter.
 *
 * No lost wake-ups: a waiter publishes its slot (and the waiting count) before its final re-check,
 * a waker publishes its state change before reading the count; with sequentially consistent
 * Atomics one of the two always sees the other. A waiter that was notified but gives up (timeout,
 * abort) passes the notification on. A waiter that died is found by its waker (its doorbell is gone)
 * or by the other waiters' periodic checks, so a dead process never swallows a wake-up for long.
 *
 * Throttling: a waiter that was woken but lost the race (another thread took the lock first, as a
 * barging lock allows) re-arms throttled for a short while; wake-one skips throttled waiters, and
 * the waiter looks again by itself when the short wait ends. Without it, two processes contending
 * on a mutex turn every unlock into a wake-up syscall for a waiter that will just lose again.
 *
 * Hand-off: a Mutex may pass itself directly to its oldest waiter when that one has waited too long
 * (see `handOff`); the slot then reads HANDED and the waiter owns the lock without competing. A
 * fair Mutex hands off at every release with a waiter; its waiters spin on their own slot first
 * (SPINNING set), so a hand-off to a spinning waiter needs no wake-up syscall.
 *
 * Layout (32-bit words from `base`, which must be even):
 *   +0 waiting count   +1 ticket counter   +2 slot count   +3 high-water mark (slots ever used)
 *   +4 + 8*i  slot i: [state, tid, doorbell nonce (0: futex waiter), pid, start time (f64),
 *                      waiting since (f64, ms, wall clock)]
 * Slot state: 0 free, -1 notified, -3 handed the lock, > 0 the waiter's ticket (bit 30 set:
 * throttled; bit 29 set: spinning, not asleep), CLAIMING - tid being claimed by thread tid.
 */
import { native } from '../native/binding.js';
import { ringDoorbell } from '../shm/doorbell.js';
import type { Region } from './region.js';
import { type ThreadIdentity, threadAlive } from './thread.js';

/** Slots per queue: the most threads that can park on one primitive at a time (more poll instead). */
export const WAIT_SLOTS = 64;
const SLOT_WORDS = 8;
/** Words a queue occupies. */
export const WAIT_QUEUE_WORDS = 4 + SLOT_WORDS * WAIT_SLOTS;

const FREE = 0;
/** A slot whose waiter has been told to look again. */
export const NOTIFIED = -1;
/** A slot whose waiter was handed the lock (Mutex fairness). */
export const HANDED = -3;
/**
 * A slot being claimed reads CLAIMING - the claimer's thread id (pid_max <= 2^22, so these never
 * meet the other states): a claimer killed before it armed its slot is found and its slot freed.
 */
const CLAIMING = -0x1000000;

/** The thread claiming a slot in state `state`, or 0 if the slot is not being claimed. */
function claimerOf(state: number): number {
  return state < CLAIMING ? CLAIMING - state : 0;
}
/** Bit 30 of an armed slot: the waiter lost a race after a wake-up and looks again by itself soon. */
export const THROTTLED = 0x40000000;
/** Bit 29 of an armed slot: the waiter is spinning on its slot, so handing it the lock needs no wake-up. */
const SPINNING = 0x20000000;
const TICKET_MASK = SPINNING - 1;

/** False only if no process has this pid (ESRCH); a zombie or a reused pid still counts. */
function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/** Milliseconds on a clock all processes share (wall clock with sub-ms resolution). */
function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

/** A claimed slot: its state word's index, the waiter's ticket, and what it is armed with now. */
export interface Registration {
  slot: number;
  ticket: number;
  /** The slot's value while armed: `ticket`, or with THROTTLED or SPINNING set. */
  armed: number;
}

/** How a waiter left its slot. */
export type Departure = 'waiting' | 'notified' | 'handed';

/** The waiter a lock was handed to. */
export interface HandOff extends ThreadIdentity {
  slot: number;
  /** The waiter was spinning on its slot: it sees the hand-off without being woken. */
  spinning: boolean;
}

/** The wait queue of one primitive. */
export class WaitQueue {
  readonly i32: Int32Array;
  readonly #region: Region;
  readonly #f64: Float64Array;
  readonly #base: number;

  constructor(region: Region, base: number) {
    this.#region = region;
    this.i32 = region.i32;
    this.#f64 = region.f64;
    this.#base = base;
  }

  /** Writes the slot count into a zeroed queue (at primitive creation). */
  static init(region: Region, base: number): void {
    region.i32[base + 2] = WAIT_SLOTS;
  }

  /**
   * True once the memory the queue lives in was unmapped (a placed primitive's SharedMemory was
   * closed): its views are then empty and any Atomics call on them throws, so nothing may touch it.
   */
  get detached(): boolean {
    return this.#region.detached;
  }

  /** How many waiters have slots (an over-estimate while one is leaving). */
  get waiting(): number {
    return Atomics.load(this.i32, this.#base);
  }

  /**
   * True if thread `me` holds a slot (waiting, notified or handed the lock). A thread blocked in a
   * …Sync wait can hold no other, so for a thread about to block, any slot of its own belongs to
   * one of its async waits.
   */
  queuedBy(me: ThreadIdentity): boolean {
    if (Atomics.load(this.i32, this.#base) === 0) return false;
    const slots = this.#used();
    for (let i = 0; i < slots; i++) {
      const slot = this.#slot(i);
      const state = Atomics.load(this.i32, slot);
      // A claimed slot's fields are still being written (and never by this thread right now).
      if (state === FREE || claimerOf(state) !== 0) continue;
      if (
        this.i32[slot + 1] === me.tid &&
        this.i32[slot + 3] === me.pid &&
        this.#f64[(slot + 4) >> 1] === me.startTime
      ) {
        return true;
      }
    }
    return false;
  }

  /** The state word of a slot. */
  state(slot: number): number {
    return Atomics.load(this.i32, slot);
  }

  #slot(i: number): number {
    return this.#base + 4 + SLOT_WORDS * i;
  }

  /** Slots to scan: only up to the highest ever used (usually one or two). */
  #used(): number {
    return Atomics.load(this.i32, this.#base + 3);
  }

  #free(slot: number, from: number): boolean {
    if (Atomics.compareExchange(this.i32, slot, from, FREE) !== from) return false;
    Atomics.sub(this.i32, this.#base, 1);
    return true;
  }

  /**
   * Claims a slot for `me`; `nonce` is its thread doorbell's nonce, or 0 for a futex waiter.
   * `spinning` marks it as spinning on the slot until {@link WaitQueue.stopSpinning}.
   * Undefined if the table is full even after freeing the slots of dead waiters.
   */
  register(me: ThreadIdentity, nonce: number, spinning = false): Registration | undefined {
    // Counted before the claim: a fair Mutex refuses a barging acquirer while anyone waits, and the
    // sooner it knows, the fewer times a releaser re-takes the lock while this waiter settles in.
    // And a claimed slot is always counted, so whoever frees it for a claimer that was killed
    // takes its count back too. (Killed before its claim, a waiter leaves the count one too high:
    // an over-estimate, which only costs a look at the slots.)
    Atomics.add(this.i32, this.#base, 1);
    for (let round = 0; round < 2; round++) {
      const slots = this.i32[this.#base + 2]!;
      for (let i = 0; i < slots; i++) {
        const slot = this.#slot(i);
        if (Atomics.load(this.i32, slot) !== FREE) continue;
        if (Atomics.compareExchange(this.i32, slot, FREE, CLAIMING - me.tid) !== FREE) continue;
        // Wakers skip a slot being claimed; its waiter re-checks after arming it. Only the claimer
        // writes these while the slot is being claimed; wakers read them only after the state
        // turns into a ticket (an Atomics store, which orders these plain writes).
        this.i32[slot + 1] = me.tid;
        this.i32[slot + 2] = nonce;
        this.i32[slot + 3] = me.pid;
        this.#f64[(slot + 4) >> 1] = me.startTime;
        this.#f64[(slot + 6) >> 1] = nowMs();
        for (let used = this.#used(); used < i + 1; ) {
          const seen = Atomics.compareExchange(this.i32, this.#base + 3, used, i + 1);
          if (seen === used) break;
          used = seen;
        }
        // 1 … TICKET_MASK: never 0, never into the flag bits (the counter itself wraps as an int32).
        const ticket = ((Atomics.add(this.i32, this.#base + 1, 1) & TICKET_MASK) % TICKET_MASK) + 1;
        const armed = spinning ? ticket | SPINNING : ticket;
        Atomics.store(this.i32, slot, armed);
        return { slot, ticket, armed };
      }
      if (this.#reapDead() === 0) break;
    }
    Atomics.sub(this.i32, this.#base, 1);
    return undefined;
  }

  /**
   * A spinning waiter about to sleep: from now on a hand-off must wake it. False if its slot
   * changed meanwhile (handed the lock or notified): the waiter looks at its state instead of sleeping.
   */
  stopSpinning(reg: Registration): boolean {
    if (Atomics.compareExchange(this.i32, reg.slot, reg.armed, reg.ticket) !== reg.armed) return false;
    reg.armed = reg.ticket;
    return true;
  }

  /**
   * After a notification that did not let the waiter finish: wait again, keeping its place (and
   * its waiting-since time); `throttled` (it lost a race) makes wake-one pass it over until
   * {@link WaitQueue.unthrottle}.
   */
  rearm(reg: Registration, throttled: boolean): void {
    const armed = throttled ? reg.ticket | THROTTLED : reg.ticket;
    if (Atomics.compareExchange(this.i32, reg.slot, NOTIFIED, armed) === NOTIFIED) reg.armed = armed;
  }

  /** Ends a throttled period: wake-one may pick this waiter again. */
  unthrottle(reg: Registration): void {
    if (reg.armed === reg.ticket) return;
    if (Atomics.compareExchange(this.i32, reg.slot, reg.armed, reg.ticket) === reg.armed)
      reg.armed = reg.ticket;
  }

  /**
   * Frees the slot and says how the waiter leaves: still waiting (nothing owed), notified (a
   * giving-up waiter passes it on), or handed the lock (it owns it now).
   */
  leave(reg: Registration): Departure {
    for (;;) {
      if (this.#free(reg.slot, reg.armed)) return 'waiting';
      const state = Atomics.load(this.i32, reg.slot);
      if (state === NOTIFIED && this.#free(reg.slot, NOTIFIED)) return 'notified';
      if (state === HANDED && this.#free(reg.slot, HANDED)) return 'handed';
      // Not ours any more (reaped as dead, which a live waiter is not): nothing to free.
      if (state !== reg.armed && state !== NOTIFIED && state !== HANDED) return 'waiting';
    }
  }

  /**
   * Wakes up to `n` waiters, oldest first, passing over throttled ones (they look again by
   * themselves shortly); Infinity wakes every waiter, throttled or not. Returns how many were woken.
   */
  wake(n: number): number {
    if (Atomics.load(this.i32, this.#base) === 0) return 0;
    const slots = this.#used();
    let woken = 0;
    if (n === Number.POSITIVE_INFINITY) {
      for (let i = 0; i < slots; i++) {
        const slot = this.#slot(i);
        const state = Atomics.load(this.i32, slot);
        if (state > 0 && Atomics.compareExchange(this.i32, slot, state, NOTIFIED) === state) {
          if (this.#deliver(slot)) woken++;
        }
      }
      return woken;
    }
    while (woken < n) {
      const best = this.#oldest(false);
      if (best < 0) break;
      const ticket = Atomics.load(this.i32, best);
      if (ticket <= 0 || ticket >= THROTTLED) continue;
      if (Atomics.compareExchange(this.i32, best, ticket, NOTIFIED) !== ticket) continue;
      if (this.#deliver(best)) woken++;
    }
    return woken;
  }

  /** The armed slot with the smallest ticket (including throttled ones if asked), or -1. */
  #oldest(includeThrottled: boolean): number {
    const slots = this.#used();
    let best = -1;
    let bestTicket = 0;
    for (let i = 0; i < slots; i++) {
      const slot = this.#slot(i);
      const state = Atomics.load(this.i32, slot);
      if (state <= 0 || (!includeThrottled && state >= THROTTLED)) continue;
      const ticket = state & TICKET_MASK;
      if (best < 0 || ticket < bestTicket) {
        best = slot;
        bestTicket = ticket;
      }
    }
    return best;
  }

  /**
   * For a lock's release: if the longest-waiting waiter (armed, throttled or already notified but
   * not yet running) has waited at least `minWaitMs`, marks its slot HANDED and returns who it is;
   * the caller then makes that thread the owner and calls {@link WaitQueue.deliverHandOff}.
   * Returns undefined when nobody has waited that long.
   */
  handOff(minWaitMs: number): HandOff | undefined {
    if (Atomics.load(this.i32, this.#base) === 0) return undefined;
    const now = nowMs();
    for (let tries = 0; tries < 4; tries++) {
      const slots = this.#used();
      let slot = -1;
      let since = now - minWaitMs;
      for (let i = 0; i < slots; i++) {
        const candidate = this.#slot(i);
        const state = Atomics.load(this.i32, candidate);
        if (state <= 0 && state !== NOTIFIED) continue;
        const waited = this.#f64[(candidate + 6) >> 1]!;
        if (waited <= since) {
          slot = candidate;
          since = waited;
        }
      }
      if (slot < 0) return undefined;
      const state = Atomics.load(this.i32, slot);
      if (state <= 0 && state !== NOTIFIED) continue;
      const tid = this.i32[slot + 1]!;
      const startTime = this.#f64[(slot + 4) >> 1]!;
      const spinning = state > 0 && (state & SPINNING) !== 0;
      // A futex waiter gives no sign of life when woken: skip one whose process is gone (a cheap
      // signal-0 probe; a dead thread of a live process is caught by the waiters' periodic checks,
      // which then recover the lock from it). A spinning waiter was running an instant ago.
      if (!spinning && this.i32[slot + 2] === 0 && !processExists(this.i32[slot + 3]!)) {
        this.#free(slot, state);
        continue;
      }
      if (Atomics.compareExchange(this.i32, slot, state, HANDED) !== state) continue;
      return { slot, tid, pid: this.i32[slot + 3]!, startTime, spinning };
    }
    return undefined;
  }

  /** Wakes the waiter of a HANDED slot, unless it was spinning; false (slot freed) if its doorbell is gone. */
  deliverHandOff(handOff: HandOff): boolean {
    // Its stopSpinning() fails now that the slot reads HANDED, so it never sleeps on it.
    if (handOff.spinning) return true;
    return this.#deliver(handOff.slot, HANDED);
  }

  /** Wakes the waiter of a NOTIFIED (or HANDED) slot; frees the slot and returns false if it is dead. */
  #deliver(slot: number, state = NOTIFIED): boolean {
    const tid = this.i32[slot + 1]!;
    const nonce = this.i32[slot + 2]!;
    if (nonce === 0) {
      // A futex waiter. If it is not inside futex_wait right now it is between checks and will see
      // the new state; if it died in a …Sync wait, the other waiters' periodic checks reap its slot
      // (reapDeadNotified): checking /proc here would cost every contended unlock ~10 µs.
      native().futexWake(this.i32, slot, 1);
      return true;
    }
    if (ringDoorbell({ tid, nonce })) return true;
    // Nobody owns that doorbell any more: the waiter's thread is gone. Free its slot.
    this.#free(slot, state);
    return false;
  }

  /**
   * Frees NOTIFIED and HANDED slots (other than `own`) whose waiter died before consuming them, and
   * passes each swallowed notification on. Called from waiters' periodic death checks.
   */
  reapDeadNotified(own: number): void {
    const slots = this.#used();
    for (let i = 0; i < slots; i++) {
      const slot = this.#slot(i);
      const state = slot === own ? FREE : Atomics.load(this.i32, slot);
      if (state !== NOTIFIED && state !== HANDED) continue;
      if (threadAlive(this.i32[slot + 1]!, this.#f64[(slot + 4) >> 1]!)) continue;
      // A dead waiter's notification goes to the next one; a lock handed to it is recovered by the
      // owner-died protocol (its thread id is in the lock word), so only the slot is freed.
      if (this.#free(slot, state) && state === NOTIFIED) this.wake(1);
    }
  }

  /** True if the waiter of a taken slot in `state` is dead (of a slot being claimed: its claimer). */
  #deadWaiter(slot: number, state: number): boolean {
    const claimer = claimerOf(state);
    if (claimer !== 0) return !threadAlive(claimer, 0);
    return !threadAlive(this.i32[slot + 1]!, this.#f64[(slot + 4) >> 1]!);
  }

  /**
   * Frees the slots of waiters that died (killed while claiming a slot, parked, spinning, notified
   * or handed the lock), passing on each notification one of them held. Reads /proc: for death
   * checks only. Returns how many slots are still taken (by live waiters).
   */
  reapDeadWaiters(): number {
    return this.#reap(true).taken;
  }

  /**
   * Frees slots whose waiter thread is dead, but for slots handed the lock (reapDeadNotified frees
   * those). Returns how many.
   */
  #reapDead(): number {
    return this.#reap(false).freed;
  }

  /**
   * The two above: frees the slots of dead waiters, those handed the lock too if `all` (which then
   * also passes on the notification a freed NOTIFIED slot held). Every slot, not only up to the
   * high-water mark: a claimer killed before it raised the mark.
   */
  #reap(all: boolean): { freed: number; taken: number } {
    const slots = this.i32[this.#base + 2]!;
    let freed = 0;
    let taken = 0;
    for (let i = 0; i < slots; i++) {
      const slot = this.#slot(i);
      const state = Atomics.load(this.i32, slot);
      if (state === FREE) continue;
      if ((!all && state === HANDED) || !this.#deadWaiter(slot, state) || !this.#free(slot, state)) {
        taken++;
        continue;
      }
      freed++;
      if (all && state === NOTIFIED) this.wake(1);
    }
    return { freed, taken };
  }
}
