/**
 * The ring's wrap-around logic, in process: a writer and a reader on two sets of views of one
 * buffer, driven by fast-check through random interleavings of writes and reads of random sizes
 * (0 B to twice the ring), some committed lazily and published later. Every message must come out
 * whole, in order, and never overwrite what the reader has not freed.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  RecordKind,
  RING_CONTROL_BYTES,
  RingReader,
  RingWriter,
  ringViews,
  writeMessage,
} from '../../src/shm/ring.js';

const CAPACITY = 4096;

function makeRing(startAt: number, capacity = CAPACITY) {
  const buffer = new SharedArrayBuffer(RING_CONTROL_BYTES + capacity);
  // Start the free-running counters near 2^32 so the u32 wrap of head/tail is exercised too.
  const control = new Int32Array(buffer, 0, RING_CONTROL_BYTES / 4);
  // Records are 8-byte aligned, so the counters always are.
  control[0] = startAt & ~7;
  control[16] = startAt & ~7;
  const writer = new RingWriter(ringViews(buffer, 0, RING_CONTROL_BYTES, capacity));
  const reader = new RingReader(ringViews(buffer, 0, RING_CONTROL_BYTES, capacity));
  return { writer, reader };
}

function message(seq: number, size: number): Uint8Array {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = (seq * 31 + i * 7) & 0xff;
  return bytes;
}

type Op =
  | { write: number; lazy: boolean }
  | { read: number; fastLimit: number | undefined }
  | { publish: true };

describe('ring wrap-around (property)', () => {
  it('delivers every message whole and in order under random interleavings', () => {
    const op = fc.oneof(
      fc.record({
        write: fc.oneof(fc.integer({ min: 0, max: 64 }), fc.integer({ min: 0, max: 2 * CAPACITY })),
        lazy: fc.boolean(),
      }),
      fc.record({
        read: fc.integer({ min: 1, max: 8 }),
        // Whether the reader tries the whole-message shortcut first, and up to what size.
        fastLimit: fc.option(fc.integer({ min: 0, max: CAPACITY }), { nil: undefined }),
      }),
      fc.constant({ publish: true as const }),
    ) as fc.Arbitrary<Op>;
    fc.assert(
      fc.property(fc.array(op, { maxLength: 200 }), fc.integer({ min: 0, max: 0xffffffff }), (ops, start) => {
        const { writer, reader } = makeRing(start);
        const sent: Uint8Array[] = [];
        const received: Uint8Array[] = [];
        let pending: { bytes: Uint8Array; offset: number; lazy: boolean } | undefined;
        let pieces: Uint8Array[] = [];
        let seq = 0;
        const pump = () => {
          if (!pending) return;
          const at = writeMessage(writer, pending.bytes, pending.offset, pending.offset > 0, pending.lazy);
          if (at >= 0) pending.offset = at;
          if (at === pending.bytes.byteLength) pending = undefined;
        };
        const read = (limit: number, fastLimit?: number) => {
          for (let i = 0; i < limit; i++) {
            // As the channel does: the shortcut only between messages, never amid a pieced one.
            const whole =
              fastLimit !== undefined && pieces.length === 0 ? reader.copyNextData(fastLimit) : undefined;
            if (whole) {
              expect(whole.byteLength).toBeLessThanOrEqual(fastLimit!);
              received.push(whole);
              reader.free(reader.cursor);
              continue;
            }
            const rec = reader.next();
            if (!rec) {
              // What a busy-polling reader does at every position: it must change nothing.
              reader.prefetchNext();
              return;
            }
            const copy = reader.data.slice(rec.offset, rec.offset + rec.length);
            pieces.push(copy);
            if (rec.kind === RecordKind.DATA) {
              received.push(Buffer.concat(pieces));
              pieces = [];
            } else expect(rec.kind).toBe(RecordKind.PIECE);
            reader.free(rec.end);
          }
        };
        for (const o of ops) {
          if ('write' in o) {
            if (!pending) {
              const bytes = message(seq++, o.write);
              sent.push(bytes);
              pending = { bytes, offset: 0, lazy: o.lazy };
            }
            pump();
          } else if ('publish' in o) {
            writer.publish();
          } else {
            read(o.read, o.fastLimit);
            pump();
          }
        }
        // Drain: alternate until the writer has nothing left.
        for (let guard = 0; pending || reader.available() || writer.unpublished; guard++) {
          writer.publish();
          read(1_000);
          pump();
          expect(guard).toBeLessThan(10_000);
        }
        expect(received.length).toBe(sent.length);
        for (let i = 0; i < sent.length; i++) expect(Buffer.compare(received[i]!, sent[i]!)).toBe(0);
        expect(writer.free()).toBe(CAPACITY);
      }),
      { numRuns: 300 },
    );
  });

  it('copyNextData() takes a whole DATA message as a copy of its own, and leaves every other record', () => {
    const { writer, reader } = makeRing(0);
    expect(reader.copyNextData(CAPACITY)).toBeUndefined();
    // Unpublished: not there yet.
    writeMessage(writer, message(1, 100), 0, false, true);
    expect(reader.copyNextData(CAPACITY)).toBeUndefined();
    writer.publish();
    // Over the limit: left for next(), which reports it.
    expect(reader.copyNextData(99)).toBeUndefined();
    const copy = reader.copyNextData(100)!;
    expect(Buffer.compare(copy, message(1, 100))).toBe(0);
    expect(copy.buffer).not.toBe(reader.data.buffer);
    expect(copy.byteOffset).toBe(0);
    reader.free(reader.cursor);
    // A message in pieces: the first piece is not a whole message.
    writeMessage(writer, message(2, CAPACITY), 0);
    expect(reader.copyNextData(CAPACITY)).toBeUndefined();
    expect(reader.next()?.kind).toBe(RecordKind.PIECE);
    reader.free(reader.cursor);
    while (reader.next()) reader.free(reader.cursor);
    // GOODBYE: left for next().
    writer.reserve(0, 0);
    writer.commit(RecordKind.GOODBYE, undefined, 0, 0);
    expect(reader.copyNextData(CAPACITY)).toBeUndefined();
    expect(reader.next()?.kind).toBe(RecordKind.GOODBYE);
  });

  it('copyNextData() leaves a header that claims more than was published, or a negative length, to next(), which refuses it', () => {
    const { writer, reader } = makeRing(0);
    expect(writeMessage(writer, message(1, 100), 0)).toBe(100);
    const words = new Int32Array(reader.data.buffer, reader.data.byteOffset, CAPACITY / 4);
    for (const scribbled of [200, CAPACITY, -1]) {
      words[0] = scribbled; // the record's length word, as memory scribbled on would read
      expect(reader.copyNextData(2 * CAPACITY)).toBeUndefined();
      expect(() => reader.next()).toThrow(RangeError);
    }
  });

  it('copyNextData() leaves the PAD before a record that wraps to next()', () => {
    // 16 bytes before the end of the ring: a 100-byte message goes after a PAD, at position 0.
    const { writer, reader } = makeRing(CAPACITY - 16);
    expect(writeMessage(writer, message(1, 100), 0)).toBe(100);
    expect(reader.copyNextData(CAPACITY)).toBeUndefined();
    const rec = reader.next()!;
    expect([rec.kind, rec.offset, rec.length]).toEqual([RecordKind.DATA, 8, 100]);
  });

  it('publishes nothing until a record is complete', () => {
    const { writer, reader } = makeRing(0);
    expect(writer.reserve(100, 100)).toBe(100);
    // Reserved but not committed: a writer that died here left nothing visible.
    expect(reader.next()).toBeUndefined();
    writer.commit(RecordKind.DATA, message(1, 100), 0, 100);
    expect(reader.next()?.length).toBe(100);
  });

  it('keeps lazy commits unseen until publish(), or until 8 KiB of them wait', () => {
    // 8 KiB in a ring of 64 KiB or more; an eighth of a smaller ring.
    const { writer, reader } = makeRing(0, 64 * 1024);
    writer.reserve(64, 64);
    writer.commit(RecordKind.DATA, message(1, 64), 0, 64, true);
    expect(writer.unpublished).toBe(true);
    expect(reader.available()).toBe(false);
    expect(writer.publish()).toBe(true);
    expect(writer.publish()).toBe(false);
    expect(reader.next()?.length).toBe(64);
    // 72-byte records: the 114th brings the unpublished bytes to 8208, past the limit.
    for (let i = 0; i < 113; i++) expect(writeMessage(writer, message(i, 64), 0, false, true)).toBe(64);
    expect(reader.available()).toBe(false);
    writeMessage(writer, message(113, 64), 0, false, true);
    expect(writer.unpublished).toBe(false);
    let seen = 0;
    while (reader.next()) seen++;
    expect(seen).toBe(114);
  });
});
