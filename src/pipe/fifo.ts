/**
 * Named pipes in the POSIX sense: FIFOs, files any program can open and write to
 * (`echo hi > "$(ipckit fifo path logs)"`). A FIFO lives in the runtime directory under its name,
 * or at an explicit `{ path }`.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, constants, promises as fs, fstat, open } from 'node:fs';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { type ChannelOptions, checkChannelOptions, type Receiver, type Sender } from '../core/channel.js';
import { ErrorCodes, fromSystemError, IpcError } from '../core/errors.js';
import { numberError } from '../core/options.js';
import { checkRegistry, register, unregister } from '../core/registry.js';
import { refuseSymlink, resourcePath } from '../core/runtime-dir.js';
import { checkWaitOptions, type WaitOptions, withWait } from '../core/wait.js';
import { native, nativeAvailable } from '../native/binding.js';
import { writeStream } from './fd-stream.js';
import { FifoReceiver, FifoSender } from './fifo-channel.js';
import { checkFormat, type FifoFormat, formatCodec } from './fifo-format.js';

export type { FifoFormat } from './fifo-format.js';

/** A FIFO by name (in the runtime directory) or by explicit path. */
export type FifoTarget = string | { path: string };

/** Options for {@link Fifo.receiver} and {@link Fifo.sender}. */
export interface FifoOptions<T = unknown> extends ChannelOptions<T>, WaitOptions {
  /** `'frames'` (default; any codec), `'lines'` (strings, one per line) or `'bytes'` (raw chunks). */
  format?: FifoFormat;
}

/** Options of a 'lines' FIFO end: its messages are strings, one per line, and it takes no codec. */
export type FifoLinesOptions = Omit<FifoOptions<string>, 'codec' | 'format'> & { format: 'lines' };
/** Options of a 'bytes' FIFO end: its messages are the chunks as they come, and it takes no codec. */
export type FifoBytesOptions = Omit<FifoOptions<Uint8Array>, 'codec' | 'format'> & { format: 'bytes' };

/**
 * The FIFO ends, typed by format: 'lines' carries strings and 'bytes' Uint8Arrays whatever the
 * caller asks, 'frames' whatever its codec carries.
 */
interface FifoEnds {
  /**
   * Opens a FIFO for reading. The receiver keeps the FIFO open read-write, so writers may come and
   * go; iteration ends only when you close it.
   */
  receiver(target: FifoTarget, opts: FifoLinesOptions): Promise<Receiver<string>>;
  receiver(target: FifoTarget, opts: FifoBytesOptions): Promise<Receiver<Uint8Array>>;
  receiver<T = unknown>(target: FifoTarget, opts?: FifoOptions<T>): Promise<Receiver<T>>;
  /**
   * Opens a FIFO for writing. Like `echo > fifo`, it waits until the FIFO has a reader (bounded by
   * `timeout` / `signal`).
   */
  sender(target: FifoTarget, opts: FifoLinesOptions): Promise<Sender<string>>;
  sender(target: FifoTarget, opts: FifoBytesOptions): Promise<Sender<Uint8Array>>;
  sender<T = unknown>(target: FifoTarget, opts?: FifoOptions<T>): Promise<Sender<T>>;
}

function pathOf(target: FifoTarget): { path: string; name: string | undefined } {
  if (typeof target === 'string') return { path: resourcePath(target, '.fifo', 'fifo'), name: target };
  if (target && typeof target.path === 'string' && target.path.length > 0) {
    // A C string ends at NUL: mkfifo would make the FIFO at the path before it, elsewhere.
    if (target.path.includes('\0')) throw new TypeError('a FIFO path must not contain NUL characters');
    return { path: resolve(target.path), name: undefined };
  }
  throw new TypeError('a FIFO is named by a string or { path: string }');
}

function label(target: FifoTarget): string {
  return typeof target === 'string' ? `fifo '${target}'` : `fifo ${target.path}`;
}

