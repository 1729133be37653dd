/**
 * ShmChannel: in-process behaviour (both ends in this process), a spawned child over
 * `spawn(..., { channel: 'shm' })`, SIGKILLed writers, and fd/segment leaks. Messages carry a
 * sequence number and checksum (test/fixtures/shm-channel-message.ts) so loss, reordering and
 * torn records are all detected. Sizes are scaled to a shared 2-core machine (200k, not 1M: 1M
 * took over 10 s there; the benchmark pushes millions through the same path).
 */
import { spawn as nodeSpawn } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readlinkSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  type ChildProcess,
  codecs,
  ErrorCodes,
  type IpcError,
  listResources,
  SharedMemory,
  ShmChannel,
  spawn,
} from '../../src/index.js';
import { kernelPrefix } from '../../src/shm/kernel-name.js';
import {
  CONTROL_PAGE,
  S,
  SIDE_BASE,
  SIDE_WORDS,
  State,
  VERSION,
  W,
} from '../../src/shm/shm-channel-layout.js';
import { checkMessage, makeMessage, sizeFor } from '../fixtures/shm-channel-message.js';
import { fixtureArgs, rejectionOf, watchdog } from '../helpers.js';
import { mappedAnonymousSegments } from '../process/proc-helpers.js';
import { byteLength, stringLength } from '../support/schemas.js';
import { isolatedWithChildren } from '../support/spawned-children.js';

const children = isolatedWithChildren();

/**
 * The fds a channel could leak (segments, memfds, pidfds, sockets), by target. Not the raw count:
 * the test runner opens files of its own at moments of its choosing.
 */
function channelFds(): string[] {
  return readdirSync('/proc/self/fd')
    .map((fd) => {
      try {
        return `${fd} -> ${readlinkSync(`/proc/self/fd/${fd}`)}`;
      } catch {
        return '';
      }
    })
    .filter((t) => /\/dev\/shm|memfd:|pidfd|socket:/.test(t))
    .sort();
}

/** This test's segments: of its own runtime directory, since other test files run alongside. */
function shmEntries(): string[] {
  const prefix = kernelPrefix().slice(1);
  return readdirSync('/dev/shm').filter((n) => n.startsWith(prefix));
}

function pair(capacity = 4096, mode: 'default' | 'latency' = 'default') {
  const a = ShmChannel.create<Uint8Array>('pair', { capacity, codec: 'raw', mode });
  const b = ShmChannel.open<Uint8Array>('pair', { codec: 'raw' });
  return { a, b };
}

describe('ShmChannel: a peer that ends with many messages unread', () => {
  it.each(['close', 'exit'])(
    'after %s, every message it sent is received, then the end is reported',
    async (end) => {
      const count = 10_000;
      const reader = ShmChannel.create<number>('unread', { capacity: 1 << 20 });
      const writer = nodeSpawn(
        process.execPath,
        fixtureArgs('shm-channel-send-then-end.ts', 'unread', String(count), end),
        {
          stdio: ['ignore', 'inherit', 'inherit'],
        },
      );
      const [code] = await watchdog(once(writer, 'exit'), 60_000, 'the writer');
      expect(code).toBe(0);
      let received = 0;
      let error: unknown;
      try {
        for await (const n of reader) {
          expect(n).toBe(received);
          received++;
        }
      } catch (err) {
        error = err;
      }
      expect(received).toBe(count);
      if (end === 'close') expect(error).toBeUndefined();
      else expect((error as IpcError | undefined)?.code).toBe(ErrorCodes.PEER_GONE);
      reader.destroy();
    },
  );
});

