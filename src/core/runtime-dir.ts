/**
 * Names and the runtime directory: where every named resource lives, and the checks that keep
 * paths inside it. The directory is `$IPCKIT_DIR`, else `$XDG_RUNTIME_DIR/ipckit`, else
 * `<tmpdir>/ipckit-<uid>`; created 0700 and refused if it is a symlink or belongs to another user.
 */
import { createHash } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  constants,
  fchmodSync,
  fstatSync,
  lstatSync,
  mkdirSync,
  openSync,
  readSync,
  realpathSync,
  renameSync,
  rmSync,
  type Stats,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { ErrorCodes, fromSystemError, IpcError } from './errors.js';

/** What a resource name may be: a letter or digit, then up to 99 of `A-Za-z0-9._-`. */
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

/**
 * Throws a TypeError unless `name` is a string (a wrong argument type, as Node's own APIs treat
 * it), and ERR_IPC_INVALID_NAME unless it matches {@link NAME_PATTERN}.
 */
export function checkName(name: unknown, what: string): asserts name is string {
  if (typeof name !== 'string') {
    throw new TypeError(`${what}: the name must be a string, got ${name === null ? 'null' : typeof name}`);
  }
  if (!NAME_PATTERN.test(name)) {
    const shown = JSON.stringify(name.length > 40 ? `${name.slice(0, 40)}…` : name);
    throw new IpcError(
      ErrorCodes.INVALID_NAME,
      `${what}: invalid name ${shown}: use 1-100 characters of A-Z a-z 0-9 . _ - starting with a letter or digit`,
    );
  }
}

function uid(): number {
  return typeof process.getuid === 'function' ? process.getuid() : -1;
}

/** The runtime directory path for this process's environment (not created). */
export function runtimeDirPath(): string {
  if (process.env.IPCKIT_DIR) return resolve(process.env.IPCKIT_DIR);
  const xdg = process.env.XDG_RUNTIME_DIR;
  if (xdg && isOwnDirectory(xdg)) return join(xdg, 'ipckit');
  return join(tmpdir(), `ipckit-${uid()}`);
}

const ownDirectories = new Map<string, boolean>();

/**
 * True if `dir` is a directory of this user's. XDG_RUNTIME_DIR must be, by its specification;
 * another user's (root run with a user's environment, as `sudo -E` does) is passed over, as
 * GLib does, rather than making a root-owned directory in it that the user could then not use.
 * A missing one is looked for again next time, not remembered as missing: made later (by the
 * login manager, say), it is where the processes started after it look, and so must this one.
 */
function isOwnDirectory(dir: string): boolean {
  const known = ownDirectories.get(dir);
  if (known !== undefined) return known;
  const stat = statSync(dir, { throwIfNoEntry: false });
  if (stat === undefined) return false;
  const own = stat.isDirectory() && (uid() < 0 || stat.uid === uid());
  ownDirectories.set(dir, own);
  return own;
}

/**
 * Returns the runtime directory, creating it 0700 if needed. Throws ERR_IPC_UNSAFE_PATH if it is a
 * symlink or not a directory, or lies below a directory others may change (see checkParents),
 * ERR_IPC_PERMISSION if another user owns it. Checked on every call
 * (one lstat), not once per process: a directory swapped for a symlink, or loosened, after an
 * earlier call is refused, or tightened again, before anything is made in it.
 */
export function runtimeDir(): string {
  const dir = runtimeDirPath();
  let stat: Stats | undefined;
  try {
    stat = lstatSync(dir, { throwIfNoEntry: false });
    if (!stat) {
      checkParents(dir);
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      stat = lstatSync(dir);
    }
  } catch (err) {
    throw fromSystemError(err, `runtime directory ${dir}`);
  }
  if (stat.isSymbolicLink() || !stat.isDirectory()) {
    throw new IpcError(
      ErrorCodes.UNSAFE_PATH,
      `runtime directory ${dir} is a symlink or not a directory; refusing it`,
    );
  }
  if (uid() >= 0 && stat.uid !== uid()) {
    throw new IpcError(
      ErrorCodes.PERMISSION,
      `runtime directory ${dir} belongs to uid ${stat.uid}, not to this user (${uid()}); refusing it`,
    );
  }
  checkParents(dir);
  // mkdir's mode is filtered by the umask, and an existing directory keeps its mode: take away what
  // the group and others may do. The owner's bits stay as they are: a directory its owner made
  // read-only (0500) is not made writable again.
  if ((stat.mode & 0o077) !== 0) chmodSync(dir, stat.mode & 0o700);
  return dir;
}

