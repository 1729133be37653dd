/**
 * The control page of a ShmChannel segment: what each side records about itself, how a side is
 * claimed, and how a new process takes over the side of one that died.
 *
 * Words (Int32) of the 4 KiB control page: magic, layout version, ring capacity, the session counter
 * and the channel's flags; then one block per side (state, pid, doorbell address, start time, the
 * session it belongs to); the two ring control blocks start at byte 512 (see shm-channel.ts).
 *
 * A side is owned by one process, identified by pid plus start time (pids are reused). A process
 * that finds a side's owner dead, or a side let go of, may take it over: it claims the side with a
 * compare-and-swap of its state (so of two newcomers one wins), records itself, and bumps the
 * session counter. The session number is what both readers use to tell the old conversation from
 * the new one in the rings (RESET records, see ring.ts).
 */
import { ErrorCodes, IpcError } from '../core/errors.js';
import { isAlive, selfIdentity } from '../core/process-identity.js';
import { threadDoorbell } from './doorbell.js';
import { checkRingCapacity, RING_CONTROL_BYTES } from './ring.js';

export const MAGIC = 0x43484d53; // 'SMHC'
/**
 * Layout 2: sides record their start time and session, the page a session counter and flags.
 * Layout 3: ring control blocks of 192 bytes, the reader's idle flag on a cache line of its own.
 */
export const VERSION = 3;
export const CONTROL_PAGE = 4096;
/** Control page words. */
export const W = { MAGIC: 0, VERSION: 1, CAPACITY: 2, SESSION: 3, FLAGS: 4 } as const;
/** Bits of W.FLAGS, fixed by the creator. */
export const Flag = {
  /** Readers spin longer before parking (`mode: 'latency'`). */
  LATENCY: 1,
  /** Ring 1 takes records from many producer processes (`producers: 'many'`). */
  MANY_PRODUCERS: 2,
} as const;
/** Per-side words: side s starts at word SIDE_BASE + s * SIDE_WORDS. */
export const SIDE_BASE = 8;
export const SIDE_WORDS = 8;
/** START is a float64 over words 4-5 of the block (8-byte aligned: the blocks are). */
export const S = { STATE: 0, PID: 1, TID: 2, NONCE: 3, START: 4, SESSION: 6 } as const;
/**
 * A side's state word. A side being claimed holds the claimer's pid, negated (pids are positive,
 * so it meets none of these): a newcomer can then tell a claim in progress, whose claimer lives,
 * from one whose claimer died before it recorded itself.
 */
export const State = { FREE: 0, ATTACHED: 1, DETACHED: 2 } as const;

/** The state word of a side being claimed by this process. */
function claimingByMe(): number {
  return -process.pid;
}

/** Byte offset of ring r's control block in the control page. */
export function ringControlOffset(r: number): number {
  return 512 + r * RING_CONTROL_BYTES;
}

/** The control words of a mapped channel segment. */
export function controlWords(buffer: ArrayBuffer): Int32Array {
  return new Int32Array(buffer, 0, CONTROL_PAGE / 4);
}

/** The segment bytes a channel of ring capacity `capacity` needs. */
export function shmChannelBytes(capacity: number): number {
  return CONTROL_PAGE + 2 * capacity;
}

/** Lays a fresh channel out in `buffer` (zero-filled) and claims side 0 for this thread. */
export function initLayout(buffer: ArrayBuffer, capacity: number, flags: number): void {
  const words = controlWords(buffer);
  words[W.VERSION] = VERSION;
  words[W.CAPACITY] = capacity;
  words[W.FLAGS] = flags;
  claimSide(words, 0, 0);
  words[SIDE_BASE + S.STATE] = State.ATTACHED;
  Atomics.store(words, W.MAGIC, MAGIC);
}

/** Records this thread's identity and doorbell in side `side`'s block; the pid is written last. */
function claimSide(words: Int32Array, side: number, session: number): void {
  const base = SIDE_BASE + side * SIDE_WORDS;
  const bell = threadDoorbell();
  words[base + S.TID] = bell.tid;
  words[base + S.NONCE] = bell.nonce;
  words[base + S.SESSION] = session;
  new Float64Array(words.buffer, words.byteOffset + (base + S.START) * 4, 1)[0] = selfIdentity().startTime;
  Atomics.store(words, base + S.PID, process.pid);
}

