import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCodes, Event, isIpcError, Semaphore, SharedMemory } from '../../src/index.js';
import { isolateRuntimeDir, watchdog } from '../helpers.js';
import { killAll, removeShmObjects, startFixture, succeeded } from './children.js';

let env: ReturnType<typeof isolateRuntimeDir>;
beforeEach(() => {
  env = isolateRuntimeDir();
});
afterEach(async () => {
  await killAll();
  removeShmObjects();
  env.cleanup();
});

describe('Semaphore within one process', () => {
  it('counts permits: tryAcquire until empty, release gives back, value reports it', () => {
    using slots = Semaphore.create('slots', { initial: 3 });
    const permits = [slots.tryAcquire(), slots.tryAcquire(), slots.tryAcquire()];
    expect(permits.every((p) => p !== undefined)).toBe(true);
    expect(slots.value).toBe(0);
    expect(slots.tryAcquire()).toBeUndefined();
    permits[0]!.release();
    permits[0]!.release();
    expect(slots.value).toBe(1);
    slots.release();
    expect(slots.value).toBe(2);
    slots.unlink();
  });

  it('wakes an async acquirer when a permit is released, and times out otherwise', async () => {
    using slots = Semaphore.create('slots', { initial: 0 });
    const timedOut = await slots.acquire({ timeout: 10 }).catch((err: unknown) => err);
    expect(isIpcError(timedOut, ErrorCodes.TIMEOUT)).toBe(true);
    const waiting = slots.acquire();
    slots.release();
    const permit = await watchdog(waiting, 2000, 'acquire after release');
    expect(slots.value).toBe(0);
    permit.release();
    expect(slots.value).toBe(1);
    slots.unlink();
  });

  it('checks its options', () => {
    expect(() => Semaphore.create('x', { initial: -1 })).toThrow(/options\.initial/);
    expect(() => Semaphore.create('x', { initial: 0.5 })).toThrow(RangeError);
  });

  it('refuses options of the wrong type with TypeErrors; acquire() rejects instead of throwing', async () => {
    expect(() => Semaphore.create('x', { initial: '2' as never })).toThrow(TypeError);
    expect(() => Semaphore.create('x', { initial: '2' as never })).toThrow(/options\.initial/);
    const slots = Semaphore.create('typed', { initial: 1 });
    let acquiring: Promise<unknown> | undefined;
    expect(() => {
      acquiring = slots.acquire({ track: 'no' as never });
    }).not.toThrow();
    await expect(acquiring).rejects.toThrow(TypeError);
    await expect(slots.acquire({ track: 'no' as never })).rejects.toThrow(/options\.track/);
    expect(() => slots.tryAcquire({ track: 0 as never })).toThrow(TypeError);
    expect(() => slots.acquireSync({ track: 'no' as never })).toThrow(TypeError);
    expect(slots.value).toBe(1);
    slots.unlink();
    slots.close();
  });
});

describe('Semaphore between processes', () => {
  it('never lets more than its permits in: 4 processes x 100k acquisitions on 2 permits', async () => {
    const words = new Int32Array(SharedMemory.create('counter', { size: 64 }).buffer);
    const slots = Semaphore.create('slots', { initial: 2 });
    const go = Event.create('go');
    const children = [0, 1, 2, 3].map(() => startFixture('sync-semaphore-occupancy.ts', ['100000']));
    for (const child of children) await child.line('ready');
    go.set();
    for (const child of children) await succeeded(child, 120_000, 'occupant');
    expect(Atomics.load(words, 2)).toBe(400_000);
    expect(Atomics.load(words, 1)).toBeLessThanOrEqual(2);
    expect(Atomics.load(words, 1)).toBeGreaterThanOrEqual(1);
    expect(Atomics.load(words, 0)).toBe(0);
    expect(slots.value).toBe(2);
  }, 150_000);

  it('returns the permits of a holder killed with SIGKILL to a waiting acquirer', async () => {
    const slots = Semaphore.create('slots', { initial: 2 });
    const holder = startFixture('sync-hold-until-killed.ts', ['semaphore']);
    await holder.line('held');
    expect(slots.value).toBe(0);
    const waiting = slots.acquire();
    holder.child.kill('SIGKILL');
    const permit = await watchdog(waiting, 10_000, 'permit recovery');
    expect(permit.ownerDied).toBe(true);
    expect(slots.recovered).toBe(2);
    expect(slots.value).toBe(1);
    permit.release();
    expect(slots.value).toBe(2);
  });

  it('value counts the permits of a holder that died, with nobody waiting to recover them', async () => {
    const slots = Semaphore.create('slots', { initial: 2 });
    const holder = startFixture('sync-hold-until-killed.ts', ['semaphore']);
    await holder.line('held');
    expect(slots.value).toBe(0);
    holder.child.kill('SIGKILL');
    await watchdog(holder.exited, 10_000, 'the holder exits');
    expect(slots.value).toBe(2);
    expect(slots.recovered).toBe(2);
  });

  it('does not return an untracked permit when its acquirer dies', async () => {
    const slots = Semaphore.create('slots', { initial: 1 });
    const permit = slots.tryAcquire({ track: false })!;
    expect(permit).toBeDefined();
    expect(slots.tryAcquire()).toBeUndefined();
    expect(slots.recovered).toBe(0);
    permit.release();
    expect(slots.value).toBe(1);
  });
});
