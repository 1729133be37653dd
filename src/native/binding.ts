/**
 * The native addon's whole surface, declared once. The addon is loaded on first use, so pipes,
 * sockets and queues work even where it failed to build; callers that need it get
 * ERR_IPC_NATIVE_UNAVAILABLE. Arguments are checked in TypeScript before they reach C++.
 * Failed syscalls throw an Error with `errno`, `code` (e.g. 'EEXIST'), `syscall` and `path`.
 */
import { createRequire } from 'node:module';
import { ErrorCodes, IpcError } from '../core/errors.js';

/** The functions the C++ addon exports (native/*.cc). */
export interface NativeBinding {
  /** mkfifo(3). The umask applies; chmod afterwards for an exact mode. */
  mkfifo(path: string, mode: number): void;
  /** pipe2(2) with O_CLOEXEC: `[readFd, writeFd]`. */
  pipe2(): [number, number];
  /** fcntl(F_SETPIPE_SZ): returns the size granted (rounded up by the kernel). */
  setPipeSize(fd: number, bytes: number): number;
  /** fcntl(F_GETPIPE_SZ). */
  getPipeSize(fd: number): number;
  /** Sets or clears FD_CLOEXEC. */
  setCloexec(fd: number, on: boolean): void;
  /**
   * close(2) (native/fd.cc). Closes the fds the addon opened (shm_open, memfd_create, pipe2) and
   * those inherited from a parent: `fs.closeSync` on them makes Node warn in a worker thread
   * ("closed but not opened in unmanaged mode"). An fd that `fs` opened is closed by `fs`.
   */
  close(fd: number): void;
  /**
   * The credentials the kernel recorded for the peer of a connected Unix socket (SO_PEERCRED;
   * getpeereid elsewhere, where `pid` is -1).
   */
  peerCredentials(fd: number): { pid: number; uid: number; gid: number };

  // --- shared memory (native/shm.cc) ---
  /** shm_open(3) O_RDWR | O_CLOEXEC (+ O_CREAT, O_EXCL) -> fd. `name` starts with '/'. */
  shmOpen(name: string, create: boolean, exclusive: boolean, mode: number): number;
  /** shm_unlink(3). */
  shmUnlink(name: string): void;
  /** memfd_create(2) with MFD_CLOEXEC | MFD_ALLOW_SEALING -> fd. */
  memfdCreate(name: string): number;
  /** Seals a memfd's size (F_SEAL_SHRINK | F_SEAL_GROW): nobody can truncate it under a mapping. */
  sealSize(fd: number): void;
  /**
   * posix_fallocate(3) of `length` bytes from `offset`: the pages exist (or ENOSPC is thrown) before
   * anything maps them, so a full tmpfs or disk is an error here instead of SIGBUS on first write.
   */
  allocate(fd: number, offset: number, length: number): void;
  /**
   * mmap(2) MAP_SHARED read-write of `length` bytes at `offset` (a page multiple) -> an external
   * ArrayBuffer. Unmapped by {@link NativeBinding.munmap} or, failing that, by its finalizer.
   */
  mmap(fd: number, offset: number, length: number): ArrayBuffer;
  /** Detaches a buffer from {@link NativeBinding.mmap} (its views become empty) and unmaps it. Idempotent. */
  munmap(buffer: ArrayBuffer): void;
  /** sysconf(_SC_PAGESIZE). */
  pageSize(): number;

  // --- futex (native/futex.cc): blocking, for ...Sync variants only ---
  /**
   * FUTEX_WAIT (shared, not private) on `words[index]` while it equals `expected`, up to
   * `timeoutMs` (< 0: no deadline). 0 = woken or interrupted, 1 = value differed, 2 = timed out.
   */
  futexWait(words: Int32Array, index: number, expected: number, timeoutMs: number): 0 | 1 | 2;
  /** FUTEX_WAKE up to `count` waiters on `words[index]` (count <= 0: all) -> number woken. */
  futexWake(words: Int32Array, index: number, count: number): number;

