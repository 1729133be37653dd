/**
 * Resource leaks of the SQLite store: opening and closing a queue many times, each time with a
 * waiting consumer (so its doorbell socket is set up and torn down too), leaves no file descriptor,
 * doorbell file or waiter registration behind; receiving with ever new type filters keeps nothing
 * per filter once the receives are done.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCodes, isIpcError, MessageQueue, type StoreDriver } from '../../src/index.js';
import { isolateRuntimeDir, openFdCount } from '../helpers.js';
import { killAll, killWaitingConsumer } from '../sync/children.js';
import { sqliteAround } from './sqlite-spy.js';

/** The SQLite store, with a weak reference kept to the `types` of every claim (the fetcher's own array). */
function filterSpy(): { driver: StoreDriver; filters: WeakRef<readonly string[]>[] } {
  const filters: WeakRef<readonly string[]>[] = [];
  const driver = sqliteAround('filter-spy', 'claim', (claim) => (request) => {
    if (request.types) filters.push(new WeakRef(request.types));
    return claim(request);
  });
  return { driver, filters };
}

describe('SQLite store resources', () => {
  let rt: { dir: string; cleanup(): void };
  beforeEach(() => {
    rt = isolateRuntimeDir();
  });
  afterEach(async () => {
    await killAll();
    rt.cleanup();
  });

  it('gives back every fd and doorbell after 300 open / wait / close cycles', {
    timeout: 120_000,
  }, async () => {
    // One warm-up cycle loads the driver and creates the file, so the baseline counts neither.
    const warm = await MessageQueue.open<string>('cycles');
    await warm.close();
    const baseline = openFdCount();
    for (let i = 0; i < 300; i++) {
      const q = await MessageQueue.open<string>('cycles');
      const waiting = q.receive({ types: ['wanted'] }).catch((e: unknown) => e);
      await q.send(`m${i}`, { type: 'other' });
      await q.close();
      const err = await waiting;
      expect(isIpcError(err, ErrorCodes.CLOSED)).toBe(true);
    }
    expect(openFdCount()).toBe(baseline);
    expect(readdirSync(join(rt.dir, '.mq-bells'))).toEqual([]);
    const q = await MessageQueue.open<string>('cycles');
    expect((await q.stats()).ready).toBe(300);
    await q.close();
  });

  it('keeps nothing per receive filter once its receives are done', async () => {
    const { driver, filters } = filterSpy();
    const q = await MessageQueue.open<number>('filters', { store: driver });
    for (let i = 0; i < 100; i++) {
      await q.send(i, { type: `t${i}` });
      const m = await q.receive({ types: [`t${i}`], timeout: 10_000 });
      await m.ack();
    }
    const err = await q.receive({ types: ['none'], timeout: 20 }).catch((e: unknown) => e);
    expect(isIpcError(err, ErrorCodes.TIMEOUT)).toBe(true);
    expect(filters.length).toBeGreaterThanOrEqual(101);
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    gc();
    // The timed-out receive's claim may still be in flight, and holds its filter until it lands.
    expect(filters.filter((ref) => ref.deref() !== undefined).length).toBeLessThanOrEqual(1);
    // A filter that comes back is served by a new fetcher, from where the old one stood.
    await q.send(7, { type: 't7' });
    expect((await q.receive({ types: ['t7'], timeout: 10_000 })).body).toBe(7);
    await q.close();
  });

  it('MessageQueue.remove also removes the doorbell of a consumer killed with SIGKILL', async () => {
    const bells = join(rt.dir, '.mq-bells');
    await killWaitingConsumer('jobs', bells, 1);
    expect(readdirSync(bells)).toHaveLength(1);
    expect(await MessageQueue.remove('jobs')).toBe(true);
    expect(readdirSync(bells)).toEqual([]);
  });
});
