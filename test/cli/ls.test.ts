import { execFileSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Fifo, MessageQueue, SharedMemory } from '../../src/index.js';
import { isolateRuntimeDir } from '../helpers.js';
import { runCli, runCliJson } from './run-cli.js';

interface LsJsonEntry {
  kind: string;
  name: string;
  path?: string;
  owner: { pid: number; startTime: number };
  ownerAlive: boolean;
  createdAt: string;
  ageMs: number;
  kept: boolean;
  sizeBytes?: number;
  depth?: number;
}

let runtime: ReturnType<typeof isolateRuntimeDir>;
beforeEach(() => {
  runtime = isolateRuntimeDir();
});
afterEach(() => runtime.cleanup());

describe('ipckit ls', () => {
  it('prints [] for an empty runtime directory', async () => {
    expect(await runCliJson(['ls', '--json'])).toEqual([]);
    const run = await runCli(['ls']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('no named resources');
  });

  it('shows a FIFO made by `ipckit fifo create` with its owner, who has exited', async () => {
    const created = await runCli(['fifo', 'create', 'inbox']);
    expect(created.code).toBe(0);
    const entries = await runCliJson<LsJsonEntry[]>(['ls', '--json']);
    expect(entries).toHaveLength(1);
    const [entry] = entries;
    expect(entry).toMatchObject({ kind: 'fifo', name: 'inbox', path: join(runtime.dir, 'inbox.fifo') });
    expect(entry!.owner.pid).toBeGreaterThan(0);
    expect(entry!.owner.pid).not.toBe(process.pid);
    // The creator was the short-lived `ipckit fifo create` process.
    expect(entry!.ownerAlive).toBe(false);
    // ...but it was made to outlive that process: `ipckit gc` leaves it (see gc.test.ts).
    expect(entry!.kept).toBe(true);
    expect(Number.isNaN(Date.parse(entry!.createdAt))).toBe(false);
    expect(entry!.ageMs).toBeGreaterThanOrEqual(0);
  });

  it('shows a live owner as alive, in the table and in JSON', async () => {
    await Fifo.create('mine');
    const entries = await runCliJson<LsJsonEntry[]>(['ls', '--json']);
    expect(entries).toEqual([expect.objectContaining({ name: 'mine', ownerAlive: true })]);
    expect(entries[0]!.owner.pid).toBe(process.pid);
    const run = await runCli(['ls']);
    expect(run.code).toBe(0);
    const row = run.stdout.split('\n').find((line) => line.includes('mine'));
    expect(row).toMatch(new RegExp(`^fifo\\s+mine\\s+${process.pid}\\s+alive\\s`));
    // No color codes when stdout is not a terminal.
    expect(run.stdout).not.toContain('\u001b[');
  });

  it('shows the size of a segment and the ready messages of a queue', async () => {
    const segment = SharedMemory.create('frames', { size: 64 * 1024 });
    const queue = await MessageQueue.open('orders');
    try {
      await queue.sendBatch([{ body: 1 }, { body: 2 }, { body: 3 }]);
      const entries = await runCliJson<LsJsonEntry[]>(['ls', '--json']);
      expect(entries.find((e) => e.kind === 'shm')).toMatchObject({ name: 'frames', sizeBytes: 65536 });
      expect(entries.find((e) => e.kind === 'queue')).toMatchObject({ name: 'orders', depth: 3 });
      const run = await runCli(['ls']);
      expect(run.code).toBe(0);
      expect(run.stdout).toMatch(/^KIND\s+NAME\s+SIZE\s+OWNER\s+STATE\s+AGE\s+PATH$/m);
      expect(run.stdout).toMatch(new RegExp(`^shm\\s+frames\\s+64 KiB\\s+${process.pid}\\s+alive\\s`, 'm'));
      expect(run.stdout).toMatch(
        new RegExp(`^queue\\s+orders\\s+3 ready\\s+${process.pid}\\s+alive\\s`, 'm'),
      );
    } finally {
      await queue.close();
      await MessageQueue.remove('orders');
      segment.close();
      segment.unlink();
    }
  });

  it('a kept mark that is not a mark (null, {}, wrong types) is ignored by ls, inspect and gc', async () => {
    expect((await runCli(['fifo', 'create', 'inbox'])).code).toBe(0);
    for (const text of ['null', '{}', '{"owner":null}', '"text"']) {
      writeFileSync(join(runtime.dir, '.kept', 'fifo.inbox.json'), text);
      const ls = await runCli(['ls', '--json']);
      expect(ls.stderr, text).toBe('');
      expect(ls.code, text).toBe(0);
      expect((JSON.parse(ls.stdout) as LsJsonEntry[]).map((e) => [e.name, e.kept])).toEqual([
        ['inbox', false],
      ]);
      const inspect = await runCli(['inspect', 'inbox']);
      expect(inspect.stderr, text).toBe('');
      expect(inspect.code, text).toBe(0);
      // Not protected by a mark ipckit did not write: its creator exited, so gc would remove it.
      const gc = await runCli(['gc', '--dry-run']);
      expect(gc.stderr, text).toBe('');
      expect(gc.code, text).toBe(0);
      expect(gc.stdout, text).toContain('would remove fifo inbox');
    }
  });

  it('a FIFO planted among the manifests and kept marks does not make ls, inspect or gc hang', async () => {
    expect((await runCli(['fifo', 'create', 'inbox'])).code).toBe(0);
    // Opening a FIFO for reading waits for a writer, which never comes.
    execFileSync('mkfifo', [join(runtime.dir, '.registry', 'fifo.planted.json')]);
    rmSync(join(runtime.dir, '.kept', 'fifo.inbox.json'));
    execFileSync('mkfifo', [join(runtime.dir, '.kept', 'fifo.inbox.json')]);
    for (const args of [
      ['ls', '--json'],
      ['inspect', 'inbox'],
      ['gc', '--dry-run'],
    ]) {
      const run = await runCli(args, { ms: 30_000 });
      expect(run.stderr, args.join(' ')).toBe('');
      expect(run.code, args.join(' ')).toBe(0);
    }
    const entries = await runCliJson<LsJsonEntry[]>(['ls', '--json']);
    expect(entries.map((e) => [e.name, e.kept])).toEqual([['inbox', false]]);
  });
});
