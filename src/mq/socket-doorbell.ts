/**
 * Doorbells over Unix sockets: each waiting process listens on its own socket in
 * `<runtime dir>/.mq-bells/`, and ringers keep one connection per bell and write one byte per ring.
 * A ring is then a single write on an open connection (tens of µs) and the listener's event loop
 * wakes on it like on any socket: no polling, no threadpool, no native addon needed.
 * Where the runtime directory is too deep for a socket path, the bell uses the Linux abstract
 * namespace instead, which any user can connect to: another user's connections are closed at once
 * (peer credentials, through the addon; without it a stranger's ring only causes an extra check).
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, readdirSync, rmSync } from 'node:fs';
import { createServer, connect as netConnect, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { fromSystemError } from '../core/errors.js';
import { socketFd } from '../core/exit-flush.js';
import { MAX_SOCKET_PATH_BYTES } from '../core/platform.js';
import { isAlive } from '../core/process-identity.js';
import { runtimeDir, runtimeDirTag, runtimeSubdir } from '../core/runtime-dir.js';
import { native, nativeAvailable } from '../native/binding.js';
import type { Doorbell, DoorbellTransport, Ringer } from './doorbell.js';

/** Rings buffered for a bell whose process does not read (stopped): one pending ring says it all. */
const MAX_PENDING_RING_BYTES = 16;

const BELLS_DIR = '.mq-bells';

/** The longest a closing ringer waits for its last rings to be written. */
const RING_FLUSH_MS = 1000;

function bellAddress(): { address: string; file?: string } {
  // The owner's pid comes first in the name: how gc finds the bells of dead processes.
  const tag = `${process.pid.toString(36)}-${randomBytes(6).toString('base64url')}`;
  const path = join(runtimeDir(), BELLS_DIR, `${tag}.sock`);
  if (Buffer.byteLength(path) <= MAX_SOCKET_PATH_BYTES || process.platform !== 'linux') {
    // Created or checked now, never followed if it is a symlink: the socket goes in this directory.
    runtimeSubdir(BELLS_DIR);
    return { address: path, file: path };
  }
  return { address: `\0ipckit-${runtimeDirTag()}-bell-${tag}` };
}

/** False if the kernel says another user is on the other end of `socket`. */
function fromThisUser(socket: Socket): boolean {
  const fd = socketFd(socket);
  if (fd === undefined || !nativeAvailable() || typeof process.geteuid !== 'function') return true;
  try {
    return native().peerCredentials(fd).uid === process.geteuid();
  } catch {
    return false;
  }
}

class SocketDoorbell implements Doorbell {
  readonly address: string;
  readonly #server: Server;
  readonly #file: string | undefined;
  readonly #connections = new Set<Socket>();
  #closed = false;

  constructor(server: Server, address: string, file: string | undefined) {
    this.#server = server;
    this.address = address;
    this.#file = file;
  }

