/** The subject under test: ipckit's parent↔child pipe channel, via `spawn(..., { channel: 'pipe' })`. */
import { type ChildProcess, type Sender, spawn } from '../../src/index.js';
import type { PayloadKind } from './group-protocol.js';
import { CHILD_STDIO, childArgs, type Peer } from './peer.js';

/**
 * A peer's send over an ipckit channel, as the process.send peer uses its return value: a promise
 * only when the transport is full.
 */
export function channelSend(channel: Sender<unknown>): (message: unknown) => Promise<void> | undefined {
  return (message) => (channel.trySend(message) ? undefined : channel.send(message));
}

/** The Peer of a child spawned with a channel (pipe or shm): sends and receives on that channel. */
export function childChannelPeer(subject: string, kind: PayloadKind, child: ChildProcess<unknown>): Peer {
  const channel = child.channel!;
  return {
    subject,
    kind,
    pid: child.pid,
    send: channelSend(channel),
    receive: () => channel.receive(),
    close: async () => {
      await channel.close();
      await child.exited;
    },
  };
}

/**
 * Starts a child on the pipe channel: msgpack for objects, the raw codec for bytes. `view`: the
 * child receives bytes with receiveView() (bench/children/view-count.ts).
 */
export function startIpckitPeer(kind: PayloadKind, opts: { view?: boolean } = {}): Peer {
  const args = opts.view ? childArgs('view-count.ts') : childArgs('echo-count-parent-channel.ts', kind);
  const child = spawn<unknown>(process.execPath, args, {
    channel: 'pipe',
    stdio: CHILD_STDIO,
    codec: kind === 'bytes' ? 'raw' : 'msgpack',
  });
  return childChannelPeer(
    opts.view ? 'ipckit pipe channel, receiveView' : 'ipckit pipe channel',
    kind,
    child,
  );
}
