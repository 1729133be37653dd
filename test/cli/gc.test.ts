import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCodes, Fifo, isIpcError, SharedMemory } from '../../src/index.js';
import { kernelPrefix } from '../../src/shm/kernel-name.js';
import { createNamed, unmapSegment } from '../../src/shm/mapping.js';
import { isolateRuntimeDir, watchdog } from '../helpers.js';
import { killAll, removeShmObjects, startFixture, succeeded } from '../sync/children.js';
import { runCli, runCliJson } from './run-cli.js';

interface GcJson {
  dryRun: boolean;
  removed: { kind: string; name: string; path?: string; owner: { pid: number }; source: string }[];
  failed: { kind: string; name: string; error: string }[];
}

let runtime: ReturnType<typeof isolateRuntimeDir>;
beforeEach(() => {
  runtime = isolateRuntimeDir();
});
afterEach(async () => {
  await killAll();
  removeShmObjects();
  runtime.cleanup();
});

function segmentExists(name: string): boolean {
  try {
    SharedMemory.open(name).close();
    return true;
  } catch (err) {
    if (isIpcError(err, ErrorCodes.NOT_FOUND)) return false;
    throw err;
  }
}

/** One line on stderr, nothing on stdout. */
function oneLineError(run: { stdout: string; stderr: string }): string {
  expect(run.stdout).toBe('');
  const lines = run.stderr.split('\n').filter((line) => line !== '');
  expect(lines).toHaveLength(1);
  return lines[0]!;
}

/** Starts a process that creates segment `name` and waits; resolves once the segment exists. */
async function segmentOwner(name: string) {
  const owner = startFixture('shm-create-and-wait-for-kill.ts', [name]);
  await owner.line('created', 30_000);
  return owner;
}

