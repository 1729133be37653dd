/**
 * Binding and dialing per address kind: TCP, Unix socket files (stale-file replacement, mode,
 * symlink refusal, registry) and TLS on top of either. Everything that touches node:net/node:tls
 * for sockets is here; the protocol above sees only connected duplex streams.
 */
import {
  chmodSync,
  closeSync,
  constants,
  fstatSync,
  lstatSync,
  openSync,
  statSync,
  unlinkSync,
} from 'node:fs';
import { createServer, connect as netConnect, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import type {
  SecureContext,
  SecureContextOptions,
  ConnectionOptions as TlsConnectionOptions,
} from 'node:tls';
import { ErrorCodes, fromSystemError, IpcError, isIpcError } from '../core/errors.js';
import { lazyModule } from '../core/lazy-module.js';
import { register, unregister } from '../core/registry.js';
import { refuseSymlink } from '../core/runtime-dir.js';
import { nativeAvailable } from '../native/binding.js';
import { FileLock } from '../sync/file-lock.js';
import { formatAddress, type SocketAddress, unixSocketRegistryName } from './address.js';

/** node:tls, loaded by the first TLS listener or connection rather than by every process. */
export const tlsModule = lazyModule<typeof import('node:tls')>('node:tls');

/**
 * The TLS context of a listener, or of a client for all its dials, built once from its options:
 * a key, certificate or CA that OpenSSL cannot read fails the listen() or connect() it was given
 * to, as ERR_IPC_AUTH with OpenSSL's error as `cause`. Built at each dial instead, it threw from
 * inside the dial, past the socket already connecting, whose later error nobody listened for.
 * Node's own checks of option types stay TypeError and RangeError.
 */
export function secureContext(
  options: SecureContextOptions & { secureContext?: SecureContext },
  label: string,
): SecureContext {
  if (options.secureContext) return options.secureContext;
  try {
    return tlsModule().createSecureContext(options);
  } catch (err) {
    if (err instanceof TypeError || err instanceof RangeError) throw err;
    throw new IpcError(
      ErrorCodes.AUTH,
      `${label}: options.tls: the key, certificate or CA cannot be used: ${(err as Error).message}`,
      { cause: err },
    );
  }
}

/** Maps a listen/connect failure to a stable code naming the address. */
export function socketError(err: unknown, label: string): IpcError {
  const code = (err as { code?: string })?.code;
  if (code === 'EADDRINUSE') {
    return new IpcError(ErrorCodes.EXISTS, `${label}: the address is already in use`, { cause: err });
  }
  if (code === 'EAGAIN' && (err as { syscall?: string }).syscall === 'connect') {
    // A Unix socket whose server's accept queue is full: alive, but taking no one now.
    return new IpcError(ErrorCodes.QUEUE_FULL, `${label}: the server's accept queue is full`, { cause: err });
  }
  if (code === 'EADDRNOTAVAIL') {
    return new IpcError(ErrorCodes.NOT_FOUND, `${label}: no such local address`, { cause: err });
  }
  if (
    typeof code === 'string' &&
    (code.startsWith('ERR_TLS') || code.includes('CERT') || code.startsWith('ERR_SSL'))
  ) {
    return new IpcError(ErrorCodes.AUTH, `${label}: TLS failed: ${(err as Error).message}`, { cause: err });
  }
  return fromSystemError(err, label);
}

/** The registry entry of a socket file: named pipes by name, unix:// sockets by file name + path hash. */
function registryEntry(address: SocketAddress): { kind: 'named-pipe' | 'socket'; name: string } | undefined {
  if (address.kind === 'pipe') return { kind: 'named-pipe', name: address.name };
  if (address.kind !== 'unix') return undefined;
  const name = unixSocketRegistryName(address.path);
  return name === undefined ? undefined : { kind: 'socket', name };
}

/**
 * Is a server behind the socket file `path`? Only a refusal (or the file gone) says no: a server
 * whose accept queue is full (busy, or stopped) fails the connect with EAGAIN and is alive.
 */
function probe(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = netConnect(path);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', (err: NodeJS.ErrnoException) =>
      resolve(err.code !== 'ECONNREFUSED' && err.code !== 'ENOENT'),
    );
  });
}