describe('ShmChannel in one process', () => {
  // In latency mode receive() itself polls the ring (ShmChannel#pollInput) before it waits.
  it.each(['default', 'latency'] as const)(
    '%s mode: carries random sizes from 0 B to 4x the ring capacity whole and in order',
    async (mode) => {
      const { a, b } = pair(4096, mode);
      const sizes = Array.from({ length: 300 }, (_, i) => (i % 10 === 0 ? 0 : sizeFor(i, 4 * 4096)));
      const received = (async () => {
        const out: number[] = [];
        for await (const m of b) {
          if (m.byteLength > 0) expect(checkMessage(m)).toBe(out.length);
          out.push(m.byteLength);
        }
        return out;
      })();
      for (let i = 0; i < sizes.length; i++) {
        await a.send(sizes[i] === 0 ? new Uint8Array(0) : makeMessage(i, sizes[i]!));
      }
      await a.close();
      expect(await watchdog(received, 20_000, 'all messages')).toEqual(
        sizes.map((s) => (s === 0 ? 0 : Math.max(8, s))),
      );
      await b.close();
    },
  );

  it('raw codec: every message is a plain Uint8Array of its own, in one record or in pieces; a schema still sees each', async () => {
    // 6000 and 12288 B are over half the 4 KiB ring: they go in pieces, assembled apart from it.
    const sizes = [0, 8, 64, 1000, 6000, 3 * 4096];
    const { a, b } = pair(4096);
    const kept: Uint8Array[] = [];
    for (const [i, size] of sizes.entries()) {
      const sent = a.send(size === 0 ? new Uint8Array(0) : makeMessage(i, size));
      const message = await watchdog(b.receive(), 5_000, `message of ${size} B`);
      await sent;
      expect(Object.getPrototypeOf(message)).toBe(Uint8Array.prototype);
      // Its own memory, not a view of the ring that later messages overwrite.
      expect(message.buffer.byteLength).toBe(size);
      kept.push(message);
    }
    kept.forEach((m, i) => {
      if (m.byteLength > 0) expect(checkMessage(m)).toBe(i);
    });
    await a.close();
    await b.close();

    const lengths = ShmChannel.create<Uint8Array>('schema', { capacity: 4096, codec: 'raw' });
    const counted = ShmChannel.open<number>('schema', { codec: 'raw', schema: byteLength });
    for (const size of sizes) {
      const sent = lengths.send(size === 0 ? new Uint8Array(0) : makeMessage(0, size));
      expect(await watchdog(counted.receive(), 5_000, `length of ${size} B`)).toBe(size);
      await sent;
    }
    await lengths.close();
    await counted.close();
  });

  it('default mode: tryReceive() takes what the peer published, without a turn of the event loop', async () => {
    const { a, b } = pair(4096);
    expect(b.tryReceive()).toBeUndefined();
    // send() resolves in a microtask: no turn of the loop has let the reader's pump run since.
    for (let i = 0; i < 3; i++) await a.send(makeMessage(i, 64));
    for (let i = 0; i < 3; i++) expect(checkMessage(b.tryReceive()!.message)).toBe(i);
    expect(b.tryReceive()).toBeUndefined();
    await a.close();
    await b.close();
  });

  it.each(['default', 'latency'] as const)(
    '%s mode: a reader that keeps up with a ring full of messages still lets its event loop turn',
    async (mode) => {
      const { a, b } = pair(1 << 22, mode);
      const count = 30_000;
      for (let i = 0; i < count; i++) expect(a.trySend(makeMessage(i, 64))).toBe(true);
      await a.send(makeMessage(count, 64));
      // The reader takes everything without ever waiting: only the channel can yield to the loop.
      let takenWhenTurned = -1;
      let taken = 0;
      setImmediate(() => {
        takenWhenTurned = taken;
      });
      while (taken <= count) {
        expect(checkMessage(await b.receive())).toBe(taken);
        taken++;
      }
      expect(takenWhenTurned).toBeGreaterThanOrEqual(0);
      await a.close();
      await b.close();
    },
  );

  it('latency mode: receive() takes what is already in the ring, in order, also past a pending receive', async () => {
    const { a, b } = pair(4096, 'latency');
    const early = b.receive();
    for (let i = 0; i < 5; i++) await a.send(makeMessage(i, 64));
    // The pending receive gets the first message; the next ones come from the ring, not a loop turn.
    expect(checkMessage(await watchdog(early, 5_000, 'first message'))).toBe(0);
    for (let i = 1; i < 5; i++)
      expect(checkMessage(await watchdog(b.receive(), 5_000, `message ${i}`))).toBe(i);
    await a.close();
    expect((await rejectionOf(b.receive())).code).toBe(ErrorCodes.CLOSED);
    await b.close();
  });

  it('send waits while the ring is full (never drops) and goes on once the reader catches up', async () => {
    const { a, b } = pair(4096);
    const sends: Promise<void>[] = [];
    for (let i = 0; i < 40; i++) sends.push(a.send(makeMessage(i, 500)));
    let settled = 0;
    for (const s of sends) s.then(() => settled++);
    await new Promise((r) => setImmediate(r));
    // 40 x 508 B records do not fit in 4 KiB: the later sends are still waiting.
    expect(settled).toBeLessThan(40);
    for (let i = 0; i < 40; i++) expect(checkMessage(await watchdog(b.receive(), 5_000, `msg ${i}`))).toBe(i);
    await watchdog(Promise.all(sends), 5_000, 'all sends accepted');
    await a.close();
    await b.close();
  });

  it('receiveView reads in place until release(), and a peer close ends the views', async () => {
    const { a, b } = pair(4096);
    await a.send(makeMessage(1, 100));
    await a.send(makeMessage(2, 9000)); // larger than half the ring: assembled from pieces
    const v1 = await watchdog(b.receiveView(), 5_000, 'view 1');
    expect(checkMessage(v1.bytes)).toBe(1);
    const p2 = b.receiveView();
    v1.release();
    const v2 = await watchdog(p2, 5_000, 'view 2');
    expect(checkMessage(v2.bytes)).toBe(2);
    v2.release();
    await a.close();
    expect((await rejectionOf(b.receiveView())).code).toBe(ErrorCodes.CLOSED);
    await b.close();
  });

  // An end in view mode reads only for a pending receiveView(), yet must learn at once that its peer
  // ended: the peer reads nothing more, so a send waiting for room would otherwise wait forever.
  it.each([
    ['close', ErrorCodes.CLOSED],
    ['destroy', ErrorCodes.PEER_GONE],
  ] as const)(
    'after receiveView(), a peer %s() settles a send waiting on a full ring with %s',
    async (how, code) => {
      const { a, b } = pair(4096);
      await a.send(makeMessage(1, 100));
      const v1 = await watchdog(b.receiveView(), 5_000, 'view 1');
      v1.release();
      // Not read before the peer ends: still received, as a view, after the send fails.
      await a.send(makeMessage(2, 100));
      // `a` never reads: b's ring fills, and the next send waits for room.
      while (b.trySend(makeMessage(0, 500))) {}
      const blocked = rejectionOf(b.send(makeMessage(0, 500)));
      if (how === 'close') await a.close();
      else a.destroy();
      expect((await watchdog(blocked, 5_000, 'the waiting send rejects')).code).toBe(code);
      const v2 = await watchdog(b.receiveView(), 5_000, 'view 2');
      expect(checkMessage(v2.bytes)).toBe(2);
      v2.release();
      expect((await watchdog(rejectionOf(b.receiveView()), 5_000, 'then receiveView rejects')).code).toBe(
        code,
      );
      expect((await watchdog(rejectionOf(b.receive()), 5_000, 'and receive')).code).toBe(code);
      expect((await rejectionOf(b.send(new Uint8Array(1)))).code).toBe(code);
      b.destroy();
    },
  );

  it.each([
    ['close', ErrorCodes.CLOSED],
    ['destroy', ErrorCodes.PEER_GONE],
  ] as const)('a receiveView() waiting when the peer calls %s() rejects with %s', async (how, code) => {
    const { a, b } = pair(4096);
    await a.send(makeMessage(1, 100));
    (await watchdog(b.receiveView(), 5_000, 'view 1')).release();
    const waiting = rejectionOf(b.receiveView());
    const receiving = rejectionOf(b.receive());
    if (how === 'close') await a.close();
    else a.destroy();
    expect((await watchdog(waiting, 5_000, 'receiveView rejects')).code).toBe(code);
    expect((await watchdog(receiving, 5_000, 'receive rejects')).code).toBe(code);
    b.destroy();
  });

  it.each(['receive', 'receiveView'] as const)(
    'after %s(), close() ends when the peer closes while the ring has no room for its goodbye',
    async (how) => {
      const { a, b } = pair(4096);
      await a.send(makeMessage(1, 100));
      if (how === 'receive') expect(checkMessage(await watchdog(b.receive(), 5_000, 'message'))).toBe(1);
      else (await watchdog(b.receiveView(), 5_000, 'view')).release();
      while (b.trySend(makeMessage(0, 500))) {}
      // b's goodbye waits for room that `a`, closing too, never makes.
      const closing = b.close();
      await a.close();
      await watchdog(closing, 5_000, 'close() of the end whose ring is full');
    },
  );

  it.each([
    // The default codec, whose one-record messages are decoded in place, and the raw codec, whose
    // one-record messages are taken by the reader's shortcut: the limit holds for both.
    ['msgpack', (text: string): unknown => text],
    ['raw', (text: string): unknown => new TextEncoder().encode(text)],
  ] as const)(
    "%s: a message over the receiver's maxMessageBytes is skipped with ERR_IPC_FRAME_TOO_LARGE, whole or in pieces",
    async (codec, message) => {
      const a = ShmChannel.create<unknown>('limits', { capacity: 4096, codec });
      const b = ShmChannel.open<unknown>('limits', { maxMessageBytes: 1024, codec });
      await a.send(message('x'.repeat(1500))); // one record, over the receiver's limit
      await a.send(message('in one record'));
      await a.send(message('y'.repeat(3000))); // in pieces (over half the ring), over the limit
      await a.send(message('after the pieces'));
      expect((await watchdog(rejectionOf(b.receive()), 5_000, 'one record')).code).toBe(
        ErrorCodes.FRAME_TOO_LARGE,
      );
      expect(await watchdog(b.receive(), 5_000, 'next')).toEqual(message('in one record'));
      expect((await watchdog(rejectionOf(b.receive()), 5_000, 'pieces')).code).toBe(
        ErrorCodes.FRAME_TOO_LARGE,
      );
      expect(await watchdog(b.receive(), 5_000, 'after')).toEqual(message('after the pieces'));
      a.destroy();
      b.destroy();
    },
  );

  it.each([
    ['msgpack', 'a message'],
    ['raw', new TextEncoder().encode('a message')],
  ] as const)(
    '%s: a record header scribbled on in the ring fails the reader with ERR_IPC_BAD_FRAME, never a wrong message',
    async (codec, message) => {
      const a = ShmChannel.create<unknown>('scribbled', { capacity: 4096, codec });
      const b = ShmChannel.open<unknown>('scribbled', { codec });
      // The creator writes the first ring, whose data starts after the control page; its first record
      // is at the start. Its length word now claims more than was published.
      const segment = SharedMemory.open('scribbled');
      const firstRecord = new Int32Array(segment.buffer, CONTROL_PAGE, 2);
      expect(a.trySend(message)).toBe(true);
      firstRecord[0] = 200;
      expect((await watchdog(rejectionOf(b.receive()), 5_000, 'receive')).code).toBe(ErrorCodes.BAD_FRAME);
      segment.close();
      a.destroy();
      b.destroy();
    },
  );

  it('a reader whose first call is receiveView() gets what was sent before it, in order (read ahead, then in place)', async () => {
    const { a, b } = pair();
    for (let i = 0; i < 10; i++) await a.send(Uint8Array.of(i));
    // A turn of the event loop: b's pump reads ahead for receive(), which b never calls.
    await new Promise((resolve) => setImmediate(resolve));
    const seen: number[] = [];
    for (let i = 0; i < 10; i++) {
      const view = await watchdog(b.receiveView(), 5_000, `view ${i}`);
      seen.push(view.bytes[0]!);
      view.release();
    }
    await a.send(Uint8Array.of(10));
    const later = await watchdog(b.receiveView(), 5_000, 'a view of a later message');
    seen.push(later.bytes[0]!);
    later.release();
    expect(seen).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(b.tryReceive()).toBeUndefined();
    a.destroy();
    b.destroy();
  });

  it('with the default codec, a message read ahead reaches receiveView() as its encoded bytes', async () => {
    const a = ShmChannel.create<{ n: number }>('ahead');
    const b = ShmChannel.open<{ n: number }>('ahead');
    await a.send({ n: 1 });
    await a.send({ n: 2 });
    await new Promise((resolve) => setImmediate(resolve));
    const first = await watchdog(b.receiveView(), 5_000, 'first view');
    expect(codecs.msgpack.decode(first.bytes)).toEqual({ n: 1 });
    first.release();
    const second = await watchdog(b.receiveView(), 5_000, 'second view');
    expect(codecs.msgpack.decode(second.bytes)).toEqual({ n: 2 });
    second.release();
    a.destroy();
    b.destroy();
  });

  it('messages read ahead reach receive() and tryReceive() in view mode as decoded: a schema that transforms runs once', async () => {
    const a = ShmChannel.create<string | number>('transform');
    const b = ShmChannel.open<number>('transform', { schema: stringLength });
    for (const text of ['a', 2, 'ccc', 'dddd', 'eeeee']) await a.send(text);
    // A turn of the event loop: b's pump reads all five ahead for receive().
    await new Promise((resolve) => setImmediate(resolve));
    expect(await watchdog(b.receive(), 5_000, 'the first message')).toBe(1);
    // View mode from here on. The second failed the schema as it was read ahead: its error comes.
    expect(await rejectionOf(b.receiveView())).toMatchObject({ code: ErrorCodes.INVALID_MESSAGE });
    expect(await b.receive()).toBe(3);
    expect(b.tryReceive()).toEqual({ message: 4 });
    expect(await watchdog(b.receive(), 5_000, 'the last message')).toBe(5);
    a.destroy();
    b.destroy();
  });

  it('after receiveView(), receive(), tryReceive() and iteration go on in order with it (copied out)', async () => {
    const a = ShmChannel.create<{ n: number }>('mixed');
    const b = ShmChannel.open<{ n: number }>('mixed');
    for (let n = 0; n < 6; n++) await a.send({ n });
    const first = await watchdog(b.receiveView(), 5_000, 'first view');
    expect(codecs.msgpack.decode(first.bytes)).toEqual({ n: 0 });
    first.release();
    expect(await watchdog(b.receive(), 5_000, 'receive in view mode')).toEqual({ n: 1 });
    const second = await watchdog(b.receiveView(), 5_000, 'second view');
    expect(codecs.msgpack.decode(second.bytes)).toEqual({ n: 2 });
    second.release();
    expect(b.tryReceive()?.message).toEqual({ n: 3 });
    const rest: number[] = [];
    for await (const m of b) {
      rest.push(m.n);
      if (m.n === 5) break;
    }
    expect(rest).toEqual([4, 5]);
    // A receive waiting for a message not sent yet is answered when it comes, before tryReceive.
    const pending = b.receive({ timeout: 5_000 });
    expect(b.tryReceive()).toBeUndefined();
    await a.send({ n: 6 });
    expect(await watchdog(pending, 5_000, 'a receive before the send')).toEqual({ n: 6 });
    await a.close();
    await expect(b.receive()).rejects.toMatchObject({ code: ErrorCodes.CLOSED });
    b.destroy();
  });

  it('in view mode, receive() names itself when it times out or is aborted; an aborted signal takes nothing', async () => {
    const { a, b } = pair(4096);
    await a.send(makeMessage(0, 64));
    (await watchdog(b.receiveView(), 5_000, 'the first view')).release();
    const timedOut = await rejectionOf(b.receive({ timeout: 20 }));
    expect(timedOut.code).toBe(ErrorCodes.TIMEOUT);
    expect(timedOut.message).toMatch(/: receive timed out/);
    expect((await rejectionOf(b.receiveView({ timeout: 20 }))).message).toMatch(/: receiveView timed out/);
    // The next message is in the ring now: a signal aborted before the call still takes nothing.
    await a.send(makeMessage(1, 64));
    const aborted = await rejectionOf(b.receive({ signal: AbortSignal.abort() }));
    expect(aborted.code).toBe(ErrorCodes.ABORTED);
    expect(aborted.message).toMatch(/: receive was aborted/);
    expect((await rejectionOf(b.receiveView({ signal: AbortSignal.abort() }))).code).toBe(ErrorCodes.ABORTED);
    expect(checkMessage(await watchdog(b.receive(), 5_000, 'the second message'))).toBe(1);
    await a.close();
    await b.close();
  });

  it('a receive() already waiting when view mode begins gets the next message, before the view', async () => {
    const a = ShmChannel.create<{ n: number }>('waiting');
    const b = ShmChannel.open<{ n: number }>('waiting');
    const early = b.receive({ timeout: 10_000 });
    const view = b.receiveView({ timeout: 10_000 });
    await a.send({ n: 1 });
    await a.send({ n: 2 });
    expect(await watchdog(early, 5_000, 'the receive that asked first')).toEqual({ n: 1 });
    const second = await watchdog(view, 5_000, 'the view');
    expect(codecs.msgpack.decode(second.bytes)).toEqual({ n: 2 });
    second.release();
    a.destroy();
    b.destroy();
  });

  it('a destroyed end makes the other end report ERR_IPC_PEER_GONE', async () => {
    const { a, b } = pair();
    const pending = b.receive();
    a.destroy();
    expect((await watchdog(rejectionOf(pending), 5_000, 'receive rejects')).code).toBe(ErrorCodes.PEER_GONE);
    expect((await rejectionOf(b.send(new Uint8Array(1)))).code).toBe(ErrorCodes.PEER_GONE);
    b.destroy();
  });

  it('refuses to open a channel of another layout version (ERR_IPC_INCOMPATIBLE), never misreads it', () => {
    const a = ShmChannel.create<Uint8Array>('older', { codec: 'raw' });
    // What a process of an older ipckit (layout 2: another ring control block) would have made.
    const segment = SharedMemory.open('older');
    const words = new Int32Array(segment.buffer, 0, 8);
    Atomics.store(words, W.VERSION, VERSION - 1);
    expect(() => ShmChannel.open('older')).toThrow(
      expect.objectContaining({ code: ErrorCodes.INCOMPATIBLE }),
    );
    Atomics.store(words, W.VERSION, VERSION);
    segment.close();
    a.destroy();
  });

  it('refuses a second opener and a bad capacity', () => {
    const { a, b } = pair();
    expect(() => ShmChannel.open('pair')).toThrow(expect.objectContaining({ code: ErrorCodes.EXISTS }));
    expect(() => ShmChannel.create('other', { capacity: 5000 })).toThrow(RangeError);
    a.destroy();
    b.destroy();
  });

  it('an end being claimed by a live process is not taken from it; a claimer that died leaves it free', async () => {
    const a = ShmChannel.create<Uint8Array>('claimed', { codec: 'raw' });
    const segment = SharedMemory.open('claimed');
    const words = new Int32Array(segment.buffer, 0, 64);
    const state = SIDE_BASE + SIDE_WORDS + S.STATE;
    // Side 1 as a live opener leaves it between its claim and recording itself: claimed, no pid yet.
    const claimer = nodeSpawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      Atomics.store(words, state, -claimer.pid!);
      expect(() => ShmChannel.open('claimed')).toThrow(expect.objectContaining({ code: ErrorCodes.EXISTS }));
    } finally {
      claimer.kill('SIGKILL');
    }
    await watchdog(once(claimer, 'exit'), 5000, 'the claimer dies');
    // Killed before it recorded itself: the next opener takes the end over.
    const b = ShmChannel.open<Uint8Array>('claimed', { codec: 'raw' });
    expect(Atomics.load(words, state)).toBe(State.ATTACHED);
    segment.close();
    b.destroy();
    a.destroy();
  });

  it('closing the creating end leaves alone a name that now belongs to a newer channel', async () => {
    const old = ShmChannel.create<Uint8Array>('reused', { codec: 'raw' });
    SharedMemory.unlink('reused');
    const fresh = ShmChannel.create<Uint8Array>('reused', { codec: 'raw' });
    await old.close();
    const peer = ShmChannel.open<Uint8Array>('reused', { codec: 'raw' });
    await fresh.send(makeMessage(1, 64));
    expect(checkMessage(await peer.receive())).toBe(1);
    expect(listResources().some((r) => r.kind === 'shm' && r.name === 'reused')).toBe(true);
    await fresh.close();
    await peer.close();
    expect(() => SharedMemory.open('reused')).toThrow(
      expect.objectContaining({ code: ErrorCodes.NOT_FOUND }),
    );
  });

  it('close/reopen cycles leak no fds and no segments', async () => {
    const warm = pair();
    await warm.a.close();
    await warm.b.close();
    const fds = channelFds();
    const segments = shmEntries().length;
    for (let i = 0; i < 50; i++) {
      const { a, b } = pair();
      await a.send(makeMessage(i, 64));
      expect(checkMessage(await b.receive())).toBe(i);
      await a.close();
      await b.close();
    }
    expect(channelFds()).toEqual(fds);
    expect(shmEntries().length).toBe(segments);
  });
});

