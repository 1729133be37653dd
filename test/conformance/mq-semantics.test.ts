/**
 * The MessageQueue contract, in one process, against every store in stores.ts: ordering,
 * selective receive, leases, dead letters, delays, expiry, dedupe, bounds, listing and lifecycle.
 * Nothing here sleeps: where time must pass (a lease, a delay), a receive waits for it.
 */
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { ErrorCodes, isIpcError, MessageQueue } from '../../src/index.js';
import { isPending, watchdog } from '../helpers.js';
import { useQueueContext } from './context.js';
import { stores } from './stores.js';

/** A Standard Schema that takes numbers only. */
const numbersOnly = {
  '~standard': {
    version: 1 as const,
    vendor: 'test',
    validate: (value: unknown) =>
      typeof value === 'number' ? { value } : { issues: [{ message: 'not a number' }] },
  },
};

/** numbersOnly, answering with a promise (an async refinement); it rejects for NaN. */
const numbersOnlyAsync = {
  '~standard': {
    version: 1 as const,
    vendor: 'test',
    validate: async (value: unknown) => {
      await Promise.resolve();
      if (Number.isNaN(value)) throw new Error('the validator failed');
      return numbersOnly['~standard'].validate(value);
    },
  },
};

async function code(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
    return undefined;
  } catch (err) {
    return isIpcError(err) ? err.code : (err as Error).name;
  }
}

