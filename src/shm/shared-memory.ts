/**
 * SharedMemory: named POSIX shared-memory segments, anonymous (memfd) segments handed to children,
 * and memory-mapped files. `buffer` is an ArrayBuffer of exactly the requested size; the versioned
 * header ipckit keeps (magic, layout version, size, creator) lives in a page in front of it.
 */
import {
  closeSync,
  constants,
  fchmodSync,
  fstatSync,
  ftruncateSync,
  lstatSync,
  openSync,
  unlinkSync,
} from 'node:fs';
import { resolve } from 'node:path';
import { ErrorCodes, fromSystemError, IpcError } from '../core/errors.js';
import { numberError } from '../core/options.js';
import type { ProcessIdentity } from '../core/process-identity.js';
import { register, unregister } from '../core/registry.js';
import { native } from '../native/binding.js';
import { CONTENT_PLAIN } from './header.js';
import { kernelName, kernelPath } from './kernel-name.js';
import {
  checkMode,
  checkSize,
  createAnonymous,
  createNamed,
  type Initializer,
  type MappedSegment,
  mapFd,
  type ObjectId,
  openNamed,
  openOrCreateNamed,
  unlinkNamed,
  unlinkOwnName,
  unmapSegment,
} from './mapping.js';

/** Options for {@link SharedMemory.create} and {@link SharedMemory.openOrCreate}. */
export interface SharedMemoryOptions {
  /** Size of `buffer` in bytes (a positive integer). */
  size: number;
  /** Permission bits of a new segment. Default 0o600 (this user only). */
  mode?: number;
}

/** Options for {@link SharedMemory.mapFile}. */
export interface MapFileOptions {
  /** Bytes to map. The file is extended to this size if shorter. Default: the file's size. */
  size?: number;
  /** Permission bits if the file is created, applied exactly (the umask does not apply). Default 0o600. */
  mode?: number;
}

/** How a segment came to be: a named object, an anonymous memfd, or a mapped file. */
export type SharedMemoryKind = 'named' | 'anonymous' | 'file';

/** The environment variable that lists inherited segment fds, in order (see {@link SharedMemory.inherited}). */
export const SHARE_FDS_ENV = 'IPCKIT_SHARE_FDS';

/**
 * How many open segments map each inherited fd; 0 once the last has closed it. `inherited(i)` may
 * be called more than once for one index (two modules of a program each mapping it); every such
 * segment holds the same fd, so only the last one's close() may close it. Closing it sooner would
 * let the next open take its number, and a later close() of another handle would then close that
 * unrelated fd. Once closed, the variable still names the number, which goes to whatever is opened
 * next: a memfd of this process's own there has a valid header, and must not be mapped instead.
 */
const inheritedHolders = new Map<number, number>();

/**
 * Registers a segment this call just created. If the registry refuses (a planted symlink:
 * ERR_IPC_UNSAFE_PATH), the create fails whole: the segment is unmapped and unlinked, not left
 * behind unregistered.
 */
function registerCreated(segment: MappedSegment, kernel: string, name: string, what: string): void {
  try {
    register('shm', name, kernelPath(kernel));
  } catch (err) {
    unmapSegment(segment);
    unlinkNamed(kernel, what);
    throw err;
  }
}

/**
 * Opens the file `path` read-write for mapFile, creating it if it does not exist; `created` says
 * whether this call made it (its mode is then fixed, and a failure removes it). A path that exists
 * but cannot be opened (a symlink that points nowhere) is not created through: ERR_IPC_NOT_FOUND.
 */
function openFileToMap(path: string, mode: number, what: string): { fd: number; created: boolean } {
  // Opening and creating race with another process creating or removing the file: a few rounds
  // settle it (a create that meets EEXIST opens; an open that meets ENOENT creates).
  for (let round = 0; ; round++) {
    try {
      return { fd: openSync(path, constants.O_RDWR), created: false };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || round >= 5) throw fromSystemError(err, what);
    }
    try {
      return {
        fd: openSync(path, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL, mode),
        created: true,
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || round >= 5) throw fromSystemError(err, what);
    }
  }
}