describe('ShmChannel between processes', () => {
  it("spawn(..., { channel: 'shm' }): 200k self-checking messages parent -> child", async () => {
    const count = 200_000;
    const child = spawn<Uint8Array>(process.execPath, fixtureArgs('shm-channel-reader.ts', String(count)), {
      channel: 'shm',
      codec: 'raw',
    });
    children.push(child as ChildProcess<unknown>);
    let bytes = 0;
    for (let i = 0; i < count; i++) {
      const m = makeMessage(i, sizeFor(i, 200));
      bytes += m.byteLength;
      await child.channel.send(m);
    }
    const reply = await watchdog(child.channel.receive(), 60_000, 'the child reports');
    expect(new TextDecoder().decode(reply)).toBe(`${count} ${bytes}`);
    await child.channel.close();
    expect(await watchdog(child.exited, 15_000, 'child exits')).toEqual({ code: 0, signal: null });
  });

  it('trySend then process.exit() in the same synchronous run: every message accepted arrives', async () => {
    // trySend publishes in batches, at the latest in a microtask, which process.exit() never runs.
    const count = 100;
    const child = spawn<Uint8Array>(
      process.execPath,
      fixtureArgs('shm-try-send-then-exit.ts', String(count)),
      {
        channel: 'shm',
        codec: 'raw',
      },
    );
    children.push(child as ChildProcess<unknown>);
    for (let i = 0; i < count; i++) {
      expect(checkMessage(await watchdog(child.channel.receive(), 30_000, `message ${i}`))).toBe(i);
    }
    expect(await watchdog(child.exited, 15_000, 'child exits')).toEqual({ code: 0, signal: null });
    expect((await watchdog(rejectionOf(child.channel.receive()), 15_000, 'then')).code).toBe(
      ErrorCodes.PEER_GONE,
    );
  });

  it('await send of messages larger than the ring, then process.exit(): they arrive whole', async () => {
    // A 4 KiB ring and 1 MiB messages: each goes in pieces as this end reads, and send resolves
    // once it is accepted, long before its last piece is in the ring.
    const count = 3;
    const size = 1 << 20;
    const child = spawn<Uint8Array>(
      process.execPath,
      fixtureArgs('shm-send-large-then-exit.ts', String(count), String(size)),
      { channel: 'shm', codec: 'raw', capacity: 4096 },
    );
    children.push(child as ChildProcess<unknown>);
    for (let i = 0; i < count; i++) {
      const message = await watchdog(child.channel.receive(), 30_000, `message ${i}`);
      expect({ i, length: message.byteLength, check: checkMessage(message) }).toEqual({
        i,
        length: size,
        check: i,
      });
    }
    expect(await watchdog(child.exited, 15_000, 'child exits')).toEqual({ code: 0, signal: null });
  });

  // A writer SIGKILLed mid-stream, round after round, with a new one taking over each time:
  // shm-channel-reattach.test.ts.

  it("spawn(..., { channel: 'shm' }): echoes objects; a child killed with SIGKILL is ERR_IPC_PEER_GONE", async () => {
    const child = spawn<{ n: number }>(process.execPath, fixtureArgs('echo-parent-channel.ts'), {
      channel: 'shm',
    });
    children.push(child as ChildProcess<unknown>);
    await child.channel.send({ n: 1 });
    expect(await watchdog(child.channel.receive(), 30_000, 'echo')).toEqual({ n: 1 });
    const pending = child.channel.receive();
    child.kill('SIGKILL');
    expect((await watchdog(rejectionOf(pending), 15_000, 'receive rejects')).code).toBe(ErrorCodes.PEER_GONE);
    expect((await rejectionOf(child.channel.send({ n: 2 }))).code).toBe(ErrorCodes.PEER_GONE);
  });

  it("spawn(..., { channel: 'shm' }): a child that exits without ever attaching is ERR_IPC_PEER_GONE", async () => {
    const child = spawn(process.execPath, ['-e', 'process.exit(0)'], { channel: 'shm' });
    children.push(child as ChildProcess<unknown>);
    const err = await watchdog(rejectionOf(child.channel.receive()), 15_000, 'receive rejects');
    expect(err.code).toBe(ErrorCodes.PEER_GONE);
  });
});

