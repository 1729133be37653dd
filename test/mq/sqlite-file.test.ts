/**
 * The SQLite store's file: where it lives, its permissions, its registry entry, and the files it
 * refuses (not a database, another application's database, a newer schema, a planted symlink).
 */

import {
  chownSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  watch,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCodes, isIpcError, listResources, MessageQueue } from '../../src/index.js';
import { Fixture } from '../conformance/harness.js';
import { directoryReaches, isolateRuntimeDir, watchdog } from '../helpers.js';
import { startFixture } from '../socket/child.js';
import { AS_NOBODY, canRunAsNobody, NOBODY } from '../support/other-user.js';

const Database = createRequire(import.meta.url)('better-sqlite3') as typeof BetterSqlite3;

const isRoot = process.getuid?.() === 0;
/** Root ignores a directory's mode: a test that needs a refused unlink runs its child as nobody. */
const canDropRoot = canRunAsNobody;

/** Resolves once `name` exists in `dir` (inotify, not polling). */
function appears(dir: string, name: string): Promise<void> {
  return new Promise((resolve) => {
    const watcher = watch(dir, () => {
      if (existsSync(join(dir, name))) done();
    });
    const done = () => {
      watcher.close();
      resolve();
    };
    if (existsSync(join(dir, name))) done();
  });
}

async function openError(name: string): Promise<unknown> {
  return MessageQueue.open(name).then(
    async (q) => {
      await q.close();
      return undefined;
    },
    (err) => err,
  );
}

