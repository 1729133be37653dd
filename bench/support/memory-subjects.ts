/**
 * The subjects of the memory scenario (bench/memory.bench.ts): every ipckit channel, and
 * `process.send` 'json' for comparison. Started by the sending child (bench/children/memory-sender.ts),
 * so that neither end of a transfer is the benchmark runner, whose own heap would blur a reading.
 */
import { dirname, join } from 'node:path';
import { startIpckitPeer } from './ipckit-peer.js';
import { startListenerPeer } from './listener-peer.js';
import type { Peer } from './peer.js';
import { startProcessSendPeer } from './process-send-peer.js';
import { startShmPeer } from './shm-peer.js';

export interface MemorySubject {
  /** As the table shows it, and as the sending child is told which to start. */
  name: string;
  /** Held to the ±20 MB target; the process.send baseline is shown for comparison only. */
  target: boolean;
}

export const MEMORY_SUBJECTS: readonly MemorySubject[] = [
  { name: 'ipckit pipe channel', target: true },
  { name: 'ipckit shm channel', target: true },
  { name: 'ipckit socket, unix', target: true },
  { name: 'ipckit socket, tcp', target: true },
  { name: 'ipckit NamedPipe', target: true },
  { name: "ipckit FIFO, 'frames'", target: true },
  { name: 'process.send json', target: false },
];

/** Starts the receiving child of the subject named `name`, small objects, default codec. */
export async function startMemorySubject(name: string): Promise<Peer> {
  // Beside the private runtime directory, which ipckit creates only when it first needs it.
  const dir = dirname(process.env.IPCKIT_DIR!);
  switch (name) {
    case 'ipckit pipe channel':
      return startIpckitPeer('object');
    case 'ipckit shm channel':
      return startShmPeer('object');
    case 'ipckit socket, unix':
      return startListenerPeer(name, 'socket', `unix://${join(dir, 'memory.sock')}`);
    case 'ipckit socket, tcp':
      return startListenerPeer(name, 'socket', 'tcp://127.0.0.1:0');
    case 'ipckit NamedPipe':
      return startListenerPeer(name, 'named-pipe', 'memory-pipe');
    case "ipckit FIFO, 'frames'":
      return startListenerPeer(name, 'fifo', 'memory-fifo');
    case 'process.send json':
      return startProcessSendPeer('object', 'json');
    default:
      throw new Error(`bench: no memory subject named ${name}`);
  }
}
