/**
 * The transports the channel conformance suite runs against: each makes a connected pair of
 * channels in this process, both ends with the same options, and knows how to take them down.
 */
import {
  type Channel,
  type ChannelOptions,
  connect,
  listen,
  NamedPipe,
  type NamedPipeServer,
  ShmChannel,
  type SocketServer,
} from '../../src/index.js';

export interface ChannelPair<T> {
  a: Channel<T>;
  b: Channel<T>;
  /** Destroys both ends and whatever served them (a listening server). */
  cleanup(): Promise<void>;
}

export interface ChannelTransport {
  readonly name: string;
  pair<T>(opts?: ChannelOptions<T>): Promise<ChannelPair<T>>;
}

let serial = 0;

/** A server that accepts one connection and goes away with the pair. */
async function connected<T>(
  server: NamedPipeServer<T> | SocketServer<T>,
  dial: () => Promise<Channel<T>>,
): Promise<ChannelPair<T>> {
  const accepted = server.accept();
  const a = await dial();
  const b = await accepted;
  return {
    a,
    b,
    async cleanup() {
      a.destroy();
      b.destroy();
      await server.close();
    },
  };
}

export const channelTransports: ChannelTransport[] = [
  {
    name: 'named pipe',
    async pair<T>(opts?: ChannelOptions<T>) {
      const name = `conformance-${++serial}`;
      const server = await NamedPipe.listen<T>(name, opts);
      return connected(server, () => NamedPipe.connect<T>(name, opts));
    },
  },
  {
    name: 'socket (tcp)',
    async pair<T>(opts?: ChannelOptions<T>) {
      const server = await listen<T>('tcp://127.0.0.1:0', { ...opts, heartbeatMs: 0 });
      return connected(server, () => connect<T>(server.url, { ...opts, reconnect: false }));
    },
  },
  {
    name: 'socket (unix)',
    async pair<T>(opts?: ChannelOptions<T>) {
      const server = await listen<T>(`pipe://conformance-${++serial}`, { ...opts, heartbeatMs: 0 });
      return connected(server, () => connect<T>(server.url, { ...opts, reconnect: false }));
    },
  },
  {
    name: 'shm channel',
    async pair<T>(opts?: ChannelOptions<T>) {
      const name = `conformance-${++serial}`;
      const a = ShmChannel.create<T>(name, opts);
      const b = ShmChannel.open<T>(name, opts);
      return {
        a,
        b,
        async cleanup() {
          a.destroy();
          b.destroy();
        },
      };
    },
  },
];
