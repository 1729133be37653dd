/**
 * Creating, opening and mapping segment objects: the one place that talks to shm_open, memfd and
 * mmap (through the addon) and enforces the header protocol. SharedMemory and the named sync
 * primitives are both built on it.
 *
 * Creation is ordered so that a concurrent `open` never reads a half-made object: O_EXCL create,
 * exact mode, size, map, let the caller initialize its data, then write the header with the magic
 * last. An opener that meets magic 0 (or a size of 0) waits briefly for the creator to finish.
 */
import { fchmodSync, fstatSync, ftruncateSync, statSync } from 'node:fs';
import { ErrorCodes, fromSystemError, IpcError } from '../core/errors.js';
import { numberError } from '../core/options.js';
import { type ResourceKind, unregister } from '../core/registry.js';
import { sleepSync } from '../core/sleep.js';
import { native } from '../native/binding.js';
import {
  HEADER_BYTES,
  incompatible,
  MAX_SEGMENT_BYTES,
  readHeader,
  type SegmentInfo,
  writeHeader,
} from './header.js';
import { creatorIdentity, kernelPath } from './kernel-name.js';

/**
 * How long an opener waits for a header that is not written yet when nothing says its creator is
 * still at work: the creator may have died between shm_open and writing it.
 */
const INIT_WAIT_MS = 250;
/**
 * How long an opener waits for a creator that holds its creation lock (see createNamed): alive and
 * still allocating, which takes hundreds of milliseconds for gigabytes on a loaded machine.
 */
const LIVE_CREATOR_WAIT_MS = 30_000;

/** Which object a name stood for when it was opened: its device and inode. */
export interface ObjectId {
  dev: bigint;
  ino: bigint;
}

/** A mapped segment: its header page, its data, what the header says, and the fd if kept. */
export interface MappedSegment {
  header: ArrayBuffer;
  data: ArrayBuffer;
  info: SegmentInfo;
  /** Kept open only for anonymous (memfd) segments, which are shared by handing the fd on. */
  fd: number | undefined;
  /** The named object this segment maps (see {@link unlinkOwnName}); undefined for memfd and inherited fds. */
  id?: ObjectId;
}

/** Fills a fresh segment's data before the header makes it visible to openers. */
export type Initializer = (data: ArrayBuffer) => void;

/** Throws TypeError (not a number) or RangeError unless `size` is a usable segment size. */
export function checkSize(size: unknown, option = 'options.size'): asserts size is number {
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 1) {
    throw numberError(size, `${option} must be a positive integer number of bytes, got ${String(size)}`);
  }
  if (size > MAX_SEGMENT_BYTES) {
    throw new RangeError(
      `${option} must be at most ${MAX_SEGMENT_BYTES} bytes (the largest ArrayBuffer Node makes), got ${size}`,
    );
  }
}

/** Throws TypeError (not a number) or RangeError unless `mode` is a permission mode. */
export function checkMode(mode: unknown, option = 'options.mode'): asserts mode is number {
  if (typeof mode !== 'number' || !Number.isInteger(mode) || mode < 0 || mode > 0o777) {
    throw numberError(mode, `${option} must be a permission mode such as 0o600, got ${String(mode)}`);
  }
}

/**
 * Closes a segment fd. Every one was opened by the addon or inherited, never by `fs`: closing it
 * through the addon keeps Node from warning in worker threads (see `NativeBinding.close`).
 */
function closeQuietly(fd: number): void {
  try {
    native().close(fd);
  } catch {}
}

function objectIdOf(fd: number): ObjectId {
  const stat = fstatSync(fd, { bigint: true });
  return { dev: stat.dev, ino: stat.ino };
}

/** Sizes, maps and initializes an fd that was just created; returns the mapped segment. */
function initialize(fd: number, kind: number, size: number, init: Initializer | undefined): MappedSegment {
  const n = native();
  ftruncateSync(fd, HEADER_BYTES + size);
  // Every page now, or ENOSPC now: on a full /dev/shm a sparse object maps fine and then kills
  // the first process that writes to a page the filesystem cannot give (SIGBUS).
  n.allocate(fd, 0, HEADER_BYTES + size);
  const header = n.mmap(fd, 0, HEADER_BYTES);
  let data: ArrayBuffer;
  try {
    data = n.mmap(fd, HEADER_BYTES, size);
  } catch (err) {
    n.munmap(header);
    throw err;
  }
  try {
    init?.(data);
    writeHeader(header, kind, size, creatorIdentity());
  } catch (err) {
    n.munmap(header);
    n.munmap(data);
    throw err;
  }
  const state = readHeader(header, HEADER_BYTES + size);
  if (state.state !== 'ready') throw new Error('segment header did not read back');
  return { header, data, info: state.info, fd: undefined };
}

