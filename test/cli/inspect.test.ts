import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Fifo, MessageQueue, Mutex, SharedMemory } from '../../src/index.js';
import { isolateRuntimeDir } from '../helpers.js';
import { removeShmObjects } from '../sync/children.js';
import { runCli, runCliJson } from './run-cli.js';

interface InspectJson {
  kind: string;
  name: string;
  path?: string;
  owner: { pid: number; startTime: number };
  ownerAlive: boolean;
  kept: boolean;
  ageMs: number;
  file?: { path: string; exists: boolean; type?: string; mode?: string };
  details: Record<string, unknown>;
}

let runtime: ReturnType<typeof isolateRuntimeDir>;
const cleanups: (() => unknown)[] = [];
beforeEach(() => {
  runtime = isolateRuntimeDir();
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  removeShmObjects();
  runtime.cleanup();
});

/** One line on stderr, nothing on stdout. */
function oneLineError(run: { stdout: string; stderr: string }): string {
  expect(run.stdout).toBe('');
  const lines = run.stderr.split('\n').filter((line) => line !== '');
  expect(lines).toHaveLength(1);
  expect(run.stderr).not.toMatch(/\n\s+at /);
  return lines[0]!;
}

describe('ipckit inspect', () => {
  it('shows a segment: owner alive, size, the creator in its header, the /dev/shm file', async () => {
    const segment = SharedMemory.create('frames', { size: 8192 });
    cleanups.push(
      () => segment.unlink(),
      () => segment.close(),
    );
    const result = await runCliJson<InspectJson>(['inspect', 'frames', '--json']);
    expect(result).toMatchObject({ kind: 'shm', name: 'frames', ownerAlive: true, kept: false });
    expect(result.owner.pid).toBe(process.pid);
    expect(result.details).toMatchObject({
      sizeBytes: 8192,
      headerCreator: { pid: process.pid },
      headerMatchesRegistry: true,
    });
    expect(result.file).toMatchObject({ exists: true, type: 'file', mode: '600' });

    const run = await runCli(['inspect', 'frames']);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^kind\s+shm$/m);
    expect(run.stdout).toMatch(/^state\s+alive$/m);
    expect(run.stdout).toMatch(/^sizeBytes\s+8192$/m);
    expect(run.stdout).toMatch(new RegExp(`^owner\\s+pid ${process.pid} `, 'm'));
  });

  it('shows a queue with its stats', async () => {
    const queue = await MessageQueue.open<{ n: number }>('orders');
    cleanups.push(
      () => MessageQueue.remove('orders'),
      () => queue.close(),
    );
    await queue.sendBatch([
      { body: { n: 1 }, priority: 1 },
      { body: { n: 2 }, priority: 7, type: 'email' },
      { body: { n: 3 }, priority: 7 },
    ]);
    const held = await queue.receive({ timeout: 10_000 });
    const result = await runCliJson<InspectJson>(['inspect', 'orders', '--json']);
    expect(result).toMatchObject({ kind: 'queue', name: 'orders', ownerAlive: true });
    expect(result.details).toMatchObject({ ready: 2, inflight: 1, dead: 0, delayed: 0 });
    expect(result.file).toMatchObject({ exists: true, type: 'file' });
    await held.ack();

    const run = await runCli(['inspect', 'orders']);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^ready\s+2$/m);
    expect(run.stdout).toMatch(/^inflight\s+0$/m);
  });

  it('shows whether a mutex is locked', async () => {
    const mutex = Mutex.create('jobs-lock');
    cleanups.push(
      () => mutex.unlink(),
      () => mutex.close(),
    );
    expect((await runCliJson<InspectJson>(['inspect', 'jobs-lock', '--json'])).details).toMatchObject({
      locked: false,
    });
    const guard = await mutex.lock();
    cleanups.push(() => guard.release());
    expect((await runCliJson<InspectJson>(['inspect', 'jobs-lock', '--json'])).details).toMatchObject({
      locked: true,
    });
  });

  it('an unknown name exits 1 with one line and ERR_IPC_NOT_FOUND', async () => {
    const run = await runCli(['inspect', 'nothing-here']);
    expect(run.code).toBe(1);
    expect(oneLineError(run)).toBe("ipckit inspect: no resource named 'nothing-here' (ERR_IPC_NOT_FOUND)");
  });

  it('a name shared by two kinds asks for --kind, which picks one', async () => {
    await Fifo.create('twin');
    cleanups.push(() => Fifo.unlink('twin'));
    const segment = SharedMemory.create('twin', { size: 64 });
    cleanups.push(
      () => segment.unlink(),
      () => segment.close(),
    );
    const run = await runCli(['inspect', 'twin']);
    expect(run.code).toBe(2);
    expect(oneLineError(run)).toMatch(/^ipckit inspect: 'twin' names 2 resources \(fifo, shm\): .*--kind/);

    const fifo = await runCliJson<InspectJson>(['inspect', 'twin', '--kind', 'fifo', '--json']);
    expect(fifo).toMatchObject({ kind: 'fifo', file: { exists: true, type: 'fifo' } });
    const shm = await runCliJson<InspectJson>(['inspect', 'twin', '-k', 'shm', '--json']);
    expect(shm.details).toMatchObject({ sizeBytes: 64 });
  });

  it('rejects a bad command line with one line and exit code 2', async () => {
    const cases: [string[], RegExp][] = [
      [['inspect'], /^ipckit inspect: missing required argument 'name'/],
      [['inspect', 'x', '--kind', 'bogus'], /^ipckit inspect: option .*--kind.* argument 'bogus' is invalid/],
      [['inspect', 'x', 'y'], /^ipckit inspect: too many arguments/],
      [['inspect', '../escape'], /^ipckit inspect: .*invalid name.*ERR_IPC_INVALID_NAME/],
    ];
    for (const [args, pattern] of cases) {
      const run = await runCli(args);
      expect(run.code, args.join(' ')).toBe(2);
      expect(oneLineError(run)).toMatch(pattern);
    }
  });

  it('has help', async () => {
    const run = await runCli(['inspect', '--help']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('Usage: ipckit inspect [options] <name>');
    expect(run.stdout).toContain('--kind');
  });
});
