import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { ErrorCodes, Event, RwLock, SharedMemory } from '../../src/index.js';
import { watchdog } from '../helpers.js';
import { isolateEachTest, startFixture, succeeded } from './children.js';

isolateEachTest();

describe('RwLock', () => {
  it('lets readers share and keeps writers out, in one process', async () => {
    using lock = RwLock.create('lock');
    const r1 = lock.tryReadLock()!;
    const r2 = (await lock.readLock())!;
    expect(lock.readers).toBe(2);
    expect(lock.tryWriteLock()).toBeUndefined();
    const writing = lock.writeLock();
    // A waiting writer keeps new readers out (writer preference).
    expect(lock.tryReadLock()).toBeUndefined();
    r1.release();
    r2.release();
    const w = await watchdog(writing, 2000, 'writer after readers left');
    expect(lock.writing).toBe(true);
    expect(lock.tryReadLock()).toBeUndefined();
    w.release();
    expect(lock.tryReadLock()).toBeDefined();
    lock.unlink();
  });

  it('close() during a pending writeLock() withdraws its writer claim', async () => {
    using lock = RwLock.create('lock');
    const closing = RwLock.open('lock');
    const reader = lock.tryReadLock()!;
    const writing = closing.writeLock(); // claims the writer word, then waits for the reader
    expect(lock.writing).toBe(true);
    closing.close();
    const err = await watchdog(
      writing.then(
        () => undefined,
        (e: unknown) => e,
      ),
      2000,
      'closed writer',
    );
    expect(err).toMatchObject({ code: ErrorCodes.CLOSED });
    // The claim went with the wait: nobody is left barred by a writer that will never come.
    expect(lock.writing).toBe(false);
    reader.release();
    const writer = lock.tryWriteLock();
    expect(writer).toBeDefined();
    writer!.release();
    lock.unlink();
  });

  it('detects self-deadlock in the Sync variants', () => {
    using lock = RwLock.create('lock');
    const r = lock.readLockSync();
    expect(() => lock.writeLockSync()).toThrow(expect.objectContaining({ code: ErrorCodes.DEADLOCK }));
    r.release();
    const w = lock.writeLockSync();
    expect(() => lock.readLockSync()).toThrow(expect.objectContaining({ code: ErrorCodes.DEADLOCK }));
    w.release();
    lock.unlink();
  });

  it('lets a reader in another process share, and keeps a writer there out', async () => {
    using lock = RwLock.create('lock');
    const mine = lock.tryReadLock()!;
    const reader = startFixture('sync-hold-until-killed.ts', ['rwlock-read']);
    await reader.line('held');
    expect(lock.readers).toBe(2);
    reader.child.kill('SIGKILL');
    await reader.exited;
    const writer = startFixture('sync-hold-until-killed.ts', ['rwlock-write']);
    await writer.line('trying');
    // The writer claims the lock (new readers now wait) but cannot get in while we read.
    await watchdog(
      (async () => {
        while (!lock.writing) await new Promise((resolve) => setImmediate(resolve));
      })(),
      10_000,
      'writer claiming the lock',
    );
    expect(lock.tryReadLock()).toBeUndefined();
    // A second read lock would wait for that writer, which waits for our first: a deadlock, told
    // at once (the timeout only bounds the wait if it were not).
    expect(() => lock.readLockSync({ timeout: 5000 })).toThrow(
      expect.objectContaining({ code: ErrorCodes.DEADLOCK }),
    );
    expect(writer.output()).not.toContain('held');
    mine.release();
    await writer.line('held', 10_000);
    expect(lock.tryReadLock()).toBeUndefined();
  });

  it("a second readLockSync past a dead writer's claim is granted, not ERR_IPC_DEADLOCK", async () => {
    using lock = RwLock.create('lock');
    const mine = lock.tryReadLock()!;
    const writer = startFixture('sync-hold-until-killed.ts', ['rwlock-write']);
    await writer.line('trying');
    await watchdog(
      (async () => {
        while (!lock.writing) await new Promise((resolve) => setImmediate(resolve));
      })(),
      10_000,
      'writer claiming the lock',
    );
    writer.child.kill('SIGKILL');
    await writer.exited;
    // The claim is a dead thread's: nobody waits for our read lock, so the read attempt clears it.
    const second = lock.readLockSync({ timeout: 5000 });
    expect(second.ownerDied).toBe(true);
    expect(lock.readers).toBe(2);
    second.release();
    mine.release();
  });

  it('keeps readers and writers exclusive under load: 4 processes, 100k operations each', async () => {
    const words = new Int32Array(SharedMemory.create('counter', { size: 64 }).buffer);
    RwLock.create('lock');
    const go = Event.create('go');
    const children = ['async', 'sync', 'async', 'sync'].map((mode) =>
      startFixture('sync-rwlock-readers-writers.ts', ['100000', mode]),
    );
    for (const child of children) await child.line('ready');
    go.set();
    for (const child of children) await succeeded(child, 120_000, 'reader/writer');
    expect(words[0]).toBe(4 * 25_000);
    expect(Atomics.load(words, 2)).toBe(0);
  }, 150_000);

  it('recovers from a killed writer: the next writer gets ownerDied', async () => {
    const lock = RwLock.create('lock');
    const writer = startFixture('sync-hold-until-killed.ts', ['rwlock-write']);
    await writer.line('held');
    const waiting = lock.writeLock();
    writer.child.kill('SIGKILL');
    const guard = await watchdog(waiting, 10_000, 'write lock recovery');
    expect(guard.ownerDied).toBe(true);
    guard.release();
  });

  // The holder table's slot words (src/sync/holders.ts): the table starts at word 12 of the lock,
  // its slots at 4 words in, each slot's first word its thread id (negative while being claimed).
  it('a reader that died while claiming its slot held nothing: the writer that frees the slot gets no ownerDied', () => {
    const memory = new SharedArrayBuffer(RwLock.byteLength);
    const lock = RwLock.createAt(memory);
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
    const firstSlot = new Int32Array(memory, 0, 17);
    Atomics.store(firstSlot, 16, -dead);
    const guard = lock.tryWriteLock();
    expect(guard).toBeDefined();
    expect(Atomics.load(firstSlot, 16)).toBe(0);
    expect(guard!.ownerDied).toBe(false);
    guard!.release();
  });

  it('recovers from a killed reader: a waiting writer gets in with ownerDied', async () => {
    const lock = RwLock.create('lock');
    const reader = startFixture('sync-hold-until-killed.ts', ['rwlock-read']);
    await reader.line('held');
    const waiting = lock.writeLock();
    reader.child.kill('SIGKILL');
    const guard = await watchdog(waiting, 10_000, 'writer past a dead reader');
    expect(guard.ownerDied).toBe(true);
    expect(lock.readers).toBe(0);
    guard.release();
  });
});
