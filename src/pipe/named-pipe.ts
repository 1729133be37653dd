/**
 * Named pipes in the connection-oriented sense: a server listens under a name, clients connect to
 * it, each connection is a duplex Channel. This is the `pipe://name` case of the socket module (one
 * implementation: handshake, peer credentials, heartbeats, limits, requests and pub/sub come with
 * it): on POSIX a Unix socket in the runtime directory (0700; the socket 0600 and the peer's uid
 * checked: same user only), on Windows `\\.\pipe\ipckit-…-name`.
 */
import type { ChannelOptions } from '../core/channel.js';
import { checkName } from '../core/runtime-dir.js';
import type { WaitOptions } from '../core/wait.js';
import { connect, type SocketClient } from '../socket/client.js';
import type { ConnectOptions, ListenOptions } from '../socket/options.js';
import { listenWith, type ServerInit, SocketServer } from '../socket/server.js';

/** Options for {@link NamedPipe.listen}: those of `listen('pipe://name')`. */
export interface NamedPipeServerOptions<T = unknown> extends ListenOptions<T> {}

/** A listening named pipe. Iterate it to accept connections. */
export class NamedPipeServer<T = unknown> extends SocketServer<T> {
  /** The name it listens under. */
  readonly name: string;

  /** Use {@link NamedPipe.listen}. */
  constructor(name: string, init: ServerInit<T>) {
    super(init);
    this.name = name;
  }

  /** The socket path (or Windows pipe address). */
  override get path(): string {
    return super.path!;
  }
}

/** Named pipes: duplex, connection-oriented, addressed by name. */
export const NamedPipe = {
  /**
   * Listens under `name`. A stale socket file left by a dead server is replaced.
   * @throws ERR_IPC_EXISTS if a live server has the name; ERR_IPC_PATH_TOO_LONG; ERR_IPC_INVALID_NAME.
   */
  async listen<T = unknown>(name: string, opts?: NamedPipeServerOptions<T>): Promise<NamedPipeServer<T>> {
    checkName(name, 'named pipe');
    return listenWith<T, NamedPipeServer<T>>(
      `pipe://${name}`,
      opts,
      (init) => new NamedPipeServer<T>(name, init),
    );
  },

  /**
   * Connects to the server listening under `name`; resolves once the handshake is done.
   * @throws ERR_IPC_NOT_FOUND when nobody listens; ERR_IPC_INCOMPATIBLE for another protocol or codec.
   */
  async connect<T = unknown>(
    name: string,
    opts?: ChannelOptions<T> & WaitOptions & ConnectOptions<T>,
  ): Promise<SocketClient<T>> {
    checkName(name, 'named pipe');
    return connect<T>(`pipe://${name}`, opts);
  },
};