describe('ipckit gc', () => {
  it('removes the segment of a creator killed with SIGKILL and keeps the one whose creator lives', {
    timeout: 120_000,
  }, async () => {
    const victim = await segmentOwner('victim');
    const survivor = await segmentOwner('survivor');
    victim.child.kill('SIGKILL');
    expect((await watchdog(victim.exited, 15_000, 'the victim to die')).signal).toBe('SIGKILL');

    const dry = await runCliJson<GcJson>(['gc', '--dry-run', '--json']);
    expect(dry.dryRun).toBe(true);
    expect(dry.removed.map((r) => `${r.kind} ${r.name} ${r.owner.pid}`)).toEqual([
      `shm victim ${victim.pid}`,
    ]);
    // A dry run removes nothing.
    expect(segmentExists('victim')).toBe(true);
    const listed = await runCliJson<{ name: string }[]>(['ls', '--json']);
    expect(listed.map((entry) => entry.name).sort()).toEqual(['survivor', 'victim']);
    const dryText = await runCli(['gc', '--dry-run']);
    expect(dryText.code).toBe(0);
    expect(dryText.stdout).toMatch(
      new RegExp(`^would remove shm victim \\(creator pid ${victim.pid} exited\\)$`, 'm'),
    );
    expect(segmentExists('victim')).toBe(true);

    const run = await runCli(['gc']);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^removed shm victim /m);
    expect(run.stdout).not.toContain('survivor');
    expect(segmentExists('victim')).toBe(false);
    expect(segmentExists('survivor')).toBe(true);
    const after = await runCliJson<{ name: string; ownerAlive: boolean }[]>(['ls', '--json']);
    expect(after).toEqual([expect.objectContaining({ name: 'survivor', ownerAlive: true })]);

    const again = await runCliJson<GcJson>(['gc', '--json']);
    expect(again).toEqual({ dryRun: false, removed: [], failed: [], inUse: [] });
    survivor.child.kill('SIGKILL');
  });

  it('keeps a FIFO made by `ipckit fifo create` unless given --kept', async () => {
    const created = await runCli(['fifo', 'create', 'inbox']);
    expect(created.code).toBe(0);
    const path = created.stdout.trim();
    const [entry] = await runCliJson<{ name: string; ownerAlive: boolean; kept: boolean }[]>([
      'ls',
      '--json',
    ]);
    expect(entry).toMatchObject({ name: 'inbox', ownerAlive: false, kept: true });

    expect(await runCliJson<GcJson>(['gc', '--json'])).toMatchObject({ removed: [], failed: [], inUse: [] });
    expect(existsSync(path)).toBe(true);

    const dry = await runCliJson<GcJson>(['gc', '--kept', '--dry-run', '--json']);
    expect(dry.removed.map((r) => `${r.kind} ${r.name}`)).toEqual(['fifo inbox']);
    expect(existsSync(path)).toBe(true);

    const removed = await runCliJson<GcJson>(['gc', '--kept', '--json']);
    expect(removed.removed).toEqual([expect.objectContaining({ kind: 'fifo', name: 'inbox', path })]);
    expect(existsSync(path)).toBe(false);
    expect(await runCliJson(['ls', '--json'])).toEqual([]);
    expect(readdirSync(join(runtime.dir, '.kept'))).toEqual([]);
  });

  it('leaves a file that took the place of a dead creator’s FIFO, and says why', async () => {
    const created = await runCli(['fifo', 'create', 'data']);
    const path = created.stdout.trim();
    rmSync(path);
    writeFileSync(path, 'not ours to remove');
    for (const args of [
      ['gc', '--kept', '--dry-run', '--json'],
      ['gc', '--kept', '--json'],
    ]) {
      const run = await runCli(args);
      expect(run.code).toBe(1);
      const report = JSON.parse(run.stdout) as GcJson;
      expect(report.removed).toEqual([]);
      expect(report.failed).toEqual([expect.objectContaining({ kind: 'fifo', name: 'data' })]);
      expect(readFileSync(path, 'utf8')).toBe('not ours to remove');
    }
  });

  it('drops the kept mark of a FIFO that a program removed itself', async () => {
    expect((await runCli(['fifo', 'create', 'outbox'])).code).toBe(0);
    expect(readdirSync(join(runtime.dir, '.kept'))).toHaveLength(1);
    await Fifo.unlink('outbox');
    expect(await runCliJson<GcJson>(['gc', '--json'])).toEqual({
      dryRun: false,
      removed: [],
      failed: [],
      inUse: [],
    });
    expect(readdirSync(join(runtime.dir, '.kept'))).toEqual([]);
  });

  it('leaves a dead creator’s queue alone unless given --queues', async () => {
    const producer = startFixture('mq-send.ts', ['orders', '{"n":1}']);
    await succeeded(producer, 30_000, 'the producer');
    const queuePath = (await runCliJson<{ kind: string; path: string }[]>(['ls', '--json'])).find(
      (entry) => entry.kind === 'queue',
    )?.path;
    expect(queuePath).toBeDefined();

    expect((await runCliJson<GcJson>(['gc', '--json'])).removed).toEqual([]);
    expect(existsSync(queuePath!)).toBe(true);

    const result = await runCliJson<GcJson>(['gc', '--queues', '--json']);
    expect(result.removed).toEqual([expect.objectContaining({ kind: 'queue', name: 'orders' })]);
    expect(existsSync(queuePath!)).toBe(false);
    expect(await runCliJson(['ls', '--json'])).toEqual([]);
  });

  it('rejects a bad command line with one line and exit code 2', async () => {
    const cases: [string[], RegExp][] = [
      [['gc', '--bogus'], /^ipckit gc: unknown option '--bogus'/],
      [['gc', 'extra'], /^ipckit gc: too many arguments/],
    ];
    for (const [args, pattern] of cases) {
      const run = await runCli(args);
      expect(run.code, args.join(' ')).toBe(2);
      expect(oneLineError(run)).toMatch(pattern);
    }
  });

  it('has help', async () => {
    const run = await runCli(['gc', '--help']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('Usage: ipckit gc');
    expect(run.stdout).toContain('--dry-run');
  });

  it("is not stopped or steered by what another user plants under this directory's /dev/shm names", async () => {
    const prefix = `/dev/shm${kernelPrefix()}`;
    // A FIFO (opening it to read a header would block gc forever), another user's file whose
    // header names a dead creator, and a name with terminal escapes in it.
    const fifo = `${prefix}shm.planted`;
    execFileSync('mkfifo', ['-m', '666', fifo]);
    const foreign = createNamed(`${kernelPrefix()}shm.foreign`, 'test', 0, 64, 0o644);
    new Int32Array(foreign.header)[6] = 0x7ffffffe;
    unmapSegment(foreign);
    chownSync(`${prefix}shm.foreign`, 65534, 65534);
    const escapes = `${prefix}shm.\x1b[2J\x1b[31mFAKE`;
    writeFileSync(escapes, '');
    try {
      const run = await runCli(['gc'], { ms: 20_000 });
      expect(run.code).toBe(0);
      expect(run.stdout).not.toContain('\x1b');
      expect(run.stdout).toContain('nothing to remove');
      expect(existsSync(fifo) && existsSync(`${prefix}shm.foreign`) && existsSync(escapes)).toBe(true);
    } finally {
      for (const path of [fifo, `${prefix}shm.foreign`, escapes]) rmSync(path, { force: true });
    }
  });
});