/** Opens an existing FIFO, refusing symlinks and anything that is not a FIFO; returns the fd. */
async function openFifo(target: FifoTarget, flags: number): Promise<number> {
  const { path } = pathOf(target);
  refuseSymlink(path, label(target));
  let fd: number;
  try {
    fd = await openAsync(path, flags | constants.O_NONBLOCK | constants.O_NOFOLLOW);
  } catch (err) {
    // A socket file fails with ENXIO, as a FIFO without a reader does (which the sender waits
    // out), and a directory with EISDIR: neither is a FIFO, and waiting would never end.
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENXIO' || code === 'EISDIR') {
      const stat = await fs.lstat(path).catch(() => undefined);
      if (stat && !stat.isFIFO()) {
        throw new IpcError(ErrorCodes.INCOMPATIBLE, `${label(target)}: ${path} exists but is not a FIFO`, {
          cause: err,
        });
      }
    }
    throw fromSystemError(err, label(target));
  }
  const stat = await fstatAsync(fd);
  if (!stat.isFIFO()) {
    closeSync(fd);
    throw new IpcError(ErrorCodes.INCOMPATIBLE, `${label(target)}: ${path} exists but is not a FIFO`);
  }
  return fd;
}

/**
 * The channel options of an end, checked in full: before the FIFO is opened, as the end's
 * constructor would only check them after, with the fd open (a receiver's would then stay open, a
 * reader that never reads, and a sender would first wait for a reader, without end if none comes).
 */
function channelOptions<T>(
  target: FifoTarget,
  format: FifoFormat,
  opts: FifoOptions<T> | undefined,
): ChannelOptions<T> {
  const imposed = formatCodec(format);
  if (imposed && opts?.codec !== undefined) {
    throw new TypeError(`options.codec applies to the 'frames' format only, not '${format}'`);
  }
  const channelOpts = { ...opts, codec: (imposed as ChannelOptions<T>['codec']) ?? opts?.codec };
  checkChannelOptions(channelOpts, label(target));
  return channelOpts;
}

/**
 * Sets the mode of the FIFO just made at `path` exactly (mkfifo's is filtered by the umask), on
 * an fd of that FIFO: a chmod by path would follow a symlink put in its place meanwhile (in a
 * shared directory, by anyone who may write there) and change the mode of the file it points to.
 * Opening for reading without blocking never waits for a writer.
 */
async function setModeOfNewFifo(path: string, mode: number): Promise<void> {
  const handle = await fs.open(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW);
  try {
    const stat = await handle.stat();
    if (!stat.isFIFO() || stat.uid !== process.geteuid?.()) {
      throw new IpcError(ErrorCodes.UNSAFE_PATH, `${path} was replaced while it was being made; refusing it`);
    }
    await handle.chmod(mode);
  } finally {
    await handle.close();
  }
}

const openAsync = promisify(open);
const fstatAsync = promisify(fstat);

const RETRY_MIN_MS = 5;
const RETRY_MAX_MS = 100;

