/**
 * The Channel contract (src/core/channel.ts), run against every transport in channels.ts: timeouts
 * and aborts, close and destroy, backpressure, iteration, and messages kept in order. A transport
 * passes only if it behaves the same as the others in all of it.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type Channel, type ChannelOptions, ErrorCodes } from '../../src/index.js';
import { isolateRuntimeDir, isPending, rejectionOf, watchdog } from '../helpers.js';
import { type ChannelPair, type ChannelTransport, channelTransports } from './channels.js';

describe.each(channelTransports)('Channel lifecycle: $name', (transport: ChannelTransport) => {
  let env: ReturnType<typeof isolateRuntimeDir>;
  const pairs: ChannelPair<unknown>[] = [];
  let a: Channel<unknown>;
  let b: Channel<unknown>;

  /** A connected pair, taken down after the test. */
  async function pair<T>(opts?: ChannelOptions<T>): Promise<ChannelPair<T>> {
    const made = await transport.pair<T>(opts);
    pairs.push(made as ChannelPair<unknown>);
    return made;
  }

  beforeEach(async () => {
    env = isolateRuntimeDir();
    ({ a, b } = await pair({ receiveHighWaterMark: 16 }));
  });
  afterEach(async () => {
    for (const made of pairs.splice(0)) await made.cleanup();
    env.cleanup();
  });

  it('a receive that times out rejects with ERR_IPC_TIMEOUT and the channel keeps working', async () => {
    await expect(a.receive({ timeout: 20 })).rejects.toMatchObject({ code: ErrorCodes.TIMEOUT });
    await b.send('after timeout');
    expect(await watchdog(a.receive(), 5000, 'receive')).toBe('after timeout');
  });

  it('an aborted receive rejects with ERR_IPC_ABORTED carrying the reason, and nothing is lost', async () => {
    const controller = new AbortController();
    const pending = a.receive({ signal: controller.signal });
    controller.abort(new Error('user gave up'));
    const error = await rejectionOf(pending);
    expect(error.code).toBe(ErrorCodes.ABORTED);
    expect(error.cause?.message).toBe('user gave up');
    await b.send('next');
    expect(await watchdog(a.receive(), 5000, 'receive')).toBe('next');
    const already = AbortSignal.abort();
    await expect(a.receive({ signal: already })).rejects.toMatchObject({ code: ErrorCodes.ABORTED });
  });

  it('a signal aborted before the call fails it even when it could complete at once; nothing is sent or taken', async () => {
    const already = AbortSignal.abort();
    // Two messages sent in one tick arrive together: once the first is taken, the second is queued.
    const sent = Promise.all([b.send('first'), b.send('second')]);
    expect(await watchdog(a.receive(), 5000, 'receive')).toBe('first');
    await sent;
    await expect(a.receive({ signal: already })).rejects.toMatchObject({ code: ErrorCodes.ABORTED });
    expect(await watchdog(a.receive(), 5000, 'receive')).toBe('second');
    // A send with room: refused, and nothing reaches the peer.
    await expect(b.send('never', { signal: already })).rejects.toMatchObject({ code: ErrorCodes.ABORTED });
    await b.send('after');
    expect(await watchdog(a.receive(), 5000, 'receive')).toBe('after');
  });

  it('checks wait options, rejecting (never throwing) with the option named', async () => {
    const promise = a.receive({ timeout: -1 });
    expect(promise).toBeInstanceOf(Promise);
    await expect(promise).rejects.toThrow(/options.timeout/);
    await expect(a.send('x', { signal: 'no' as never })).rejects.toThrow(/options.signal/);
  });

  it('refuses a message over maxMessageBytes on send, and the channel stays usable', async () => {
    const { a: small, b: peer } = await pair({ maxMessageBytes: 1024 });
    await expect(small.send('x'.repeat(2000))).rejects.toMatchObject({ code: ErrorCodes.FRAME_TOO_LARGE });
    await small.send('fits');
    expect(await watchdog(peer.receive(), 5000, 'receive')).toBe('fits');
    await small.close();
  });

  it('close() flushes what was sent, is idempotent, and the peer iteration ends cleanly', async () => {
    for (let i = 0; i < 50; i++) void a.send(i);
    const first = a.close();
    const second = a.close();
    await Promise.all([first, second]);
    expect(a.closed).toBe(true);
    const received: unknown[] = [];
    for await (const message of b) received.push(message);
    expect(received).toEqual(Array.from({ length: 50 }, (_, i) => i));
    await expect(a.send('late')).rejects.toMatchObject({ code: ErrorCodes.CLOSED });
    await expect(b.send('to a closed peer')).rejects.toMatchObject({ code: ErrorCodes.CLOSED });
  });

  it('pending receives reject with ERR_IPC_CLOSED on close() and on destroy()', async () => {
    // Each taken while the other end is open and has sent nothing, so each waits when its own end
    // goes. (After a.close(), b's receive would end at a's goodbye, which a shared-memory reader
    // sees at once.) Taken at once: the receive may reject while close() is still awaited.
    const onDestroy = rejectionOf(b.receive());
    b.destroy(new Error('because'));
    const onClose = rejectionOf(a.receive());
    await a.close();
    expect((await onClose).code).toBe(ErrorCodes.CLOSED);
    const error = await onDestroy;
    expect(error.code).toBe(ErrorCodes.CLOSED);
    expect(error.cause?.message).toBe('because');
  });

  it('await using closes the channel', async () => {
    const { a: extra, b: peer } = await pair();
    {
      await using scoped = extra;
      await scoped.send('inside');
    }
    expect(extra.closed).toBe(true);
    expect(await watchdog(peer.receive(), 5000, 'receive')).toBe('inside');
    await expect(peer.receive()).rejects.toMatchObject({ code: ErrorCodes.CLOSED });
  });

  it('breaking out of for-await does not close the channel', async () => {
    await b.send(1);
    await b.send(2);
    for await (const message of a) {
      expect(message).toBe(1);
      break;
    }
    expect(a.closed).toBe(false);
    expect(await a.receive()).toBe(2);
    await a.send('still duplex');
    expect(await watchdog(b.receive(), 5000, 'receive')).toBe('still duplex');
  });

  it('send applies backpressure while the peer does not read, and resumes when it does', async () => {
    // The receiver buffers 16 messages, the kernel and Node buffers some more; then sends must wait.
    const payload = 'x'.repeat(64 * 1024);
    let sent = 0;
    let blocked: Promise<void> | undefined;
    for (let i = 0; i < 2000 && !blocked; i++) {
      const promise = b.send(payload);
      sent++;
      if (await isPending(promise)) blocked = promise;
    }
    expect(blocked).toBeDefined();
    for (let i = 0; i < sent; i++) await watchdog(a.receive(), 10_000, `receive ${i}`);
    await watchdog(blocked!, 10_000, 'blocked send resolves after the peer read');
  });

  it('destroy() during a close() that waits for a full transport settles that close() at once', async () => {
    const payload = 'z'.repeat(64 * 1024);
    const sends: Promise<unknown>[] = [];
    let blocked = false;
    for (let i = 0; i < 2000 && !blocked; i++) {
      const promise = b.send(payload);
      sends.push(promise.catch((err: unknown) => err));
      blocked = await isPending(promise);
    }
    expect(blocked).toBe(true);
    // Far more than the peer's 16-message queue takes: close() cannot finish while the peer waits.
    for (let i = 0; i < 64; i++) sends.push(b.send(payload).catch((err: unknown) => err));
    // The usual "close politely, destroy if that is slow".
    const closing = b.close();
    expect(await isPending(closing)).toBe(true);
    b.destroy();
    await watchdog(closing, 5000, 'close() settles after destroy()');
    const outcomes = await watchdog(Promise.all(sends), 5000, 'every send settles');
    expect(outcomes.at(-1)).toMatchObject({ code: ErrorCodes.CLOSED });
    await expect(b.send('after')).rejects.toMatchObject({ code: ErrorCodes.CLOSED });
  });

  it('a send that waits for room can time out without damaging the channel', async () => {
    const payload = 'y'.repeat(64 * 1024);
    let timedOut = false;
    let sent = 0;
    for (let i = 0; i < 2000 && !timedOut; i++) {
      const error = await b.send(payload, { timeout: 30 }).then(
        () => undefined,
        (e) => e,
      );
      if (error) {
        expect(error.code).toBe(ErrorCodes.TIMEOUT);
        timedOut = true;
      } else sent++;
    }
    expect(timedOut).toBe(true);
    for (let i = 0; i < sent; i++) expect(await watchdog(a.receive(), 10_000, `receive ${i}`)).toBe(payload);
    await b.send('after');
    expect(await watchdog(a.receive(), 5000, 'after')).toBe('after');
  });

  it('queues every message in order, bad ones and ones that decode to undefined or null included', async () => {
    // A codec that maps the empty payload to undefined, and 0xff to a decode failure.
    const codec = {
      name: 'tiny',
      encode: (m: number | undefined | null) => new Uint8Array(m === undefined ? [] : m === null ? [0] : [m]),
      decode: (bytes: Uint8Array) => {
        if (bytes.length === 0) return undefined;
        if (bytes[0] === 0xff) throw new Error('unreadable');
        return bytes[0] === 0 ? null : bytes[0];
      },
    };
    const { a: sender, b: receiver } = await pair<number | undefined | null>({ codec });
    {
      for (const m of [1, undefined, null, 0xff, 2]) await sender.send(m);
      await sender.close();
      // The first three are read with receive(), the rest by iteration, which ends at the close.
      expect(await watchdog(receiver.receive(), 5000, 'first')).toBe(1);
      expect(await watchdog(receiver.receive(), 5000, 'undefined')).toBeUndefined();
      expect(await watchdog(receiver.receive(), 5000, 'null')).toBeNull();
      const iterated: unknown[] = [];
      for (;;) {
        try {
          for await (const m of receiver) iterated.push(m);
          break;
        } catch (err) {
          iterated.push((err as { code: string }).code);
        }
      }
      expect(iterated).toEqual([ErrorCodes.INVALID_MESSAGE, 2]);
    }
  });

  it('a raw-codec sender may reuse its Buffer as soon as send resolves, also when the transport is full', async () => {
    const { a: receiver, b: sender } = await pair<Uint8Array>({ codec: 'raw', receiveHighWaterMark: 16 });
    const buffer = Buffer.alloc(16 * 1024);
    let waiting: Promise<void> | undefined;
    let sent = 0;
    while (!waiting && sent < 5000) {
      buffer.fill(sent % 251);
      const send = sender.send(buffer);
      sent++;
      if (await isPending(send)) waiting = send;
    }
    expect(waiting).toBeDefined();
    const received = watchdog(
      (async () => {
        for (let i = 0; i < sent; i++) {
          const message = await receiver.receive();
          expect(message.byteLength).toBe(buffer.byteLength);
          expect(message.every((byte) => byte === i % 251)).toBe(true);
        }
      })(),
      10_000,
      'every message',
    );
    await watchdog(waiting!, 10_000, 'the waiting send');
    await received;
  });

  it('trySend takes messages while the transport has room, then refuses without sending, also while a send waits', async () => {
    const { a: receiver, b: sender } = await pair<{ seq: number; body: string }>({
      receiveHighWaterMark: 16,
    });
    const body = 'z'.repeat(16 * 1024);
    // 5000 x 16 KiB is more than any transport buffers while the receiver does not read.
    let accepted = 0;
    while (accepted < 5000 && sender.trySend({ seq: accepted, body })) accepted++;
    expect(accepted).toBeGreaterThan(0);
    expect(accepted).toBeLessThan(5000);
    const waiting = sender.send({ seq: accepted, body });
    waiting.catch(() => {});
    // Order is kept: nothing may overtake the waiting send.
    expect(sender.trySend({ seq: -1, body })).toBe(false);
    for (let i = 0; i <= accepted; i++) {
      expect((await watchdog(receiver.receive(), 10_000, `receive ${i}`)).seq).toBe(i);
    }
    await watchdog(waiting, 10_000, 'the waiting send');
    expect(sender.trySend({ seq: accepted + 1, body: '' })).toBe(true);
    // The refused messages never arrive: the next one is the last accepted.
    expect((await watchdog(receiver.receive(), 10_000, 'after')).seq).toBe(accepted + 1);
  });

  it('trySend throws what send rejects with: an oversized message, a closed channel', async () => {
    const { a: receiver, b: sender } = await pair<string>({ maxMessageBytes: 1024 });
    expect(() => sender.trySend('x'.repeat(2000))).toThrow(
      expect.objectContaining({ code: ErrorCodes.FRAME_TOO_LARGE }),
    );
    expect(sender.trySend('fits')).toBe(true);
    expect(await watchdog(receiver.receive(), 5000, 'receive')).toBe('fits');
    await sender.close();
    expect(() => sender.trySend('late')).toThrow(expect.objectContaining({ code: ErrorCodes.CLOSED }));
  });

  it('tryReceive hands over what has arrived, in order with receive, and undefined when nothing has', async () => {
    expect(a.tryReceive()).toBeUndefined();
    for (let i = 0; i < 5; i++) await b.send(i);
    // The first is awaited; the rest are taken as they arrive, with receive when none is there yet.
    const got = [await watchdog(a.receive(), 5000, 'first')];
    while (got.length < 5) {
      const next = a.tryReceive();
      got.push(next ? next.message : await watchdog(a.receive(), 5000, `receive ${got.length}`));
    }
    expect(got).toEqual([0, 1, 2, 3, 4]);
    expect(a.tryReceive()).toBeUndefined();
    // A waiting receive is served first: tryReceive does not take its message.
    const waiting = a.receive();
    await b.send('for the waiting receive');
    expect(await watchdog(waiting, 5000, 'waiting receive')).toBe('for the waiting receive');
  });

  it('tryReceive throws what receive rejects with: a bad message (then goes on), the end of the channel', async () => {
    const codec = {
      name: 'tiny',
      encode: (m: number) => new Uint8Array([m]),
      decode: (bytes: Uint8Array) => {
        if (bytes[0] === 0xff) throw new Error('unreadable');
        return bytes[0]!;
      },
    };
    const { a: sender, b: receiver } = await pair<number>({ codec });
    for (const m of [1, 0xff, 2]) await sender.send(m);
    await sender.close();
    const seen: unknown[] = [];
    for (;;) {
      try {
        const next = receiver.tryReceive();
        seen.push(next ? next.message : await watchdog(receiver.receive(), 5000, 'receive'));
      } catch (err) {
        const code = (err as { code: string }).code;
        seen.push(code);
        if (code === ErrorCodes.CLOSED) break;
      }
    }
    expect(seen).toEqual([1, ErrorCodes.INVALID_MESSAGE, 2, ErrorCodes.CLOSED]);
    await receiver.close();
    expect(() => receiver.tryReceive()).toThrow(expect.objectContaining({ code: ErrorCodes.CLOSED }));
  });

  it('distinct messages queued behind a full transport each arrive intact and in order', async () => {
    // Sends that must wait keep their own encoding: the codec's scratch memory (which a send that
    // goes out at once may use) is overwritten by the sends after them. 24 MiB is more than the
    // kernel buffers of a loopback TCP connection hold.
    const count = 1500;
    const message = (i: number) => ({
      seq: i,
      body: `${i}:`.padEnd(16 * 1024, String.fromCharCode(97 + (i % 26))),
    });
    const sends: Promise<void>[] = [];
    for (let i = 0; i < count; i++) {
      const sent = b.send(message(i));
      sent.catch(() => {}); // a failed test destroys the pair: no unhandled rejections then
      sends.push(sent);
    }
    expect(await isPending(sends.at(-1)!)).toBe(true);
    for (let i = 0; i < count; i++) {
      expect(await watchdog(a.receive(), 10_000, `receive ${i}`)).toEqual(message(i));
    }
    await watchdog(Promise.all(sends), 10_000, 'every send accepted');
  });
});
