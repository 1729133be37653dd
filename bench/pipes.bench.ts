/**
 * Pipes: ipckit's parent↔child pipe channel against Node's `process.send` ('json' and 'advanced')
 * and a hand-framed `node:net` Unix socket, all measured in the same run, interleaved run by run.
 * 64 B objects and 1 MiB buffers, each as ping-pong round trips and one-way bursts. What a million
 * messages do to both ends' memory is the memory scenario's (bench/memory.bench.ts).
 */
import { randomBytes } from 'node:crypto';
import { type CaseResult, type RunOptions, ratio, type Scenario } from './scenario.js';
import { groupHeader, type PayloadKind } from './support/group-protocol.js';
import { startIpckitPeer } from './support/ipckit-peer.js';
import { roundTrips } from './support/measure.js';
import { childPeakRssMiB, collectGarbage } from './support/memory.js';
import { startNetPeer } from './support/net-peer.js';
import type { Peer } from './support/peer.js';
import { closePeers, measureCase, roundTripCase, smallObject, throughputCase } from './support/peer-cases.js';
import { startProcessSendPeer } from './support/process-send-peer.js';

const MiB = 1 << 20;

/**
 * Starts one peer per subject, ipckit first; the others are the baselines. `view`: ipckit's child
 * takes views, and the pipe channel's usual child is one of the baselines.
 */
async function startPeers(kind: PayloadKind, opts: { view?: boolean } = {}): Promise<Peer[]> {
  // Each half starts from a collected heap, so the 1 MiB cases do not pay for the garbage of the
  // small-message ones (a major GC of a large heap shows up as a slow run of whoever is measured).
  collectGarbage();
  const started = [
    ...(opts.view ? [Promise.resolve(startIpckitPeer(kind, { view: true }))] : []),
    Promise.resolve(startIpckitPeer(kind)),
    Promise.resolve(startProcessSendPeer(kind, 'json')),
    Promise.resolve(startProcessSendPeer(kind, 'advanced')),
    startNetPeer(kind),
  ];
  const settled = await Promise.allSettled(started);
  const peers = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const failed = settled.find((s) => s.status === 'rejected');
  if (failed) {
    await closePeers(peers);
    throw failed.reason;
  }
  // One exchange each, so no measurement includes a child's start-up.
  await Promise.all(peers.map((peer) => roundTrips(peer, groupHeader(kind, 1, 1), 1)));
  return peers;
}

/** "vs process.send json 12.3x, …": each baseline's ratio, > 1 meaning ipckit is better. */
function ratios(result: CaseResult, filter: (subject: string) => boolean): string[] {
  return result.baselines
    .filter((b) => filter(b.subject))
    .map((b) => `${b.subject} ${ratio(result, b).toFixed(2)}x`);
}

/** Appends the target to a result's notes, with whether this run met it. */
function target(result: CaseResult, text: string, atLeast: number, subjects: (s: string) => boolean): void {
  const compared = result.baselines.filter((b) => subjects(b.subject));
  const met = compared.every((b) => ratio(result, b) >= atLeast);
  const note = `target ${text}: ${met ? 'met' : 'NOT met'} (${ratios(result, subjects).join(', ')})`;
  result.notes = result.notes ? `${result.notes}; ${note}` : note;
}

const isProcessSend = (subject: string) => subject.startsWith('process.send');
const isAdvanced = (subject: string) => subject.startsWith('process.send advanced');

function childRssNote(peers: Peer[]): string {
  const parts = peers.map((p) => `${p.subject} ${Math.round(childPeakRssMiB(p.pid) ?? Number.NaN)} MiB`);
  return `child peak RSS (VmHWM): ${parts.join(', ')}`;
}

/** One-way throughput of 1 MiB buffers, with the target against 'advanced'. */
async function bigThroughput(
  label: string,
  big: Uint8Array,
  peers: Peer[],
  opts: RunOptions,
): Promise<CaseResult> {
  const tp = await measureCase(
    'pipes',
    peers,
    throughputCase(label, big, 'MB/s', { min: 4, max: 4000 }),
    opts,
  );
  target(tp, ">= 2x process.send 'advanced'", 2, isAdvanced);
  tp.notes = `${tp.notes}; ${childRssNote(peers)}; json carries the bytes as base64 strings`;
  return tp;
}

async function run(opts: RunOptions): Promise<CaseResult[]> {
  const results: CaseResult[] = [];
  const small = smallObject();
  const big = randomBytes(MiB);

  opts.progress('pipes: starting children for 64 B objects');
  let peers = await startPeers('object');
  try {
    const rt = await measureCase(
      'pipes',
      peers,
      roundTripCase('64 B object', small, { min: 100, max: 20_000 }),
      opts,
    );
    target(rt, 'no slower than process.send', 1, isProcessSend);
    const tp = await measureCase(
      'pipes',
      peers,
      throughputCase('64 B object', small, 'msg/s', { min: 1000, max: 2_000_000 }),
      opts,
    );
    target(tp, '>= 10x process.send', 10, isProcessSend);
    tp.notes = `${tp.notes}; ${childRssNote(peers)}`;
    results.push(rt, tp);
  } finally {
    await closePeers(peers);
  }

  opts.progress('pipes: starting children for 1 MiB buffers');
  peers = await startPeers('bytes');
  try {
    const rt = await measureCase(
      'pipes',
      peers,
      roundTripCase('1 MiB buffer', big, { min: 5, max: 2000 }),
      opts,
    );
    target(rt, 'no slower than process.send', 1, isProcessSend);
    results.push(rt, await bigThroughput('1 MiB buffer', big, peers, opts));
  } finally {
    await closePeers(peers);
  }

  // The same with a child that takes views (PipeChannel.receiveView), whose large messages are
  // read into memory that released views gave back, beside the same baselines in the same rounds.
  opts.progress('pipes: starting children for 1 MiB buffers, receiveView');
  peers = await startPeers('bytes', { view: true });
  try {
    results.push(await bigThroughput('1 MiB buffer (receiveView)', big, peers, opts));
  } finally {
    await closePeers(peers);
  }
  return results;
}

const scenario: Scenario = {
  name: 'pipes',
  description:
    "parent↔child: ipckit pipe channel vs process.send ('json', 'advanced') and a hand-framed net Unix socket",
  run,
};

export default scenario;
