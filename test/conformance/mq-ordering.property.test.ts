/**
 * Delivery order as a property, against every store in stores.ts: for random messages (priorities,
 * types) and random selective receives, each receive returns what a one-line model says: among the
 * waiting messages of the wanted types, the highest priority, then the earliest sent. fast-check
 * prints the seed and the shrunk counterexample of a failure.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ErrorCodes, isIpcError } from '../../src/index.js';
import { useQueueContext } from './context.js';
import { stores } from './stores.js';

const TYPES = ['a', 'b', 'c'] as const;

const messageArb = fc.record({ priority: fc.integer({ min: -2, max: 3 }), type: fc.constantFrom(...TYPES) });
const filterArb = fc.option(fc.uniqueArray(fc.constantFrom(...TYPES), { minLength: 1, maxLength: 3 }), {
  nil: undefined,
});

for (const store of stores) {
  const skip = store.unavailable();
  describe.skipIf(skip !== undefined)(
    `MessageQueue delivery order: ${store.name}${skip ? ` (${skip})` : ''}`,
    () => {
      const ctx = useQueueContext(store);

      it('delivers the highest priority, then the oldest, of the wanted types', {
        timeout: 120_000,
      }, async () => {
        let run = 0;
        await fc.assert(
          fc.asyncProperty(
            fc.array(messageArb, { minLength: 1, maxLength: 25 }),
            fc.array(filterArb, { minLength: 1, maxLength: 30 }),
            async (messages, filters) => {
              const q = await ctx.open<number>({}, `${ctx.name}-${run++}`);
              await q.sendBatch(messages.map((m, i) => ({ body: i, ...m })));
              const waiting = messages.map((m, i) => ({ ...m, i }));
              for (const types of filters) {
                const candidates = waiting.filter((m) => types === undefined || types.includes(m.type));
                candidates.sort((x, y) => y.priority - x.priority || x.i - y.i);
                const expected = candidates[0];
                if (expected === undefined) {
                  const err = await q.receive({ types, timeout: 20 }).catch((e) => e);
                  expect(isIpcError(err, ErrorCodes.TIMEOUT)).toBe(true);
                  continue;
                }
                const got = await q.receive({ types, timeout: 10_000 });
                expect(got.body).toBe(expected.i);
                await got.ack();
                waiting.splice(waiting.indexOf(expected), 1);
              }
              expect((await q.stats()).ready).toBe(waiting.length);
              await q.close();
            },
          ),
          { numRuns: 25 },
        );
      });
    },
  );
}