/** The process that owns side `side`, as recorded. */
export function sideOwner(words: Int32Array, side: number): { pid: number; startTime: number } {
  const base = SIDE_BASE + side * SIDE_WORDS;
  const pid = Atomics.load(words, base + S.PID);
  const startTime = new Float64Array(words.buffer, words.byteOffset + (base + S.START) * 4, 1)[0]!;
  return { pid, startTime };
}

/** Checks the control page of a mapped channel; returns its ring capacity. */
export function checkLayout(buffer: ArrayBuffer, what: string): number {
  if (buffer.byteLength < CONTROL_PAGE) {
    throw new IpcError(ErrorCodes.INCOMPATIBLE, `${what} is not a ShmChannel segment (too small)`);
  }
  const words = controlWords(buffer);
  const magic = Atomics.load(words, W.MAGIC);
  const version = words[W.VERSION]!;
  const capacity = words[W.CAPACITY]!;
  if (magic !== MAGIC) throw new IpcError(ErrorCodes.INCOMPATIBLE, `${what} is not a ShmChannel segment`);
  if (version !== VERSION) {
    throw new IpcError(ErrorCodes.INCOMPATIBLE, `${what} has ShmChannel layout ${version}, not ${VERSION}`);
  }
  try {
    checkRingCapacity(capacity);
  } catch {
    throw new IpcError(ErrorCodes.INCOMPATIBLE, `${what} declares a bad ring capacity ${capacity}`);
  }
  if (buffer.byteLength !== shmChannelBytes(capacity)) {
    throw new IpcError(
      ErrorCodes.INCOMPATIBLE,
      `${what} is ${buffer.byteLength} bytes, not the ${shmChannelBytes(capacity)} its capacity needs`,
    );
  }
  return capacity;
}

/** How an opener got its side: fresh (the channel's first opener) or taken over from a dead one. */
export interface SideClaim {
  side: 0 | 1;
  /** The session this side now belongs to; 0 for the first opener. */
  session: number;
  takenOver: boolean;
}

/** True when side `side` can be taken over: let go of, or its owner (or its claimer) is dead. */
function isVacant(words: Int32Array, side: number, state: number): boolean {
  if (state === State.DETACHED) return true;
  if (state < 0) {
    // Being claimed: vacant only if the claimer died before recording itself. A live claimer is
    // recording itself right now, and taking the side from it would give it two owners.
    const claimer = -state;
    return claimer !== process.pid && !isAlive({ pid: claimer, startTime: 0 });
  }
  const owner = sideOwner(words, side);
  return owner.pid === 0 || (owner.pid !== process.pid && !isAlive(owner));
}

/**
 * Claims a side for this thread: side 1 if nobody ever opened it, else a side whose owner died or
 * let go (a takeover, which starts a new session). Throws ERR_IPC_EXISTS when both owners are alive.
 */
export function claimOpenerSide(buffer: ArrayBuffer, what: string): SideClaim {
  const words = controlWords(buffer);
  const opener = SIDE_BASE + SIDE_WORDS + S.STATE;
  if (Atomics.compareExchange(words, opener, State.FREE, claimingByMe()) === State.FREE) {
    claimSide(words, 1, 0);
    Atomics.store(words, opener, State.ATTACHED);
    return { side: 1, session: 0, takenOver: false };
  }
  for (const side of [1, 0] as const) {
    const at = SIDE_BASE + side * SIDE_WORDS + S.STATE;
    const state = Atomics.load(words, at);
    if (state === State.FREE || !isVacant(words, side, state)) continue;
    // Of several newcomers, the one whose swap succeeds takes the side; the others look again.
    if (Atomics.compareExchange(words, at, state, claimingByMe()) !== state) continue;
    const session = Atomics.add(words, W.SESSION, 1) + 1;
    claimSide(words, side, session);
    Atomics.store(words, at, State.ATTACHED);
    return { side, session, takenOver: true };
  }
  throw new IpcError(
    ErrorCodes.EXISTS,
    `${what} already has both ends open by live processes (an end can be taken over once its process dies)`,
  );
}
