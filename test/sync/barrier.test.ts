import { describe, expect, it } from 'vitest';
import { Barrier, ErrorCodes, isIpcError, SharedMemory } from '../../src/index.js';
import { blockUntil, isPending, rejectionOf, watchdog } from '../helpers.js';
import { isolateEachTest, startFixture, succeeded } from './children.js';

isolateEachTest();

describe('Barrier', () => {
  it('a party whose round completed before it gave up is told its index, not ABORTED', async () => {
    const barrier = Barrier.create('start', { parties: 2 });
    const abort = new AbortController();
    const waited = barrier.wait({ signal: abort.signal });
    // This thread stays blocked until the child's arrival has completed the round, counting this
    // party, then gives up before its loop has read the doorbell (as a timer due then would).
    const child = startFixture('sync-barrier-wait.ts');
    blockUntil(() => barrier.waiting === 0, 20_000);
    abort.abort();
    expect(await watchdog(waited, 2000, 'the wait')).toBe(0);
    expect((await child.line('passed', 20_000)).trim()).toBe('passed 1');
    expect(barrier.broken).toBe(false);
    await succeeded(child, 20_000, 'the other party');
    barrier.close();
  });

  it('releases all parties together and gives each a distinct arrival index', async () => {
    const barrier = Barrier.create('start', { parties: 3 });
    const others = [Barrier.open('start'), Barrier.open('start')];
    const results = await watchdog(
      Promise.all([barrier.wait(), others[0]!.wait(), others[1]!.wait()]),
      2000,
      'three parties',
    );
    expect([...results].sort()).toEqual([0, 1, 2]);
    expect(() => Barrier.openOrCreate('start', { parties: 4 })).toThrow(
      expect.objectContaining({ code: ErrorCodes.INCOMPATIBLE }),
    );
    expect(() => Barrier.create('x', { parties: 0 })).toThrow(/options\.parties/);
    for (const b of [barrier, ...others]) b.close();
  });

  it('a signal aborted before wait() fails it with ERR_IPC_ABORTED without arriving (even as the last party)', async () => {
    const barrier = Barrier.create('gate', { parties: 2 });
    const other = Barrier.open('gate');
    const first = barrier.wait();
    const signal = AbortSignal.abort();
    expect((await rejectionOf(other.wait({ signal }))).code).toBe(ErrorCodes.ABORTED);
    let thrown: unknown;
    try {
      other.waitSync({ signal });
    } catch (err) {
      thrown = err;
    }
    expect(isIpcError(thrown, ErrorCodes.ABORTED)).toBe(true);
    // Neither call arrived: the round still waits for its second party, and is not broken.
    expect(await isPending(first)).toBe(true);
    expect(barrier.broken).toBe(false);
    expect(await watchdog(other.wait(), 5000, 'the second party')).toBe(1);
    expect(await first).toBe(0);
    barrier.close();
    other.close();
  });

  it('refuses parties that is not a number with a TypeError', () => {
    expect(() => Barrier.create('x', { parties: '3' as never })).toThrow(TypeError);
    expect(() => Barrier.create('x', { parties: '3' as never })).toThrow(/options\.parties/);
    expect(() => Barrier.create('x', { parties: 1.5 })).toThrow(RangeError);
  });

  it('synchronizes 3 processes over 200 rounds', async () => {
    const words = new Int32Array(SharedMemory.create('counter', { size: 64 }).buffer);
    Barrier.create('start', { parties: 3 }).close();
    const parties = [0, 1, 2].map((p) => startFixture('sync-barrier-rounds.ts', [String(p), '200', '3']));
    for (const party of parties) await succeeded(party, 60_000, 'barrier party');
    expect(Atomics.load(words, 8)).toBe(0);
    expect([0, 1, 2].map((p) => words[p])).toEqual([200, 200, 200]);
  }, 90_000);

  it('fails the waiting parties with ERR_IPC_PEER_GONE when a party is killed', async () => {
    const barrier = Barrier.create('start', { parties: 3 });
    const victim = startFixture('sync-hold-until-killed.ts', ['barrier-member']);
    const waiter = startFixture('sync-barrier-wait.ts');
    await victim.line('held');
    await waiter.line('waiting');
    const mine = barrier.wait().catch((e: unknown) => e);
    victim.child.kill('SIGKILL');
    const err = await watchdog(mine, 10_000, 'broken barrier');
    expect(isIpcError(err, ErrorCodes.PEER_GONE)).toBe(true);
    expect(await waiter.line('error', 10_000)).toBe(`error ${ErrorCodes.PEER_GONE}`);
    // The waiter exits without closing: a member that died too. reset() must forget it, or the
    // round after the reset would find it and break as well.
    await watchdog(waiter.exited, 10_000, 'the waiter exits');
    expect(barrier.broken).toBe(true);
    // Broken until reset; then usable again.
    expect(isIpcError(await barrier.wait().catch((e: unknown) => e), ErrorCodes.PEER_GONE)).toBe(true);
    barrier.reset();
    expect(barrier.broken).toBe(false);
    const again = [Barrier.open('start'), Barrier.open('start')];
    const indexes = await watchdog(
      Promise.all([barrier.wait(), ...again.map((b) => b.wait())]),
      2000,
      'reuse',
    );
    expect(indexes.length).toBe(3);
  });

  it('breaks instead of completing a round when a party that arrived was killed', async () => {
    const barrier = Barrier.create('start', { parties: 2 });
    const party = startFixture('sync-barrier-wait.ts');
    await party.line('waiting');
    // It prints "waiting" just before it arrives: its arrival is counted once `waiting` says so.
    await watchdog(
      (async () => {
        while (barrier.waiting !== 1) await new Promise((r) => setImmediate(r));
      })(),
      10_000,
      'the other party to arrive',
    );
    party.child.kill('SIGKILL');
    await party.exited;
    const err = await watchdog(rejectionOf(barrier.wait()), 10_000, 'the last arrival');
    expect(isIpcError(err, ErrorCodes.PEER_GONE)).toBe(true);
    expect(barrier.broken).toBe(true);
    expect(isIpcError(await rejectionOf(barrier.wait()), ErrorCodes.PEER_GONE)).toBe(true);
    barrier.reset();
    expect(barrier.broken).toBe(false);
    // The dead member is gone from the table: two live parties complete rounds again.
    const other = Barrier.open('start');
    const indexes = await watchdog(Promise.all([barrier.wait(), other.wait()]), 2000, 'reuse');
    expect(indexes.sort()).toEqual([0, 1]);
  });

  it('withdraws the arrival of a wait that close() ended: the round waits for a party that is there', async () => {
    const leaving = Barrier.create('start', { parties: 2 });
    const staying = Barrier.open('start');
    const left = leaving.wait();
    expect(staying.waiting).toBe(1);
    leaving.close();
    expect(isIpcError(await watchdog(rejectionOf(left), 2000, 'the closed wait'), ErrorCodes.CLOSED)).toBe(
      true,
    );
    expect(staying.waiting).toBe(0);
    expect(staying.broken).toBe(false);
    const alone = staying.wait();
    expect(await isPending(alone)).toBe(true);
    const third = Barrier.open('start');
    const indexes = await watchdog(Promise.all([alone, third.wait()]), 2000, 'a full round');
    expect(indexes.sort()).toEqual([0, 1]);
    staying.close();
    third.close();
  });

  it('breaks when a waiter times out, since the others could never complete', async () => {
    const barrier = Barrier.create('start', { parties: 3 });
    const other = Barrier.open('start');
    const waiting = other.wait().catch((e: unknown) => e);
    const err = await barrier.wait({ timeout: 10 }).catch((e: unknown) => e);
    expect(isIpcError(err, ErrorCodes.TIMEOUT)).toBe(true);
    expect(isIpcError(await watchdog(waiting, 2000, 'other'), ErrorCodes.PEER_GONE)).toBe(true);
  });
});
