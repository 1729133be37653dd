import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isAlive } from '../../src/core/process-identity.js';
import { ErrorCodes, IpcError, Pool, TaskError } from '../../src/index.js';
import { START_GRACE } from '../../src/process/pool-worker-process.js';
import { watchProcess } from '../../src/shm/process-watch.js';
import { directoryReaches, fixture, isolateRuntimeDir, rejectionOf, watchdog } from '../helpers.js';
import { childrenOfThisProcess } from './proc-helpers.js';

let env: ReturnType<typeof isolateRuntimeDir>;
const pools: Pool<never, unknown>[] = [];
beforeEach(() => {
  env = isolateRuntimeDir();
});
afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.destroy()));
  env.cleanup();
});

function pool<In, Out>(task: string, opts: Parameters<typeof Pool.create>[1] = {}): Pool<In, Out> {
  const p = Pool.create<In, Out>(fixture(task), { size: 2, ...opts });
  pools.push(p as unknown as Pool<never, unknown>);
  return p;
}

describe("Pool over channel: 'shm'", () => {
  it('maps, runs large data in pieces, and replaces a crashed worker as over pipes', async () => {
    const squares = pool<number, number>('pool-square.ts', { channel: 'shm' });
    const items = Array.from({ length: 5000 }, (_, i) => i);
    expect(await watchdog(squares.map(items), 60_000, 'map')).toEqual(items.map((i) => i * i));
    // 3 MiB each way: more than a ring holds, so it crosses in pieces.
    const echo = pool<string, string>('pool-echo.ts', { channel: 'shm', size: 1 });
    const big = 'x'.repeat(3 * 1024 * 1024);
    expect(await watchdog(echo.run(big), 60_000, 'large echo')).toBe(big);

    const crashing = pool<string, number>('pool-crash.ts', { channel: 'shm', size: 1 });
    const first = await crashing.run('who');
    const segments = () =>
      readFileSync('/proc/self/maps', 'utf8')
        .split('\n')
        .filter((line) => line.includes('memfd:ipckit-anonymous')).length;
    const mapped = segments();
    const crash = crashing.run('crash');
    const behind = crashing.run('who');
    expect((await rejectionOf(watchdog(crash, 30_000, 'crash'))).code).toBe(ErrorCodes.PEER_GONE);
    const replacement = await watchdog(behind, 30_000, 'the task behind it');
    expect(replacement).not.toBe(first);
    expect(crashing.pids).toEqual([replacement]);
    // The dead worker's segment went with it: the replacement's takes its place.
    expect(segments()).toBe(mapped);
  });
});

describe('Pool: results', () => {
  it('map over 10k items returns every result in input order', async () => {
    const p = pool<number, number>('pool-square.ts');
    const items = Array.from({ length: 10_000 }, (_, i) => i);
    const out = await watchdog(p.map(items), 60_000, 'map');
    expect(out).toHaveLength(10_000);
    expect(out.every((v, i) => v === i * i)).toBe(true);
    // With one item per message, too (the order does not come from chunking).
    const fine = await watchdog(p.map(items.slice(0, 200), { chunkSize: 1 }), 60_000, 'map by 1');
    expect(fine).toEqual(items.slice(0, 200).map((i) => i * i));
    expect(await p.map([])).toEqual([]);
    expect(await p.map(new Set([3, 4]))).toEqual([9, 16]);
  });

  it('run returns the task result, computed in a worker', async () => {
    const p = pool<string, { ok: string; pid: number }>('pool-throw.ts');
    const result = await watchdog(p.run('hi'), 30_000, 'run');
    expect(result.ok).toBe('hi');
    expect(p.pids).toContain(result.pid);
    expect(result.pid).not.toBe(process.pid);
  });

  it('runs and maps share the workers in turns: a run is not stuck behind a long map', async () => {
    const p = pool<number, number>('pool-square.ts', { size: 1 });
    await p.run(0);
    const big = p.map(
      Array.from({ length: 2000 }, (_, i) => i),
      { chunkSize: 10 },
    );
    let mapDone = false;
    void big.then(() => {
      mapDone = true;
    });
    expect(await watchdog(p.run(12), 30_000, 'run')).toBe(144);
    expect(mapDone).toBe(false);
    await big;
  });

  it('splits a chunk too large for one message, and fails only an item that cannot fit alone', async () => {
    const p = pool<Uint8Array, Uint8Array>('pool-echo.ts', { maxMessageBytes: 1 << 20 });
    const items = Array.from({ length: 8 }, (_, i) => new Uint8Array(300_000).fill(i));
    const echoed = await watchdog(p.map(items, { chunkSize: 8 }), 30_000, 'map');
    expect(echoed.map((b) => [b.length, b[0]])).toEqual(items.map((_, i) => [300_000, i]));
    const tooBig = await rejectionOf(p.run(new Uint8Array(2 << 20)));
    expect(tooBig.code).toBe(ErrorCodes.FRAME_TOO_LARGE);

    const maker = pool<number, Uint8Array>('pool-make-bytes.ts', { maxMessageBytes: 1 << 20 });
    // Small inputs, results that only fit a few per message: the worker splits its answers.
    const made = await watchdog(
      maker.map([300_000, 300_000, 300_000, 300_000, 5], { chunkSize: 5 }),
      30_000,
      'make',
    );
    expect(made.map((b) => b.length)).toEqual([300_000, 300_000, 300_000, 300_000, 5]);
    const alone = await rejectionOf(maker.run(2 << 20));
    expect(alone).toBeInstanceOf(TaskError);
    expect(alone.code).toBe(ErrorCodes.FRAME_TOO_LARGE);
  });
});

