/**
 * Sends waiting for room in a full queue, seen from the store: a send at the head of the line that
 * gives up (timeout, abort) sends the store a new attempt only when the one behind it could fit
 * where it could not. Counted on the real SQLite store through a driver that counts its sends.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCodes, MessageQueue, type Store, type StoreDriver } from '../../src/index.js';
import { resolveStoreDriver } from '../../src/mq/store-drivers.js';
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

describe('a room wake-up that overtakes the answer', () => {
  let rt: { dir: string; cleanup(): void };
  beforeEach(() => {
    rt = isolateRuntimeDir();
  });
  afterEach(() => rt.cleanup());

  it('is not lost: a send that found the queue full goes on when the wake-up came before the answer', async () => {
    // The Redis store hears wake-ups on a connection of their own, so one can be read before the
    // reply to the send that armed it. This driver makes the real SQLite store answer that late:
    // an answer of 'full' is held back until the room freed meanwhile has been announced.
    const sqlite = resolveStoreDriver('sqlite');
    let beforeFullAnswer: (() => Promise<void>) | undefined;
    let roomAnnounced: () => void = () => {};
    const driver: StoreDriver = {
      name: 'late-answers',
      remove: (queue) => sqlite.remove(queue),
      async open(queue, options) {
        const store = await sqlite.open(queue, {
          ...options,
          onWake: (kind) => {
            if (kind === 'room') roomAnnounced();
            options.onWake(kind);
          },
        });
        const send: Store['send'] = async (request) => {
          const outcomes = await store.send(request);
          const hook = beforeFullAnswer;
          if (hook && outcomes.includes('full')) {
            beforeFullAnswer = undefined;
            await hook();
          }
          return outcomes;
        };
        return new Proxy(store, {
          get(target, prop) {
            if (prop === 'send') return send;
            const value = Reflect.get(target, prop);
            return typeof value === 'function' ? value.bind(target) : value;
          },
        });
      },
    };
    // The safety-net poll far away: only the wake-up may bring the waiting send in.
    await using producer = await MessageQueue.open<string>('full', {
      store: driver,
      maxMessages: 1,
      pollIntervalMs: 600_000,
    });
    await using consumer = await MessageQueue.open<string>('full');
    await producer.send('a');
    const held = await consumer.receive({ timeout: 10_000 });
    beforeFullAnswer = async () => {
      const announced = new Promise<void>((resolve) => {
        roomAnnounced = resolve;
      });
      await held.ack();
      await watchdog(announced, 10_000, 'the room freed by the ack announced');
    };
    const sent = producer.send('b');
    await watchdog(sent, 10_000, 'the send that waited for room, once room was announced');
    expect((await producer.peek()).map((m) => m.body)).toEqual(['b']);
  });
});