/** How long a bind waits for another process binding in the same directory (see lockDirectory). */
const BIND_LOCK_WAIT_MS = 5000;

/**
 * Locks the directory of a socket file (a FileLock on the directory itself, so no lock file is
 * left) for the look-probe-replace-listen sequence: two processes replacing one stale file at once
 * would otherwise both listen, one of them on a file the other had already unlinked. Only in a
 * directory of our own that no one else may open: flock needs just an open fd, so anyone who can
 * read a directory (/tmp, a 0755 one) could hold the lock and stall our binds. The runtime
 * directory, 0700, is one. Elsewhere, or where the filesystem cannot lock a directory (NFS
 * emulates flock with a POSIX lock, which needs a writable fd), binds go unlocked. Returns the unlock.
 */
async function lockDirectory(path: string, label: string): Promise<() => void> {
  const dir = dirname(path);
  let stat: ReturnType<typeof statSync>;
  try {
    stat = statSync(dir);
  } catch (err) {
    throw socketError(err, label);
  }
  if (stat.uid !== process.geteuid?.() || (stat.mode & 0o044) !== 0 || !nativeAvailable()) return noop;
  try {
    const lock = await FileLock.lock(dir, { timeout: BIND_LOCK_WAIT_MS });
    return () => lock.release();
  } catch (err) {
    if (isIpcError(err, ErrorCodes.TIMEOUT)) {
      throw new IpcError(ErrorCodes.TIMEOUT, `${label}: another process kept binding in ${dir}`, {
        cause: err,
      });
    }
    return noop;
  }
}

function noop(): void {}

/** Removes a socket file (and only a socket file: never a regular file someone named by mistake). */
export function removeSocketFile(path: string): void {
  if (process.platform === 'win32') return;
  try {
    if (lstatSync(path).isSocket()) unlinkSync(path);
  } catch {}
}

/** A bound listener. */
export interface Bound {
  server: Server;
  /** The address with the port filled in. */
  address: SocketAddress;
  /** Undoes what binding did outside the server: the socket file and the registry entry. */
  release(): void;
}

/**
 * Binds a net.Server to `address`. A socket file left by a dead server is replaced; a live one is
 * ERR_IPC_EXISTS, and so is a path holding something that is not a socket.
 */
export async function bind(address: SocketAddress, mode: number, label: string): Promise<Bound> {
  const server = createServer({ noDelay: true });
  if (address.kind === 'tcp') {
    await listenOn(server, { host: address.host, port: address.port }, label);
    const info = server.address();
    const port = typeof info === 'object' && info ? info.port : address.port;
    return { server, address: { ...address, port }, release: () => {} };
  }
  const path = address.path;
  if (process.platform === 'win32') {
    await listenOn(server, { path }, label);
  } else {
    const unlock = await lockDirectory(path, label);
    try {
      refuseSymlink(path, label);
      let stat: ReturnType<typeof lstatSync> | undefined;
      try {
        stat = lstatSync(path);
      } catch {}
      if (stat) {
        if (!stat.isSocket())
          throw new IpcError(ErrorCodes.EXISTS, `${label}: ${path} exists and is not a socket`);
        if (await probe(path))
          throw new IpcError(ErrorCodes.EXISTS, `${label}: a server is already listening`);
        removeSocketFile(path);
      }
      await listenOn(server, { path }, label);
    } finally {
      unlock();
    }
    try {
      chmodBoundSocket(path, address.kind === 'pipe' ? 0o600 : mode, label);
    } catch (err) {
      server.close();
      throw isIpcError(err) ? err : socketError(err, label);
    }
  }
  const entry = registryEntry(address);
  try {
    if (entry) register(entry.kind, entry.name, path);
  } catch (err) {
    // An unusable registry (a planted symlink: ERR_IPC_UNSAFE_PATH) fails the listen; the server
    // must not stay bound with nobody to close it.
    server.close();
    removeSocketFile(path);
    throw err;
  }
  return {
    server,
    address,
    release: () => {
      removeSocketFile(path);
      if (entry) unregister(entry.kind, entry.name);
    },
  };
}

/** Linux's O_PATH (not in fs.constants): an fd naming a file without opening it, a socket too. */
const O_PATH = 0o10000000;

