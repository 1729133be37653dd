import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Control, encodeHello, FrameBatch, FrameDecoder, parseHello } from '../../src/core/framing.js';
import { ErrorCodes, IpcError } from '../../src/index.js';

/** `ranges`: the sink takes frames whole in a chunk as ranges (frameAt), the others as views. */
function decodeAll(bytes: Uint8Array, cuts: number[], max = 1 << 20, ranges = false) {
  const frames: number[][] = [];
  const controls: number[] = [];
  const decoder = new FrameDecoder('test', max, {
    frame: (p) => frames.push(Array.from(p)),
    ...(ranges
      ? {
          frameAt: (data: Uint8Array, start: number, end: number) =>
            frames.push(Array.from(data.subarray(start, end))),
        }
      : {}),
    control: (c) => controls.push(c),
  });
  let start = 0;
  for (const cut of [...cuts.filter((c) => c > 0 && c < bytes.length)].sort((a, b) => a - b)) {
    decoder.push(bytes.subarray(start, cut));
    start = cut;
  }
  decoder.push(bytes.subarray(start));
  return { frames, controls, midFrame: decoder.midFrame };
}

describe('framing', () => {
  it('yields the same frames however the stream is cut into chunks', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 20 }),
        fc.array(fc.nat(7000), { maxLength: 30 }),
        fc.boolean(),
        (payloads, cuts, ranges) => {
          const batch = new FrameBatch(16);
          for (const p of payloads) batch.add(p);
          batch.addControl(Control.GOODBYE);
          const { frames, controls, midFrame } = decodeAll(batch.take(), cuts, 1 << 20, ranges);
          expect(frames).toEqual(payloads.map((p) => Array.from(p)));
          expect(controls).toEqual([Control.GOODBYE]);
          expect(midFrame).toBe(false);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('takes arbitrary bytes the same way however they are cut: the same frames, then the same error or none', () => {
    const outcome = (bytes: Uint8Array, cuts: number[], ranges: boolean) => {
      const frames: number[][] = [];
      const decoder = new FrameDecoder('fuzz', 512, {
        frame: (p) => frames.push(Array.from(p)),
        ...(ranges
          ? { frameAt: (d: Uint8Array, a: number, b: number) => frames.push(Array.from(d.subarray(a, b))) }
          : {}),
        control: (c) => frames.push([-1, c]),
      });
      let start = 0;
      try {
        for (const cut of [...cuts.filter((c) => c > 0 && c < bytes.length)].sort((a, b) => a - b)) {
          decoder.push(bytes.subarray(start, cut));
          start = cut;
        }
        decoder.push(bytes.subarray(start));
        return { frames, error: undefined, midFrame: decoder.midFrame };
      } catch (err) {
        // The only way these bytes can fail: a length over the bound, named as such.
        expect(err).toBeInstanceOf(IpcError);
        return { frames, error: (err as IpcError).code, midFrame: undefined };
      }
    };
    fc.assert(
      fc.property(
        // Small lengths are likelier than uniform ones: bytes that start with zeros.
        fc.array(fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 255 })), { maxLength: 2000 }),
        fc.array(fc.nat(2000), { maxLength: 20 }),
        fc.boolean(),
        (list, cuts, ranges) => {
          const bytes = Uint8Array.from(list);
          const whole = outcome(bytes, [], false);
          expect(outcome(bytes, cuts, ranges)).toEqual(whole);
          if (whole.error !== undefined) expect(whole.error).toBe(ErrorCodes.FRAME_TOO_LARGE);
          for (const frame of whole.frames) expect(frame.length).toBeLessThanOrEqual(512);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('refuses a 2^32-1 length from its header alone, before allocating anything for it', () => {
    const decoder = new FrameDecoder('test', 64 << 20, { frame: () => {}, control: () => {} });
    let error: IpcError | undefined;
    try {
      decoder.push(Buffer.from([0xff, 0xff, 0xff, 0xff]));
    } catch (err) {
      error = err as IpcError;
    }
    expect(error?.code).toBe(ErrorCodes.FRAME_TOO_LARGE);
  });

  it('refuses a frame just over maxMessageBytes and accepts one exactly at it', () => {
    const exact = new FrameBatch();
    exact.add(new Uint8Array(100));
    expect(decodeAll(exact.take(), [], 100).frames).toHaveLength(1);
    const over = new FrameBatch();
    over.add(new Uint8Array(101));
    expect(() => decodeAll(over.take(), [], 100)).toThrow(/exceeds maxMessageBytes/);
  });

  it('reports a frame cut short as mid-frame, so EOF there means a truncated message', () => {
    const batch = new FrameBatch();
    batch.add(new Uint8Array(50));
    const bytes = batch.take();
    const { frames, midFrame } = decodeAll(bytes.subarray(0, 30), []);
    expect(frames).toHaveLength(0);
    expect(midFrame).toBe(true);
  });

  it('checks the hello: magic, version and codec', () => {
    const hello = encodeHello('msgpack');
    expect(parseHello(hello, 'msgpack', 'test')).toBe(hello.length);
    expect(parseHello(hello.subarray(0, 5), 'msgpack', 'test')).toBe(0);
    const codeOf = (fn: () => unknown) => {
      try {
        fn();
      } catch (err) {
        return (err as IpcError).code;
      }
    };
    expect(codeOf(() => parseHello(hello, 'json', 'test'))).toBe(ErrorCodes.INCOMPATIBLE);
    const otherVersion = Buffer.from(hello);
    otherVersion[4] = 99;
    expect(codeOf(() => parseHello(otherVersion, 'msgpack', 'test'))).toBe(ErrorCodes.INCOMPATIBLE);
    expect(codeOf(() => parseHello(Buffer.from('GET / HTTP/1.1'), 'msgpack', 'test'))).toBe(
      ErrorCodes.BAD_FRAME,
    );
  });

  it('agrees on a codec name longer than a hello carries (255 bytes), as both ends cut it alike', () => {
    for (const name of ['x'.repeat(300), 'é'.repeat(200)]) {
      const hello = encodeHello(name);
      expect(parseHello(hello, name, 'test')).toBe(hello.length);
    }
  });

  it("reuses a large batch's memory once the transport released it, and only then", () => {
    const batch = new FrameBatch();
    const payload = new Uint8Array(100_000).fill(7);
    batch.add(payload);
    const first = batch.take();
    // Not released: the transport may still be writing it, so the next batch gets other memory.
    batch.add(payload);
    const second = batch.take();
    expect(second.buffer).not.toBe(first.buffer);
    batch.release(second);
    batch.add(payload);
    const third = batch.take();
    expect(third.buffer).toBe(second.buffer);
    expect(third.readUInt32BE(0)).toBe(payload.byteLength);
    expect(third.subarray(4).every((b) => b === 7)).toBe(true);
    // Bytes it never lent change nothing: the next batch does not write into them.
    batch.release(Buffer.alloc(100_004));
    batch.add(payload);
    expect(batch.take().buffer).not.toBe(third.buffer);
  });

  it('keeps up to three written batches for reuse, and lets them go once traffic is small again', () => {
    const batch = new FrameBatch();
    const payload = new Uint8Array(100_000);
    const takeLarge = () => {
      batch.add(payload);
      return batch.take();
    };
    const lent = [takeLarge(), takeLarge(), takeLarge(), takeLarge()];
    expect(new Set(lent.map((b) => b.buffer)).size).toBe(4);
    for (const bytes of lent) batch.release(bytes);
    // Three are kept (the fourth is left to the GC) and serve the next three batches.
    const reused = [takeLarge(), takeLarge(), takeLarge()];
    expect(new Set(reused.map((b) => b.buffer))).toEqual(new Set(lent.slice(0, 3).map((b) => b.buffer)));
    expect(lent.map((b) => b.buffer)).not.toContain(takeLarge().buffer);
    // Small batches run in the batch's own buffer, which is one of the spares from then on.
    const smallTakes = (n: number) => {
      for (let i = 0; i < n; i++) {
        batch.add(new Uint8Array(10));
        batch.take();
      }
    };
    const reusedOf = (memory: Set<ArrayBufferLike>) =>
      [takeLarge(), takeLarge(), takeLarge()].filter((b) => memory.has(b.buffer));
    // One small batch (a flood's lone message after 'drain') keeps the spares...
    for (const bytes of reused) batch.release(bytes);
    smallTakes(1);
    const again = reusedOf(new Set(reused.map((b) => b.buffer)));
    expect(again).toHaveLength(3);
    // ...four in a row let them go: an idle connection holds only its batch buffer.
    for (const bytes of again) batch.release(bytes);
    smallTakes(4);
    expect(reusedOf(new Set(again.map((b) => b.buffer)))).toHaveLength(1);
  });

  it('never lends small batches: they are copies the transport may keep', () => {
    const batch = new FrameBatch();
    batch.add(new Uint8Array([1, 2, 3]));
    const small = batch.take();
    batch.release(small);
    batch.add(new Uint8Array([4, 5]));
    const next = batch.take();
    expect(Array.from(small)).toEqual([0, 0, 0, 3, 1, 2, 3]);
    expect(Array.from(next)).toEqual([0, 0, 0, 2, 4, 5]);
  });

  it('takeView reuses a small batch’s memory unless the transport kept it; a large one is lent as by take', () => {
    const batch = new FrameBatch();
    batch.add(new Uint8Array([1, 2, 3]));
    const written = batch.takeView();
    expect(Array.from(written)).toEqual([0, 0, 0, 3, 1, 2, 3]);
    // Written at once: the next batch writes into the same memory.
    batch.add(new Uint8Array([4, 5]));
    const kept = batch.takeView();
    expect(kept.buffer).toBe(written.buffer);
    expect(Array.from(kept)).toEqual([0, 0, 0, 2, 4, 5]);
    // Kept by the transport: the next batch must not touch it.
    batch.kept(kept);
    batch.add(new Uint8Array([6]));
    const next = batch.takeView();
    expect(next.buffer).not.toBe(kept.buffer);
    expect(Array.from(kept)).toEqual([0, 0, 0, 2, 4, 5]);
    expect(Array.from(next)).toEqual([0, 0, 0, 1, 6]);
    batch.add(new Uint8Array(100_000));
    const large = batch.takeView();
    expect(batch.lends(large)).toBe(true);
    expect(batch.lends(next)).toBe(false);
  });

  it('hands a frame whole in its chunk as a view, and a frame split across chunks as owned memory', () => {
    const delivered: { payload: Uint8Array; owned: boolean | undefined }[] = [];
    const decoder = new FrameDecoder('test', 1 << 20, {
      frame: (payload, owned) => delivered.push({ payload, owned }),
      control: () => {},
    });
    const batch = new FrameBatch();
    batch.add(new Uint8Array([1, 2, 3, 4]));
    batch.add(new Uint8Array(1000).fill(9));
    const bytes = batch.take();
    decoder.push(bytes.subarray(0, 8 + 500));
    decoder.push(bytes.subarray(8 + 500));
    expect(delivered).toHaveLength(2);
    const [whole, split] = delivered;
    expect(whole!.owned).toBeFalsy();
    expect(whole!.payload.buffer).toBe(bytes.buffer);
    expect(split!.owned).toBe(true);
    expect(split!.payload.byteLength).toBe(1000);
    // Owned means nothing else refers to it: its own ArrayBuffer, exactly its size.
    expect(split!.payload.buffer.byteLength).toBe(1000);
    expect(split!.payload.every((b) => b === 9)).toBe(true);
  });

  it('hands a frame whole in its chunk to frameAt as its place in the chunk, if the sink has it', () => {
    const ranges: [Uint8Array, number, number][] = [];
    const views: Uint8Array[] = [];
    const decoder = new FrameDecoder('test', 1 << 20, {
      frame: (payload) => views.push(payload),
      frameAt: (data, start, end) => ranges.push([data, start, end]),
      control: () => {},
    });
    const batch = new FrameBatch();
    batch.add(new Uint8Array([1, 2, 3, 4]));
    batch.add(new Uint8Array([5, 6]));
    batch.add(new Uint8Array(1000).fill(9));
    const bytes = batch.take();
    const first = bytes.subarray(0, 8 + 4 + 6 + 500);
    decoder.push(first);
    decoder.push(bytes.subarray(first.length));
    expect(ranges).toEqual([
      [first, 4, 8],
      [first, 12, 14],
    ]);
    // Split across chunks: assembled, and handed over as a buffer of its own.
    expect(views).toHaveLength(1);
    expect(views[0]!.byteLength).toBe(1000);
  });
  it('assembles a split frame in memory from allocate(), and hands it over as owned', () => {
    const delivered: { payload: Uint8Array; owned: boolean | undefined }[] = [];
    const decoder = new FrameDecoder('test', 1 << 20, {
      frame: (payload, owned) => delivered.push({ payload, owned }),
      control: () => {},
    });
    const arena = Buffer.alloc(300_000);
    const asked: number[] = [];
    decoder.allocate = (bytes) => {
      asked.push(bytes);
      return arena.subarray(1000, 1000 + bytes);
    };
    const payload = Uint8Array.from({ length: 200_000 }, (_, i) => (i * 7) & 0xff);
    const batch = new FrameBatch();
    batch.add(payload);
    batch.add(new Uint8Array([42]));
    const bytes = batch.take();
    // Three reads, as the kernel would make them: the frame's memory is asked for once.
    decoder.push(bytes.subarray(0, 4 + 50_000));
    expect(asked).toEqual([200_000]);
    decoder.push(bytes.subarray(4 + 50_000, 4 + 120_000));
    decoder.push(bytes.subarray(4 + 120_000));
    expect(asked).toEqual([200_000]);
    expect(delivered).toHaveLength(2);
    expect(delivered[0]!.owned).toBe(true);
    expect(delivered[0]!.payload.buffer).toBe(arena.buffer);
    expect(delivered[0]!.payload.byteOffset).toBe(1000);
    expect(Buffer.compare(delivered[0]!.payload, payload)).toBe(0);
    expect(Array.from(delivered[1]!.payload)).toEqual([42]);
  });
});
