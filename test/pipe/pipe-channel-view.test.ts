import { createHash } from 'node:crypto';
import type { StandardSchemaV1 } from '@standard-schema/spec';
import { describe, expect, it, vi } from 'vitest';
import {
  type ChildProcess,
  ErrorCodes,
  type MessageView,
  Pipe,
  PipeChannel,
  type Receiver,
  type Sender,
  spawn,
} from '../../src/index.js';
import { fixtureArgs, rejectionOf, watchdog } from '../helpers.js';
import { stringLength } from '../support/schemas.js';
import { isolatedWithChildren } from '../support/spawned-children.js';

const children = isolatedWithChildren();
const MiB = 1 << 20;

/** `bytes` bytes that say which message they are: every byte depends on `seed`. */
function pattern(bytes: number, seed: number): Uint8Array {
  const out = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i++) out[i] = (i * 31 + seed * 7 + (i >> 10)) & 0xff;
  return out;
}

const digest = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** A pipe made in this process, its reader a PipeChannel. */
function pipePair<T = Uint8Array, S = T>(
  opts: { codec?: 'raw' | 'json'; receiveHighWaterMark?: number; schema?: StandardSchemaV1<unknown, T> } = {},
) {
  const { reader, writer } = Pipe.create();
  const codec = opts.codec ?? 'raw';
  const rx = reader.receiver<T>({
    codec,
    ...(opts.receiveHighWaterMark ? { receiveHighWaterMark: opts.receiveHighWaterMark } : {}),
    ...(opts.schema ? { schema: opts.schema } : {}),
  });
  const tx = writer.sender<S>({ codec });
  expect(rx).toBeInstanceOf(PipeChannel);
  return { rx: rx as Receiver<T> as PipeChannel<T>, tx: tx as Sender<S> };
}

/** The digest of every view until the channel ends, which must be a clean ERR_IPC_CLOSED. */
async function viewsUntilClosed(rx: PipeChannel<Uint8Array>): Promise<string[]> {
  const digests: string[] = [];
  for (;;) {
    const view = await watchdog(
      rx.receiveView().catch((err: Error & { code?: string }) => err),
      30_000,
      `view ${digests.length}`,
    );
    if (!('bytes' in view)) {
      expect(view).toMatchObject({ code: ErrorCodes.CLOSED });
      return digests;
    }
    digests.push(digest(view.bytes));
    view.release();
  }
}

function startEcho(fixture: string): ChildProcess<Uint8Array> {
  const child = spawn<Uint8Array>(process.execPath, fixtureArgs(fixture), {
    channel: 'pipe',
    codec: 'raw',
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, FIXTURE_CODEC: 'raw' },
  });
  children.push(child as ChildProcess<unknown>);
  return child;
}