  track(socket: Socket): void {
    // Connections never keep the process alive; the server's ref decides that.
    socket.unref();
    this.#connections.add(socket);
    socket.once('close', () => this.#connections.delete(socket));
  }

  ref(): void {
    if (!this.#closed) this.#server.ref();
  }

  unref(): void {
    this.#server.unref();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#server.close();
    for (const socket of this.#connections) socket.destroy();
    if (this.#file) rmSync(this.#file, { force: true });
  }
}

class SocketRinger implements Ringer {
  readonly #sockets = new Map<string, Socket>();
  readonly #onGone: (address: string) => void;

  constructor(onGone: (address: string) => void) {
    this.#onGone = onGone;
  }

  ring(address: string, kinds: number): void {
    let socket = this.#sockets.get(address);
    if (!socket) {
      const fresh = netConnect(address);
      socket = fresh;
      fresh.unref();
      fresh.setNoDelay?.(true);
      fresh.on('error', (err: NodeJS.ErrnoException) => {
        this.#forget(address, fresh);
        if (err.code === 'ECONNREFUSED' || err.code === 'ENOENT') this.#onGone(address);
      });
      fresh.on('close', () => this.#forget(address, fresh));
      // The listener never writes; reading keeps a half-closed peer from lingering unnoticed.
      fresh.on('data', () => {});
      this.#sockets.set(address, fresh);
    }
    if (socket.writableLength < MAX_PENDING_RING_BYTES) socket.write(Buffer.of(kinds));
  }

  #forget(address: string, socket: Socket): void {
    socket.destroy();
    if (this.#sockets.get(address) === socket) this.#sockets.delete(address);
  }

  async close(): Promise<void> {
    const sockets = [...this.#sockets.values()];
    this.#sockets.clear();
    await Promise.all(sockets.map(flushAndClose));
  }
}

/**
 * Ends a ringer's connection once its pending rings are written (a connection may still be
 * connecting: the rings wait in it). Held referenced meanwhile, so a process whose last act was
 * to send and close does not exit with the ring unsent; a listener that never answers costs at
 * most RING_FLUSH_MS.
 */
function flushAndClose(socket: Socket): Promise<void> {
  if (socket.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve();
    };
    const timer = setTimeout(done, RING_FLUSH_MS);
    socket.ref();
    socket.once('close', done);
    socket.end(done);
  });
}

/** Doorbells on Unix sockets in the runtime directory. */
export const socketDoorbells: DoorbellTransport = {
  async listen(onRing) {
    const { address, file } = bellAddress();
    if (file) rmSync(file, { force: true });
    const server = createServer();
    let bell: SocketDoorbell | undefined;
    server.on('connection', (socket) => {
      // A socket file sits in the 0700 runtime directory; an abstract name is open to every user
      // (and listed in /proc/net/unix): another user's connection is closed unread, so a stranger
      // can neither ring the bell nor hold its fds. Without the addon there is no one to ask.
      if (!file && !fromThisUser(socket)) {
        socket.destroy();
        return;
      }
      bell?.track(socket);
      socket.on('data', (chunk: Buffer) => {
        let kinds = 0;
        for (const byte of chunk) kinds |= byte;
        onRing(kinds);
      });
      socket.on('error', () => socket.destroy());
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(address, () => {
        server.off('error', reject);
        // bind() makes the file 0777 less the umask; 0600 like every file ipckit creates (as the
        // socket server does). Done in the listen callback, before any other I/O callback runs;
        // until then the 0700 directory keeps other users out.
        if (file) {
          try {
            chmodSync(file, 0o600);
          } catch (err) {
            server.close();
            reject(fromSystemError(err, `message queue doorbell ${file}`));
            return;
          }
        }
        resolve();
      });
    });
    server.unref();
    bell = new SocketDoorbell(server, address, file);
    return bell;
  },
  ringer(onGone) {
    return new SocketRinger(onGone);
  },
};

/** A bell socket file left in the runtime directory by a process that is gone. */
export interface DeadBell {
  path: string;
  /** The pid in its name: the process that listened on it. */
  pid: number;
}

/**
 * The bell files whose process is gone. A consumer killed with SIGKILL cannot remove its own; the
 * next process to wait on the same queue removes those it finds, and `ipckit gc` the rest. A live
 * process with the pid in the name keeps the file, even one that reused the pid: judging by the pid
 * alone errs toward leaving a stale file, never toward removing a live bell.
 * @throws ERR_IPC_UNSAFE_PATH if `.mq-bells` is a symlink or not a directory; ERR_IPC_PERMISSION if
 *   another user owns it.
 */
export function deadBells(): DeadBell[] {
  // A symlink planted for the directory is refused (ERR_IPC_UNSAFE_PATH): what it lists is outside.
  const dir = runtimeSubdir(BELLS_DIR, { create: false });
  if (!dir) return [];
  let files: string[];
  try {
    files = readdirSync(dir);
  } catch {
    return [];
  }
  return files.flatMap((file) => {
    const pid = Number.parseInt(file.slice(0, file.indexOf('-')), 36);
    if (!file.endsWith('.sock') || !Number.isSafeInteger(pid) || pid <= 0) return [];
    return isAlive({ pid, startTime: 0 }) ? [] : [{ path: join(dir, file), pid }];
  });
}

/**
 * Removes the bell files of processes that are gone (see {@link deadBells}, which also says what
 * it throws); returns how many.
 */
export function removeDeadBells(): number {
  const dead = deadBells();
  for (const bell of dead) rmSync(bell.path, { force: true });
  return dead.length;
}
