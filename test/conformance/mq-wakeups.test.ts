/**
 * Waiting consumers are woken, not polled, by every change that makes a message claimable sooner
 * than they were told, against every store in stores.ts. Each consumer here has a safety-net poll
 * far beyond the test's watchdog, so only a wake-up can deliver in time.
 */
import { describe, expect, it } from 'vitest';
import { ErrorCodes, isIpcError } from '../../src/index.js';
import { watchdog } from '../helpers.js';
import { useQueueContext } from './context.js';
import { stores } from './stores.js';

/** Far beyond every watchdog below: a consumer that relies on it has not been woken. */
const NEVER = 600_000;

async function timesOut(promise: Promise<unknown>): Promise<boolean> {
  try {
    await promise;
    return false;
  } catch (err) {
    if (isIpcError(err, ErrorCodes.TIMEOUT)) return true;
    throw err;
  }
}

for (const store of stores) {
  const skip = store.unavailable();
  describe.skipIf(skip !== undefined)(
    `MessageQueue wake-ups: ${store.name}${skip ? ` (${skip})` : ''}`,
    () => {
      const ctx = useQueueContext(store);

      it('wakes a waiting consumer when another consumer shortens its lease with extend()', async () => {
        const holder = await ctx.open<string>({ visibilityTimeoutMs: NEVER });
        const waiter = await ctx.open<string>({ visibilityTimeoutMs: NEVER, pollIntervalMs: NEVER });
        await holder.send('job');
        const held = await holder.receive({ timeout: 10_000 });
        const pending = waiter.receive();
        // A poll answers only after a claim that started behind the waiting receive's: by then the
        // waiter has looked, found the message leased until far away, and waits for that.
        expect(await timesOut(waiter.receive({ timeout: 0 }))).toBe(true);
        await held.extend(1000);
        const again = await watchdog(
          pending,
          10_000,
          'the waiting consumer was not woken by the shorter lease',
        );
        expect([again.id, again.attempts]).toEqual([held.id, 2]);
        await again.ack();
      });

      it('wakes a producer waiting for room when the message that filled the queue expires', async () => {
        const q = await ctx.open<string>({ maxMessages: 1, pollIntervalMs: NEVER });
        await q.send('stale', { ttlMs: 300 });
        const pending = q.send('fresh');
        // Nothing writes to the store while the ttl runs out: no other process would announce the
        // room its expiry frees, so only the waiting producer's own reckoning can send in time.
        await watchdog(pending, 10_000, 'the producer was not woken when the message expired');
        const got = await q.receive({ timeout: 10_000 });
        expect(got.body).toBe('fresh');
        await got.ack();
        expect((await q.stats()).ready).toBe(0);
      });

      it('wakes a producer waiting for room when a lease at the last attempt runs out', async () => {
        const q = await ctx.open<string>({
          maxMessages: 1,
          maxAttempts: 1,
          visibilityTimeoutMs: 300,
          pollIntervalMs: NEVER,
        });
        await q.send('doomed');
        const held = await q.receive({ timeout: 10_000 });
        // Never settled, and no consumer waits: nobody sweeps when the lease runs out and the
        // message goes to the dead letters, so only the producer's own reckoning frees its send.
        const pending = q.send('fresh');
        await watchdog(pending, 10_000, 'the producer was not woken when the lease ran out');
        const got = await q.receive({ timeout: 10_000 });
        expect([got.body, held.body]).toEqual(['fresh', 'doomed']);
        await got.ack();
        expect((await q.stats()).dead).toBe(1);
      });
    },
  );
}
