/**
 * Disk faults under the SQLite store: a full disk (a small tmpfs) and failing fsyncs (strace fault
 * injection) give a typed error and never a false success, and a retry under the same id is
 * deduplicated whether or not the failed commit reached the disk. Needs root for the mount and
 * strace for the injection; each test says why it is skipped where those are missing.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCodes, isIpcError, MessageQueue } from '../../src/index.js';
import { fixtureArgs, isolateRuntimeDir } from '../helpers.js';

function whyNoTmpfs(): string | undefined {
  if (process.platform !== 'linux') return 'tmpfs mounts are Linux only';
  if (process.getuid?.() !== 0) return 'mounting a tmpfs needs root';
  const probe = mkdtempSync(join(tmpdir(), 'ipckit-mount-probe-'));
  try {
    const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', probe]);
    if (mounted.status !== 0) return `mount -t tmpfs failed: ${mounted.stderr?.toString().trim()}`;
    spawnSync('umount', [probe]);
    return undefined;
  } finally {
    rmSync(probe, { recursive: true, force: true });
  }
}

function whyNoStrace(): string | undefined {
  const probe = spawnSync('strace', ['-f', '-qq', '-o', '/dev/null', 'true']);
  if (probe.error) return 'strace is not installed (apt-get install strace)';
  if (probe.status !== 0) return `strace cannot trace here: ${probe.stderr?.toString().trim()}`;
  return undefined;
}

const noTmpfs = whyNoTmpfs();
const noStrace = whyNoStrace();

describe('SQLite store disk faults', () => {
  let rt: { dir: string; cleanup(): void };
  beforeEach(() => {
    rt = isolateRuntimeDir();
  });
  afterEach(() => rt.cleanup());

  it.skipIf(noTmpfs !== undefined)(
    `reports a full disk and never a false success${noTmpfs ? ` (skipped: ${noTmpfs})` : ''}`,
    async () => {
      const mountPoint = mkdtempSync(join(tmpdir(), 'ipckit-full-'));
      expect(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m,mode=0700', 'tmpfs', mountPoint]).status).toBe(
        0,
      );
      const previous = process.env.IPCKIT_DIR;
      process.env.IPCKIT_DIR = join(mountPoint, 'rt');
      try {
        const q = await MessageQueue.open<Uint8Array>('full', { codec: 'raw' });
        const confirmed: string[] = [];
        let failure: unknown;
        const body = new Uint8Array(16 * 1024).fill(7);
        for (let i = 0; i < 1000 && failure === undefined; i++) {
          try {
            confirmed.push(await q.send(body, { id: `m${i}` }));
          } catch (err) {
            failure = err;
          }
        }
        expect(isIpcError(failure, ErrorCodes.SYSTEM)).toBe(true);
        expect((failure as Error).message).toMatch(/disk is full/);
        expect(((failure as Error).cause as { code?: string }).code).toBe('SQLITE_FULL');
        await q.close();
        // Room again: every send that resolved is there; the failed one at most as an extra.
        expect(spawnSync('mount', ['-o', 'remount,size=16m', mountPoint]).status).toBe(0);
        const after = await MessageQueue.open<Uint8Array>('full', { codec: 'raw' });
        const ids = new Set((await after.peek(10_000)).map((m) => m.id));
        for (const id of confirmed) expect(ids.has(id)).toBe(true);
        expect(ids.size - confirmed.length).toBeLessThanOrEqual(1);
        await after.close();
      } finally {
        process.env.IPCKIT_DIR = previous;
        spawnSync('umount', ['-l', mountPoint]);
        rmSync(mountPoint, { recursive: true, force: true });
      }
    },
  );

  it.skipIf(noStrace !== undefined)(
    `reports a failed fsync as an unknown outcome; a retry with the same id leaves one copy${noStrace ? ` (skipped: ${noStrace})` : ''}`,
    async () => {
      // The file exists and is initialized before the faults start: only the send's commit fails.
      const q = await MessageQueue.open<string>('eio', { durability: 'fsync' });
      const durable = JSON.stringify({ durability: 'fsync' });
      const child = spawnSync(
        'strace',
        [
          '-f',
          '-qq',
          '-o',
          '/dev/null',
          '-e',
          'trace=fsync,fdatasync',
          '-e',
          'inject=fsync,fdatasync:error=EIO',
          process.execPath,
          ...fixtureArgs('mq-send.ts', 'eio', '"payment 42"', '{"id":"pay-42"}', durable),
        ],
        { encoding: 'utf8', env: process.env, timeout: 60_000 },
      );
      const line = child.stdout.split('\n').find((l) => l.startsWith('failed') || l.startsWith('sent'));
      expect(line, child.stderr).toMatch(/^failed ERR_IPC_SYSTEM SQLITE_IOERR/);
      // The retry, without faults: deduplicated whether or not the failed commit reached the disk.
      expect(await q.send('payment 42', { id: 'pay-42' })).toBe('pay-42');
      const stats = await q.stats();
      expect(stats.ready).toBe(1);
      const m = await q.receive({ timeout: 10_000 });
      expect([m.id, m.body]).toEqual(['pay-42', 'payment 42']);
      await m.ack();
      await q.close();
    },
  );
});
