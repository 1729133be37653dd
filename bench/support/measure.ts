/**
 * The two measuring loops, the same for every peer: ping-pong round trips and one-way bursts.
 * Both size their work by time, so a slow baseline and a fast subject each run for about as long.
 */
import { median } from '../scenario.js';
import { groupHeader, readCount } from './group-protocol.js';
import type { Peer } from './peer.js';

async function send(peer: Peer, message: unknown): Promise<void> {
  const wait = peer.send(message);
  if (wait) await wait;
}

/** `count` ping-pongs; returns each one's duration in µs. */
export async function roundTrips(peer: Peer, message: unknown, count: number): Promise<number[]> {
  await send(peer, groupHeader(peer.kind, 1, count));
  const samples = new Array<number>(count);
  for (let i = 0; i < count; i++) {
    const start = performance.now();
    const wait = peer.send(message);
    if (wait) await wait;
    await peer.receive();
    samples[i] = (performance.now() - start) * 1000;
  }
  return samples;
}

/** The median round trip, in µs, over `count` ping-pongs. */
export async function roundTripMedian(peer: Peer, message: unknown, count: number): Promise<number> {
  return median(await roundTrips(peer, message, count));
}

/** Sends `count` messages one way and waits for the child's count; returns the seconds it took. */
export async function burst(peer: Peer, message: unknown, count: number): Promise<number> {
  await send(peer, groupHeader(peer.kind, count, 1));
  const start = performance.now();
  for (let i = 0; i < count; i++) {
    const wait = peer.send(message);
    if (wait) await wait;
  }
  const counted = readCount(await peer.receive());
  const seconds = (performance.now() - start) / 1000;
  if (counted !== count) throw new Error(`${peer.subject}: the child counted ${counted} of ${count}`);
  return seconds;
}

/**
 * How many round trips or burst messages fill about `seconds`. Probes with doubling counts until
 * they have run for `warmUp` seconds in all (the JIT on both sides settles; the first thousands of
 * messages are several times slower) and the last probe ran for a measurable while.
 */
export async function calibrate(
  seconds: number,
  warmUp: number,
  probe: (count: number) => Promise<number>,
  limits: { min: number; max: number },
): Promise<number> {
  let count = limits.min;
  let spent = 0;
  for (;;) {
    const took = await probe(count);
    spent += took;
    if ((spent >= warmUp && took >= 0.05) || (count >= limits.max && spent >= warmUp)) {
      return Math.max(limits.min, Math.min(limits.max, Math.ceil((count * seconds) / took)));
    }
    if (took < seconds) count = Math.min(count * 2, limits.max);
  }
}

/** Seconds for `count` round trips, for {@link calibrate}. */
export async function timeRoundTrips(peer: Peer, message: unknown, count: number): Promise<number> {
  const start = performance.now();
  await roundTrips(peer, message, count);
  return (performance.now() - start) / 1000;
}
