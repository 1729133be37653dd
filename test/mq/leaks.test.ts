/**
 * Resource leaks of the SQLite store: opening and closing a queue many times, each time with a
 * waiting consumer (so its doorbell socket is set up and torn down too), leaves no file descriptor,
 * doorbell file or waiter registration behind.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCodes, isIpcError, MessageQueue } from '../../src/index.js';
import { isolateRuntimeDir, openFdCount } from '../helpers.js';
import { killAll, killWaitingConsumer } from '../sync/children.js';

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

  it('MessageQueue.remove also removes the doorbell of a consumer killed with SIGKILL', async () => {
    const bells = join(rt.dir, '.mq-bells');
    await killWaitingConsumer('jobs', bells, 1);
    expect(readdirSync(bells)).toHaveLength(1);
    expect(await MessageQueue.remove('jobs')).toBe(true);
    expect(readdirSync(bells)).toEqual([]);
  });
});
