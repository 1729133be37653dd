/**
 * Processes killed (SIGKILL, through IPCKIT_CRASHPOINT) at the edges of the SQLite store's
 * transactions: a send's batch is in the queue whole or not at all, a claimed message comes back
 * after its lease, an ack that committed stays done.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCodes, isIpcError, MessageQueue } from '../../src/index.js';
import { Fixture } from '../conformance/harness.js';
import { isolateRuntimeDir } from '../helpers.js';

describe('SQLite store crash points', () => {
  let rt: { dir: string; cleanup(): void };
  beforeEach(() => {
    rt = isolateRuntimeDir();
  });
  afterEach(() => rt.cleanup());

  it('a producer killed inside its commit leaves none of the batch', async () => {
    const q = await MessageQueue.open<string>('batch');
    const producer = new Fixture('mq-send-batch.ts', ['batch', '50'], {
      IPCKIT_CRASHPOINT: 'mq.commit:before',
    });
    expect((await producer.exit()).signal).toBe('SIGKILL');
    expect(producer.lines).not.toContain('sent');
    expect(await q.stats()).toMatchObject({ ready: 0, inflight: 0 });
    await q.close();
  });

  it('a producer killed right after its commit leaves the whole batch, in order', async () => {
    const q = await MessageQueue.open<string>('batch');
    const producer = new Fixture('mq-send-batch.ts', ['batch', '50'], {
      IPCKIT_CRASHPOINT: 'mq.commit:after',
    });
    expect((await producer.exit()).signal).toBe('SIGKILL');
    expect(producer.lines).not.toContain('sent');
    expect((await q.stats()).ready).toBe(50);
    const bodies = (await q.peek(100)).map((m) => m.body);
    expect(bodies).toEqual(Array.from({ length: 50 }, (_, i) => `m${i}`));
    await q.close();
  });

  it('a consumer killed between its claim and the hand-over loses the message only until the lease ends', async () => {
    // This handle keeps the default lease: the redelivered message's ack cannot be late.
    const q = await MessageQueue.open<string>('claimed');
    const id = await q.send('precious');
    const consumer = new Fixture('mq-receive-and-hold.ts', ['claimed', '{"visibilityTimeoutMs":200}'], {
      IPCKIT_CRASHPOINT: 'mq.claim:after',
    });
    expect((await consumer.exit()).signal).toBe('SIGKILL');
    expect(consumer.lines.some((l) => l.startsWith('got'))).toBe(false);
    const m = await q.receive({ timeout: 10_000 });
    expect([m.id, m.attempts]).toEqual([id, 2]);
    await m.ack();
    await q.close();
  });

  it('a consumer killed right after its ack committed does not get the message back', async () => {
    const q = await MessageQueue.open<string>('acked', { visibilityTimeoutMs: 200 });
    await q.send('done once');
    const consumer = new Fixture('mq-receive-and-hold.ts', ['acked', '{"visibilityTimeoutMs":60000}'], {
      IPCKIT_CRASHPOINT: 'mq.settle:after',
    });
    await consumer.waitFor('got ');
    consumer.tell('ack');
    expect((await consumer.exit()).signal).toBe('SIGKILL');
    expect(consumer.lines).not.toContain('acked');
    expect(await q.stats()).toMatchObject({ ready: 0, inflight: 0, dead: 0 });
    const err = await q.receive({ timeout: 300 }).catch((e) => e);
    expect(isIpcError(err, ErrorCodes.TIMEOUT)).toBe(true);
    await q.close();
  });
});
