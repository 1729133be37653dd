import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PieceAssembler } from '../../src/shm/piece-assembler.js';

/** A stand-in for the ring: `bytes` laid out at `offset` of a larger buffer, as records lie in it. */
function inRing(bytes: Uint8Array, offset: number): { data: Uint8Array; start: number; end: number } {
  const data = new Uint8Array(offset + bytes.byteLength + 16).fill(0xee);
  data.set(bytes, offset);
  return { data, start: offset, end: offset + bytes.byteLength };
}

/** Feeds `message` cut at `cuts` (all but the last part as pieces) and returns what finish gives. */
function assemble(assembler: PieceAssembler, message: Uint8Array, cuts: number[]): Uint8Array | number {
  const bounds = [0, ...cuts, message.byteLength];
  for (let i = 0; i < bounds.length - 2; i++) {
    const { data, start, end } = inRing(message.subarray(bounds[i], bounds[i + 1]), 8 * i);
    assembler.add(data, start, end);
  }
  const { data, start, end } = inRing(message.subarray(bounds.at(-2), bounds.at(-1)), 24);
  return assembler.finish(data, start, end);
}

describe('PieceAssembler', () => {
  it('returns every message whole, in a buffer that is exactly the message, whatever the cuts and the sizes before it', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.uint8Array({ minLength: 1, maxLength: 3000 }).chain((message) =>
            fc.tuple(
              fc.constant(message),
              fc
                .uniqueArray(fc.integer({ min: 1, max: Math.max(1, message.byteLength - 1) }), {
                  maxLength: 6,
                })
                .map((cuts) => cuts.filter((c) => c < message.byteLength).sort((a, b) => a - b)),
            ),
          ),
          { minLength: 1, maxLength: 8 },
        ),
        (messages) => {
          const assembler = new PieceAssembler(1 << 20);
          for (const [message, cuts] of messages) {
            if (cuts.length === 0) continue; // one record: never collected
            const whole = assemble(assembler, message, cuts);
            expect(whole).toBeInstanceOf(Uint8Array);
            expect(Buffer.from(whole as Uint8Array).equals(Buffer.from(message))).toBe(true);
            expect((whole as Uint8Array).buffer.byteLength).toBe(message.byteLength);
            expect(assembler.collecting).toBe(false);
          }
        },
      ),
    );
  });

  it('drops the bytes of a message past its bound and reports the size, then assembles the next', () => {
    const assembler = new PieceAssembler(100);
    const big = new Uint8Array(150).fill(1);
    expect(assemble(assembler, big, [60, 120])).toBe(150);
    const next = new Uint8Array(90).fill(2);
    expect(assemble(assembler, next, [45])).toEqual(next);
  });

  it('forgets the pieces of a message cut short by a reset', () => {
    const assembler = new PieceAssembler(1000);
    const { data, start, end } = inRing(new Uint8Array(40).fill(9), 0);
    assembler.add(data, start, end);
    expect(assembler.collecting).toBe(true);
    assembler.reset();
    expect(assembler.collecting).toBe(false);
    const message = new Uint8Array(30).map((_, i) => i);
    expect(assemble(assembler, message, [10])).toEqual(message);
  });
});