for (const store of stores) {
  const skip = store.unavailable();
  describe.skipIf(skip !== undefined)(
    `MessageQueue conformance: ${store.name}${skip ? ` (${skip})` : ''}`,
    () => {
      const ctx = useQueueContext(store);

      it('delivers what was sent, with its metadata, and forgets it once acked', async () => {
        const q = await ctx.open<{ to: string }>();
        const before = Date.now();
        const id = await q.send({ to: 'a@b' }, { type: 'email', priority: 7 });
        const m = await q.receive({ timeout: 10_000 });
        expect(m.id).toBe(id);
        expect(m.body).toEqual({ to: 'a@b' });
        expect(m.type).toBe('email');
        expect(m.priority).toBe(7);
        expect(m.attempts).toBe(1);
        expect(m.enqueuedAt).toBeGreaterThanOrEqual(before - 1000);
        expect(m.leaseUntil).toBeGreaterThan(m.enqueuedAt);
        await m.ack();
        expect(await q.stats()).toMatchObject({ ready: 0, delayed: 0, inflight: 0, dead: 0 });
        expect(await code(q.receive({ timeout: 30 }))).toBe(ErrorCodes.TIMEOUT);
      });

      it('shares the queue between handles that open the same name', async () => {
        const a = await ctx.open<string>();
        const b = await ctx.open<string>();
        await a.send('hello');
        const m = await b.receive({ timeout: 10_000 });
        expect(m.body).toBe('hello');
        await m.ack();
      });

      it('delivers higher priorities first and one producer’s messages in order within a priority', async () => {
        const q = await ctx.open<number>();
        const priorities = [0, 5, 0, 9, 5, 0, 9, 1];
        await q.sendBatch(priorities.map((priority, i) => ({ body: i, priority })));
        const order: number[] = [];
        for (let i = 0; i < priorities.length; i++) {
          const m = await q.receive({ timeout: 10_000 });
          order.push(m.body);
          await m.ack();
        }
        expect(order).toEqual([3, 6, 1, 4, 7, 0, 2, 5]);
      });

      it('keeps the order of a long batch: priorities first, the sent order within one', async () => {
        const q = await ctx.open<number>();
        // Long enough to span several of a store's multi-row inserts, and a few single ones.
        const bodies = Array.from({ length: 45 }, (_, i) => i);
        await q.sendBatch(bodies.map((i) => ({ body: i, priority: i % 3 === 0 ? 1 : 0 })));
        const order: number[] = [];
        for (let i = 0; i < bodies.length; i++) {
          const m = await q.receive({ timeout: 10_000 });
          order.push(m.body);
          await m.ack();
        }
        expect(order).toEqual([...bodies.filter((i) => i % 3 === 0), ...bodies.filter((i) => i % 3 !== 0)]);
      });

      it('settles the acks of one tick together, each with its own outcome', async () => {
        // Long enough for a's extend to land first on a loaded machine; b's and c's then run out.
        const q = await ctx.open<string>({ visibilityTimeoutMs: 2000 });
        const other = await ctx.open<string>();
        await q.sendBatch(['a', 'b', 'c'].map((body) => ({ body })));
        // Receives waiting together are served by one claim: one lease for the three.
        const [a, b, c] = await Promise.all([0, 1, 2].map(() => q.receive({ timeout: 10_000 })));
        expect([a!.body, b!.body, c!.body]).toEqual(['a', 'b', 'c']);
        await a!.extend(60_000);
        // b's and c's leases running out is what lets these receives return.
        const again = [await other.receive({ timeout: 10_000 }), await other.receive({ timeout: 10_000 })];
        expect(again.map((m) => m.body)).toEqual(['b', 'c']);
        const outcomes = await Promise.all([a!.ack(), b!.ack(), c!.ack()].map(code));
        expect(outcomes).toEqual([undefined, ErrorCodes.LEASE_LOST, ErrorCodes.LEASE_LOST]);
        await Promise.all(again.map((m) => m.ack()));
        expect(await q.stats()).toMatchObject({ ready: 0, delayed: 0, inflight: 0, dead: 0 });
      });

      it('receives selectively by type, so one type is not blocked behind another', async () => {
        const q = await ctx.open<string>();
        for (let i = 0; i < 20; i++) await q.send(`sms${i}`, { type: 'sms', priority: 9 });
        await q.send('mail', { type: 'email' });
        const m = await q.receive({ types: ['email'], timeout: 10_000 });
        expect(m.body).toBe('mail');
        await m.ack();
        const either = await q.receive({ types: ['push', 'sms'], timeout: 10_000 });
        expect(either.type).toBe('sms');
        expect(await code(q.receive({ types: ['email'], timeout: 30 }))).toBe(ErrorCodes.TIMEOUT);
        expect((await q.stats()).byType).toEqual({ sms: 19 });
      });

      it('puts a nacked message back with attempts + 1 and dead-letters it after maxAttempts', async () => {
        const q = await ctx.open<string>({ maxAttempts: 2 });
        await q.send('poison', { id: 'p1' });
        const first = await q.receive({ timeout: 10_000 });
        expect(first.attempts).toBe(1);
        await first.nack();
        const second = await q.receive({ timeout: 10_000 });
        expect(second.id).toBe('p1');
        expect(second.attempts).toBe(2);
        await second.nack();
        expect(await code(q.receive({ timeout: 30 }))).toBe(ErrorCodes.TIMEOUT);
        expect(await q.stats()).toMatchObject({ ready: 0, inflight: 0, dead: 1 });
        const dead = await q.deadLetters();
        expect(dead.map((m) => [m.id, m.body, m.attempts])).toEqual([['p1', 'poison', 2]]);
        expect(await code(dead[0]!.ack())).toBe(ErrorCodes.LEASE_LOST);
        expect(await q.replayDead()).toBe(1);
        const again = await q.receive({ timeout: 10_000 });
        expect([again.id, again.attempts]).toEqual(['p1', 1]);
        await again.ack();
        expect(await q.stats()).toMatchObject({ ready: 0, dead: 0 });
      });

      it("judges a delivery by its claimer's maxAttempts, not by the bound of whichever opener sweeps", async () => {
        const patient = await ctx.open<string>({ maxAttempts: 10 });
        await patient.send('flaky', { id: 'f1' });
        for (let attempt = 1; attempt <= 2; attempt++)
          await (await patient.receive({ timeout: 10_000 })).nack();
        const third = await patient.receive({ timeout: 10_000 });
        expect(third.attempts).toBe(3);
        // Its lease runs out; the next to look is an opener whose own bound (2) it is already past.
        await third.extend(1);
        const strict = await ctx.open<string>({ maxAttempts: 2 });
        const fourth = await strict.receive({ timeout: 10_000 });
        expect([fourth.id, fourth.attempts]).toEqual(['f1', 4]);
        expect(await strict.stats()).toMatchObject({ dead: 0 });
        // Claimed by `strict`, it is judged by strict's bound now: this nack is its last.
        await fourth.nack();
        expect((await strict.deadLetters()).map((m) => [m.id, m.attempts])).toEqual([['f1', 4]]);
      });

      it('redelivers after the visibility timeout and refuses the stale ack', async () => {
        const q = await ctx.open<string>({ visibilityTimeoutMs: 150 });
        // With the default lease, so that its acks below cannot be late however loaded the machine.
        const other = await ctx.open<string>();
        await q.send('job');
        const first = await q.receive({ timeout: 10_000 });
        // The lease running out is what lets this receive return.
        const second = await other.receive({ timeout: 10_000 });
        expect(second.id).toBe(first.id);
        expect(second.attempts).toBe(2);
        expect(await code(first.ack())).toBe(ErrorCodes.LEASE_LOST);
        await second.ack();
        expect(await code(second.ack())).toBe(ErrorCodes.LEASE_LOST);
        expect(await q.stats()).toMatchObject({ ready: 0, inflight: 0, dead: 0 });
      });

      it('dead-letters a message whose last lease runs out', async () => {
        const q = await ctx.open<string>({ visibilityTimeoutMs: 100, maxAttempts: 1 });
        const other = await ctx.open<string>({ maxAttempts: 1 });
        await q.send('slow');
        const m = await q.receive({ timeout: 10_000 });
        await q.send('marker', { delayMs: 300 });
        // The marker becomes ready after the lease ran out: the expired message must not come first.
        // (Taken with the default lease, so that its ack cannot be late.)
        const next = await other.receive({ timeout: 10_000 });
        expect(next.body).toBe('marker');
        await next.ack();
        expect(await code(m.ack())).toBe(ErrorCodes.LEASE_LOST);
        expect((await q.deadLetters()).map((d) => d.body)).toEqual(['slow']);
      });

      it('extends a lease so the message is not redelivered meanwhile', async () => {
        // Long enough for the extend to land first on a loaded machine.
        const q = await ctx.open<string>({ visibilityTimeoutMs: 2000 });
        await q.send('long');
        const m = await q.receive({ timeout: 10_000 });
        await m.extend(60_000);
        expect(m.leaseUntil).toBeGreaterThan(Date.now() + 30_000);
        expect(await code(q.receive({ timeout: 2500 }))).toBe(ErrorCodes.TIMEOUT);
        await m.ack();
      });

      it('extends a lease to end sooner: leaseUntil says when, and the message comes back then', async () => {
        const q = await ctx.open<string>({ visibilityTimeoutMs: 60_000 });
        await q.send('short');
        const m = await q.receive({ timeout: 10_000 });
        const before = Date.now();
        await m.extend(200);
        const after = Date.now();
        // The store sets the end from its clock during the call (Redis's: the same host here).
        expect(m.leaseUntil).toBeGreaterThanOrEqual(before + 200);
        expect(m.leaseUntil).toBeLessThanOrEqual(after + 200);
        const again = await q.receive({ timeout: 10_000 });
        expect(again.attempts).toBe(2);
        expect(Date.now()).toBeGreaterThanOrEqual(m.leaseUntil!);
        await again.ack();
        expect(await code(m.ack())).toBe(ErrorCodes.LEASE_LOST);
      });

      it('nacks with a delay: the message is delayed, then delivered again', async () => {
        const q = await ctx.open<string>();
        await q.send('retry-me');
        const m = await q.receive({ timeout: 10_000 });
        const nackedAt = Date.now();
        await m.nack({ delayMs: 200 });
        expect(await q.stats()).toMatchObject({ ready: 0, delayed: 1, inflight: 0 });
        const again = await q.receive({ timeout: 10_000 });
        expect(Date.now() - nackedAt).toBeGreaterThanOrEqual(190);
        expect(again.attempts).toBe(2);
        await again.ack();
      });

      it('holds a delayed message back until its delay has passed', async () => {
        const q = await ctx.open<string>();
        const sentAt = Date.now();
        await q.send('later', { delayMs: 250 });
        await q.send('now');
        expect(await q.stats()).toMatchObject({ ready: 1, delayed: 1 });
        const first = await q.receive({ timeout: 10_000 });
        expect(first.body).toBe('now');
        await first.ack();
        const second = await q.receive({ timeout: 10_000 });
        expect(second.body).toBe('later');
        expect(Date.now() - sentAt).toBeGreaterThanOrEqual(240);
        await second.ack();
      });

      it('drops a message whose ttl passed before delivery', async () => {
        const q = await ctx.open<string>();
        await q.send('stale', { ttlMs: 50, type: 'x' });
        await q.send('marker', { delayMs: 200, type: 'y' });
        // Only the marker's type is received: by the time it is ready, the ttl has passed.
        const m = await q.receive({ types: ['y'], timeout: 10_000 });
        expect(m.body).toBe('marker');
        await m.ack();
        expect(await q.stats()).toMatchObject({ ready: 0, delayed: 0, inflight: 0, dead: 0 });
      });

      it('a delivered message is not cut off by its ttl: it comes back after its lease ends, or a nack', async () => {
        // The ttl leaves a loaded machine a second to claim both messages (50 ms was not always
        // enough: the first receive then found nothing). Lease and nack delay both start after
        // the send, so each ends after the ttl, whatever the machine's pace.
        const q = await ctx.open<string>({ visibilityTimeoutMs: 1200 });
        await q.send('held', { ttlMs: 1000, type: 'a' });
        await q.send('nacked', { ttlMs: 1000, type: 'b' });
        // Never settled: its lease ends after its ttl.
        expect((await q.receive({ types: ['a'], timeout: 10_000 })).body).toBe('held');
        await (await q.receive({ types: ['b'], timeout: 10_000 })).nack({ delayMs: 1200 });
        const again = await q.receive({ types: ['a'], timeout: 10_000 });
        expect([again.body, again.attempts]).toEqual(['held', 2]);
        await again.ack();
        const back = await q.receive({ types: ['b'], timeout: 10_000 });
        expect([back.body, back.attempts]).toEqual(['nacked', 2]);
        await back.ack();
      });

      it('deduplicates by id within the window, also after the first copy was acked', async () => {
        const q = await ctx.open<string>();
        expect(await q.send('one', { id: 'order-1' })).toBe('order-1');
        expect(await q.send('two', { id: 'order-1' })).toBe('order-1');
        expect((await q.stats()).ready).toBe(1);
        const m = await q.receive({ timeout: 10_000 });
        expect(m.body).toBe('one');
        await m.ack();
        await q.send('three', { id: 'order-1' });
        expect((await q.stats()).ready).toBe(0);
        const ids = await q.sendBatch([
          { body: 'x', id: 'order-2' },
          { body: 'y', id: 'order-2' },
          { body: 'z' },
        ]);
        expect(ids[0]).toBe('order-2');
        expect(ids[1]).toBe('order-2');
        expect(ids[2]).not.toBe('order-2');
        expect((await q.stats()).ready).toBe(2);
      });

      it('does not deduplicate once the window has passed', async () => {
        const q = await ctx.open<string>({ dedupeWindowMs: 0 });
        await q.send('a', { id: 'k' });
        await q.send('b', { id: 'k' });
        expect((await q.stats()).ready).toBe(2);
      });

      it("refuses a send to a full queue with onFull: 'reject'", async () => {
        const q = await ctx.open<string>({ maxMessages: 2, onFull: 'reject' });
        await q.send('1');
        await q.send('2');
        const err = await q.send('3').catch((e) => e);
        expect(isIpcError(err, ErrorCodes.QUEUE_FULL)).toBe(true);
        expect((await q.stats()).ready).toBe(2);
        const m = await q.receive({ timeout: 10_000 });
        await m.ack();
        await q.send('3');
        expect((await q.stats()).ready).toBe(2);
      });

      it("makes a send wait for room with onFull: 'wait', in order, bounded by its timeout", async () => {
        const q = await ctx.open<number>({ maxMessages: 2 });
        await q.sendBatch([{ body: 1 }, { body: 2 }]);
        expect(await code(q.send(0, { timeout: 50 }))).toBe(ErrorCodes.TIMEOUT);
        const third = q.send(3);
        const fourth = q.send(4);
        let sent = 0;
        third.then(() => sent++);
        fourth.then(() => sent++);
        const m1 = await q.receive({ timeout: 10_000 });
        expect(m1.body).toBe(1);
        await m1.ack();
        await watchdog(third, 10_000, 'the waiting send to get room');
        const m2 = await q.receive({ timeout: 10_000 });
        await m2.ack();
        await watchdog(fourth, 10_000, 'the second waiting send to get room');
        expect(sent).toBe(2);
        const rest: number[] = [];
        for (let i = 0; i < 2; i++) {
          const m = await q.receive({ timeout: 10_000 });
          rest.push(m.body);
          await m.ack();
        }
        expect(rest).toEqual([3, 4]);
      });

      it('a send with timeout: 0 never waits for room, and never times out while it is committed', async () => {
        // The safety-net poll far away: a send that waited for room would wait for a wake-up.
        const q = await ctx.open<number>({ maxMessages: 101, pollIntervalMs: 60_000 });
        // Room for all: every send is stored and resolves, however long its commit takes.
        const results = await Promise.allSettled(
          Array.from({ length: 100 }, (_, i) => q.send(i, { timeout: 0 })),
        );
        expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
        expect((await q.stats()).ready).toBe(100);
        await q.send(100);
        // Full: it does not wait, and stores nothing.
        expect(await code(q.send(101, { timeout: 0 }))).toBe(ErrorCodes.TIMEOUT);
        expect(await code(q.sendBatch([{ body: 102 }], { timeout: 0 }))).toBe(ErrorCodes.TIMEOUT);
        // Nor behind a send that waits for room.
        const waiting = q.send(103);
        expect(await isPending(waiting)).toBe(true);
        expect(await watchdog(code(q.send(104, { timeout: 0 })), 5000, 'the refusal')).toBe(
          ErrorCodes.TIMEOUT,
        );
        expect((await q.stats()).ready).toBe(101);
        await (await q.receive()).ack();
        await watchdog(waiting, 10_000, 'the waiting send, once there is room');
      });

      it('a send waiting for room that gives up lets the sends behind it go on at once', async () => {
        const q = await ctx.open<number>({ maxMessages: 4, pollIntervalMs: 60_000 });
        await q.sendBatch([{ body: 0 }, { body: 1 }]);
        const tooBig = new AbortController();
        const batch = q.sendBatch([{ body: 2 }, { body: 3 }, { body: 4 }], { signal: tooBig.signal });
        // A send that may not wait is refused: the batch is known to wait for room now.
        expect(await code(q.send(-1, { timeout: 0 }))).toBe(ErrorCodes.TIMEOUT);
        tooBig.abort();
        expect(await code(batch)).toBe(ErrorCodes.ABORTED);
        // Nothing waits any more and there is room: such a send is stored.
        expect(await watchdog(code(q.send(5, { timeout: 0 })), 5000, 'the send')).toBeUndefined();

        const stillTooBig = new AbortController();
        const second = q.sendBatch([{ body: 6 }, { body: 7 }], { signal: stillTooBig.signal });
        expect(await code(q.send(-1, { timeout: 0 }))).toBe(ErrorCodes.TIMEOUT);
        const behind = q.send(8);
        stillTooBig.abort();
        expect(await code(second)).toBe(ErrorCodes.ABORTED);
        // Stored without a wake-up from the store (its poll is a minute away): one place was free.
        await watchdog(behind, 10_000, 'the send behind the batch that gave up');
        expect((await q.peek()).map((m) => m.body)).toEqual([0, 1, 5, 8]);
      });

      it("stores a sendBatch whole or not at all with onFull: 'reject'", async () => {
        const q = await ctx.open<string>({ maxMessages: 3, onFull: 'reject' });
        await q.sendBatch([{ body: '0' }, { body: '1' }]);
        // Room for one: the batch of two is refused whole, not stored in part.
        const err = await q.sendBatch([{ body: 'a' }, { body: 'b' }]).catch((e) => e);
        expect(isIpcError(err, ErrorCodes.QUEUE_FULL)).toBe(true);
        expect((await q.peek()).map((m) => m.body)).toEqual(['0', '1']);
        // A batch that fits goes in; duplicates of an id (in the batch or sent before) take no room.
        await q.send('k', { id: 'k' });
        const ids = await q.sendBatch([{ body: 'k2', id: 'k' }]);
        expect(ids).toEqual(['k']);
        expect((await q.peek()).map((m) => m.body)).toEqual(['0', '1', 'k']);
      });

      it('refuses at once a sendBatch larger than the bounds, whatever onFull', async () => {
        for (const onFull of ['wait', 'reject'] as const) {
          const q = await ctx.open<string>({ maxMessages: 2, onFull }, `${ctx.name}-${onFull}`);
          // The timeout only bounds the old bug's wait: the refusal must come without waiting.
          const err = await q
            .sendBatch([{ body: 'a' }, { body: 'b' }, { body: 'c' }], { timeout: 5000 })
            .catch((e) => e);
          expect(isIpcError(err, ErrorCodes.QUEUE_FULL)).toBe(true);
          expect((err as Error).message).toMatch(/can never fit/);
          expect((await q.stats()).ready).toBe(0);
          // A caller-chosen id repeated in the batch counts once.
          await q.sendBatch([{ body: 'x', id: 'x' }, { body: 'x', id: 'x' }, { body: 'y' }]);
          expect((await q.peek()).map((m) => m.body)).toEqual(['x', 'y']);
        }
        const bytes = await ctx.open<Uint8Array>({ codec: 'raw', maxBytes: 100 }, `${ctx.name}-bytes`);
        const err = await bytes
          .sendBatch([{ body: new Uint8Array(60) }, { body: new Uint8Array(60) }], { timeout: 5000 })
          .catch((e) => e);
        expect(isIpcError(err, ErrorCodes.QUEUE_FULL)).toBe(true);
        expect((await bytes.stats()).ready).toBe(0);
      });

      it("makes a sendBatch wait until the whole batch fits with onFull: 'wait'", async () => {
        const q = await ctx.open<string>({ maxMessages: 3 });
        await q.sendBatch([{ body: '0' }, { body: '1' }]);
        // Room for one of two: the wait runs out with nothing of the batch stored.
        expect(await code(q.sendBatch([{ body: 'a' }, { body: 'b' }], { timeout: 100 }))).toBe(
          ErrorCodes.TIMEOUT,
        );
        expect((await q.peek()).map((m) => m.body)).toEqual(['0', '1']);
        const batch = q.sendBatch([{ body: 'c' }, { body: 'd' }]);
        const first = await q.receive({ timeout: 10_000 });
        await first.ack();
        await watchdog(batch, 10_000, 'the batch to fit once two messages have room');
        expect((await q.peek()).map((m) => m.body)).toEqual(['1', 'c', 'd']);
      });

      it('bounds the queue by body bytes with maxBytes', async () => {
        const q = await ctx.open<Uint8Array>({ codec: 'raw', maxBytes: 100, onFull: 'reject' });
        await q.send(new Uint8Array(60));
        expect(await code(q.send(new Uint8Array(60)))).toBe(ErrorCodes.QUEUE_FULL);
        await q.send(new Uint8Array(40));
        expect(await code(q.send(new Uint8Array(101)))).toBe(ErrorCodes.QUEUE_FULL);
      });

      it('counts every type in stats().byType, also one named like an Object.prototype key', async () => {
        const q = await ctx.open<string>();
        await q.send('a', { type: '__proto__', priority: 1 });
        await q.send('b', { type: '__proto__', priority: 1 });
        await q.send('c', { type: 'constructor' });
        const { byType, byPriority } = await q.stats();
        expect(Object.entries(byType).sort()).toEqual([
          ['__proto__', 2],
          ['constructor', 1],
        ]);
        expect(Object.getPrototypeOf(byType)).toBe(Object.prototype);
        expect(byPriority).toEqual({ '0': 1, '1': 2 });
      });

      it('peeks without leasing, counts in stats, and purges everything', async () => {
        const q = await ctx.open<string>();
        await q.send('low', { priority: 1, type: 'a' });
        await q.send('high', { priority: 8, type: 'b' });
        await q.send('high2', { priority: 8, type: 'a' });
        await q.send('later', { delayMs: 60_000 });
        const peeked = await q.peek(2);
        expect(peeked.map((m) => m.body)).toEqual(['high', 'high2']);
        expect(await code(peeked[0]!.ack())).toBe(ErrorCodes.LEASE_LOST);
        const held = await q.receive({ timeout: 10_000 });
        expect(held.body).toBe('high');
        expect(await q.stats()).toEqual({
          ready: 2,
          delayed: 1,
          inflight: 1,
          dead: 0,
          byPriority: { '1': 1, '8': 1 },
          byType: { a: 2 },
        });
        expect(await q.purge()).toBe(4);
        expect(await q.stats()).toMatchObject({ ready: 0, delayed: 0, inflight: 0, dead: 0 });
        expect(await code(held.ack())).toBe(ErrorCodes.LEASE_LOST);
      });

      it('consumes with prefetch and has given unprocessed messages back once the loop is left', async () => {
        const q = await ctx.open<number>();
        await q.sendBatch(Array.from({ length: 10 }, (_, i) => ({ body: i })));
        const seen: number[] = [];
        for await (const m of q.consume({ prefetch: 4 })) {
          seen.push(m.body);
          await m.ack();
          if (seen.length === 3) break;
        }
        expect(seen).toEqual([0, 1, 2]);
        // Back in the queue by the time the loop is left, not leased to a loop that is gone.
        expect(await q.stats()).toMatchObject({ ready: 7, inflight: 0 });
        const next = await q.receive({ timeout: 10_000 });
        expect(next.body).toBe(3);
        expect(next.attempts).toBe(1);
        await next.ack();
        expect((await q.stats()).ready).toBe(6);
      });

      it('process() stopped by its signal resolves once the prefetched messages are back', async () => {
        const q = await ctx.open<number>();
        await q.sendBatch(Array.from({ length: 10 }, (_, i) => ({ body: i })));
        const stop = new AbortController();
        const handled: number[] = [];
        await q.process(
          async (body) => {
            handled.push(body);
            stop.abort();
          },
          { prefetch: 8, signal: stop.signal },
        );
        expect(handled).toEqual([0]);
        expect(await q.stats()).toMatchObject({ ready: 9, inflight: 0 });
      });

      it('processes with a handler: acks on return, nacks on throw, stops on abort', async () => {
        const q = await ctx.open<number>({ maxAttempts: 1 });
        await q.sendBatch(Array.from({ length: 20 }, (_, i) => ({ body: i })));
        const stop = new AbortController();
        const handled = new Set<number>();
        const errors: unknown[] = [];
        let done = 0;
        let allDone: () => void = () => {};
        const finished = new Promise<void>((resolve) => {
          allDone = resolve;
        });
        const run = q.process(
          async (body) => {
            handled.add(body);
            if (++done === 20) allDone();
            if (body % 5 === 0) throw new Error(`refuse ${body}`);
          },
          { concurrency: 3, signal: stop.signal, onError: (err) => errors.push(err) },
        );
        await watchdog(finished, 20_000, 'every message to be handled');
        stop.abort();
        await watchdog(run, 20_000, 'process() to resolve after abort');
        expect(handled.size).toBe(20);
        expect(errors).toHaveLength(4);
        const stats = await q.stats();
        expect(stats).toMatchObject({ ready: 0, inflight: 0, dead: 4 });
        expect((await q.deadLetters()).map((m) => m.body).sort((a, b) => a - b)).toEqual([0, 5, 10, 15]);
      });

      it('keeps the event loop turning while a consumer drains a backlog', async () => {
        const q = await ctx.open<number>();
        const total = 5000;
        for (let i = 0; i < total; i += 1000) {
          await q.sendBatch(Array.from({ length: 1000 }, (_, k) => ({ body: i + k })));
        }
        let handled = 0;
        let allDone: () => void = () => {};
        const finished = new Promise<void>((resolve) => {
          allDone = resolve;
        });
        const stop = new AbortController();
        // A timer queued now must run before the consumer is through: the drain may not hog the loop.
        const seenByTimer = new Promise<number>((resolve) => setTimeout(() => resolve(handled), 0));
        const run = q.process(
          () => {
            if (++handled === total) allDone();
          },
          { concurrency: 4, prefetch: 256, signal: stop.signal },
        );
        expect(await seenByTimer).toBeLessThan(total);
        await watchdog(finished, 30_000, 'the backlog to be drained');
        stop.abort();
        await run;
      });

      /** Sends a body the schema refuses, then 42: the first receive fails, the next gets 42. */
      async function refusedThenGood(opts: { maxAttempts?: number }) {
        const q = await ctx.open<number>({ schema: numbersOnly, ...opts });
        const raw = await ctx.open<unknown>();
        await raw.send('not a number');
        await raw.send(42);
        expect(await code(q.receive({ timeout: 10_000 }))).toBe(ErrorCodes.INVALID_MESSAGE);
        const good = await q.receive({ timeout: 10_000 });
        expect(good.body).toBe(42);
        await good.ack();
        return q;
      }

      it('rejects a message that fails the schema, nacks it, and stays usable', async () => {
        const q = await refusedThenGood({ maxAttempts: 1 });
        const dead = await q.deadLetters();
        expect(dead.map((m) => m.body)).toEqual(['not a number']);
      });

      it('a message that fails the schema steps aside: the next receive gets the one behind it', async () => {
        const q = await refusedThenGood({});
        // Delayed for another consumer (attempts left), not dead yet and not in the way.
        expect(await q.stats()).toMatchObject({ ready: 0, delayed: 1, dead: 0 });
      });

      it('awaits a schema that validates asynchronously: receive, consume and process', async () => {
        const q = await ctx.open<number>({ schema: numbersOnlyAsync, maxAttempts: 1 });
        const raw = await ctx.open<unknown>();
        const numbers = await ctx.open<unknown>({ schema: numbersOnlyAsync, maxAttempts: 1 });
        await raw.send('not a number');
        await raw.send(1);
        expect(await code(q.receive({ timeout: 10_000 }))).toBe(ErrorCodes.INVALID_MESSAGE);
        const one = await q.receive({ timeout: 10_000 });
        expect(one.body).toBe(1);
        await one.ack();
        // A validator whose promise rejects is ERR_IPC_INVALID_MESSAGE too, its error the cause.
        await raw.send(Number.NaN);
        const threw = await numbers.receive({ timeout: 10_000 }).catch((e: unknown) => e);
        expect(isIpcError(threw, ErrorCodes.INVALID_MESSAGE)).toBe(true);
        expect((threw as Error).message).toMatch(/the schema validator threw/);
        expect(((threw as Error).cause as Error).message).toBe('the validator failed');

        await raw.send(2);
        for await (const m of q.consume()) {
          expect(m.body).toBe(2);
          await m.ack();
          break;
        }
        await raw.send(3);
        const stop = new AbortController();
        const seen: number[] = [];
        await watchdog(
          q.process(
            (body) => {
              seen.push(body);
              stop.abort();
            },
            { signal: stop.signal },
          ),
          10_000,
          'process() to handle one message',
        );
        expect(seen).toEqual([3]);
        // Each refused body went to the dead letters (maxAttempts 1), nothing else did.
        expect(await q.stats()).toMatchObject({ ready: 0, inflight: 0, dead: 2 });
      });

      it('close() during an async validation gives the message back, and a validator that never answers does not hold it up', async () => {
        const other = await ctx.open<number>();
        for (const mode of ['receive', 'consume', 'process'] as const) {
          let started!: () => void;
          const validating = new Promise<void>((resolve) => {
            started = resolve;
          });
          const neverAnswers = {
            '~standard': {
              version: 1 as const,
              vendor: 'test',
              validate: () => {
                started();
                return new Promise<never>(() => {});
              },
            },
          };
          const q = await ctx.open<number>({ schema: neverAnswers });
          await other.send(1);
          let handled = 0;
          const consumer: Promise<unknown> =
            mode === 'receive'
              ? code(q.receive({ timeout: 10_000 }))
              : mode === 'consume'
                ? (async () => {
                    for await (const _ of q.consume()) handled++;
                    return 'ended';
                  })()
                : q.process(() => {
                    handled++;
                  });
          await watchdog(validating, 10_000, `${mode}: the validation to start`);
          await watchdog(q.close(), 10_000, `${mode}: close()`);
          const outcome = await watchdog(consumer, 10_000, `${mode}: the consumer to end`);
          expect(outcome).toBe(
            mode === 'receive' ? ErrorCodes.CLOSED : mode === 'consume' ? 'ended' : undefined,
          );
          expect(handled).toBe(0);
          // Given back at once, not leased to nobody until its lease ends.
          expect(await other.stats()).toMatchObject({ ready: 1, inflight: 0 });
          await (await other.receive({ timeout: 10_000 })).ack();
        }
      });

      it('a prefetched message a consume() loop takes as close() begins is given back, not handed out', async () => {
        const later = {
          '~standard': {
            version: 1 as const,
            vendor: 'test',
            validate: async (value: unknown) => {
              await new Promise<void>((resolve) => setImmediate(resolve));
              return { value: value as number };
            },
          },
        };
        const q = await ctx.open<number>({ schema: later });
        const other = await ctx.open<number>();
        for (let i = 0; i < 3; i++) await other.send(i);
        const loop = q.consume({ prefetch: 3 });
        const first = await watchdog(loop.next(), 10_000, 'the first message');
        await first.value!.ack();
        // The fetcher holds the other two by now (prefetch 3). Taken in the same tick as close().
        const next = loop.next();
        const closing = q.close();
        expect((await watchdog(next, 10_000, 'the next step')).done).toBe(true);
        await watchdog(closing, 10_000, 'close()');
        expect(await other.stats()).toMatchObject({ ready: 2, inflight: 0 });
      });

      it('a validator that answers with a foreign thenable or with no result is ERR_IPC_INVALID_MESSAGE', async () => {
        const answers: unknown[] = [
          // A promise that is not this realm's Promise (another vm context's).
          runInNewContext("Promise.resolve({ issues: [{ message: 'refused' }] })"),
          null,
        ];
        let next = 0;
        const odd = {
          '~standard': { version: 1 as const, vendor: 'test', validate: () => answers[next++] as never },
        };
        const q = await ctx.open<number>({ schema: odd });
        const raw = await ctx.open<number>();
        await raw.send(1);
        await raw.send(2);
        const refused = await q.receive({ timeout: 10_000 }).catch((e: unknown) => e);
        expect(isIpcError(refused, ErrorCodes.INVALID_MESSAGE)).toBe(true);
        expect((refused as Error).message).toMatch(/refused/);
        const empty = await q.receive({ timeout: 10_000 }).catch((e: unknown) => e);
        expect(isIpcError(empty, ErrorCodes.INVALID_MESSAGE)).toBe(true);
        expect((empty as Error).message).toMatch(/gave no result/);
      });

      it('close() awaited inside a process() handler is ERR_IPC_DEADLOCK, not a hang; the queue still closes', async () => {
        const q = await ctx.open<string>();
        const other = await ctx.open<string>();
        await q.send('the last job');
        let inside: unknown;
        const run = q.process(async () => {
          inside = await q.close().catch((e: unknown) => e);
        });
        await watchdog(run, 10_000, 'process() to end');
        expect(isIpcError(inside, ErrorCodes.DEADLOCK)).toBe(true);
        await watchdog(q.close(), 10_000, 'close() to finish');
        await expect(q.send('after')).rejects.toMatchObject({ code: ErrorCodes.CLOSED });
        // The handler returned: its message was acked on the way out.
        expect(await other.stats()).toMatchObject({ ready: 0, inflight: 0, dead: 0 });
      });

      it('close() from work a handler scheduled, run after the handler returned, closes normally', async () => {
        const q = await ctx.open<string>();
        await q.send('schedules the close');
        let closing: Promise<unknown> | undefined;
        const run = q.process(() => {
          setImmediate(() => {
            closing = q.close().then(
              () => 'closed',
              (e: unknown) => e,
            );
          });
        });
        await watchdog(run, 10_000, 'process() to end');
        expect(await watchdog(closing!, 10_000, 'close')).toBe('closed');
      });

      it('closes: waiting receives reject, consume loops end, later calls reject ERR_IPC_CLOSED', async () => {
        const q = await ctx.open<string>();
        const waiting = code(q.receive());
        const loop = (async () => {
          let n = 0;
          for await (const _ of q.consume()) n++;
          return n;
        })();
        await q.close();
        expect(await waiting).toBe(ErrorCodes.CLOSED);
        expect(await watchdog(loop, 10_000, 'the consume loop to end')).toBe(0);
        expect(await code(q.send('x'))).toBe(ErrorCodes.CLOSED);
        expect(await code(q.stats())).toBe(ErrorCodes.CLOSED);
        expect(() => q.consume()).toThrow(expect.objectContaining({ code: ErrorCodes.CLOSED }));
        expect(await code(q.process(async () => {}))).toBe(ErrorCodes.CLOSED);
        expect(q.closed).toBe(true);
        await q.close();
      });

      it('a settle that failed (the queue closed) settled nothing: it is not then refused as LEASE_LOST', async () => {
        const q = await ctx.open<string>({ visibilityTimeoutMs: 100 });
        await q.send('x');
        const m = await q.receive({ timeout: 10_000 });
        await q.close();
        expect(await code(m.ack())).toBe(ErrorCodes.CLOSED);
        expect(await code(m.ack())).toBe(ErrorCodes.CLOSED);
        expect(await code(m.nack())).toBe(ErrorCodes.CLOSED);
        // Still there for the next consumer, once the lease ends.
        const again = await ctx.open<string>();
        const back = await again.receive({ timeout: 10_000 });
        expect([back.body, back.attempts]).toEqual(['x', 2]);
        await back.ack();
      });

      it('flushes sends issued before close', async () => {
        const q = await ctx.open<number>();
        const sends = Array.from({ length: 50 }, (_, i) => q.send(i));
        await q.close();
        expect((await Promise.all(sends)).length).toBe(50);
        const again = await ctx.open<number>();
        expect((await again.stats()).ready).toBe(50);
      });

      it('times out and aborts a receive without damaging the queue', async () => {
        const q = await ctx.open<string>();
        const controller = new AbortController();
        const aborted = q.receive({ signal: controller.signal });
        controller.abort(new Error('enough'));
        const err = await aborted.catch((e) => e);
        expect(isIpcError(err, ErrorCodes.ABORTED)).toBe(true);
        expect((err as Error).cause).toEqual(new Error('enough'));
        expect(await code(q.receive({ timeout: 20 }))).toBe(ErrorCodes.TIMEOUT);
        await q.send('still works');
        const m = await q.receive({ timeout: 10_000 });
        expect(m.body).toBe('still works');
        await m.ack();
      });

      it('receive({ timeout: 0 }) polls: it gets a ready message, and times out at once on an empty queue', async () => {
        const q = await ctx.open<number>();
        for (let i = 0; i < 20; i++) {
          await q.send(i);
          const polled = q.receive({ timeout: 0 });
          // Let a 0 ms timer fall due before the store is asked: a poll still looks first.
          const due = performance.now() + 2;
          while (performance.now() < due);
          const m = await polled;
          expect(m.body).toBe(i);
          await m.ack();
        }
        expect(await code(q.receive({ timeout: 0 }))).toBe(ErrorCodes.TIMEOUT);
        await q.send(20);
        expect((await q.receive({ timeout: 10_000 })).body).toBe(20);
      });

      it('checks arguments: bad names, options and bodies fail without throwing synchronously', async () => {
        expect(await code(MessageQueue.open('../etc', { store: ctx.handle.store }))).toBe(
          ErrorCodes.INVALID_NAME,
        );
        const bad = MessageQueue.open(ctx.name, { store: ctx.handle.store, maxAttempts: 0 });
        await expect(bad).rejects.toThrow(/options\.maxAttempts/);
        await expect(MessageQueue.open(ctx.name, { onFull: 'drop' as never })).rejects.toThrow(RangeError);
        const q = await ctx.open<unknown>();
        let sent: Promise<string> | undefined;
        expect(() => {
          sent = q.send('x', { priority: 1.5 });
        }).not.toThrow();
        await expect(sent).rejects.toThrow(/options\.priority/);
        await expect(q.send('x', { type: '' })).rejects.toThrow(TypeError);
        // Lone surrogates: stored as UTF-8 they would become U+FFFD, and two ids one.
        await expect(q.send('x', { type: 'a\uD800' })).rejects.toThrow(/options\.type must be well-formed/);
        await expect(q.send('x', { id: '\uDFFF' })).rejects.toThrow(/options\.id must be well-formed/);
        await expect(q.receive({ types: ['\uD83D'] })).rejects.toThrow(/options\.types\[0\]/);
        expect(await q.send('x', { type: 'emoji \u{1F600}', id: 'e-\u{1F600}' })).toBe('e-\u{1F600}');
        expect((await q.receive({ types: ['emoji \u{1F600}'], timeout: 10_000 })).body).toBe('x');
        await expect(q.send('x', { delayMs: -1 })).rejects.toThrow(RangeError);
        await expect(q.receive({ types: [] })).rejects.toThrow(/options\.types/);
        await expect(q.receive({ timeout: -5 })).rejects.toThrow(RangeError);
        await expect(q.peek(0)).rejects.toThrow(RangeError);
        expect(await code(q.send(Symbol('not encodable')))).toBe(ErrorCodes.INVALID_MESSAGE);
        expect(() => q.consume({ prefetch: 0 })).toThrow(/options\.prefetch/);
        const m = (await q.sendBatch([{ body: 1 }])) && (await q.receive({ timeout: 10_000 }));
        await expect(m.nack({ delayMs: -1 })).rejects.toThrow(RangeError);
        await expect(m.extend(0)).rejects.toThrow(RangeError);
        await m.ack();
      });

      it('a wrong-typed number option is a TypeError, a number out of range a RangeError', async () => {
        await expect(MessageQueue.open(ctx.name, { maxAttempts: '5' as never })).rejects.toThrow(TypeError);
        const q = await ctx.open<unknown>();
        let sent: Promise<string> | undefined;
        expect(() => {
          sent = q.send(1, { priority: 'high' as never });
        }).not.toThrow();
        await expect(sent).rejects.toThrow(TypeError);
        await expect(q.send(1, { priority: 'high' as never })).rejects.toThrow(/options\.priority/);
        await expect(q.send(1, { priority: 2 ** 31 })).rejects.toThrow(RangeError);
        await expect(q.send(1, { delayMs: '5' as never })).rejects.toThrow(TypeError);
        await expect(q.receive({ timeout: 'x' as never })).rejects.toThrow(TypeError);
        await expect(q.peek('3' as never)).rejects.toThrow(TypeError);
        expect(() => q.consume({ prefetch: '2' as never })).toThrow(TypeError);
        expect((await q.stats()).ready).toBe(0);
      });

      it('removes a queue and everything in it', async () => {
        const q = await ctx.open<string>();
        await q.send('x');
        await q.close();
        expect(await MessageQueue.remove(ctx.name, { store: ctx.handle.store })).toBe(true);
        const fresh = await ctx.open<string>();
        expect((await fresh.stats()).ready).toBe(0);
      });

      it('a delivery from before remove() settles nothing in the queue made again under its name', async () => {
        const before = await ctx.open<string>();
        await before.send('old');
        const stale = await before.receive({ timeout: 10_000 });
        expect(await MessageQueue.remove(ctx.name, { store: ctx.handle.store })).toBe(true);
        const after = await ctx.open<string>();
        await after.send('new');
        const current = await after.receive({ timeout: 10_000 });
        // Whatever becomes of it (the SQLite handle still has the unlinked file), it is not the
        // delivery of the new message: acking it must not delete that one.
        await stale.ack().catch(() => {});
        expect(await after.stats()).toMatchObject({ ready: 0, inflight: 1 });
        await current.ack();
        expect(await after.stats()).toMatchObject({ ready: 0, inflight: 0, dead: 0 });
      });
    },
  );
}