/** Runtime directories whose parents passed {@link checkParents}: they cannot become unsafe. */
const safeParents = new Set<string>();

/**
 * Throws ERR_IPC_UNSAFE_PATH unless every directory above `dir` (as written, and where symlinks
 * lead) belongs to root or to this user and is writable by nobody else, or is sticky as /tmp is.
 * Anyone who may write to one could rename the runtime directory away and put a symlink there
 * between the check of the runtime directory and the mkfifo, bind or open that follows it, and
 * ipckit's files would be made wherever the link points. Checked once per path: a directory only
 * root and this user may change stays safe. Missing parents are checked from the first that exists
 * (mkdir then makes them, 0700).
 */
function checkParents(dir: string): void {
  if (uid() < 0 || safeParents.has(dir)) return;
  let parent = dirname(dir);
  try {
    while (parent !== dirname(parent) && lstatSync(parent, { throwIfNoEntry: false }) === undefined) {
      parent = dirname(parent);
    }
    const real = realpathSync(parent);
    for (const start of real === parent ? [parent] : [parent, real]) {
      for (let at = start; ; at = dirname(at)) {
        // A symlink on the way is the link's owner's to re-point (its mode means nothing); where
        // it leads is checked by the walk along the real path.
        const stat = lstatSync(at);
        const foreign = stat.uid !== 0 && stat.uid !== uid();
        const loose = !stat.isSymbolicLink() && (stat.mode & 0o022) !== 0 && (stat.mode & 0o1000) === 0;
        if (foreign || loose) {
          throw new IpcError(
            ErrorCodes.UNSAFE_PATH,
            `runtime directory ${dir}: ${at} ${foreign ? `belongs to uid ${stat.uid}` : 'may be written by other users and is not sticky'}, so they could swap the runtime directory for a symlink; refusing it`,
          );
        }
        if (at === dirname(at)) break;
      }
    }
  } catch (err) {
    throw fromSystemError(err, `runtime directory ${dir}`);
  }
  safeParents.add(dir);
}

/** A file path for a named resource inside the runtime directory (created if needed). */
export function resourcePath(name: string, suffix: string, what: string): string {
  checkName(name, what);
  return join(runtimeDir(), name + suffix);
}

/** What a private subdirectory's name may be: a dot, then a resource name (so never a resource's). */
function isSubdirName(name: unknown): name is string {
  return typeof name === 'string' && name.startsWith('.') && NAME_PATTERN.test(name.slice(1));
}

/**
 * Returns `<runtime dir>/<name>`, a private subdirectory of the runtime directory (ipckit's own are
 * `.registry`, `.mq-bells` and the CLI's `.kept`), creating it 0700 if it is missing, or with
 * `{ create: false }` returning undefined instead. It is checked on every call, not once per
 * process: a directory swapped for a symlink after an earlier call must not make anyone create,
 * read or delete files outside the runtime directory. The check opens the path with
 * O_NOFOLLOW | O_DIRECTORY and looks at what it opened (fstat), so the directory checked and the
 * one tightened to 0700 are the same one.
 * @param name a dot, then 1-100 of `A-Za-z0-9._-` starting with a letter or digit (`.cache`).
 * @throws ERR_IPC_UNSAFE_PATH if it is a symlink or not a directory (as for the runtime directory
 *   itself); ERR_IPC_PERMISSION if another user owns it; ERR_IPC_INVALID_NAME for a bad `name`.
 */
export function runtimeSubdir(name: string, opts?: { create?: true }): string;
export function runtimeSubdir(name: string, opts: { create: boolean }): string | undefined;
export function runtimeSubdir(name: string, opts?: { create?: boolean }): string | undefined {
  if (!isSubdirName(name)) {
    throw new IpcError(
      ErrorCodes.INVALID_NAME,
      `runtime subdirectory: invalid name ${JSON.stringify(String(name).slice(0, 40))}: use a dot, then 1-100 characters of A-Z a-z 0-9 . _ - starting with a letter or digit`,
    );
  }
  return checkedSubdir(name, opts?.create ?? true);
}

