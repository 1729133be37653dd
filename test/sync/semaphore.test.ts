import { describe, expect, it } from 'vitest';
import { ErrorCodes, Event, isIpcError, Semaphore, SharedMemory } from '../../src/index.js';
import { watchdog } from '../helpers.js';
import { isolateEachTest, startFixture, succeeded } from './children.js';
import { churn } from './churn.js';

isolateEachTest();

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

describe('Semaphore journal: a holder killed between the value and its count', () => {
  // The state a holder leaves when SIGKILLed mid-step, written by hand (layout in semaphore.ts):
  // the value already moved, the journal names its holder slot, its count written or not.
  const VALUE = 4;
  const JOURNAL = 5;
  const FIRST_SLOT = 8 + 4;
  const RELEASE = 0x80;
  const PARITY = 0x100;

  function deadHolderMidStep(step: 'acquire' | 'release', countWritten: boolean) {
    const memory = new SharedArrayBuffer(Semaphore.byteLength);
    const semaphore = Semaphore.createAt(memory, 0, { initial: 5 });
    const i32 = new Int32Array(memory);
    // Held 2 and acquiring a third (value already 5 - 3), or held 3 and releasing one (5 - 3 + 1).
    const before = step === 'acquire' ? 2 : 3;
    const after = step === 'acquire' ? 3 : 2;
    i32[FIRST_SLOT] = process.pid;
    i32[FIRST_SLOT + 1] = countWritten ? after : before;
    i32[FIRST_SLOT + 2] = process.pid;
    // A start time this pid never had: the holder is a dead thread whose id was reused.
    new Float64Array(memory)[(FIRST_SLOT + 4) >> 1] = 12345;
    i32[VALUE] = 5 - 3 + (step === 'release' ? 1 : 0);
    i32[JOURNAL] = 1 | (step === 'release' ? RELEASE : 0) | (after & 1 ? PARITY : 0);
    return { semaphore, i32 };
  }

  it.each([
    ['acquire', false],
    ['acquire', true],
    ['release', false],
    ['release', true],
  ] as const)(
    'returns the permits of a holder killed mid-%s (count written: %s), as they stand after it',
    (step, written) => {
      const { semaphore, i32 } = deadHolderMidStep(step, written);
      expect(semaphore.value).toBe(5);
      expect(semaphore.recovered).toBe(step === 'acquire' ? 3 : 2);
      expect(i32[JOURNAL]).toBe(0);
      const permit = semaphore.tryAcquire();
      expect(permit).toBeDefined();
      permit!.release();
      expect(semaphore.value).toBe(5);
    },
  );

  it("a release that meets a dead holder's step settles it and completes", () => {
    const memory = new SharedArrayBuffer(Semaphore.byteLength);
    const semaphore = Semaphore.createAt(memory, 0, { initial: 5 });
    const mine = semaphore.tryAcquire()!;
    const i32 = new Int32Array(memory);
    // Slot 0 is this thread's now: plant the dead holder in slot 1, mid-acquire of its first permit.
    const slot = FIRST_SLOT + 6;
    i32[slot] = process.pid;
    i32[slot + 1] = 0;
    i32[slot + 2] = process.pid;
    new Float64Array(memory)[(slot + 4) >> 1] = 12345;
    i32[VALUE] = 5 - 1 - 1;
    i32[JOURNAL] = 2 | PARITY;
    mine.release();
    expect(semaphore.value).toBe(5);
    expect(semaphore.recovered).toBe(1);
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

  it('gives back exactly the permits of holders SIGKILLed at random points: none lost, none created', async () => {
    const words = new Int32Array(SharedMemory.create('counter', { size: 64 }).buffer);
    const slots = Semaphore.create('slots', { initial: 2 });
    await churn({
      start: () => startFixture('sync-semaphore-churn.ts'),
      count: 3,
      kills: 30,
      words,
      iterations: 0,
      spread: 400,
    });
    expect(slots.value).toBe(2);
  }, 120_000);

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