  // --- doorbells (native/doorbell.cc) and the event-loop watcher (native/watcher.cc) ---
  /** eventfd(2), non-blocking, close-on-exec. */
  eventfd(): number;
  /** Adds 1 to an eventfd's counter (makes it readable). */
  eventfdSignal(fd: number): void;
  /** Reads a non-blocking fd until it would block -> number of reads that returned data. */
  drain(fd: number): number;
  /**
   * A non-blocking Unix datagram socket bound to the abstract name `\0name`, receiving its senders'
   * credentials (SO_PASSCRED) -> fd. EADDRINUSE if taken.
   */
  doorbellBind(name: string): number;
  /** An unbound non-blocking Unix datagram socket to ring doorbells with -> fd. */
  doorbellSocket(): number;
  /**
   * Sends one byte from socket `fd` (-1: a process-wide sender) to the abstract name: 0 rung, 1 its
   * queue is full (it is ringing already), 2 nobody has the name.
   */
  doorbellRing(fd: number, name: string): 0 | 1 | 2;
  /**
   * Watches `fd` for readability on this thread's event loop (uv_poll). Unless `drain` is
   * {@link DrainMode.NONE}, the fd is read empty before `callback(reads, status)` runs; `status` < 0
   * is a libuv error. Starts stopped and referenced; `close()` stops it for good. With `closeFd` the
   * watcher owns the fd and closes it when closed, or when the thread's environment is torn down (a
   * terminated worker).
   */
  FdWatcher: new (
    fd: number,
    drain: DrainMode,
    callback: (reads: number, status: number) => void,
    closeFd?: boolean,
  ) => NativeFdWatcher;

  // --- process and thread identity (native/pidfd.cc) ---
  /** pidfd_open(2) -> fd that becomes readable when the process exits (zombie or not). ESRCH if none. */
  pidfdOpen(pid: number): number;
  /** gettid(2): the calling thread's kernel id (equal to the pid on the main thread). */
  gettid(): number;

  // --- file locks (native/flock.cc) ---
  /** flock(2) LOCK_EX or LOCK_SH, with LOCK_NB unless `wait` -> false if held elsewhere (only without wait). */
  flock(fd: number, exclusive: boolean, wait: boolean): boolean;
  /** flock(2) LOCK_UN. */
  funlock(fd: number): void;
}

/** What an {@link NativeBinding.FdWatcher} reads from its fd before calling back. */
export const DrainMode = {
  /** Nothing: the callback reads (a pidfd, a FIFO), and `reads` is 0. */
  NONE: 0,
  /** Everything, with read(2); `reads` counts the reads that returned data (an eventfd, a pipe). */
  READ: 1,
  /**
   * Everything, from a doorbell socket ({@link NativeBinding.doorbellBind}); `reads` counts only the
   * rings sent by this process's user or root.
   */
  RINGS: 2,
} as const;
export type DrainMode = (typeof DrainMode)[keyof typeof DrainMode];

/** An fd watcher on the event loop (see {@link NativeBinding.FdWatcher}). */
export interface NativeFdWatcher {
  start(): void;
  stop(): void;
  /** Keep the event loop alive while started (the default). */
  ref(): void;
  /** Do not keep the event loop alive for this watcher. */
  unref(): void;
  close(): void;
}

let binding: NativeBinding | undefined;

/**
 * The addon, loading it on first call. Throws ERR_IPC_NATIVE_UNAVAILABLE if it cannot load, or
 * ERR_IPC_SYSTEM (cause EMFILE) if the process is out of file descriptors: dlopen needs one. A
 * failure is not remembered, so the next call tries again (once fds are free, it loads).
 */
export function native(): NativeBinding {
  if (binding) return binding;
  try {
    const require = createRequire(import.meta.url);
    // Same relative place from src/native (tests, tsx) and dist/native (the package).
    binding = require('../../build/Release/ipckit.node') as NativeBinding;
    return binding;
  } catch (err) {
    if (/Too many open files/.test(String((err as Error).message))) {
      const emfile = Object.assign(new Error('dlopen: Too many open files', { cause: err }), {
        code: 'EMFILE',
      });
      throw new IpcError(
        ErrorCodes.SYSTEM,
        'cannot load the ipckit native addon: the process is out of file descriptors (EMFILE)',
        { cause: emfile },
      );
    }
    throw new IpcError(
      ErrorCodes.NATIVE_UNAVAILABLE,
      'the ipckit native addon is not available (did `npm install` build it?)',
      { cause: err },
    );
  }
}

/**
 * True when the addon loads, false when it is missing. Out of file descriptors it cannot tell, and
 * throws that ERR_IPC_SYSTEM: a fallback taken for a missing addon would fail as well, less clearly.
 */
export function nativeAvailable(): boolean {
  try {
    native();
    return true;
  } catch (err) {
    if ((err as IpcError).code === ErrorCodes.SYSTEM) throw err;
    return false;
  }
}