describe('Pool: failures', () => {
  it('a task that throws rejects with a TaskError carrying the remote name, message and code', async () => {
    const p = pool<string, unknown>('pool-throw.ts', { size: 1 });
    const plain = (await rejectionOf(p.run('plain'))) as TaskError;
    expect(plain).toBeInstanceOf(TaskError);
    expect(plain).toBeInstanceOf(IpcError);
    expect(plain.code).toBe(ErrorCodes.REMOTE);
    expect(plain.remote).toBe(true);
    expect(plain.remoteName).toBe('Error');
    expect(plain.remoteMessage).toBe('bad input');
    expect(plain.remoteCode).toBe('E_BAD');
    expect(plain.remoteStack).toMatch(/pool-throw/);
    expect(plain.message).toContain('bad input');

    const custom = (await rejectionOf(p.run('custom'))) as TaskError;
    expect([custom.remoteName, custom.remoteMessage]).toEqual(['ValidationError', 'field x is required']);
    const thrown = (await rejectionOf(p.run('string'))) as TaskError;
    expect(thrown.remoteMessage).toContain('just a string');
    // An ipckit code thrown remotely is kept as the code; `remote` tells it from a local timeout.
    const timeout = (await rejectionOf(p.run('ipc-timeout'))) as TaskError;
    expect(timeout.code).toBe(ErrorCodes.TIMEOUT);
    expect(timeout.remote).toBe(true);
    // Text that looks like code stays text.
    const hostile = (await rejectionOf(p.run('hostile'))) as TaskError;
    expect(hostile.remoteName).toBe('__proto__');
    expect(Object.getPrototypeOf(hostile)).toBe(TaskError.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();

    // The worker survives its tasks' errors.
    const pid = p.pids[0];
    expect(await p.run('fine')).toEqual({ ok: 'fine', pid });
  });

  it('data a worker cannot decode fails that call with ERR_IPC_INVALID_MESSAGE, and the worker goes on', async () => {
    // A worker with a small stack overflows decoding what this process encoded fine (nesting
    // within msgpack's 1,000 levels).
    const p = pool<unknown, unknown>('pool-echo.ts', { size: 1, execArgv: ['--stack-size=120'] });
    expect(await p.run('warm')).toBe('warm');
    const pid = p.pids[0];
    let deep: unknown = 1;
    for (let i = 0; i < 990; i++) deep = [deep];
    const before = p.run('before');
    const garbled = rejectionOf(watchdog(p.run(deep), 30_000, 'garbled'));
    const after = p.run('after');
    expect(await watchdog(before, 30_000, 'before')).toBe('before');
    const err = await garbled;
    expect(err.code).toBe(ErrorCodes.INVALID_MESSAGE);
    expect(err.message).toMatch(/could not decode/);
    expect(await watchdog(after, 30_000, 'after')).toBe('after');
    expect(p.pids).toEqual([pid]);
  });

  it('map rejects with the first failing item', async () => {
    const p = pool<string, unknown>('pool-throw.ts');
    const err = (await rejectionOf(p.map(['a', 'b', 'plain', 'c'], { chunkSize: 1 }))) as TaskError;
    expect(err.remoteMessage).toBe('bad input');
  });

  it('a crashing task fails with ERR_IPC_PEER_GONE, its worker is replaced, and the tasks queued behind it run', async () => {
    const p = pool<string, number>('pool-crash.ts', { size: 1 });
    const first = await p.run('who');
    const crash = p.run('crash');
    const behind = Array.from({ length: 10 }, () => p.run('who'));
    const err = await rejectionOf(watchdog(crash, 30_000, 'crash'));
    expect(err.code).toBe(ErrorCodes.PEER_GONE);
    expect(err.message).toMatch(/SIGKILL/);
    const pids = await watchdog(Promise.all(behind), 30_000, 'the tasks behind it');
    expect(new Set(pids).size).toBe(1);
    expect(pids[0]).not.toBe(first);
    expect(p.pids).toEqual([pids[0]]);
    expect(isAlive({ pid: first, startTime: 0 })).toBe(false);
  });

  it('close() while a worker crashes with a task queued in it: that task still runs, every call settles', async () => {
    const p = pool<string, number>('pool-crash.ts', { size: 1 });
    await p.run('who');
    const [before, crash, after] = ['who', 'crash', 'who'].map((input) => p.run(input));
    const crashed = rejectionOf(crash!); // observed now: it fails while close() is awaited
    await watchdog(p.close(), 30_000, 'close');
    expect(typeof (await watchdog(before!, 1000, 'the task before'))).toBe('number');
    expect((await watchdog(crashed, 1000, 'the crash')).code).toBe(ErrorCodes.PEER_GONE);
    expect(typeof (await watchdog(after!, 1000, 'the task queued behind the crash'))).toBe('number');
  });

  it('a map() failed by a crash starts none of its items that were queued in the crashed worker', async () => {
    const log = join(env.dir, '..', 'ran.txt');
    writeFileSync(log, '');
    const p = pool<string, number>('pool-crash-or-log.ts', {
      size: 2,
      env: { ...process.env, POOL_TASK_LOG: log },
    });
    // Both workers ready, so that the map's units are spread over both at once, two each.
    await watchdog(
      (async () => {
        while (new Set(await p.map(['w', 'w', 'w', 'w'], { chunkSize: 1 })).size < 2);
      })(),
      30_000,
      'both workers at work',
    );
    writeFileSync(log, '');
    const err = await rejectionOf(
      watchdog(p.map(['crash', 'x1', 'x2', 'x3'], { chunkSize: 1 }), 30_000, 'map'),
    );
    expect(err.code).toBe(ErrorCodes.PEER_GONE);
    // close() waits for whatever the pool handed out: x2, queued behind the crash, never ran.
    await watchdog(p.close(), 30_000, 'close');
    const ran = readFileSync(log, 'utf8').split('\n').filter(Boolean);
    expect(ran).not.toContain('x2');
    expect(ran).not.toContain('crash');
  });

  it('a worker killed from outside while idle is replaced', async () => {
    const p = pool<string, number>('pool-crash.ts', { size: 2 });
    await p.map(['a', 'b', 'c', 'd'], { chunkSize: 1 });
    const [victim, survivor] = p.pids;
    process.kill(victim!, 'SIGKILL');
    // Sent at once, before the pool can know: a unit that went to the dead worker never started
    // there, so it is given to another worker rather than failed.
    const mapUntil = async (done: (pids: number[]) => boolean) => {
      for (;;) {
        const pids = await p.map(['x', 'y', 'z', 'w'], { chunkSize: 1 });
        expect(pids).not.toContain(victim);
        if (done(pids)) return;
      }
    };
    // The pool learns of the death when the worker's channel ends; calls succeed meanwhile.
    await watchdog(
      mapUntil(() => !p.pids.includes(victim!)),
      30_000,
      'the death noticed',
    );
    expect(p.pids).toHaveLength(2);
    const successor = p.pids.find((pid) => pid !== survivor)!;
    // The successor takes work once it is ready.
    await watchdog(
      mapUntil((pids) => pids.includes(successor)),
      30_000,
      'the successor at work',
    );
  });

  it('a task module that fails to load breaks the pool: every call rejects with its error', async () => {
    const p = pool<number, number>('pool-load-error.ts');
    const err = (await rejectionOf(watchdog(p.run(1), 30_000, 'run'))) as TaskError;
    expect(err).toBeInstanceOf(TaskError);
    expect(err.remoteMessage).toBe('this task module cannot load');
    expect(err.message).toMatch(/failed to load/);
    await expect(p.map([1, 2])).rejects.toBe(err);
    await watchdog(p.close(), 15_000, 'close');
    expect(p.pids).toEqual([]);
  });

  it.each([
    ['exit', /exited before they were ready \(last: code 3\); can node run/],
    ['signal', /exited before they were ready \(last: signal SIGKILL\); were they killed from outside/],
  ])(
    'workers that die before they are ready (%s), three in a row, break the pool, saying how',
    async (how, said) => {
      const p = pool<number, number>('pool-exit-on-load.ts', {
        size: 1,
        env: { ...process.env, POOL_EXIT_HOW: how },
      });
      const err = await rejectionOf(watchdog(p.run(1), 30_000, 'run'));
      expect(err.code).toBe(ErrorCodes.PEER_GONE);
      expect(err.message).toMatch(said);
      await watchdog(p.close(), 15_000, 'close');
    },
  );

  it('a module without a default-export function is refused the same way', async () => {
    const p = pool<number, number>('pool-no-default.ts', { size: 1 });
    const err = (await rejectionOf(watchdog(p.run(1), 30_000, 'run'))) as TaskError;
    expect(err.remoteName).toBe('TypeError');
    expect(err.remoteMessage).toMatch(/default-export a function/);
  });
});

describe('Pool: cancellation, closing, limits', () => {
  it('an aborted queued task never runs; a running one is left to finish', async () => {
    const p = pool<string, unknown>('pool-hold-and-record.ts', { size: 1 });
    expect(await p.run('warm')).toBe('warm');
    const held = p.run('hold');
    const controller = new AbortController();
    const cancelled = p.run('cancelled', { signal: controller.signal });
    const after = p.run('after');
    controller.abort(new Error('no longer needed'));
    const err = await rejectionOf(cancelled);
    expect(err.code).toBe(ErrorCodes.ABORTED);
    expect(err.cause?.message).toBe('no longer needed');
    process.kill(p.pids[0]!, 'SIGUSR2');
    expect(await watchdog(held, 15_000, 'held task')).toBe('released');
    expect(await after).toBe('after');
    expect(await p.run('records')).toEqual(['warm', 'after']);
    // Already aborted: refused at once.
    await expect(p.run('x', { signal: AbortSignal.abort() })).rejects.toMatchObject({
      code: ErrorCodes.ABORTED,
    });
  });

  it('a timeout rejects a task that waits too long with ERR_IPC_TIMEOUT', async () => {
    const p = pool<string, unknown>('pool-hold-and-record.ts', { size: 1 });
    await p.run('warm');
    const held = p.run('hold');
    const err = await rejectionOf(p.run('late', { timeout: 50 }));
    expect(err.code).toBe(ErrorCodes.TIMEOUT);
    process.kill(p.pids[0]!, 'SIGUSR2');
    await held;
    expect(await p.run('records')).toEqual(['warm']);
  });

  it('close() lets queued work finish, refuses new calls, and ends the workers', async () => {
    const p = pool<number, number>('pool-square.ts');
    const pending = Array.from({ length: 20 }, (_, i) => p.run(i));
    const mapped = p.map([5, 6, 7]);
    const closing = p.close();
    expect(p.closed).toBe(true);
    await expect(p.run(1)).rejects.toMatchObject({ code: ErrorCodes.CLOSED });
    expect(await watchdog(Promise.all(pending), 30_000, 'pending')).toEqual(
      Array.from({ length: 20 }, (_, i) => i * i),
    );
    expect(await mapped).toEqual([25, 36, 49]);
    const pids = p.pids;
    await watchdog(closing, 15_000, 'close');
    expect(p.pids).toEqual([]);
    for (const pid of pids) expect(isAlive({ pid, startTime: 0 })).toBe(false);
    expect(p.close()).toBe(closing);
  });

  it.each(['pipe', 'shm'] as const)(
    'close() over %s lets each worker exit by itself (code 0, exit handlers run), not killed',
    async (channel) => {
      const dir = join(env.dir, '..', 'exits');
      const p = pool<number, number>('pool-exit-when-released.ts', {
        size: 2,
        channel,
        env: { ...process.env, POOL_EXIT_DIR: dir },
      });
      // Both workers ready: one closed before it said so has nothing to finish, and exits early.
      await watchdog(
        (async () => {
          while (new Set(await p.map([0, 0, 0, 0], { chunkSize: 1 })).size < 2);
        })(),
        30_000,
        'both workers at work',
      );
      const pids = p.pids;
      const closing = p.close();
      // Each worker is held in its exit handler until both are there: a kill on close() lands meanwhile.
      await watchdog(
        directoryReaches(dir, (files) => files.filter((f) => f.startsWith('exiting-')).length === 2),
        30_000,
        'both workers in their exit handlers',
      );
      writeFileSync(join(dir, 'release'), '');
      await watchdog(closing, 30_000, 'close');
      const exited = readdirSync(dir)
        .filter((f) => f.startsWith('exited-'))
        .sort();
      expect(exited).toEqual(pids.map((pid) => `exited-${pid}-0`).sort());
    },
  );

  describe('close() with workers that never finish loading the task module', () => {
    // The real grace is 30 s; these tests wait for it to run out, so they shorten it.
    let grace: number;
    beforeEach(() => {
      grace = START_GRACE.ms;
      START_GRACE.ms = 1000;
    });
    afterEach(() => {
      START_GRACE.ms = grace;
    });

    /** The pids of the workers that created `loading-<pid>` in `dir`. */
    const loading = (dir: string): number[] =>
      readdirSync(dir)
        .filter((f) => f.startsWith('loading-'))
        .map((f) => Number(f.slice('loading-'.length)));

    it('does not hang when no worker gets ready: the calls none could take reject with ERR_IPC_CLOSED', async () => {
      const dir = join(env.dir, '..', 'loading');
      mkdirSync(dir, { recursive: true });
      const p = pool<number, number>('pool-never-ready.ts', {
        size: 2,
        env: { ...process.env, POOL_LOAD_DIR: dir },
      });
      const ran = rejectionOf(p.run(1));
      const mapped = rejectionOf(p.map([1, 2, 3]));
      await watchdog(
        directoryReaches(dir, () => loading(dir).length === 2),
        30_000,
        'both workers loading the module',
      );
      const pids = p.pids;
      await watchdog(p.close(), 30_000, 'close');
      for (const err of [await ran, await mapped]) {
        expect(err.code).toBe(ErrorCodes.CLOSED);
        expect(err.message).toMatch(/no worker got ready/);
      }
      expect(p.pids).toEqual([]);
      for (const pid of pids) expect(isAlive({ pid, startTime: 0 })).toBe(false);
    });

    it('ends a worker still loading, without failing the calls a ready worker runs', async () => {
      const dir = join(env.dir, '..', 'loading');
      mkdirSync(dir, { recursive: true });
      const p = pool<string, number>('pool-never-ready.ts', {
        size: 2,
        env: { ...process.env, POOL_LOAD_DIR: dir, POOL_STUCK_ONLY_FIRST: '1' },
      });
      const good = await watchdog(p.run('pid'), 30_000, 'a call on the worker that loaded');
      await watchdog(
        directoryReaches(dir, () => loading(dir).length === 1),
        30_000,
        'the other worker loading',
      );
      const [stuck] = loading(dir);
      const stuckGone = new Promise<void>((resolve) => watchProcess(stuck!, resolve));
      // The ready worker is held in a task, so close() cannot be done before the grace runs out.
      const calls = Promise.all([p.run('hold'), p.run('a'), p.run('b'), p.run('c')]);
      calls.catch(() => {}); // awaited below; observed now in case the test fails before
      const closing = p.close();
      await watchdog(stuckGone, 30_000, 'the worker that never got ready ended');
      process.kill(good, 'SIGUSR2');
      // Run by the ready worker: the one that never got ready was not replaced while closing.
      expect(await watchdog(calls, 30_000, 'the calls')).toEqual([good, good, good, good]);
      await watchdog(closing, 30_000, 'close');
      expect(p.pids).toEqual([]);
      expect(isAlive({ pid: good, startTime: 0 })).toBe(false);
    });
  });

  it('destroy() rejects what is queued or running with ERR_IPC_CLOSED and kills the workers', async () => {
    const p = pool<string, unknown>('pool-hold-and-record.ts', { size: 1 });
    await p.run('warm');
    const held = p.run('hold');
    const queued = p.run('queued');
    const pid = p.pids[0]!;
    const outcomes = Promise.all([rejectionOf(held), rejectionOf(queued)]);
    await p.destroy(new Error('shutting down'));
    const errors = await outcomes;
    for (const err of errors) {
      expect(err.code).toBe(ErrorCodes.CLOSED);
      expect(err.cause?.message).toBe('shutting down');
    }
    expect(isAlive({ pid, startTime: 0 })).toBe(false);
  });

  it('rejects calls beyond maxQueue with ERR_IPC_QUEUE_FULL', async () => {
    const p = pool<string, unknown>('pool-hold-and-record.ts', { size: 1, maxQueue: 2 });
    await p.run('warm');
    const held = p.run('hold'); // at the worker
    const second = p.run('second'); // at the worker, behind it (two units out per worker)
    const queued = [p.run('q1'), p.run('q2')];
    await expect(p.run('q3')).rejects.toMatchObject({ code: ErrorCodes.QUEUE_FULL });
    process.kill(p.pids[0]!, 'SIGUSR2');
    await Promise.all([held, second, ...queued]);
  });

  it('takes a .mjs task module given as a file: URL', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ipckit-pool-'));
    try {
      const file = join(dir, 'double.mjs');
      writeFileSync(file, 'export default (n) => n * 2;\n');
      const p = Pool.create<number, number>(pathToFileURL(file), { size: 1 });
      pools.push(p as unknown as Pool<never, unknown>);
      expect(await watchdog(p.map([1, 2, 3]), 30_000, 'map')).toEqual([2, 4, 6]);
      await p.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses bad arguments', async () => {
    expect(() => Pool.create(fixture('pool-square.ts'), { size: 0 })).toThrow(RangeError);
    expect(() => Pool.create(fixture('pool-square.ts'), { codec: 'raw' as never })).toThrow(/codec/);
    expect(() => Pool.create(fixture('pool-square.ts'), { channel: 'tcp' as never })).toThrow(/channel/);
    // A pool's workers need a channel: false is refused, not ignored.
    expect(() => Pool.create(fixture('pool-square.ts'), { channel: false as never })).toThrow(/channel/);
    expect(() => Pool.create(fixture('pool-square.ts'), { maxQueue: -1 })).toThrow(/maxQueue/);
    expect(() => Pool.create(fixture('no-such-task.ts'))).toThrow(
      expect.objectContaining({ code: ErrorCodes.NOT_FOUND }),
    );
    expect(() => Pool.create(42 as never)).toThrow(TypeError);
    const p = pool<number, number>('pool-square.ts', { size: 1 });
    await expect(p.map([1], { chunkSize: 0 })).rejects.toBeInstanceOf(RangeError);
    await expect(p.map(5 as never)).rejects.toBeInstanceOf(TypeError);
    await expect(p.run(1, { timeout: -1 })).rejects.toBeInstanceOf(RangeError);
  });

  it('a cwd that is not a string is a TypeError from create(), not a pool whose calls all fail', () => {
    const before = childrenOfThisProcess().length;
    expect(() => Pool.create(fixture('pool-square.ts'), { size: 2, cwd: 5 as never })).toThrow(TypeError);
    expect(() => Pool.create(fixture('pool-square.ts'), { size: 2, cwd: 'a\0b' })).toThrow(/options\.cwd/);
    expect(childrenOfThisProcess().length).toBe(before);
  });

  it('an env that is not an object is a TypeError naming options.env, and no worker is started', () => {
    const before = childrenOfThisProcess().length;
    for (const env of ['PATH=/usr/bin', 5, true, ['PATH=/usr/bin']]) {
      const create = () =>
        pools.push(Pool.create(fixture('pool-square.ts'), { size: 2, env: env as never }) as never);
      expect(create).toThrow(TypeError);
      expect(create).toThrow(/options\.env/);
    }
    expect(childrenOfThisProcess().length).toBe(before);
  });

  it('refuses numeric options that are not numbers with TypeErrors naming them', async () => {
    expect(() => Pool.create(fixture('pool-square.ts'), { size: '2' as never })).toThrow(TypeError);
    expect(() => Pool.create(fixture('pool-square.ts'), { size: '2' as never })).toThrow(/options\.size/);
    expect(() => Pool.create(fixture('pool-square.ts'), { maxQueue: '5' as never })).toThrow(TypeError);
    expect(() => Pool.create(fixture('pool-square.ts'), { maxMessageBytes: '5' as never })).toThrow(
      TypeError,
    );
    const p = pool<number, number>('pool-square.ts', { size: 1 });
    await expect(p.map([1], { chunkSize: '2' as never })).rejects.toBeInstanceOf(TypeError);
    await expect(p.run(1, { timeout: 'x' as never })).rejects.toBeInstanceOf(TypeError);
  });
});