const fifo = {
  /**
   * Makes a FIFO, mode 0600 unless `mode` says otherwise (the umask does not apply).
   * @throws ERR_IPC_EXISTS if something already has the name; ERR_IPC_INVALID_NAME.
   */
  async create(target: FifoTarget, opts?: { mode?: number }): Promise<string> {
    const { path, name } = pathOf(target);
    const mode = opts?.mode ?? 0o600;
    if (!Number.isInteger(mode) || mode < 0 || mode > 0o777)
      throw numberError(mode, `options.mode must be an integer in 0..0o777, got ${String(mode)}`);
    try {
      if (nativeAvailable()) native().mkfifo(path, mode);
      else mkfifoCommand(path, mode);
      // Made but not usable (no fd to set its mode with: EMFILE): not left behind, so that a
      // retry can make it.
      await setModeOfNewFifo(path, mode).catch(async (err: unknown) => {
        await fs.unlink(path).catch(() => {});
        throw err;
      });
    } catch (err) {
      throw fromSystemError(err, label(target));
    }
    if (name !== undefined) {
      try {
        register('fifo', name, path);
      } catch (err) {
        // An unusable registry (a planted symlink: ERR_IPC_UNSAFE_PATH) fails the create, which
        // then leaves no unregistered FIFO behind.
        await fs.unlink(path).catch(() => {});
        throw err;
      }
    }
    return path;
  },

  /** See {@link FifoEnds.receiver}. */
  async receiver<T = unknown>(target: FifoTarget, opts?: FifoOptions<T>): Promise<Receiver<T>> {
    pathOf(target); // a bad target is a TypeError before label() names it in an option's error
    const format = checkFormat(opts?.format);
    const channelOpts = channelOptions(target, format, opts);
    checkWaitOptions(opts);
    const fd = await openFifo(target, constants.O_RDWR);
    return new FifoReceiver<T>(label(target), fd, format, channelOpts);
  },

  /** See {@link FifoEnds.sender}. */
  async sender<T = unknown>(target: FifoTarget, opts?: FifoOptions<T>): Promise<Sender<T>> {
    pathOf(target); // a bad target is a TypeError before label() names it in an option's error
    const format = checkFormat(opts?.format);
    const channelOpts = channelOptions(target, format, opts);
    checkWaitOptions(opts);
    let stopped = false;
    const open = (async () => {
      let delay = RETRY_MIN_MS;
      for (;;) {
        try {
          return await openFifo(target, constants.O_WRONLY);
        } catch (err) {
          // ENXIO: no reader yet. The kernel offers no event for "a reader opened", so back off.
          if (
            !(err instanceof IpcError) ||
            err.code === ErrorCodes.INCOMPATIBLE ||
            (err.cause as NodeJS.ErrnoException)?.code !== 'ENXIO' ||
            stopped
          ) {
            throw err;
          }
        }
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, RETRY_MAX_MS);
      }
    })();
    let fd: number;
    try {
      fd = await withWait(`${label(target)}: waiting for a reader`, opts, open);
    } catch (err) {
      stopped = true;
      open.then(
        (late) => writeStream(late).destroy(),
        () => {},
      );
      throw err;
    }
    return new FifoSender<T>(label(target), fd, format, channelOpts);
  },

  /** The FIFO's path, for other programs. */
  path(target: FifoTarget): string {
    return pathOf(target).path;
  },

  /** Removes a FIFO. @throws ERR_IPC_NOT_FOUND; ERR_IPC_INCOMPATIBLE if the path is not a FIFO. */
  async unlink(target: FifoTarget): Promise<void> {
    const { path, name } = pathOf(target);
    let stat: Awaited<ReturnType<typeof fs.lstat>>;
    try {
      stat = await fs.lstat(path);
    } catch (err) {
      throw fromSystemError(err, label(target));
    }
    if (!stat.isFIFO())
      throw new IpcError(ErrorCodes.INCOMPATIBLE, `${label(target)}: ${path} is not a FIFO`);
    // An unsafe registry refuses before anything is removed, not after the FIFO is gone.
    if (name !== undefined) checkRegistry();
    await fs.unlink(path);
    if (name !== undefined) unregister('fifo', name);
  },
};

/** FIFOs (POSIX named pipes). */
export const Fifo: Omit<typeof fifo, 'receiver' | 'sender'> & FifoEnds = fifo;

function mkfifoCommand(path: string, mode: number): void {
  const result = spawnSync('mkfifo', ['-m', mode.toString(8), '--', path], { encoding: 'utf8' });
  if (result.status !== 0) {
    const code = /exists/i.test(result.stderr) ? 'EEXIST' : 'EIO';
    throw Object.assign(new Error(`mkfifo: ${result.stderr.trim()}`), { code, syscall: 'mkfifo', path });
  }
}