/** Maps an existing segment behind `fd` after checking its header; waits out a creator in progress. */
function mapExisting(fd: number, kind: number, what: string): MappedSegment {
  const n = native();
  const start = Date.now();
  let deadline = start + INIT_WAIT_MS;
  for (;;) {
    const bytes = fstatSync(fd).size;
    if (bytes >= HEADER_BYTES) {
      const header = n.mmap(fd, 0, HEADER_BYTES);
      const state = readHeader(header, bytes);
      if (state.state === 'ready') {
        if (state.info.kind !== kind) {
          n.munmap(header);
          throw incompatible(what, `it holds content of kind ${state.info.kind}, expected ${kind}`);
        }
        try {
          const data = n.mmap(fd, HEADER_BYTES, state.info.size);
          return { header, data, info: state.info, fd: undefined };
        } catch (err) {
          n.munmap(header);
          throw fromSystemError(err, what);
        }
      }
      n.munmap(header);
      if (state.state === 'bad') throw incompatible(what, state.reason);
    } else if (bytes > 0) {
      throw incompatible(what, `the object is ${bytes} bytes, smaller than a header`);
    }
    if (Date.now() >= deadline) {
      if (creatorAtWork(fd) && Date.now() < start + LIVE_CREATOR_WAIT_MS) {
        deadline = Math.min(Date.now() + INIT_WAIT_MS, start + LIVE_CREATOR_WAIT_MS);
        continue;
      }
      throw incompatible(
        what,
        'its header was never completed (its creator may have died while creating it; unlink it)',
      );
    }
    sleepSync(1);
  }
}

/**
 * True while the creator of the object behind `fd` holds its creation lock: it is alive and still
 * making the object. A lock this process can take is not held (its creator finished, or died).
 */
export function creatorAtWork(fd: number): boolean {
  const n = native();
  try {
    if (!n.flock(fd, false, false)) return true;
    n.funlock(fd);
  } catch {
    // No flock here: nothing says the creator is at work.
  }
  return false;
}

/** Creates the named object `kernel` (ERR_IPC_EXISTS if it exists). */
export function createNamed(
  kernel: string,
  what: string,
  kind: number,
  size: number,
  mode: number,
  init?: Initializer,
): MappedSegment {
  const n = native();
  let fd: number;
  try {
    fd = n.shmOpen(kernel, true, true, mode);
  } catch (err) {
    throw fromSystemError(err, what);
  }
  try {
    // The creation lock: held (on this open file, so released when the fd closes below) until the
    // header is written, so that openers and gc can tell a creator at work from a dead one.
    try {
      n.flock(fd, true, false);
    } catch {}
    // shm_open's mode is filtered by the umask; the requested mode must hold exactly.
    fchmodSync(fd, mode);
    const id = objectIdOf(fd);
    return { ...initialize(fd, kind, size, init), id };
  } catch (err) {
    try {
      n.shmUnlink(kernel);
    } catch {}
    throw fromSystemError(err, what);
  } finally {
    closeQuietly(fd);
  }
}

/** Opens the named object `kernel` (ERR_IPC_NOT_FOUND if missing, ERR_IPC_INCOMPATIBLE if wrong). */
export function openNamed(kernel: string, what: string, kind: number): MappedSegment {
  const n = native();
  let fd: number;
  try {
    fd = n.shmOpen(kernel, false, false, 0);
  } catch (err) {
    throw fromSystemError(err, what);
  }
  try {
    // /dev/shm is shared by every user: an object another user made under our name (planted, to
    // hold our lock forever or read our data) is refused, as a runtime dir of theirs would be.
    const stat = fstatSync(fd, { bigint: true });
    const owner = Number(stat.uid);
    const self = process.geteuid?.();
    if (self !== undefined && owner !== self) {
      throw new IpcError(
        ErrorCodes.PERMISSION,
        `${what}: the object is owned by uid ${owner}, not by this user (uid ${self}); refusing to use it`,
      );
    }
    return { ...mapExisting(fd, kind, what), id: { dev: stat.dev, ino: stat.ino } };
  } catch (err) {
    throw fromSystemError(err, what);
  } finally {
    closeQuietly(fd);
  }
}