/** Removes the file at `path` if it still is the one open as `fd` (not one made there since). */
function removeIfSame(path: string, fd: number): void {
  try {
    const opened = fstatSync(fd);
    const now = lstatSync(path, { throwIfNoEntry: false });
    if (now !== undefined && now.ino === opened.ino && now.dev === opened.dev) unlinkSync(path);
  } catch {}
}

/** A shared-memory segment mapped into this process. */
export class SharedMemory implements Disposable {
  /** The segment's name (named), `'anonymous'`, or the absolute path (mapped file). */
  readonly name: string;
  /** Size of {@link SharedMemory.buffer} in bytes. */
  readonly size: number;
  /** How the segment was made. */
  readonly kind: SharedMemoryKind;
  /** The process that created the segment (from its header); undefined for a mapped file. */
  readonly creator: ProcessIdentity | undefined;
  #buffer: ArrayBuffer;
  #header: ArrayBuffer | undefined;
  #fd: number | undefined;
  #kernel: string | undefined;
  #id: ObjectId | undefined;
  /** The fd is an inherited one, shared with other handles (see {@link inheritedHolders}). */
  #inherited = false;
  #closed = false;

  private constructor(
    kind: SharedMemoryKind,
    name: string,
    buffer: ArrayBuffer,
    // The rest only for a segment with a header (a mapped file has none of them).
    header?: ArrayBuffer,
    fd?: number,
    kernel?: string,
    id?: ObjectId,
    creator?: ProcessIdentity,
  ) {
    this.kind = kind;
    this.name = name;
    this.size = buffer.byteLength;
    this.#buffer = buffer;
    this.#header = header;
    this.#fd = fd;
    this.#kernel = kernel;
    this.#id = id;
    this.creator = creator;
  }

  private static fromSegment(kind: SharedMemoryKind, name: string, segment: MappedSegment, kernel?: string) {
    return new SharedMemory(
      kind,
      name,
      segment.data,
      segment.header,
      segment.fd,
      kernel,
      segment.id,
      segment.info.creator,
    );
  }

  /**
   * Creates the named segment `name` of `size` bytes, zero-filled, mode 0600 unless `mode` says
   * otherwise. Throws ERR_IPC_EXISTS if it exists, ERR_IPC_INVALID_NAME for a bad name.
   */
  static create(name: string, opts: SharedMemoryOptions): SharedMemory {
    return SharedMemory.createInitialized(name, opts);
  }

  /**
   * @internal {@link SharedMemory.create}, with `init` filling the data before the header makes the
   * segment visible to openers (a ShmChannel's layout: an opener must never see it half made).
   */
  static createInitialized(name: string, opts: SharedMemoryOptions, init?: Initializer): SharedMemory {
    const what = `shared memory '${String(name)}'`;
    const kernel = kernelName('shm', name, 'shared memory');
    checkSize(opts?.size);
    const mode = opts.mode ?? 0o600;
    checkMode(mode);
    const segment = createNamed(kernel, what, CONTENT_PLAIN, opts.size, mode, init);
    registerCreated(segment, kernel, name, what);
    return SharedMemory.fromSegment('named', name, segment, kernel);
  }

  /**
   * Opens the existing named segment `name` at its size. Throws ERR_IPC_NOT_FOUND if missing and
   * ERR_IPC_INCOMPATIBLE if its header is wrong (bad magic, layout version or size).
   */
  static open(name: string): SharedMemory {
    const what = `shared memory '${String(name)}'`;
    const kernel = kernelName('shm', name, 'shared memory');
    return SharedMemory.fromSegment('named', name, openNamed(kernel, what, CONTENT_PLAIN), kernel);
  }

  /**
   * Opens `name`, creating it with `size` bytes if it does not exist. An existing segment of a
   * different size is ERR_IPC_INCOMPATIBLE.
   */
  static openOrCreate(name: string, opts: SharedMemoryOptions): SharedMemory {
    const what = `shared memory '${String(name)}'`;
    const kernel = kernelName('shm', name, 'shared memory');
    checkSize(opts?.size);
    const mode = opts.mode ?? 0o600;
    checkMode(mode);
    const { segment, created } = openOrCreateNamed(kernel, what, CONTENT_PLAIN, opts.size, mode);
    if (created) registerCreated(segment, kernel, name, what);
    else if (segment.info.size !== opts.size) {
      unmapSegment(segment);
      throw new IpcError(
        ErrorCodes.INCOMPATIBLE,
        `${what} exists with ${segment.info.size} bytes, not the ${opts.size} requested`,
      );
    }
    return SharedMemory.fromSegment('named', name, segment, kernel);
  }

