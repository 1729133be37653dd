/**
 * The holder table the Semaphore, RwLock and Barrier share: a holder whose thread id is alive but
 * started at another time is a reused id, so the holder is dead and its count is reclaimed.
 */
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { HOLDERS_WORDS, Holders } from '../../src/sync/holders.js';
import { Region } from '../../src/sync/region.js';
import { watchdog } from '../helpers.js';
import { killAll, startFixture } from './children.js';

afterEach(() => killAll());

/** Clock ticks since boot when process `pid` started (/proc/<pid>/stat, field 22). */
function startTimeOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
}

describe('holder table', () => {
  it('reclaims a holder whose live thread id has another start time (pid reuse), not one whose matches', async () => {
    const live = startFixture('sleep', [], { command: 'sleep', argv: ['60'] });
    const region = new Region(new SharedArrayBuffer(HOLDERS_WORDS * 4), 0, HOLDERS_WORDS * 4);
    Holders.init(region, 0);
    const holders = new Holders(region, 0);
    const reclaimed: number[] = [];
    // The record `sleep` would leave holding 3, had it started at tick 12345.
    const reused = holders.slotOf({ tid: live.pid, pid: live.pid, startTime: 12345 }, true);
    holders.add(reused, 3);
    expect(holders.reclaimDead(({ count }) => reclaimed.push(count))).toBe(1);
    expect(reclaimed).toEqual([3]);
    // The same record with its real start time is a live holder: nothing is reclaimed.
    const genuine = holders.slotOf({ tid: live.pid, pid: live.pid, startTime: startTimeOf(live.pid) }, true);
    holders.add(genuine, 2);
    expect(holders.reclaimDead(({ count }) => reclaimed.push(count))).toBe(0);
    expect(holders.total()).toBe(2);
    // Once it has exited, it is reclaimed.
    live.child.kill('SIGKILL');
    await watchdog(live.exited, 10_000, 'sleep exits');
    expect(holders.reclaimDead(({ count }) => reclaimed.push(count))).toBe(1);
    expect(reclaimed).toEqual([3, 2]);
  });
});