describe('PipeChannel.receiveView', () => {
  it('hands 1 MiB messages from a child out intact, each in the memory the previous view gave back', async () => {
    const child = startEcho('echo-parent-channel.ts');
    const channel = child.channel as PipeChannel<Uint8Array>;
    expect(channel).toBeInstanceOf(PipeChannel);
    const memories = new Set<ArrayBufferLike>();
    // In lockstep: each message is sent only once the last view was released, so its memory is free.
    for (let i = 0; i < 6; i++) {
      const sent = pattern(MiB, i);
      await channel.send(sent);
      const view = await watchdog(channel.receiveView(), 30_000, `echo ${i}`);
      expect(view.bytes.byteLength).toBe(MiB);
      expect(digest(view.bytes)).toBe(digest(sent));
      memories.add(view.bytes.buffer);
      view.release();
      view.release(); // idempotent: the memory is not given back twice
    }
    expect(memories.size).toBe(1);
    await channel.close();
    expect(await watchdog(child.exited, 30_000, 'child exit')).toEqual({ code: 0, signal: null });
  });

  it('in a child, parentChannel() is a PipeChannel whose views carry what the parent sent', async () => {
    const child = startEcho('echo-views-parent-channel.ts');
    const channel = child.channel!;
    const sizes = [0, 1, 100, 64 * 1024 - 1, 64 * 1024 + 3, 300_000, MiB, 3 * MiB + 5];
    for (const [i, size] of sizes.entries()) {
      const sent = pattern(size, i);
      await channel.send(sent);
      const echoed = await watchdog(channel.receive(), 30_000, `echo of ${size} bytes`);
      expect(echoed.byteLength).toBe(size);
      expect(digest(echoed)).toBe(digest(sent));
    }
    await channel.close();
    expect(await watchdog(child.exited, 30_000, 'child exit')).toEqual({ code: 0, signal: null });
  });

  it('a view not released keeps its bytes while later messages arrive in other memory', async () => {
    const { rx, tx } = pipePair();
    const held = pattern(512 * 1024, 1);
    await tx.send(held);
    const first = await watchdog(rx.receiveView(), 30_000, 'first view');
    const later: MessageView[] = [];
    for (let i = 2; i < 6; i++) {
      await tx.send(pattern(512 * 1024, i));
      later.push(await watchdog(rx.receiveView(), 30_000, `view ${i}`));
    }
    expect(digest(first.bytes)).toBe(digest(held));
    for (const [i, view] of later.entries()) {
      expect(view.bytes.buffer).not.toBe(first.bytes.buffer);
      expect(digest(view.bytes)).toBe(digest(pattern(512 * 1024, i + 2)));
    }
    first.release();
    for (const view of later) view.release();
    await tx.close();
    await rx.close();
  });

  it("views' bytes are plain Uint8Arrays: slice() copies, and a copy taken outlives release()", async () => {
    const { rx, tx } = pipePair();
    const kept: Uint8Array[] = [];
    // Large ones (memory given back and reused) and small ones (copies of the read buffer).
    const sizes = [MiB, MiB, MiB, 100, 100];
    for (const [i, size] of sizes.entries()) {
      await tx.send(pattern(size, i));
      const view = await watchdog(rx.receiveView(), 30_000, `view ${i}`);
      expect(Object.getPrototypeOf(view.bytes)).toBe(Uint8Array.prototype);
      // A Buffer's slice() is a view: a later message would be read into this "copy".
      kept.push(view.bytes.slice());
      view.release();
    }
    for (const [i, size] of sizes.entries()) expect(digest(kept[i]!)).toBe(digest(pattern(size, i)));
    await tx.close();
    await rx.close();
  });

  it('a small message split across reads, once released, does not push large memory out of reuse', async () => {
    const { rx, tx } = pipePair();
    // Two 1 MiB views held at once (two buffers), then released: both kept for reuse.
    await tx.send(pattern(MiB, 0));
    const a = await watchdog(rx.receiveView(), 30_000, 'view a');
    await tx.send(pattern(MiB, 1));
    const b = await watchdog(rx.receiveView(), 30_000, 'view b');
    const large = new Set([a.bytes.buffer, b.bytes.buffer]);
    expect(large.size).toBe(2);
    a.release();
    b.release();
    // A frame of 65,484 bytes and a small one leave in one write; the pipe (64 KiB) takes 65,536 of
    // them, so the first read ends inside the small message, which is then assembled apart. Sizes
    // that differ: the second cannot reuse the first's memory.
    for (const [i, size] of [100, 300].entries()) {
      void tx.send(pattern(65_480, 10 + i));
      void tx.send(pattern(size, 20 + i));
      const filler = await watchdog(rx.receiveView(), 30_000, `filler ${i}`);
      const small = await watchdog(rx.receiveView(), 30_000, `small ${i}`);
      expect(digest(small.bytes)).toBe(digest(pattern(size, 20 + i)));
      filler.release();
      small.release();
    }
    await tx.send(pattern(MiB, 2));
    const c = await watchdog(rx.receiveView(), 30_000, 'view c');
    expect(digest(c.bytes)).toBe(digest(pattern(MiB, 2)));
    expect(large.has(c.bytes.buffer)).toBe(true);
    c.release();
    await tx.close();
    await rx.close();
  });

  it('small messages come as copies of their own: later reads do not touch them', async () => {
    const { rx, tx } = pipePair();
    const views: MessageView[] = [];
    for (let i = 0; i < 50; i++) {
      await tx.send(pattern(200, i));
      views.push(await watchdog(rx.receiveView(), 30_000, `view ${i}`));
    }
    for (const [i, view] of views.entries()) {
      expect(digest(view.bytes)).toBe(digest(pattern(200, i)));
      view.release();
    }
    await tx.close();
    await rx.close();
  });

  it('messages read ahead for receive() come first, encoded again; receive() then goes on in order', async () => {
    const { rx, tx } = pipePair<{ n: number }>({ codec: 'json' });
    // Sent in one tick: they leave in one write and arrive in one read, so 2 and 3 are read ahead.
    for (const n of [1, 2, 3, 4]) void tx.send({ n });
    expect(await watchdog(rx.receive(), 30_000, 'the first message')).toEqual({ n: 1 });
    const view = await rx.receiveView();
    expect(JSON.parse(Buffer.from(view.bytes).toString())).toEqual({ n: 2 });
    view.release();
    expect(rx.tryReceive()).toEqual({ message: { n: 3 } });
    expect(await rx.receive()).toEqual({ n: 4 });
    void tx.send({ n: 5 });
    const collected: number[] = [];
    await tx.close();
    for await (const message of rx) collected.push(message.n);
    expect(collected).toEqual([5]);
  });

  it('messages read ahead reach receive() and tryReceive() as decoded: a schema that transforms runs once', async () => {
    const { rx, tx } = pipePair<number, string | number>({ codec: 'json', schema: stringLength });
    // Sent in one tick: they arrive in one read, so all but the first are read ahead.
    for (const text of ['a', 2, 'ccc', 'dddd', 'eeeee']) void tx.send(text);
    expect(await watchdog(rx.receive(), 30_000, 'the first message')).toBe(1);
    // View mode from here on. The second failed the schema as it was read ahead: its error comes.
    expect(await rejectionOf(rx.receiveView())).toMatchObject({ code: ErrorCodes.INVALID_MESSAGE });
    expect(await rx.receive()).toBe(3);
    expect(rx.tryReceive()).toEqual({ message: 4 });
    await tx.close();
    const rest: number[] = [];
    for await (const length of rx) rest.push(length);
    expect(rest).toEqual([5]);
  });

  it('after the peer closes: the views it sent, then ERR_IPC_CLOSED, also for a view already waited on', async () => {
    const { rx, tx } = pipePair();
    const waiting = rx.receiveView();
    await tx.send(pattern(100_000, 1));
    const view = await watchdog(waiting, 30_000, 'the view');
    expect(digest(view.bytes)).toBe(digest(pattern(100_000, 1)));
    view.release();
    const next = rx.receiveView();
    await tx.close();
    expect(await watchdog(rejectionOf(next), 30_000, 'the end')).toMatchObject({ code: ErrorCodes.CLOSED });
    expect(await rejectionOf(rx.receiveView())).toMatchObject({ code: ErrorCodes.CLOSED });
    await rx.close();
  });

  it('a peer killed mid-message fails a waiting view with ERR_IPC_PEER_GONE, no partial message handed out', async () => {
    const child = spawn<Uint8Array>(process.execPath, fixtureArgs('raw-bytes-to-parent.ts', 'truncated'), {
      channel: 'pipe',
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    children.push(child as ChildProcess<unknown>);
    await new Promise<void>((resolve) => child.process.stdout!.once('data', () => resolve()));
    const channel = child.channel as PipeChannel<Uint8Array>;
    const waiting = channel.receiveView();
    child.kill('SIGKILL');
    expect(await watchdog(rejectionOf(waiting), 30_000, 'PEER_GONE')).toMatchObject({
      code: ErrorCodes.PEER_GONE,
    });
    await channel.close();
  });

  it('timeout and abort leave the channel usable; a signal aborted before the call fails it', async () => {
    const { rx, tx } = pipePair();
    expect(await rejectionOf(rx.receiveView({ timeout: 20 }))).toMatchObject({ code: ErrorCodes.TIMEOUT });
    const controller = new AbortController();
    const aborted = rx.receiveView({ signal: controller.signal });
    controller.abort();
    expect(await rejectionOf(aborted)).toMatchObject({ code: ErrorCodes.ABORTED });
    expect(await rejectionOf(rx.receiveView({ signal: AbortSignal.abort() }))).toMatchObject({
      code: ErrorCodes.ABORTED,
    });
    await expect(rx.receiveView({ timeout: -1 })).rejects.toThrow(RangeError);
    await tx.send(pattern(10, 3));
    const view = await watchdog(rx.receiveView(), 30_000, 'the view');
    expect(digest(view.bytes)).toBe(digest(pattern(10, 3)));
    await tx.close();
    await rx.close();
  });

  it('in view mode, receive() names itself when it times out or is aborted', async () => {
    const { rx, tx } = pipePair();
    await tx.send(pattern(10, 1));
    (await watchdog(rx.receiveView(), 30_000, 'the first view')).release();
    const timedOut = await rejectionOf(rx.receive({ timeout: 20 }));
    expect(timedOut).toMatchObject({ code: ErrorCodes.TIMEOUT });
    expect(timedOut.message).toMatch(/: receive timed out/);
    expect((await rejectionOf(rx.receiveView({ timeout: 20 }))).message).toMatch(/: receiveView timed out/);
    const aborted = await rejectionOf(rx.receive({ signal: AbortSignal.abort() }));
    expect(aborted).toMatchObject({ code: ErrorCodes.ABORTED });
    expect(aborted.message).toMatch(/: receive was aborted/);
    await tx.send(pattern(10, 2));
    expect(digest(await watchdog(rx.receive(), 30_000, 'the second message'))).toBe(digest(pattern(10, 2)));
    await tx.close();
    await rx.close();
  });

  it('close() ends receiving with ERR_IPC_CLOSED; a view taken before stays readable', async () => {
    const { rx, tx } = pipePair();
    await tx.send(pattern(MiB, 9));
    await tx.send(pattern(10, 10));
    const view = await watchdog(rx.receiveView(), 30_000, 'the view');
    const waiting = rx.receiveView({ timeout: 30_000 });
    await rx.close();
    // The second message may have been queued or waited for: either way, nothing after close().
    const second = await waiting.then(
      (v) => v,
      (err: Error & { code?: string }) => err,
    );
    if (!('bytes' in second)) expect(second).toMatchObject({ code: ErrorCodes.CLOSED });
    expect(await rejectionOf(rx.receiveView())).toMatchObject({ code: ErrorCodes.CLOSED });
    expect(digest(view.bytes)).toBe(digest(pattern(MiB, 9)));
    view.release();
    await tx.close();
  });

  it('stops reading while receiveHighWaterMark views wait untaken: the sender waits, and nothing is lost', async () => {
    const { rx, tx } = pipePair({ receiveHighWaterMark: 4 });
    await tx.send(pattern(10, 0));
    (await rx.receiveView()).release(); // view mode from here on
    let sent = 0;
    let blocked = false;
    while (sent < 400) {
      try {
        // A reader that goes on reading takes every send within this bound; a paused one never.
        await tx.send(pattern(16 * 1024, sent + 1), { timeout: 2000 });
      } catch (err) {
        expect(err).toMatchObject({ code: ErrorCodes.TIMEOUT });
        blocked = true;
        break;
      }
      sent++;
    }
    expect(blocked).toBe(true);
    expect(sent).toBeLessThan(400);
    // Closing flushes what the stream still holds, which waits for the reader: drain meanwhile.
    const closing = tx.close();
    expect(await viewsUntilClosed(rx)).toEqual(
      Array.from({ length: sent }, (_, i) => digest(pattern(16 * 1024, i + 1))),
    );
    await closing;
  });
  it('a peer that exits while untaken views have stopped reading: everything it sent is still received', async () => {
    const { rx, tx } = pipePair({ receiveHighWaterMark: 1 });
    // Sent before the first read: the kernel takes a pipe's worth (64 KiB), the rest waits in the
    // writer. The first read takes dozens of messages: one for the view below, the rest queued,
    // which stops reading at once (the high-water mark is 1).
    const count = 100;
    for (let i = 0; i < count; i++) void tx.send(pattern(1000, i));
    const first = await watchdog(rx.receiveView(), 30_000, 'the first view');
    expect(digest(first.bytes)).toBe(digest(pattern(1000, 0)));
    first.release();
    // As spawn() reports a child's exit; then the quiet bound passes (nothing can be read meanwhile:
    // reading has stopped). That quiet says nothing about a pipe nobody reads.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setImmediate', 'clearImmediate'] });
    try {
      rx.peerExited();
      await vi.advanceTimersByTimeAsync(10_000);
    } finally {
      vi.useRealTimers();
    }
    const closing = tx.close();
    expect(await viewsUntilClosed(rx)).toEqual(
      Array.from({ length: count - 1 }, (_, i) => digest(pattern(1000, i + 1))),
    );
    await closing;
  });
});