/**
 * Sets the mode of the socket file this process just bound. Not by path: in a directory others
 * may write to, the file can be swapped for a symlink between bind and chmod, and chmod by path
 * follows it (a server started by root with `mode: 0o666` would open up whatever it points to).
 * On Linux the file is named by an O_PATH, O_NOFOLLOW fd, checked to be a socket of this user,
 * and changed through /proc/self/fd; ERR_IPC_UNSAFE_PATH if it is not that socket any more.
 */
export function chmodBoundSocket(path: string, mode: number, label: string): void {
  if (process.platform !== 'linux') {
    chmodSync(path, mode);
    return;
  }
  const fd = openSync(path, O_PATH | constants.O_NOFOLLOW);
  try {
    const stat = fstatSync(fd);
    const uid = process.getuid?.();
    if (!stat.isSocket() || (uid !== undefined && stat.uid !== uid)) {
      throw new IpcError(
        ErrorCodes.UNSAFE_PATH,
        `${label}: ${path} is no longer the socket this server bound (${stat.isSymbolicLink() ? 'a symlink' : 'replaced'}); refusing to change its mode`,
      );
    }
    chmodSync(`/proc/self/fd/${fd}`, mode);
  } finally {
    closeSync(fd);
  }
}

function listenOn(server: Server, where: { host?: string; port?: number; path?: string }, label: string) {
  return new Promise<void>((resolve, reject) => {
    const onError = (err: Error) => reject(socketError(err, label));
    server.once('error', onError);
    server.listen({ ...where, backlog: 511 }, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

/** A connection being dialed: the socket (to destroy on timeout) and when it is usable. */
export interface Dialing {
  socket: Socket;
  /** The raw socket under TLS (for peer credentials), the socket itself otherwise. */
  raw: Socket;
  connected: Promise<void>;
}

/** Dials `address`, with TLS when `tls` is set. `connected` resolves after the TLS handshake. */
export function dial(
  address: SocketAddress,
  tls: boolean | TlsConnectionOptions | undefined,
  label: string,
): Dialing {
  const where = address.kind === 'tcp' ? { host: address.host, port: address.port } : { path: address.path };
  let socket: Socket;
  let raw: Socket;
  let event: string;
  if (tls) {
    const options = tls === true ? {} : tls;
    raw = address.kind === 'tcp' ? netConnect({ ...where, noDelay: true }) : netConnect(where);
    // SNI takes a host name, never an IP address.
    const servername =
      options.servername ??
      (address.kind === 'tcp' && !/^[\d.:]+$/.test(address.host) ? address.host : undefined);
    const tlsOptions: TlsConnectionOptions = { ...options, socket: raw };
    if (address.kind === 'tcp') tlsOptions.host = address.host;
    if (servername !== undefined) tlsOptions.servername = servername;
    try {
      socket = tlsModule().connect(tlsOptions);
    } catch (err) {
      raw.destroy();
      throw err;
    }
    event = 'secureConnect';
  } else {
    socket = address.kind === 'tcp' ? netConnect({ ...where, noDelay: true }) : netConnect(where);
    raw = socket;
    event = 'connect';
  }
  const connected = new Promise<void>((resolve, reject) => {
    const onError = (err: Error) =>
      reject(socketError(err, `${label}: connect to ${formatAddress(address)}`));
    // Kept after connecting: a late error then settles nothing, and is never an unhandled 'error'.
    socket.on('error', onError);
    if (raw !== socket) raw.on('error', onError);
    socket.once(event, () => resolve());
  });
  connected.catch(() => socket.destroy());
  return { socket, raw, connected };
}

/** How long a connection ended with a refusal or an ABORT waits for its peer to close its end. */
export const LINGER_MS = 2000;

/**
 * Ends `socket` (after writing `data`, if given) rather than destroying it, so what was written
 * reaches the peer (a destroyed TLS socket drops its pending records; a TCP socket closed with
 * unread input sends a reset); a peer that never reads or closes is cut off after `ms`.
 */
export function endWithin(socket: Socket, ms: number, data?: Uint8Array): void {
  const linger = setTimeout(() => socket.destroy(), ms).unref();
  socket.once('close', () => clearTimeout(linger));
  if (data) socket.end(data);
  else socket.end();
}
