/**
 * What the parent↔child channel scenarios (pipes, shm-channel) share: the 64 B message, and how a
 * case is sized and measured on every peer in interleaved rounds.
 */
import { Packr } from 'msgpackr';
import { type CaseResult, type Measurement, type RunOptions, summarize, withPeakRss } from '../scenario.js';
import { burst, calibrate, roundTripMedian, timeRoundTrips } from './measure.js';
import type { Peer } from './peer.js';

export async function closePeers(peers: Peer[]): Promise<void> {
  await Promise.allSettled(peers.map((peer) => peer.close()));
}

/** `{ id, name }` padded so that its msgpack encoding is 64 bytes, as ipckit's default codec sends it. */
export function smallObject(): { id: number; name: string } {
  const packr = new Packr({ useRecords: false });
  let name = '';
  while (packr.encode({ id: 1_000_000, name: `${name}x` }).length <= 64) name += 'x';
  return { id: 1_000_000, name };
}

/** One case: how to size a run, how to take one figure. */
export interface CaseSpec {
  case: string;
  unit: string;
  higherIsBetter: boolean;
  /** Work units (round trips, messages) that fill one run of about `seconds`. */
  size(peer: Peer, seconds: number, warmUp: number): Promise<number>;
  /** One run's figure. */
  measure(peer: Peer, size: number): Promise<number>;
}

/**
 * Measures one case on every peer: sizes each peer's runs, then takes `runs` rounds in which every
 * peer runs once, rotating who goes first so drift in the machine's load spreads over all of them.
 */
export async function measureCase(
  scenario: string,
  peers: Peer[],
  spec: CaseSpec,
  opts: RunOptions,
): Promise<CaseResult> {
  const seconds = opts.quick ? 0.04 : 0.2;
  const warmUp = opts.quick ? 0.1 : 0.5;
  const sizes: number[] = [];
  for (const peer of peers) {
    opts.progress(`${scenario}: ${spec.case}, sizing ${peer.subject}`);
    sizes.push(await spec.size(peer, seconds, warmUp));
  }
  const values = peers.map(() => [] as number[]);
  const peaks = peers.map(() => 0);
  for (let run = 0; run < opts.runs; run++) {
    opts.progress(`${scenario}: ${spec.case}, run ${run + 1}/${opts.runs}`);
    for (let j = 0; j < peers.length; j++) {
      const i = (j + run) % peers.length;
      const { value, peakRssMiB } = await withPeakRss(() => spec.measure(peers[i]!, sizes[i]!));
      values[i]!.push(value);
      peaks[i] = Math.max(peaks[i]!, peakRssMiB);
    }
  }
  const [ours, ...baselines] = peers.map((peer, i) =>
    summarize(peer.subject, values[i]!, Math.round(peaks[i]!)),
  ) as [Measurement, ...Measurement[]];
  return { case: spec.case, unit: spec.unit, higherIsBetter: spec.higherIsBetter, ours, baselines };
}

export function roundTripCase(
  label: string,
  message: unknown,
  limits: { min: number; max: number },
): CaseSpec {
  return {
    case: `round trip, ${label}`,
    unit: 'µs',
    higherIsBetter: false,
    size: (peer, seconds, warmUp) =>
      calibrate(seconds, warmUp, (count) => timeRoundTrips(peer, message, count), limits),
    measure: (peer, count) => roundTripMedian(peer, message, count),
  };
}

export function throughputCase(
  label: string,
  message: unknown,
  unit: 'msg/s' | 'MB/s' | 'GB/s',
  limits: { min: number; max: number },
): CaseSpec {
  const bytes = message instanceof Uint8Array ? message.byteLength : 0;
  return {
    case: `one-way throughput, ${label}`,
    unit,
    higherIsBetter: true,
    size: (peer, seconds, warmUp) =>
      calibrate(seconds, warmUp, (count) => burst(peer, message, count), limits),
    measure: async (peer, count) => {
      const seconds = await burst(peer, message, count);
      if (unit === 'msg/s') return count / seconds;
      return (count * bytes) / seconds / (unit === 'GB/s' ? 1e9 : 1e6);
    },
  };
}
