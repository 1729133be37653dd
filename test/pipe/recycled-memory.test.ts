import { describe, expect, it } from 'vitest';
import { RecycledMemory } from '../../src/pipe/recycled-memory.js';

const KiB = 1024;
const MiB = 1024 * KiB;

describe('RecycledMemory', () => {
  it('serves a later message of about the same size from a released buffer, never a smaller or a far larger one', () => {
    const memory = new RecycledMemory();
    const first = memory.take(MiB);
    memory.give(first);
    const same = memory.take(MiB - 10);
    expect(same.buffer).toBe(first.buffer);
    expect(same.byteLength).toBe(MiB - 10);
    memory.give(same);
    // Larger than the spare: fresh memory. Under half its size: fresh too (a small message does
    // not hold a large buffer).
    expect(memory.take(MiB + 1).buffer).not.toBe(first.buffer);
    expect(memory.take(MiB / 2 - 1).buffer).not.toBe(first.buffer);
    expect(memory.take(MiB / 2).buffer).toBe(first.buffer);
  });

  it('keeps neither buffers under 64 KiB nor more than two, the newest', () => {
    const memory = new RecycledMemory();
    const small = memory.take(64 * KiB - 1);
    memory.give(small);
    expect(memory.take(64 * KiB - 1).buffer).not.toBe(small.buffer);
    const [a, b, c] = [memory.take(MiB), memory.take(MiB), memory.take(MiB)];
    memory.give(a);
    memory.give(b);
    memory.give(c);
    const served = new Set([memory.take(MiB).buffer, memory.take(MiB).buffer, memory.take(MiB).buffer]);
    expect(served.has(b.buffer) && served.has(c.buffer)).toBe(true);
    expect(served.has(a.buffer)).toBe(false);
  });

  it('keeps at most 64 MiB in all: of two 40 MiB buffers, only the newest; one over 64 MiB not at all', () => {
    const memory = new RecycledMemory();
    const [a, b] = [memory.take(40 * MiB), memory.take(40 * MiB)];
    memory.give(a);
    memory.give(b);
    expect(memory.take(40 * MiB).buffer).toBe(b.buffer);
    expect(memory.take(40 * MiB).buffer).not.toBe(a.buffer);
    const huge = memory.take(65 * MiB);
    memory.give(huge);
    expect(memory.take(65 * MiB).buffer).not.toBe(huge.buffer);
  });
});
