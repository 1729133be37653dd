/**
 * The MessageQueue contract between real processes, against every store in stores.ts: sharing by
 * name, wake-ups, and what survives a SIGKILL or a SIGSTOP. Children are test/fixtures/mq-*.ts;
 * every wait is on a line they print or on their exit, bounded by a watchdog.
 */
import { describe, expect, it } from 'vitest';
import { ErrorCodes, isIpcError } from '../../src/index.js';
import { watchdog } from '../helpers.js';
import { useQueueContext } from './context.js';
import { gotJson, startFixture } from './harness.js';
import { stores } from './stores.js';

for (const store of stores) {
  const skip = store.unavailable();
  describe.skipIf(skip !== undefined)(
    `MessageQueue between processes: ${store.name}${skip ? ` (${skip})` : ''}`,
    () => {
      const ctx = useQueueContext(store);

      it('lets a process receive what another process sent to the same name', async () => {
        const producer = startFixture(
          'mq-send.ts',
          [ctx.name, '{"hello":"world"}', '{"type":"greeting"}'],
          ctx.handle.spec,
        );
        const sent = await producer.waitFor('sent ');
        expect((await producer.exit()).code).toBe(0);
        const q = await ctx.open();
        const m = await q.receive({ timeout: 10_000 });
        expect(m.id).toBe(sent.slice('sent '.length));
        expect(m.body).toEqual({ hello: 'world' });
        expect(m.type).toBe('greeting');
        await m.ack();
      });

      it('wakes an idle consumer in another process when a message arrives', async () => {
        const consumer = startFixture(
          'mq-wait-receive.ts',
          [ctx.name, '{"types":["wanted"]}'],
          ctx.handle.spec,
        );
        await consumer.waitFor('waiting');
        const q = await ctx.open<string>();
        await q.send('not for you', { type: 'other' });
        await q.send('for you', { type: 'wanted' });
        // The consumer's safety-net poll is 10 minutes: only the wake-up can deliver within the watchdog.
        expect(await consumer.waitFor('got ', 10_000)).toBe('got "for you"');
        expect((await consumer.exit()).code).toBe(0);
        expect((await q.stats()).byType).toEqual({ other: 1 });
      });

      it('wakes an idle consumer for a message whose producer sent, closed and exited at once', async () => {
        const consumer = startFixture('mq-wait-receive.ts', [ctx.name, '{}'], ctx.handle.spec);
        await consumer.waitFor('waiting');
        const producer = startFixture('mq-send.ts', [ctx.name, '"last words"'], ctx.handle.spec);
        await producer.waitFor('sent ');
        expect((await producer.exit()).code).toBe(0);
        // The consumer's safety-net poll is 10 minutes: only the producer's ring, made before its
        // close() returned, can deliver within the watchdog.
        expect(await consumer.waitFor('got ', 10_000)).toBe('got "last words"');
        expect((await consumer.exit()).code).toBe(0);
      });

      it('redelivers, with attempts + 1, what a consumer killed before its ack was holding', async () => {
        // This handle keeps the default lease: the redelivered message's ack cannot be late.
        const q = await ctx.open<string>();
        const id = await q.send('survivor');
        const consumer = startFixture(
          'mq-receive-and-hold.ts',
          [ctx.name, '{"visibilityTimeoutMs":300}'],
          ctx.handle.spec,
        );
        const got = gotJson(await consumer.waitFor('got '));
        expect(got).toMatchObject({ id, attempts: 1 });
        consumer.kill('SIGKILL');
        expect((await consumer.exit()).signal).toBe('SIGKILL');
        const again = await q.receive({ timeout: 10_000 });
        expect([again.id, again.body, again.attempts]).toEqual([id, 'survivor', 2]);
        await again.ack();
        expect(await q.stats()).toMatchObject({ ready: 0, inflight: 0, dead: 0 });
      });

      it('refuses the ack of a consumer that was stopped past its lease; the message is acked once', async () => {
        // This handle keeps the default lease: the redelivered message's ack cannot be late.
        const q = await ctx.open<string>();
        const id = await q.send('contended');
        const slow = startFixture(
          'mq-receive-and-hold.ts',
          [ctx.name, '{"visibilityTimeoutMs":300}'],
          ctx.handle.spec,
        );
        expect(gotJson(await slow.waitFor('got ')).id).toBe(id);
        slow.kill('SIGSTOP');
        try {
          const again = await q.receive({ timeout: 10_000 });
          expect([again.id, again.attempts]).toEqual([id, 2]);
          await again.ack();
        } finally {
          slow.kill('SIGCONT');
        }
        slow.tell('ack');
        expect(await slow.waitFor('ack')).toBe(`ack-failed ${ErrorCodes.LEASE_LOST}`);
        slow.tell('exit');
        expect((await slow.exit()).code).toBe(0);
        expect(await q.stats()).toMatchObject({ ready: 0, inflight: 0, dead: 0 });
      });

      it('keeps a message whose producer was killed right after send resolved', async () => {
        const producer = startFixture(
          'mq-send.ts',
          [ctx.name, '"last words"', '{"priority":3}'],
          ctx.handle.spec,
          {
            MQ_DIE_AFTER_SEND: '1',
          },
        );
        const sent = await producer.waitFor('sent ');
        expect((await producer.exit()).signal).toBe('SIGKILL');
        const q = await ctx.open<string>();
        const m = await q.receive({ timeout: 10_000 });
        expect([m.id, m.body, m.priority]).toEqual([sent.slice('sent '.length), 'last words', 3]);
        await m.ack();
      });

      it('wakes a producer in another process that waits for room when a consumer acks', async () => {
        const q = await ctx.open<string>({ maxMessages: 1 });
        await q.send('first');
        const producer = startFixture(
          'mq-send.ts',
          [ctx.name, '"second"', '{}', '{"maxMessages":1,"pollIntervalMs":600000}'],
          ctx.handle.spec,
        );
        await producer.waitFor('opened');
        const err = await q.send('third', { timeout: 30 }).catch((e) => e);
        expect(isIpcError(err, ErrorCodes.TIMEOUT)).toBe(true);
        const m = await q.receive({ timeout: 10_000 });
        expect(m.body).toBe('first');
        await m.ack();
        await producer.waitFor('sent ', 10_000);
        expect((await producer.exit()).code).toBe(0);
        const next = await watchdog(q.receive(), 10_000, 'the second message');
        expect(next.body).toBe('second');
        await next.ack();
      });
    },
  );
}