function checkedSubdir(name: string, create: boolean): string | undefined {
  const dir = join(runtimeDir(), name);
  const what = `runtime directory ${dir}`;
  if (create) {
    try {
      // Not recursive: the parent is the verified runtime directory. mkdir never follows a link
      // (a planted one is EEXIST), and its mode is filtered by the umask, which can only tighten 0700.
      mkdirSync(dir, { mode: 0o700 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw fromSystemError(err, what);
    }
  }
  if (process.platform === 'win32') {
    // No O_NOFOLLOW | O_DIRECTORY there: lstat, as for the runtime directory.
    const stat = lstatSync(dir, { throwIfNoEntry: false });
    if (stat && (stat.isSymbolicLink() || !stat.isDirectory())) {
      throw new IpcError(ErrorCodes.UNSAFE_PATH, `${what} is a symlink or not a directory; refusing it`);
    }
    return stat ? dir : undefined;
  }
  let fd: number;
  try {
    fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && !create) return undefined;
    if (code === 'ELOOP' || code === 'ENOTDIR') {
      throw new IpcError(ErrorCodes.UNSAFE_PATH, `${what} is a symlink or not a directory; refusing it`, {
        cause: err,
      });
    }
    throw fromSystemError(err, what);
  }
  try {
    const stat = fstatSync(fd);
    if (uid() >= 0 && stat.uid !== uid()) {
      throw new IpcError(
        ErrorCodes.PERMISSION,
        `${what} belongs to uid ${stat.uid}, not to this user (${uid()}); refusing it`,
      );
    }
    if ((stat.mode & 0o077) !== 0) fchmodSync(fd, stat.mode & 0o700); // as for the runtime directory
  } finally {
    closeSync(fd);
  }
  return dir;
}

/**
 * Writes `data` to `path` (in a checked private directory) atomically, as a 0600 file: written to
 * `<path>.<pid>.tmp`, then renamed over `path`. The temporary name is predictable, so it is created
 * with O_EXCL (which never follows a link) after removing whatever has that name (unlink removes a
 * link, not its target); rename replaces a link at `path` instead of writing through it.
 */
export function writePrivateFileAtomic(path: string, data: string): void {
  const temporary = `${path}.${process.pid}.tmp`;
  rmSync(temporary, { force: true });
  writeFileSync(temporary, data, { mode: 0o600, flag: 'wx' });
  renameSync(temporary, path);
}

/**
 * The text of `path`, a small file in a checked private directory (a manifest, a mark), or
 * undefined if it is missing, unreadable, not a regular file, or larger than `maxBytes`. Such a
 * directory is the user's, but whatever is put there must not stop a reader: a FIFO would block
 * the open forever (O_NONBLOCK), a symlink to /dev/zero would be read until memory runs out
 * (O_NOFOLLOW, and a regular file only), and so would a huge file (`maxBytes`).
 */
export function readPrivateFile(path: string, maxBytes: number): string | undefined {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return undefined;
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile() || stat.size > maxBytes) return undefined;
    // One byte more than allowed: a file that grew since the fstat is refused too.
    const buffer = Buffer.alloc(maxBytes + 1);
    let length = 0;
    for (let got = -1; got !== 0 && length < buffer.length; length += got) {
      got = readSync(fd, buffer, length, buffer.length - length, null);
    }
    return length > maxBytes ? undefined : buffer.toString('utf8', 0, length);
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}

/** {@link readPrivateFile} parsed as JSON; undefined if it cannot be read or is not valid JSON. */
export function readPrivateJson(path: string, maxBytes: number): unknown {
  const text = readPrivateFile(path, maxBytes);
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * A short, stable tag of the runtime directory, for kernel namespaces that are not paths
 * (POSIX shared memory names), so processes with different IPCKIT_DIR never meet.
 */
export function runtimeDirTag(): string {
  return createHash('sha256').update(runtimeDir()).digest('hex').slice(0, 12);
}

/** Throws ERR_IPC_UNSAFE_PATH if `path` exists and is a symlink (a planted link must not be followed). */
export function refuseSymlink(path: string, what: string): void {
  let stat: ReturnType<typeof lstatSync> | undefined;
  try {
    stat = lstatSync(path);
  } catch {
    return;
  }
  if (stat.isSymbolicLink()) {
    throw new IpcError(ErrorCodes.UNSAFE_PATH, `${what}: ${path} is a symlink; refusing to follow it`);
  }
}
