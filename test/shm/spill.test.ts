import { describe, expect, it } from 'vitest';
import { Spill } from '../../src/shm/spill.js';

describe('Spill', () => {
  it('copies into one kept buffer, reused once released, and never shares it between two copies', () => {
    const spill = new Spill(1024);
    const first = spill.copy(new Uint8Array(100).fill(1));
    const second = spill.copy(new Uint8Array(100).fill(2));
    expect(second.buffer).not.toBe(first.buffer);
    expect(first.every((b) => b === 1)).toBe(true);
    spill.release(second); // not the kept buffer: changes nothing
    expect(spill.copy(new Uint8Array(10)).buffer).not.toBe(first.buffer);
    spill.release(first);
    const third = spill.copy(new Uint8Array(80).fill(3));
    expect(third.buffer).toBe(first.buffer);
    expect(third.byteLength).toBe(80);
    expect(third.every((b) => b === 3)).toBe(true);
  });

  it('gives a copy larger than it keeps a buffer of its own', () => {
    const spill = new Spill(1024);
    const big = spill.copy(new Uint8Array(4096).fill(4));
    expect(big.byteLength).toBe(4096);
    expect(big.every((b) => b === 4)).toBe(true);
    spill.release(big);
    const small = spill.copy(new Uint8Array(8));
    expect(small.buffer).not.toBe(big.buffer);
  });
});
