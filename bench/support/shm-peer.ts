/** A subject of the channel scenarios: a child on ipckit's shared-memory channel, `spawn(..., { channel: 'shm' })`. */
import { spawn } from '../../src/index.js';
import type { PayloadKind } from './group-protocol.js';
import { childChannelPeer } from './ipckit-peer.js';
import { CHILD_STDIO, childArgs, type Peer } from './peer.js';

/** How a shm peer is set up: ring size, reader mode, and whether its child receives with receiveView. */
export interface ShmPeerOptions {
  capacity?: number;
  mode?: 'default' | 'latency';
  view?: boolean;
  subject?: string;
}

/** The subject: a child on `spawn(..., { channel: 'shm' })`, the same echo/count child as the pipe peer's. */
export function startShmPeer(kind: PayloadKind, opts: ShmPeerOptions = {}): Peer {
  const args = opts.view ? childArgs('view-count.ts') : childArgs('echo-count-parent-channel.ts', kind);
  const child = spawn<unknown>(process.execPath, args, {
    channel: 'shm',
    stdio: CHILD_STDIO,
    codec: kind === 'bytes' ? 'raw' : 'msgpack',
    ...(opts.capacity ? { capacity: opts.capacity } : {}),
    ...(opts.mode ? { mode: opts.mode } : {}),
  });
  return childChannelPeer(opts.subject ?? 'ipckit shm channel', kind, child);
}
