/**
 * Sends waiting for room in a full queue, seen from the store: a send at the head of the line that
 * gives up (timeout, abort) sends the store a new attempt only when the one behind it could fit
 * where it could not. Counted on the real SQLite store through a driver that counts its sends.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCodes, MessageQueue, type StoreDriver } from '../../src/index.js';
import { isolateRuntimeDir, isPending, rejectionOf, watchdog } from '../helpers.js';
import { sqliteAround } from './sqlite-spy.js';

/** The SQLite store, counting the transactions of sends it is asked for. */
function countingSends(): { driver: StoreDriver; sends: () => number } {
  let sends = 0;
  const driver = sqliteAround('send-counter', 'send', (send) => (request) => {
    sends++;
    return send(request);
  });
  return { driver, sends: () => sends };
}

/** A few turns of the event loop: what a send scheduled now would have done by then. */
async function turns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
}

describe('sends waiting for room', () => {
  let rt: { dir: string; cleanup(): void };
  beforeEach(() => {
    rt = isolateRuntimeDir();
  });
  afterEach(() => rt.cleanup());

  it('a send that gives up does not make the store try one as large behind it', async () => {
    const { driver, sends } = countingSends();
    // The safety-net poll far away: only room freed in the store may bring another attempt.
    await using q = await MessageQueue.open<string>('full', {
      store: driver,
      maxMessages: 2,
      pollIntervalMs: 60_000,
    });
    await q.sendBatch([{ body: 'a' }, { body: 'b' }]);
    const giveUp = new AbortController();
    const first = q.send('c', { signal: giveUp.signal });
    // A send that may not wait is refused: the first one is known to wait for room now.
    expect((await rejectionOf(q.send('x', { timeout: 0 }))).code).toBe(ErrorCodes.TIMEOUT);
    const second = q.send('d');
    const asked = sends();
    giveUp.abort();
    expect((await rejectionOf(first)).code).toBe(ErrorCodes.ABORTED);
    await turns(5);
    // As large as the one that did not fit: the store was not asked again.
    expect(sends()).toBe(asked);
    expect(await isPending(second)).toBe(true);
    // Room freed in the store brings it in.
    await (await q.receive({ timeout: 10_000 })).ack();
    await watchdog(second, 10_000, 'the waiting send, once there is room');
    expect((await q.peek()).map((m) => m.body)).toEqual(['b', 'd']);
  });
});