  /** Removes the named segment `name`. Mappings stay valid until closed. ERR_IPC_NOT_FOUND if missing. */
  static unlink(name: string): void {
    const what = `shared memory '${String(name)}'`;
    const kernel = kernelName('shm', name, 'shared memory');
    unregister('shm', name);
    if (!unlinkNamed(kernel, what)) throw new IpcError(ErrorCodes.NOT_FOUND, `${what} does not exist`);
  }

  /**
   * An anonymous segment (memfd_create): no name, gone when the last process closes it. Hand it to
   * a child through `spawn(..., { share: [seg] })` (or any fd inheritance, see {@link shareFds});
   * the child maps it with {@link SharedMemory.inherited}. Its size is sealed.
   */
  static anonymous(size: number): SharedMemory {
    checkSize(size, 'size');
    const segment = createAnonymous('anonymous shared memory', CONTENT_PLAIN, size);
    return SharedMemory.fromSegment('anonymous', 'anonymous', segment);
  }

  /**
   * Maps the `index`-th segment this process inherited from its parent (in the order the parent
   * listed them in `share`). Throws ERR_IPC_NOT_FOUND if there is none. Called again for the same
   * index, it maps the segment again; the handles share the fd, which the last `close()` closes.
   */
  static inherited(index = 0): SharedMemory {
    if (!Number.isInteger(index) || index < 0) {
      throw numberError(index, `index must be an integer >= 0, got ${String(index)}`);
    }
    const fds = (process.env[SHARE_FDS_ENV] ?? '')
      .split(',')
      .filter((s) => s !== '')
      .map(Number);
    const fd = fds[index];
    if (fd === undefined || !Number.isInteger(fd)) {
      throw new IpcError(
        ErrorCodes.NOT_FOUND,
        `no inherited shared memory at index ${index} (${SHARE_FDS_ENV}=${process.env[SHARE_FDS_ENV] ?? ''})`,
      );
    }
    const what = `inherited shared memory #${index} (fd ${fd})`;
    if (inheritedHolders.get(fd) === 0) {
      throw new IpcError(ErrorCodes.NOT_FOUND, `${what}: closed already by this process`);
    }
    let isFile: boolean;
    try {
      isFile = fstatSync(fd).isFile();
    } catch (err) {
      // The variable names an fd the parent did not hand on (or this process closed).
      if ((err as NodeJS.ErrnoException).code === 'EBADF') {
        throw new IpcError(ErrorCodes.NOT_FOUND, `${what}: no such open fd`, { cause: err });
      }
      throw fromSystemError(err, what);
    }
    // A segment is a memfd or a file; a pipe or socket there was handed on for something else.
    if (!isFile) throw new IpcError(ErrorCodes.INCOMPATIBLE, `${what}: not a shared-memory segment`);
    try {
      native().setCloexec(fd, true);
    } catch (err) {
      throw fromSystemError(err, what);
    }
    const segment = SharedMemory.fromSegment('anonymous', 'anonymous', mapFd(fd, what, CONTENT_PLAIN));
    segment.#inherited = true;
    inheritedHolders.set(fd, (inheritedHolders.get(fd) ?? 0) + 1);
    return segment;
  }