// The parent's end of a spawn's channel maps the child's segment (2 MiB with the default rings).
// Once the child is gone and all it sent has been taken out of the ring, nothing can come through
// the segment any more: it is unmapped, as a pipe channel's fds are closed at the end of its input,
// without close(). A parent that spawns short-lived children without closing their channels must
// not keep a segment per child for the rest of its life.
describe("spawn(..., { channel: 'shm' }): the parent lets go of the segment", () => {
  /** Which of `segments` this process still maps. */
  function stillMapped(segments: readonly string[]): string[] {
    const mapped = mappedAnonymousSegments();
    return segments.filter((inode) => mapped.has(inode));
  }

  /** The anonymous segments mapped now and not in `before`: those of the channels just spawned. */
  function newSegments(before: Set<string>): string[] {
    return [...mappedAnonymousSegments()].filter((inode) => !before.has(inode));
  }

  it('20 children that exit, none of their channels closed here: every segment is unmapped once its end is received', async () => {
    const before = mappedAnonymousSegments();
    // Most children never attach (`true`, cheap to start); of the others, some send a message and
    // exit without closing their end (ERR_IPC_PEER_GONE here), some close it first (ERR_IPC_CLOSED).
    const spawned = Array.from({ length: 20 }, (_, i) => {
      const kind = i % 5 === 0 ? 'exit' : i % 5 === 1 ? 'close' : 'never-attach';
      const child =
        kind === 'never-attach'
          ? spawn('true', [], { channel: 'shm' })
          : kind === 'exit'
            ? spawn(process.execPath, fixtureArgs('process-send-count-then-exit.ts', '1', '0'), {
                channel: 'shm',
              })
            : spawn(process.execPath, fixtureArgs('process-hello-then-exit.ts', '0'), { channel: 'shm' });
      children.push(child as ChildProcess<unknown>);
      return { kind, child };
    });
    const ours = newSegments(before);
    expect(ours).toHaveLength(20);
    await watchdog(
      Promise.all(
        spawned.map(async ({ kind, child }) => {
          if (kind === 'exit') expect(await child.channel.receive()).toEqual({ pid: child.pid, i: 0 });
          if (kind === 'close') expect(await child.channel.receive()).toEqual({ hello: child.pid });
          expect(await child.exited).toEqual({ code: 0, signal: null });
          const end = await rejectionOf(child.channel.receive());
          expect(end.code).toBe(kind === 'close' ? ErrorCodes.CLOSED : ErrorCodes.PEER_GONE);
          // Ended, not closed: nobody called close().
          expect(child.channel.closed).toBe(false);
        }),
      ),
      60_000,
      'every child exits and its channel ends',
    );
    // The handles (and their channels) are all still referenced here, in `spawned`.
    expect(spawned).toHaveLength(20);
    expect(stillMapped(ours)).toEqual([]);
  });

  it('messages sent right before the exit are received after it, and only then is the segment unmapped', async () => {
    const before = mappedAnonymousSegments();
    const count = 50;
    // A small receive high-water mark: most of the messages are still in the ring when the child dies.
    const child = spawn<{ pid: number; i: number }>(
      process.execPath,
      fixtureArgs('process-send-count-then-exit.ts', String(count), '0'),
      { channel: 'shm', receiveHighWaterMark: 4 },
    );
    children.push(child as ChildProcess<unknown>);
    const ours = newSegments(before);
    expect(ours).toHaveLength(1);
    expect(await watchdog(child.exited, 30_000, 'the child exits')).toEqual({ code: 0, signal: null });
    for (let i = 0; i < count; i++) {
      expect(await watchdog(child.channel.receive(), 10_000, `message ${i}`)).toEqual({ pid: child.pid, i });
    }
    const end = await watchdog(rejectionOf(child.channel.receive()), 10_000, 'the end is reported');
    expect(end.code).toBe(ErrorCodes.PEER_GONE);
    expect(stillMapped(ours)).toEqual([]);
    // What is left of the channel still answers as an ended channel, and close() is a no-op.
    expect((await rejectionOf(child.channel.send({ pid: 0, i: 0 }))).code).toBe(ErrorCodes.PEER_GONE);
    expect(() => child.channel.tryReceive()).toThrow(expect.objectContaining({ code: ErrorCodes.PEER_GONE }));
    await child.channel.close();
    expect(child.channel.closed).toBe(true);
  });

  it('a view still held keeps the segment mapped, and readable, until it is released', async () => {
    const before = mappedAnonymousSegments();
    const child = spawn<Uint8Array>(process.execPath, fixtureArgs('shm-try-send-then-exit.ts', '3'), {
      channel: 'shm',
      codec: 'raw',
    });
    children.push(child as ChildProcess<unknown>);
    const ours = newSegments(before);
    expect(ours).toHaveLength(1);
    const channel = child.channel as ShmChannel<Uint8Array>;
    // View mode from the start (before the channel reads ahead): every message is a view into the ring.
    const first = await watchdog(channel.receiveView(), 30_000, 'view 0');
    expect(checkMessage(first.bytes)).toBe(0);
    expect(await watchdog(child.exited, 30_000, 'the child exits')).toEqual({ code: 0, signal: null });
    for (let i = 1; i < 3; i++) {
      const view = await watchdog(channel.receiveView(), 10_000, `view ${i}`);
      expect(checkMessage(view.bytes)).toBe(i);
      view.release();
    }
    const end = await watchdog(rejectionOf(channel.receiveView()), 10_000, 'the end is reported');
    expect(end.code).toBe(ErrorCodes.PEER_GONE);
    // The peer is gone and the ring is drained, but the first view is still held.
    expect(stillMapped(ours)).toEqual(ours);
    expect(first.bytes.byteLength).toBe(64);
    expect(checkMessage(first.bytes)).toBe(0);
    first.release();
    expect(stillMapped(ours)).toEqual([]);
    expect((await rejectionOf(channel.receiveView())).code).toBe(ErrorCodes.PEER_GONE);
    expect((await rejectionOf(channel.receive())).code).toBe(ErrorCodes.PEER_GONE);
    channel.destroy();
  });

  it('in view mode, after a child that closed its end: releasing the last view lets go, without another receiveView()', async () => {
    const before = mappedAnonymousSegments();
    const child = spawn(process.execPath, fixtureArgs('process-hello-then-exit.ts', '0'), { channel: 'shm' });
    children.push(child as ChildProcess<unknown>);
    const ours = newSegments(before);
    expect(ours).toHaveLength(1);
    const channel = child.channel as ShmChannel<unknown>;
    const hello = await watchdog(channel.receiveView(), 30_000, 'the hello, as a view');
    expect(await watchdog(child.exited, 30_000, 'the child exits')).toEqual({ code: 0, signal: null });
    // The channel learns of the goodbye by itself (its sends then fail with ERR_IPC_CLOSED), looked
    // at once per turn of the event loop.
    const saidGoodbye = new Promise<IpcError>((resolve) => {
      const check = () => {
        try {
          channel.trySend(0);
          setImmediate(check);
        } catch (err) {
          resolve(err as IpcError);
        }
      };
      check();
    });
    expect((await watchdog(saidGoodbye, 10_000, 'sends fail')).code).toBe(ErrorCodes.CLOSED);
    expect(stillMapped(ours)).toEqual(ours);
    expect(codecs.msgpack.decode(hello.bytes)).toEqual({ hello: child.pid });
    hello.release();
    expect(stillMapped(ours)).toEqual([]);
    expect((await rejectionOf(channel.receiveView())).code).toBe(ErrorCodes.CLOSED);
    expect(channel.closed).toBe(false);
  });
});
