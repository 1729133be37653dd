/**
 * Named pipes in the connection-oriented sense: a server listens under a name, clients connect to
 * it, each connection is a duplex Channel. On POSIX the name is a Unix socket in the runtime
 * directory (0700, the socket 0600: same user only); on Windows it is `\\.\pipe\ipckit-…-name`.
 */
import { chmodSync, lstatSync, unlinkSync } from 'node:fs';
import { createServer, connect as netConnect, type Server, type Socket } from 'node:net';
import type { Channel, ChannelOptions } from '../core/channel.js';
import { closedError, ErrorCodes, fromSystemError, IpcError } from '../core/errors.js';
import { namedPipeAddress } from '../core/platform.js';
import { Queue } from '../core/queue.js';
import { register, unregister } from '../core/registry.js';
import { refuseSymlink } from '../core/runtime-dir.js';
import { StreamChannel } from '../core/stream-channel.js';
import { armWait, checkWaitOptions, type WaitOptions, withWait } from '../core/wait.js';

/** How long a new connection has to complete its hello. */
const HANDSHAKE_TIMEOUT_MS = 10_000;

/** Options for {@link NamedPipe.listen}. */
export interface NamedPipeServerOptions<T = unknown> extends ChannelOptions<T> {
  /** Connections accepted but not yet taken from the iterator; more are refused. Default 128. */
  maxPending?: number;
}

/** A listening named pipe. Iterate it to accept connections. */
export class NamedPipeServer<T> implements AsyncIterable<Channel<T>>, AsyncDisposable {
  /** The name it listens under. */
  readonly name: string;
  /** The socket path (or Windows pipe address). */
  readonly path: string;
  readonly #server: Server;
  readonly #opts: NamedPipeServerOptions<T> | undefined;
  readonly #pending = new Queue<StreamChannel<T>>();
  readonly #waiters = new Queue<{ resolve(c: Channel<T>): void; reject(e: unknown): void; disarm(): void }>();
  readonly #connections = new Set<StreamChannel<T>>();
  #closing: Promise<void> | undefined;

  constructor(name: string, path: string, server: Server, opts: NamedPipeServerOptions<T> | undefined) {
    this.name = name;
    this.path = path;
    this.#server = server;
    this.#opts = opts;
    server.on('connection', (socket) => this.#onConnection(socket));
  }

  /** Waits for the next connection whose hello checked out. */
  accept(opts?: WaitOptions): Promise<Channel<T>> {
    try {
      checkWaitOptions(opts);
    } catch (err) {
      return Promise.reject(err);
    }
    const ready = this.#pending.shift();
    if (ready) return Promise.resolve(ready);
    if (this.#closing) return Promise.reject(closedError(`named pipe '${this.name}'`));
    return new Promise((resolve, reject) => {
      const waiter = { resolve, reject, disarm: () => {} };
      this.#waiters.push(waiter);
      waiter.disarm = armWait(`named pipe '${this.name}': accept`, opts, (err) => {
        this.#waiters.remove(waiter);
        reject(err);
      });
    });
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Channel<T>> {
    for (;;) {
      try {
        yield await this.accept();
      } catch (err) {
        if (err instanceof IpcError && err.code === ErrorCodes.CLOSED) return;
        throw err;
      }
    }
  }

  /** Stops listening, removes the socket file, and closes every connection it accepted. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
      removeSocketFile(this.path);
      unregister('named-pipe', this.name);
      for (const waiter of this.#waiters.drain()) {
        waiter.disarm();
        waiter.reject(closedError(`named pipe '${this.name}'`));
      }
      await Promise.all([...this.#connections].map((c) => c.close()));
      await closed;
    })();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #onConnection(socket: Socket): void {
    if (this.#closing || this.#pending.length >= (this.#opts?.maxPending ?? 128)) {
      socket.destroy();
      return;
    }
    const channel = new StreamChannel<T>(`named pipe '${this.name}' connection`, socket, socket, this.#opts);
    this.#connections.add(channel);
    socket.once('close', () => this.#connections.delete(channel));
    // A client that never says hello (or trickles it) is cut off instead of holding a slot forever.
    const deadline = setTimeout(() => channel.destroy(), HANDSHAKE_TIMEOUT_MS).unref();
    channel.ready.then(
      () => {
        clearTimeout(deadline);
        const waiter = this.#waiters.shift();
        if (waiter) {
          waiter.disarm();
          waiter.resolve(channel);
        } else this.#pending.push(channel);
      },
      () => {
        clearTimeout(deadline);
        channel.destroy();
      },
    );
  }
}

function removeSocketFile(path: string): void {
  if (process.platform === 'win32') return;
  try {
    if (lstatSync(path).isSocket()) unlinkSync(path);
  } catch {}
}

/** Is something accepting on `path`? A socket file nobody listens on is left over from a dead server. */
function probe(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = netConnect(path);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Named pipes: duplex, connection-oriented, addressed by name. */
export const NamedPipe = {
  /**
   * Listens under `name`. A stale socket file left by a dead server is replaced.
   * @throws ERR_IPC_EXISTS if a live server has the name; ERR_IPC_PATH_TOO_LONG; ERR_IPC_INVALID_NAME.
   */
  async listen<T = unknown>(name: string, opts?: NamedPipeServerOptions<T>): Promise<NamedPipeServer<T>> {
    const path = namedPipeAddress(name);
    const label = `named pipe '${name}'`;
    if (process.platform !== 'win32') {
      refuseSymlink(path, label);
      let exists = false;
      try {
        exists = lstatSync(path) !== undefined;
      } catch {}
      if (exists) {
        if (await probe(path))
          throw new IpcError(ErrorCodes.EXISTS, `${label}: a server is already listening`);
        removeSocketFile(path);
      }
    }
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) => reject(fromSystemError(err, label)));
      server.listen(path, () => resolve());
    });
    if (process.platform !== 'win32') chmodSync(path, 0o600);
    register('named-pipe', name, path);
    return new NamedPipeServer<T>(name, path, server, opts);
  },

  /**
   * Connects to the server listening under `name`; resolves once both hellos were exchanged.
   * @throws ERR_IPC_NOT_FOUND when nobody listens; ERR_IPC_INCOMPATIBLE for another protocol or codec.
   */
  async connect<T = unknown>(name: string, opts?: ChannelOptions<T> & WaitOptions): Promise<Channel<T>> {
    checkWaitOptions(opts);
    const path = namedPipeAddress(name);
    const label = `named pipe '${name}'`;
    const socket = netConnect(path);
    const connecting = new Promise<Channel<T>>((resolve, reject) => {
      socket.once('error', (err) => reject(fromSystemError(err, label)));
      socket.once('connect', () => {
        const channel = new StreamChannel<T>(label, socket, socket, opts);
        channel.ready.then(() => resolve(channel), reject);
      });
    });
    try {
      return await withWait(`${label}: connect`, opts, connecting);
    } catch (err) {
      socket.destroy();
      throw err;
    }
  },
};