  /**
   * Maps a regular file MAP_SHARED: processes that map the same file share its pages, and writes
   * reach the file. The file is created (mode 0600, or exactly `mode`) if missing and extended to
   * `size` if shorter; a call that fails removes a file it created.
   * No header: the bytes are the file's. Another program truncating the file under the mapping
   * makes access beyond the new end fault (SIGBUS); only map files you control.
   */
  static mapFile(path: string, opts?: MapFileOptions): SharedMemory {
    if (typeof path !== 'string' || path === '') throw new TypeError('path must be a non-empty string');
    const absolute = resolve(path);
    const what = `mapped file ${absolute}`;
    const mode = opts?.mode ?? 0o600;
    checkMode(mode);
    if (opts?.size !== undefined) checkSize(opts.size);
    const { fd, created } = openFileToMap(absolute, mode, what);
    try {
      // open()'s mode is filtered by the umask; a file this call makes gets the requested one exactly.
      if (created) fchmodSync(fd, mode);
      const stat = fstatSync(fd);
      if (!stat.isFile()) throw new IpcError(ErrorCodes.INCOMPATIBLE, `${what} is not a regular file`);
      const size = opts?.size ?? stat.size;
      if (size < 1) throw new RangeError(`${what} is empty: pass options.size to size it`);
      if (opts?.size === undefined) checkSize(size, `the size of ${what}`);
      if (stat.size < size) {
        // The new part's blocks now, or ENOSPC now, rather than SIGBUS on a full disk later
        // (posix_fallocate extends the file too). A failure gives the file its old size back, so
        // that a retry allocates again instead of finding it long enough and mapping holes.
        try {
          native().allocate(fd, stat.size, size - stat.size);
        } catch (err) {
          try {
            ftruncateSync(fd, stat.size);
          } catch {}
          throw err;
        }
      }
      const buffer = native().mmap(fd, 0, size);
      return new SharedMemory('file', absolute, buffer);
    } catch (err) {
      // A failed call leaves no file behind that it made (an empty one, say, for want of a size).
      if (created) removeIfSame(absolute, fd);
      if (err instanceof RangeError) throw err;
      throw fromSystemError(err, what);
    } finally {
      try {
        closeSync(fd);
      } catch {}
    }
  }

  /**
   * The segment's bytes: exactly `size` of them. After `close()` it is detached (length 0), so a
   * stale view reads nothing instead of touching unmapped memory. Native code already given the
   * bytes (an asynchronous zlib call on a view) is not stopped: close only once it is done.
   */
  get buffer(): ArrayBuffer {
    return this.#buffer;
  }

  /** The fd of an anonymous segment (to hand to a child); undefined for the other kinds or once closed. */
  get fd(): number | undefined {
    return this.#fd;
  }

  /** True once `close()` ran. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Unmaps the segment from this process (and closes an anonymous segment's fd). Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    let fd = this.#fd;
    if (this.#inherited && fd !== undefined) {
      // Another handle from inherited() still maps this fd: it closes it, last.
      const holders = (inheritedHolders.get(fd) ?? 1) - 1;
      inheritedHolders.set(fd, holders);
      if (holders > 0) fd = undefined;
    }
    if (this.#header) {
      unmapSegment({ header: this.#header, data: this.#buffer, fd });
    } else {
      native().munmap(this.#buffer);
    }
    this.#fd = undefined;
  }

  /**
   * Removes a named segment's name: new opens fail, existing mappings stay valid until closed.
   * Idempotent; a no-op for anonymous segments and mapped files (delete the file yourself). A name
   * that now belongs to a newer segment (this one's name was unlinked, then the name created again)
   * is left alone, with its registry entry.
   */
  unlink(): void {
    if (this.kind !== 'named' || this.#kernel === undefined || this.#id === undefined) return;
    unlinkOwnName(this.#kernel, this.#id, { kind: 'shm', name: this.name }, `shared memory '${this.name}'`);
  }

  /** `close()`, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * How to hand anonymous segments to a child process: the `stdio` entries to append (their fds,
 * which land at positions `firstFd`, `firstFd + 1`, …) and the environment variable that tells
 * {@link SharedMemory.inherited} where they are. `spawn({ share })` uses it.
 */
export function shareFds(
  segments: readonly SharedMemory[],
  firstFd: number,
): { stdio: number[]; env: Record<string, string> } {
  const stdio = segments.map((segment, i) => {
    if (!(segment instanceof SharedMemory)) throw new TypeError(`share[${i}] must be a SharedMemory`);
    const fd = segment.fd;
    if (fd === undefined) {
      throw new TypeError(
        `share[${i}] must be an open anonymous segment (SharedMemory.anonymous): named segments are opened by name`,
      );
    }
    return fd;
  });
  const positions = stdio.map((_, i) => firstFd + i);
  return { stdio, env: { [SHARE_FDS_ENV]: positions.join(',') } };
}
