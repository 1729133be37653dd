/**
 * ShmChannel: ipckit's shared-memory channel (`spawn(..., { channel: 'shm' })`) against
 * `process.send` ('json', 'advanced'), ipckit's pipe channel and a worker thread's `postMessage`,
 * all in the same run and interleaved run by run. 64 B raw buffers and small objects (default
 * codec) one way, 64 B object round trips, 1 MiB buffers one way. Every peer runs the same child
 * protocol (bench/support/group-protocol.ts). Runnable alone through `bench/run.ts --only shm-channel`.
 */
import { randomBytes } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { type CaseResult, type RunOptions, ratio, type Scenario } from './scenario.js';
import { groupHeader, type PayloadKind } from './support/group-protocol.js';
import { Inbox } from './support/inbox.js';
import { startIpckitPeer } from './support/ipckit-peer.js';
import { roundTrips } from './support/measure.js';
import type { Peer } from './support/peer.js';
import { closePeers, measureCase, roundTripCase, smallObject, throughputCase } from './support/peer-cases.js';
import { startProcessSendPeer } from './support/process-send-peer.js';
import { startShmPeer } from './support/shm-peer.js';

const MiB = 1 << 20;

/** The group protocol's follower, in plain JS for an eval'd worker (it cannot import TypeScript). */
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
let size = 0, repeat = 0, seen = 0;
parentPort.on('message', (m) => {
  if (repeat === 0) {
    if (m instanceof Uint8Array) { const v = new DataView(m.buffer, m.byteOffset, m.byteLength); size = v.getUint32(0); repeat = v.getUint32(4); }
    else { size = m.size; repeat = m.repeat; }
    return;
  }
  if (++seen < size) return;
  seen = 0; repeat--;
  if (size === 1) { parentPort.postMessage(m); return; }
  if (m instanceof Uint8Array) { const b = new Uint8Array(4); new DataView(b.buffer).setUint32(0, size); parentPort.postMessage(b); }
  else parentPort.postMessage({ count: size });
});`;

/** Baseline: a worker thread and `postMessage` (structured clone; buffers are copied, not moved). */
function startWorkerPeer(kind: PayloadKind): Peer {
  const worker = new Worker(WORKER_SOURCE, { eval: true });
  const inbox = new Inbox();
  worker.on('message', (m) => inbox.push(m));
  worker.once('error', (err) => inbox.fail(err));
  return {
    subject: 'worker postMessage',
    kind,
    pid: process.pid,
    send: (message) => {
      worker.postMessage(message);
      return undefined;
    },
    receive: () => inbox.receive(),
    close: async () => {
      await worker.terminate();
    },
  };
}

async function startPeers(kind: PayloadKind, list?: Peer[]): Promise<Peer[]> {
  const peers = list ?? [
    startShmPeer(kind),
    startProcessSendPeer(kind, 'json'),
    startProcessSendPeer(kind, 'advanced'),
    startIpckitPeer(kind),
    startWorkerPeer(kind),
  ];
  // One exchange each, so no measurement includes a start-up.
  await Promise.all(peers.map((peer) => roundTrips(peer, groupHeader(kind, 1, 1), 1)));
  return peers;
}

/** Notes the issue's target against the named baseline, with whether this run met it. */
function target(result: CaseResult, text: string, atLeast: number, subject: string, minimum = 0): void {
  const baseline = result.baselines.find((b) => b.subject.startsWith(subject));
  if (!baseline) return;
  const r = ratio(result, baseline);
  const met = r >= atLeast && result.ours.median >= minimum;
  const note = `target ${text}: ${met ? 'met' : 'NOT met'} (${r.toFixed(2)}x ${baseline.subject})`;
  result.notes = result.notes ? `${result.notes}; ${note}` : note;
}

async function run(opts: RunOptions): Promise<CaseResult[]> {
  const results: CaseResult[] = [];
  opts.progress('shm-channel: starting children for objects');
  let peers = await startPeers('object');
  try {
    const small = smallObject();
    const tp = await measureCase(
      'shm-channel',
      peers,
      throughputCase('64 B object (msgpack)', small, 'msg/s', { min: 1000, max: 4_000_000 }),
      opts,
    );
    target(tp, '>= 10x process.send json', 10, 'process.send json');
    const rt = await measureCase(
      'shm-channel',
      peers,
      roundTripCase('64 B object', small, { min: 100, max: 20_000 }),
      opts,
    );
    target(rt, "<= 0.8x process.send's", 1.25, 'process.send json');
    results.push(tp, rt);
  } finally {
    await closePeers(peers);
  }
  opts.progress('shm-channel: starting children for bytes');
  peers = await startPeers('bytes');
  try {
    const raw = await measureCase(
      'shm-channel',
      peers,
      throughputCase('64 B buffer (raw codec)', randomBytes(64), 'msg/s', { min: 1000, max: 8_000_000 }),
      opts,
    );
    target(raw, '>= 5M msg/s and >= 40x process.send json', 40, 'process.send json', 5_000_000);
    raw.notes = `${raw.notes}; json carries the bytes as base64`;
    const big = await measureCase(
      'shm-channel',
      peers,
      throughputCase('1 MiB buffer (copied out)', randomBytes(MiB), 'MB/s', { min: 4, max: 4000 }),
      opts,
    );
    const pieces =
      "ring 1 MiB each way (spawn's default), so a 1 MiB message goes in pieces and is copied out";
    big.notes = `${big.notes ? `${big.notes}; ` : ''}what copying out costs, beside the receiveView case below (which the 1 MiB target is on); ${pieces}`;
    results.push(raw, big);
  } finally {
    await closePeers(peers);
  }
  opts.progress('shm-channel: starting children for receiveView');
  // Rings of 4 MiB: a 1 MiB message is one record, read in place by the child and released.
  peers = await startPeers('bytes', [
    startShmPeer('bytes', { capacity: 4 * MiB, view: true, subject: 'ipckit shm channel, receiveView' }),
    startShmPeer('bytes', { subject: 'ipckit shm channel, receive (copied out)' }),
    startProcessSendPeer('bytes', 'advanced'),
    startWorkerPeer('bytes'),
  ]);
  try {
    const view = await measureCase(
      'shm-channel',
      peers,
      throughputCase('1 MiB buffer (receiveView)', randomBytes(MiB), 'GB/s', { min: 4, max: 8000 }),
      opts,
    );
    target(view, ">= 10x process.send 'advanced'", 10, 'process.send advanced');
    view.notes = `${view.notes}; target >= 4 GB/s: ${view.ours.median >= 4 ? 'met' : 'NOT met'}`;
    results.push(view);
  } finally {
    await closePeers(peers);
  }
  opts.progress("shm-channel: starting children for mode: 'latency'");
  peers = await startPeers('object', [
    startShmPeer('object', { mode: 'latency', subject: "ipckit shm channel, mode 'latency'" }),
    startShmPeer('object', { subject: "ipckit shm channel, mode 'default'" }),
    startProcessSendPeer('object', 'json'),
    startWorkerPeer('object'),
  ]);
  try {
    const rt = await measureCase(
      'shm-channel',
      peers,
      roundTripCase("64 B object, mode 'latency'", smallObject(), { min: 100, max: 50_000 }),
      opts,
    );
    rt.notes = `target median <= 3 µs: ${rt.ours.median <= 3 ? 'met' : 'NOT met'}; both ends spin while messages come < 2 ms apart (a busy core each)`;
    results.push(rt);
  } finally {
    await closePeers(peers);
  }
  // The same round trip without a codec: what the transport itself costs, and so what of the
  // object round trip is msgpack's encoding and decoding.
  opts.progress("shm-channel: starting children for mode: 'latency', raw codec");
  peers = await startPeers('bytes', [
    startShmPeer('bytes', { mode: 'latency', subject: "ipckit shm channel, mode 'latency', raw codec" }),
    startShmPeer('bytes', { subject: "ipckit shm channel, mode 'default', raw codec" }),
    startProcessSendPeer('bytes', 'advanced'),
  ]);
  try {
    const rt = await measureCase(
      'shm-channel',
      peers,
      roundTripCase("64 B buffer (raw codec), mode 'latency'", randomBytes(64), { min: 100, max: 50_000 }),
      opts,
    );
    rt.notes = 'the transport alone: no encoding or decoding on either side';
    results.push(rt);
  } finally {
    await closePeers(peers);
  }
  return results;
}

const scenario: Scenario = {
  name: 'shm-channel',
  description:
    "parent↔child: ipckit shm channel vs process.send ('json', 'advanced'), the pipe channel and worker postMessage",
  run,
};

export default scenario;
