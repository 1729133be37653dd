import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  rmSync,
  utimesSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  ErrorCodes,
  gcResources,
  isIpcError,
  listResources,
  MessageQueue,
  Mutex,
  SharedMemory,
} from '../../src/index.js';
import { kernelName, kernelPath } from '../../src/shm/kernel-name.js';
import { createNamed, unmapSegment } from '../../src/shm/mapping.js';
import { isolateEachTest, killWaitingConsumer, startFixture, succeeded } from '../sync/children.js';

const env = isolateEachTest();

function exists(open: () => { close(): void }): boolean {
  try {
    open().close();
    return true;
  } catch (err) {
    if (isIpcError(err, ErrorCodes.NOT_FOUND)) return false;
    throw err;
  }
}

describe('gcResources', () => {
  it('removes the segments and primitives of a dead creator and keeps a live one', async () => {
    const mine = SharedMemory.create('mine', { size: 64 });
    await succeeded(startFixture('shm-create-and-exit.ts', ['orphan', 'orphan-lock']), 20_000, 'creator');
    const dead = listResources().filter((r) => !r.ownerAlive);
    expect(dead.map((r) => `${r.kind}:${r.name}`).sort()).toEqual(['mutex:orphan-lock', 'shm:orphan']);

    const dry = gcResources({ dryRun: true });
    expect(dry.removed.map((r) => r.name).sort()).toEqual(['orphan', 'orphan-lock']);
    expect(exists(() => SharedMemory.open('orphan'))).toBe(true);

    const result = gcResources();
    expect(result.failed).toEqual([]);
    expect(result.removed.map((r) => `${r.kind}:${r.name}`).sort()).toEqual([
      'mutex:orphan-lock',
      'shm:orphan',
    ]);
    expect(exists(() => SharedMemory.open('orphan'))).toBe(false);
    expect(exists(() => Mutex.open('orphan-lock'))).toBe(false);
    expect(exists(() => SharedMemory.open('mine'))).toBe(true);
    expect(listResources().map((r) => r.name)).toEqual(['mine']);
    mine.close();
    mine.unlink();
  });

  it('refuses a dryRun that is not a boolean rather than removing anything', () => {
    expect(() => gcResources({ dryRun: 'yes' as never })).toThrow(TypeError);
    expect(() => gcResources({ dryRun: 0 as never })).toThrow(/options\.dryRun/);
    // A misspelt kind, or one kind where a list belongs, used to collect nothing, silently.
    expect(() => gcResources({ kinds: 'shm' as never })).toThrow(TypeError);
    expect(() => gcResources({ kinds: ['bogus' as never] })).toThrow(RangeError);
    expect(() => gcResources({ kinds: ['bogus' as never] })).toThrow(/options\.kinds: unknown kind bogus/);
    expect(() => gcResources({ keep: true as never })).toThrow(/options\.keep/);
  });

  it('finds an object whose creator died before registering it (orphan in /dev/shm)', () => {
    // A header naming a creator that is not running: pid 0x7ffffffe cannot exist.
    const kernel = kernelName('shm', 'unregistered', 'x');
    const segment = createNamed(kernel, 'test', 0, 64, 0o600);
    new Int32Array(segment.header)[6] = 0x7ffffffe;
    // Mapped by this live process, it is in use: left, and listed.
    expect(gcResources({ dryRun: true }).inUse).toEqual([
      { kind: 'shm', name: 'unregistered', pids: [process.pid] },
    ]);
    unmapSegment(segment);
    const result = gcResources();
    expect(result.removed).toEqual([
      expect.objectContaining({ kind: 'shm', name: 'unregistered', source: 'orphan' }),
    ]);
    expect(exists(() => SharedMemory.open('unregistered'))).toBe(false);
  });

  it('judges a creator dead when its pid is alive but started at another time (a reused pid)', () => {
    // Registered: the entry names this live process's pid with a start time it never had.
    const registered = SharedMemory.create('reused-registered', { size: 64 });
    const manifest = join(env.dir, '.registry', 'shm.reused-registered.json');
    const entry = JSON.parse(readFileSync(manifest, 'utf8'));
    entry.owner = { pid: process.pid, startTime: entry.owner.startTime + 12345 };
    writeFileSync(manifest, JSON.stringify(entry));
    // And its header, which gc reads again before removing (a live re-creator's would differ).
    const file = openSync(kernelPath(kernelName('shm', 'reused-registered', 'x')), 'r+');
    const start = Buffer.alloc(8);
    readSync(file, start, 0, 8, 32);
    start.writeDoubleLE(start.readDoubleLE(0) + 12345);
    writeSync(file, start, 0, 8, 32);
    closeSync(file);
    // Unregistered: the header names the same live pid with a wrong start time.
    const orphan = createNamed(kernelName('shm', 'reused-orphan', 'x'), 'test', 0, 64, 0o600);
    const header = new DataView(orphan.header);
    expect(header.getInt32(24, true)).toBe(process.pid);
    header.setFloat64(32, header.getFloat64(32, true) + 12345, true);
    expect(listResources().find((r) => r.name === 'reused-registered')?.ownerAlive).toBe(false);
    registered.close();
    unmapSegment(orphan);
    const result = gcResources();
    expect(result.removed.map((r) => `${r.name}:${r.source}`).sort()).toEqual([
      'reused-orphan:orphan',
      'reused-registered:registry',
    ]);
    expect(exists(() => SharedMemory.open('reused-registered'))).toBe(false);
    expect(exists(() => SharedMemory.open('reused-orphan'))).toBe(false);
  });

  it("removes the doorbell socket of a queue consumer killed with SIGKILL, and keeps a live one's", async () => {
    const bells = join(env.dir, '.mq-bells');
    const q = await MessageQueue.open('jobs');
    const stop = new AbortController();
    const mine = q.receive({ signal: stop.signal }).catch(() => {});
    const consumer = await killWaitingConsumer('jobs', bells, 2);
    const left = readdirSync(bells);
    expect(left).toHaveLength(2);
    const theirs = left.find((file) => file.startsWith(`${consumer.toString(36)}-`));
    expect(theirs).toBeDefined();

    expect(gcResources({ dryRun: true }).removed).toEqual([
      expect.objectContaining({ kind: 'socket', name: `.mq-bells/${theirs}`, source: 'orphan' }),
    ]);
    expect(readdirSync(bells)).toHaveLength(2);
    const result = gcResources();
    expect(result.failed).toEqual([]);
    expect(result.removed.map((r) => r.name)).toEqual([`.mq-bells/${theirs}`]);
    expect(readdirSync(bells)).toEqual(left.filter((file) => file !== theirs));
    stop.abort();
    await mine;
    await q.close();
    await MessageQueue.remove('jobs');
  });

  it("leaves a dead creator's lock and segment while a live process maps them, and lists them in inUse", async () => {
    await succeeded(startFixture('shm-create-and-exit.ts', ['board', 'board-lock']), 20_000, 'creator');
    // This process uses the lock whose creator exited: removing its name would let the next
    // opener make a second lock, and two processes would both hold "the" lock.
    const lock = Mutex.open('board-lock');
    const guard = lock.tryLock();
    expect(guard).toBeDefined();
    const result = gcResources();
    expect(result.inUse).toEqual([{ kind: 'mutex', name: 'board-lock', pids: [process.pid] }]);
    expect(result.removed.map((r) => r.name)).toEqual(['board']);
    const second = Mutex.openOrCreate('board-lock');
    expect(second.tryLock()).toBeUndefined();
    second.close();
    guard?.release();
    lock.close();
    expect(gcResources().removed.map((r) => r.name)).toEqual(['board-lock']);
  });

  it('does not remove a name a live process made anew while gc was deciding', async () => {
    await succeeded(
      startFixture('shm-create-and-exit.ts', ['restarted', 'restarted-lock']),
      20_000,
      'creator',
    );
    const result = gcResources({
      kinds: ['shm'],
      // Between gc's listing and its removal, a live process removes the name and makes it anew
      // (the usual restart), then unmaps it.
      keep: ({ name }) => {
        SharedMemory.unlink(name);
        SharedMemory.create(name, { size: 64 }).close();
        return false;
      },
    });
    expect(result.removed).toEqual([]);
    expect(listResources().find((r) => r.name === 'restarted')?.ownerAlive).toBe(true);
    expect(exists(() => SharedMemory.open('restarted'))).toBe(true);
  });

  it('does not remove a name a live process is making anew, its header still unwritten', async () => {
    await succeeded(startFixture('shm-create-and-exit.ts', ['remade', 'remade-lock']), 20_000, 'creator');
    const path = kernelPath(kernelName('shm', 'remade', 'remade'));
    const result = gcResources({
      kinds: ['shm'],
      // The dead creator's object went (removed by hand, say) but not its manifest; a live creator
      // has just made the name again, its header not yet written.
      keep: () => {
        rmSync(path);
        closeSync(openSync(path, 'wx', 0o600));
        return false;
      },
    });
    expect(result.removed).toEqual([]);
    expect(existsSync(path)).toBe(true);
    rmSync(path);
  });

  it('removes the manifest of a dead creator whose object is already gone', async () => {
    await succeeded(startFixture('shm-create-and-exit.ts', ['gone', 'gone-lock']), 20_000, 'creator');
    rmSync(kernelPath(kernelName('shm', 'gone', 'gone')));
    expect(gcResources({ kinds: ['shm'] }).removed.map((r) => r.name)).toEqual(['gone']);
    expect(listResources().some((r) => r.name === 'gone')).toBe(false);
  });

  it('acts only on manifests that name the path their kind and name give', () => {
    const outside = join(env.dir, '..', `precious-${process.pid}.txt`);
    writeFileSync(outside, 'keep me');
    try {
      const registry = join(env.dir, '.registry');
      mkdirSync(registry, { recursive: true, mode: 0o700 });
      const dead = { pid: 0x7ffffffe, startTime: 1 };
      const createdAt = new Date().toISOString();
      const forged = (kind: string, name: string, path: string) =>
        writeFileSync(
          join(registry, `${kind}.${name}.json`),
          JSON.stringify({ kind, name, path, owner: dead, createdAt }),
        );
      forged('queue', 'evil', outside);
      // A manifest whose file name is not its own, and one with a name ipckit never makes.
      writeFileSync(
        join(registry, 'queue.other.json'),
        JSON.stringify({ kind: 'queue', name: 'evil2', path: outside, owner: dead, createdAt }),
      );
      forged('fifo', 'a b', outside);
      const result = gcResources({ kinds: ['queue', 'fifo'] });
      expect(result.removed).toEqual([]);
      expect(result.failed).toEqual([
        { kind: 'queue', name: 'evil', error: expect.stringMatching(/manifest names another path/) },
      ]);
      expect(readFileSync(outside, 'utf8')).toBe('keep me');
    } finally {
      rmSync(outside, { force: true });
    }
  });

  it("removes a dead creator's queue with its WAL files", async () => {
    const wal = await MessageQueue.open('left');
    await wal.send({ n: 1 });
    const path = join(env.dir, 'left.mq.sqlite');
    // Its creator's manifest, as a killed creator leaves it; the WAL files stay as it left them.
    const manifest = join(env.dir, '.registry', 'queue.left.json');
    const entry = JSON.parse(readFileSync(manifest, 'utf8'));
    writeFileSync(manifest, JSON.stringify({ ...entry, owner: { pid: 0x7ffffffe, startTime: 1 } }));
    expect(readdirSync(env.dir).filter((f) => f.startsWith('left.'))).toContain('left.mq.sqlite-wal');
    await wal.close();
    writeFileSync(`${path}-wal`, 'x');
    writeFileSync(`${path}-shm`, 'x');
    expect(gcResources({ kinds: ['queue'] }).removed.map((r) => r.name)).toEqual(['left']);
    expect(readdirSync(env.dir).filter((f) => f.startsWith('left.'))).toEqual([]);
  });

  it('removes an object left without its header by a creator that died making it, once nobody is at work on it', () => {
    // Headerless objects: one untouched for two minutes, one just made (a creator may be at it).
    const abandoned = kernelPath(kernelName('shm', 'abandoned', 'x'));
    const fresh = kernelPath(kernelName('shm', 'fresh', 'x'));
    for (const path of [abandoned, fresh]) closeSync(openSync(path, 'w', 0o600));
    const past = new Date(Date.now() - 120_000);
    utimesSync(abandoned, past, past);
    const result = gcResources();
    expect(result.removed).toEqual([
      expect.objectContaining({
        kind: 'shm',
        name: 'abandoned',
        source: 'orphan',
        owner: { pid: 0, startTime: 0 },
      }),
    ]);
    expect(existsSync(abandoned)).toBe(false);
    expect(existsSync(fresh)).toBe(true);
    rmSync(fresh);
  });
});
