/** The subject under test: ipckit's parent↔child pipe channel, via `spawn(..., { channel: 'pipe' })`. */
import { type Sender, spawn } from '../../src/index.js';
import type { PayloadKind } from './group-protocol.js';
import { CHILD_STDIO, childArgs, type Peer } from './peer.js';

/**
 * A peer's send over an ipckit channel, as the process.send peer uses its return value: a promise
 * only when the transport is full.
 */
export function channelSend(channel: Sender<unknown>): (message: unknown) => Promise<void> | undefined {
  return (message) => (channel.trySend(message) ? undefined : channel.send(message));
}

/** Starts a child on the pipe channel: msgpack for objects, the raw codec for bytes. */
export function startIpckitPeer(kind: PayloadKind): Peer {
  const child = spawn<unknown>(process.execPath, childArgs('echo-count-parent-channel.ts', kind), {
    channel: 'pipe',
    stdio: CHILD_STDIO,
    codec: kind === 'bytes' ? 'raw' : 'msgpack',
  });
  const channel = child.channel!;
  return {
    subject: 'ipckit pipe channel',
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