describe('SQLite store file', () => {
  let rt: { dir: string; cleanup(): void };
  beforeEach(() => {
    rt = isolateRuntimeDir();
    mkdirSync(rt.dir, { recursive: true, mode: 0o700 });
  });
  afterEach(() => rt.cleanup());

  it('lives in the runtime directory, 0600 with its WAL even under umask 000, and is registered', async () => {
    const previous = process.umask(0);
    try {
      const q = await MessageQueue.open<string>('perm');
      await q.send('x');
      // A wait sets up the doorbell, whose socket directory must be private too. The wait parks
      // after a claim transaction finds nothing: watch for the directory instead of guessing when.
      const bells = join(rt.dir, '.mq-bells');
      const stop = new AbortController();
      const waiting = q.receive({ types: ['none'], signal: stop.signal }).catch(() => {});
      await watchdog(appears(rt.dir, '.mq-bells'), 30_000, 'the doorbell directory');
      // The consumer's bell socket is bound in the same turn as the directory is made.
      await watchdog(
        directoryReaches(bells, (files) => files.some((f) => f.endsWith('.sock'))),
        30_000,
        'the bell socket',
      );
      const [bell] = readdirSync(bells).filter((f) => f.endsWith('.sock'));
      expect(lstatSync(join(bells, bell!)).isSocket()).toBe(true);
      expect(lstatSync(join(bells, bell!)).mode & 0o777, 'bell socket').toBe(0o600);
      stop.abort();
      await waiting;
      expect(statSync(bells).mode & 0o777).toBe(0o700);
      const file = join(rt.dir, 'perm.mq.sqlite');
      for (const path of [file, `${file}-wal`, `${file}-shm`]) {
        expect(statSync(path).mode & 0o777, path).toBe(0o600);
      }
      expect(listResources()).toContainEqual(
        expect.objectContaining({ kind: 'queue', name: 'perm', path: file, ownerAlive: true }),
      );
      await q.close();
    } finally {
      process.umask(previous);
    }
  });

  it('a delivered message loses its ttl when it comes back, so only messages that may still expire are indexed', async () => {
    const q = await MessageQueue.open<string>('ttl', { visibilityTimeoutMs: 60_000 });
    await q.send('nacked', { ttlMs: 60_000 });
    await q.send('acked', { ttlMs: 60_000 });
    await q.send('prefetched', { ttlMs: 60_000 });
    await (await q.receive({ timeout: 5000 })).nack({ delayMs: 60_000 });
    for await (const m of q.consume({ prefetch: 2 })) {
      expect(m.body).toBe('acked');
      await m.ack();
      break; // 'prefetched' was leased ahead and is given back unread: its ttl still holds
    }
    await q.close();
    const db = new Database(join(rt.dir, 'ttl.mq.sqlite'), { readonly: true });
    const rows = db.prepare('SELECT attempts, expires IS NULL AS cleared FROM messages ORDER BY seq').all();
    db.close();
    expect(rows).toEqual([
      { attempts: 1, cleared: 1 },
      { attempts: 0, cleared: 0 },
    ]);
  });

  it('refuses a file that is not a database, and leaves it as it was', async () => {
    const file = join(rt.dir, 'junk.mq.sqlite');
    const junk = Buffer.alloc(8192, 'not a database. ');
    writeFileSync(file, junk, { mode: 0o600 });
    const err = await openError('junk');
    expect(isIpcError(err, ErrorCodes.INCOMPATIBLE)).toBe(true);
    expect(readFileSync(file).equals(junk)).toBe(true);
  });

  it("refuses another application's SQLite database without changing it", async () => {
    const file = join(rt.dir, 'foreign.mq.sqlite');
    const foreign = new Database(file);
    foreign.exec('CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance INTEGER)');
    foreign.close();
    const err = await openError('foreign');
    expect(isIpcError(err, ErrorCodes.INCOMPATIBLE)).toBe(true);
    expect((err as Error).message).toMatch(/another application/);
    const check = new Database(file, { readonly: true });
    expect(check.pragma('journal_mode', { simple: true })).toBe('delete');
    expect(check.prepare('SELECT name FROM sqlite_schema').pluck().all()).toEqual(['accounts']);
    check.close();
  });

  it('refuses a queue file written by a newer schema version', async () => {
    const q = await MessageQueue.open('future');
    await q.close();
    const db = new Database(join(rt.dir, 'future.mq.sqlite'));
    db.pragma('user_version = 99');
    db.close();
    const err = await openError('future');
    expect(isIpcError(err, ErrorCodes.INCOMPATIBLE)).toBe(true);
    expect((err as Error).message).toMatch(/schema version 99/);
  });

  it('migrates a queue file of schema version 1 on open, keeping its messages', async () => {
    const q = await MessageQueue.open<string>('older', { maxAttempts: 3 });
    await q.send('kept', { id: 'k1' });
    await q.close();
    // What version 1 wrote: no max_attempts column.
    const db = new Database(join(rt.dir, 'older.mq.sqlite'));
    db.exec('ALTER TABLE messages DROP COLUMN max_attempts');
    db.pragma('user_version = 1');
    db.close();
    const reopened = await MessageQueue.open<string>('older', { maxAttempts: 1 });
    const m = await reopened.receive({ timeout: 10_000 });
    expect([m.id, m.body, m.attempts]).toEqual(['k1', 'kept', 1]);
    await m.nack();
    expect((await reopened.deadLetters()).map((d) => d.id)).toEqual(['k1']);
    await reopened.close();
    const check = new Database(join(rt.dir, 'older.mq.sqlite'), { readonly: true });
    expect(check.pragma('user_version', { simple: true })).toBe(2);
    check.close();
  });

  it('refuses to follow a planted symlink', async () => {
    const target = join(rt.dir, '..', 'elsewhere.db');
    writeFileSync(target, '');
    symlinkSync(target, join(rt.dir, 'linked.mq.sqlite'));
    const err = await openError('linked');
    expect(isIpcError(err, ErrorCodes.UNSAFE_PATH)).toBe(true);
    expect(statSync(target).size).toBe(0);
    expect(lstatSync(join(rt.dir, 'linked.mq.sqlite')).isSymbolicLink()).toBe(true);
  });

  it('refuses a directory where the queue file should be (ERR_IPC_UNSAFE_PATH), leaving it alone', async () => {
    mkdirSync(join(rt.dir, 'folder.mq.sqlite'));
    const err = await openError('folder');
    expect(isIpcError(err, ErrorCodes.UNSAFE_PATH)).toBe(true);
    expect((err as Error).message).toContain('not a regular file');
    expect(lstatSync(join(rt.dir, 'folder.mq.sqlite')).isDirectory()).toBe(true);
  });

  it('a planted .mq-bells symlink: a waiting consumer and remove() fail with ERR_IPC_UNSAFE_PATH, touching nothing outside', async () => {
    const outside = mkdtempSync(join(tmpdir(), 'ipckit-outside-'));
    try {
      // A "bell" named after a pid that cannot exist: removeDeadBells would take it for a dead one.
      const pidMax = Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8'));
      const decoy = `${(pidMax + 1).toString(36)}-decoy.sock`;
      writeFileSync(join(outside, decoy), 'precious');
      symlinkSync(outside, join(rt.dir, '.mq-bells'));
      const q = await MessageQueue.open<string>('belled');
      await q.send('kept');
      const err = await q.receive({ types: ['none'], timeout: 2000 }).catch((e: unknown) => e);
      expect(isIpcError(err, ErrorCodes.UNSAFE_PATH), String(err)).toBe(true);
      await q.close();
      const removal = await MessageQueue.remove('belled').catch((e: unknown) => e);
      expect(isIpcError(removal, ErrorCodes.UNSAFE_PATH), String(removal)).toBe(true);
      expect(readdirSync(outside)).toEqual([decoy]);
      expect(readFileSync(join(outside, decoy), 'utf8')).toBe('precious');
      // Refused before anything was removed: the queue is still there.
      rmSync(join(rt.dir, '.mq-bells'));
      const again = await MessageQueue.open<string>('belled');
      expect((await again.receive({ timeout: 2000 })).body).toBe('kept');
      await again.close();
    } finally {
      rmSync(outside, { recursive: true, force: true });
    }
  });

  it('a wake-up that could not start (planted .mq-bells) is started again by the next wait', async () => {
    const outside = mkdtempSync(join(tmpdir(), 'ipckit-outside-'));
    try {
      symlinkSync(outside, join(rt.dir, '.mq-bells'));
      const q = await MessageQueue.open<string>('rebelled');
      const err = await q.receive({ timeout: 2000 }).catch((e: unknown) => e);
      expect(isIpcError(err, ErrorCodes.UNSAFE_PATH), String(err)).toBe(true);
      rmSync(join(rt.dir, '.mq-bells'));
      // The same handle waits again, and another handle's send wakes it.
      const waiting = q.receive({ timeout: 20_000 });
      const producer = await MessageQueue.open<string>('rebelled');
      await producer.send('woken');
      expect((await watchdog(waiting, 20_000, 'the second wait')).body).toBe('woken');
      await producer.close();
      await q.close();
      expect(readdirSync(outside)).toEqual([]);
    } finally {
      rmSync(outside, { recursive: true, force: true });
    }
  });

  it("a send stuck behind another process's write lock still honours its timeout and signal; close() ends", async () => {
    const q = await MessageQueue.open<string>('locked');
    await q.send('warm-up');
    const holder = new Fixture('mq-hold-write-lock.ts', [join(rt.dir, 'locked.mq.sqlite')]);
    try {
      expect(await holder.waitFor('locked')).toBe('locked');
      const timedOut = await watchdog(
        q.send('x', { timeout: 100 }).catch((e) => e),
        10_000,
        'timeout',
      );
      expect(isIpcError(timedOut, ErrorCodes.TIMEOUT)).toBe(true);
      const aborted = await watchdog(
        q.send('y', { signal: AbortSignal.timeout(100) }).catch((e) => e),
        10_000,
        'abort',
      );
      expect(isIpcError(aborted, ErrorCodes.ABORTED)).toBe(true);
    } finally {
      holder.kill('SIGKILL');
    }
    await holder.exit();
    // Their outcome was unknown when they rejected (the docs say so): either may have been stored
    // once the lock was free; the one sent before them was.
    const bodies = (await q.peek(10)).map((m) => m.body);
    expect(bodies[0]).toBe('warm-up');
    await watchdog(q.close(), 10_000, 'close');
  });

  it('close() while a claim waits for the write lock gives its messages back uncounted', async () => {
    const admin = await MessageQueue.open<number>('claimed');
    await admin.sendBatch([1, 2, 3, 4, 5].map((body) => ({ body })));
    const q = await MessageQueue.open<number>('claimed', { maxAttempts: 1 });
    const holder = new Fixture('mq-hold-write-lock.ts', [join(rt.dir, 'claimed.mq.sqlite')]);
    let closing: Promise<void> | undefined;
    try {
      expect(await holder.waitFor('locked')).toBe('locked');
      const first = q.consume({ prefetch: 8 })[Symbol.asyncIterator]().next();
      // The consumer's claim starts on the next turn of the event loop and then waits for the lock.
      for (let turn = 0; turn < 3; turn++) await new Promise((resolve) => setImmediate(resolve));
      closing = q.close();
      holder.kill('SIGKILL');
      await holder.exit();
      await watchdog(closing, 10_000, 'close');
      expect(await watchdog(first, 10_000, 'the consume loop')).toEqual({ done: true, value: undefined });
    } finally {
      holder.kill('SIGKILL');
    }
    // Whatever that claim took came back as never delivered: nothing leased to nobody, no attempt
    // spent (with maxAttempts 1, a counted attempt would have made each a dead letter unseen).
    expect(await admin.stats()).toMatchObject({ ready: 5, inflight: 0, dead: 0 });
    const received = [];
    for (let i = 0; i < 5; i++) received.push(await watchdog(admin.receive(), 10_000, `message ${i}`));
    expect(received.map((m) => [m.body, m.attempts])).toEqual([1, 2, 3, 4, 5].map((body) => [body, 1]));
    for (const m of received) await m.ack();
    await admin.close();
  });

  it('is created once when many processes open a new queue at the same moment', async () => {
    const producers = Array.from({ length: 6 }, (_, i) => new Fixture('mq-send.ts', ['race', String(i)]));
    for (const p of producers) expect(await p.waitFor('sent ')).toMatch(/^sent /);
    for (const p of producers) expect((await p.exit()).code).toBe(0);
    const q = await MessageQueue.open<number>('race');
    expect((await q.stats()).ready).toBe(6);
    await q.close();
  });

  it('removes the file, its WAL and its registry entry', async () => {
    const q = await MessageQueue.open('gone');
    await q.send('x');
    await q.close();
    expect(await MessageQueue.remove('gone')).toBe(true);
    for (const suffix of ['', '-wal', '-shm'])
      expect(existsSync(join(rt.dir, `gone.mq.sqlite${suffix}`))).toBe(false);
    expect(listResources().some((r) => r.kind === 'queue' && r.name === 'gone')).toBe(false);
    expect(await MessageQueue.remove('gone')).toBe(false);
  });

  it.skipIf(isRoot && !canDropRoot)(
    'remove() where the runtime directory refuses the unlink: ERR_IPC_PERMISSION, and the queue left whole',
    async () => {
      // The child gets a runtime directory of its own, which it owns (as nobody, when we are root).
      const base = mkdtempSync(join(tmpdir(), 'ipckit-ro-'));
      try {
        if (isRoot) chownSync(base, NOBODY, NOBODY);
        const child = startFixture('mq-remove-readonly.ts', [], {
          command: isRoot ? [...AS_NOBODY] : undefined,
          env: { IPCKIT_DIR: join(base, 'rt'), HOME: base },
        });
        const result = JSON.parse(await child.line('result', 30_000));
        expect(result.error).toMatchObject({ ipc: true, code: ErrorCodes.PERMISSION });
        // Nothing half removed: the file with its message and the registry entry are both there,
        // and a retry once the directory is writable removes both.
        expect(result).toMatchObject({ file: true, registered: true, ready: 1, retried: true });
        expect(result.after).toEqual({ file: false, registered: false });
        expect((await child.exited).code).toBe(0);
      } finally {
        rmSync(base, { recursive: true, force: true });
      }
    },
  );

  it('keeps queues of different runtime directories apart', async () => {
    const a = await MessageQueue.open<string>('same');
    await a.send('in a');
    await a.close();
    const other = isolateRuntimeDir();
    try {
      const b = await MessageQueue.open<string>('same');
      expect((await b.stats()).ready).toBe(0);
      await b.close();
    } finally {
      other.cleanup();
      process.env.IPCKIT_DIR = rt.dir;
    }
    const again = await MessageQueue.open<string>('same');
    expect((await again.stats()).ready).toBe(1);
    await again.close();
  });
});