/** Opens `kernel`, creating it first if it does not exist; `created` says which happened. */
export function openOrCreateNamed(
  kernel: string,
  what: string,
  kind: number,
  size: number,
  mode: number,
  init?: Initializer,
): { segment: MappedSegment; created: boolean } {
  // Create and open race with other processes doing the same; a few rounds settle it
  // (a create that meets EEXIST opens; an open that meets ENOENT, after an unlink, creates).
  for (let round = 0; ; round++) {
    try {
      return { segment: createNamed(kernel, what, kind, size, mode, init), created: true };
    } catch (err) {
      if (!(err instanceof IpcError) || err.code !== ErrorCodes.EXISTS || round >= 5) throw err;
    }
    try {
      return { segment: openNamed(kernel, what, kind), created: false };
    } catch (err) {
      if (!(err instanceof IpcError) || err.code !== ErrorCodes.NOT_FOUND || round >= 5) throw err;
    }
  }
}

/** Creates an anonymous (memfd) segment whose size is sealed; the fd stays open to be shared. */
export function createAnonymous(what: string, kind: number, size: number, init?: Initializer): MappedSegment {
  const n = native();
  let fd: number;
  try {
    fd = n.memfdCreate('ipckit-anonymous');
  } catch (err) {
    throw fromSystemError(err, what);
  }
  try {
    const segment = initialize(fd, kind, size, init);
    n.sealSize(fd);
    segment.fd = fd;
    return segment;
  } catch (err) {
    closeQuietly(fd);
    throw fromSystemError(err, what);
  }
}

/** Maps a segment from an fd this process received (the fd stays open, owned by the segment). */
export function mapFd(fd: number, what: string, kind: number): MappedSegment {
  try {
    const segment = mapExisting(fd, kind, what);
    segment.fd = fd;
    return segment;
  } catch (err) {
    throw fromSystemError(err, what);
  }
}

/** Unmaps both mappings (views become empty) and closes a kept fd. Idempotent. */
export function unmapSegment(segment: Pick<MappedSegment, 'header' | 'data' | 'fd'>): void {
  const n = native();
  n.munmap(segment.header);
  n.munmap(segment.data);
  if (segment.fd !== undefined) {
    closeQuietly(segment.fd);
    segment.fd = undefined;
  }
}

/** shm_unlink; false if it was already gone. */
export function unlinkNamed(kernel: string, what: string): boolean {
  try {
    native().shmUnlink(kernel);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw fromSystemError(err, what);
  }
}

/**
 * True if the name `kernel` still stands for the object `id` a handle opened or created. A handle's
 * `unlink()` asks this first: once our object's name was unlinked and someone created a new object
 * under it, removing the name (and its registry entry) would delete *their* object, so a handle
 * leaves a name that now belongs to another object alone. Not atomic: the name can change between
 * this stat and the shm_unlink that follows, and POSIX has no unlink-by-fd for shm to close that
 * window; it only matters if the name is unlinked and recreated in between.
 */
function stillNames(kernel: string, id: ObjectId, what: string): boolean {
  try {
    const stat = statSync(kernelPath(kernel), { bigint: true, throwIfNoEntry: false });
    return stat !== undefined && stat.dev === id.dev && stat.ino === id.ino;
  } catch (err) {
    throw fromSystemError(err, what);
  }
}

/**
 * A handle's `unlink()`: removes the name `kernel` and its registry entry (`kind`, `name`), unless
 * the name no longer stands for the object `id` the handle opened (see {@link stillNames}).
 */
export function unlinkOwnName(
  kernel: string,
  id: ObjectId,
  entry: { kind: ResourceKind; name: string },
  what: string,
): void {
  if (!stillNames(kernel, id, what)) return;
  unregister(entry.kind, entry.name);
  unlinkNamed(kernel, what);
}
