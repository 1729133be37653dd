import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { decodePlain, encodePlainTransient, NOT_PLAIN } from '../../src/core/msgpack-plain.js';
import { codecs } from '../../src/index.js';

// msgpackr with the default codec's options: the reference the plain path must agree with.
const reference = new Packr({
  useRecords: false,
  mapsAsObjects: true,
  moreTypes: false,
  int64AsType: 'number',
  copyBuffers: true,
});

/**
 * msgpackr's bytes in a plain Uint8Array, as a transport hands them over: decoded from a Buffer,
 * msgpackr would make binary fields Buffers rather than Uint8Arrays.
 */
function referenceEncode(value: unknown): Uint8Array {
  return new Uint8Array(reference.encode(value));
}

/** What msgpackr makes of `value` on its own, or which of its steps throws. */
function referenceRoundTrip(value: unknown): { value: unknown } | { fails: 'encode' | 'decode' } {
  let bytes: Uint8Array;
  try {
    bytes = referenceEncode(value);
  } catch {
    return { fails: 'encode' };
  }
  try {
    return { value: reference.decode(bytes) };
  } catch {
    return { fails: 'decode' };
  }
}

// Plain data, with strings in every UTF-16 shape (lone surrogates too), and integers, floats and
// lengths around each msgpack size boundary.
const boundaryNumber = fc.oneof(
  fc.constantFrom(0, -0, 127, 128, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, 2 ** 53, -1, -32, -33),
  fc.constantFrom(
    -128,
    -129,
    -32768,
    -32769,
    -(2 ** 31),
    -(2 ** 31) - 1,
    Number.NaN,
    Number.POSITIVE_INFINITY,
  ),
  fc.integer(),
  fc.double(),
);
const anyString = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 80 }),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.string({ minLength: 20, maxLength: 300 }),
  fc.constantFrom(
    '__proto__',
    'constructor',
    'x'.repeat(31),
    'x'.repeat(32),
    'é'.repeat(90),
    '\ufeff',
    '\ufeffbom',
  ),
);
const plainData = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    anyString,
    boundaryNumber,
    fc.boolean(),
    fc.constant(null),
    fc.array(tie('value'), { maxLength: 20 }),
    fc.dictionary(anyString, tie('value'), { maxKeys: 20 }),
  ),
})).value;
// Everything else a message can hold: the plain path must hand these to msgpackr, whole. (Typed
// arrays other than Uint8Array are tested on their own: msgpackr itself writes them wrong.)
const anyData = fc.anything({
  withDate: true,
  withMap: true,
  withSet: true,
  withNullPrototype: true,
  withSparseArray: true,
  withBoxedValues: true,
  withObjectString: true,
  withBigInt: true,
});

describe('msgpack plain-data path', () => {
  it('decodes to what msgpackr decodes, from its own bytes and from msgpackr’s', () => {
    fc.assert(
      fc.property(fc.oneof(plainData, anyData), (value) => {
        const expected = referenceRoundTrip(value);
        if ('fails' in expected) {
          if (expected.fails === 'encode') expect(() => codecs.msgpack.encode(value)).toThrow();
          else expect(() => codecs.msgpack.decode(codecs.msgpack.encode(value))).toThrow();
          return;
        }
        const ours = codecs.msgpack.encode(value);
        expect(codecs.msgpack.decode(ours)).toEqual(expected.value);
        expect(reference.decode(new Uint8Array(ours))).toEqual(expected.value);
        expect(codecs.msgpack.decode(referenceEncode(value))).toEqual(expected.value);
      }),
      { numRuns: 3000 },
    );
  });

  it('takes plain data itself, and leaves everything else to msgpackr', () => {
    const plain = {
      id: 1_000_000,
      name: 'x'.repeat(50),
      tags: ['a', 'é', '😀', '\ufeff'],
      ok: true,
      n: null,
      f: 1.5,
    };
    const bytes = encodePlainTransient(plain)!.slice();
    expect(reference.decode(bytes)).toEqual(plain);
    expect(decodePlain(bytes)).toEqual(plain);
    // Extension types and 64-bit integers, in both directions.
    for (const other of [{ when: new Date(5) }, { missing: undefined }, { big: 1n }]) {
      expect(encodePlainTransient(other)).toBeUndefined();
      expect(decodePlain(referenceEncode(other))).toBe(NOT_PLAIN);
    }
    // Plain on the wire (a msgpack map or array, valid UTF-8), but not plain data to encode.
    for (const other of [
      new Map([['a', 1]]),
      [1, new Set([1])],
      'lone \ud800 surrogate',
      { long: 'x'.repeat(10_000) },
    ]) {
      expect(encodePlainTransient(other)).toBeUndefined();
    }
  });

  it('sends any typed array as its bytes, also beside values only msgpackr encodes', () => {
    // msgpackr 1.12.1 alone writes these as bin of the right length holding the elements, not the
    // bytes, and fills the rest with whatever its buffer held before.
    const floats = new Float64Array([1.5, -2.25]);
    const words = new Uint16Array([0x0102, 0xfffe]).subarray(1);
    const bytesOf = (view: ArrayBufferView) =>
      new Uint8Array(view.buffer.slice(view.byteOffset, view.byteOffset + view.byteLength));
    for (const message of [
      { floats, words },
      { floats, words, when: new Date(5) },
      new Map([['nested', [{ floats }, new Set([words])]]]),
    ]) {
      const decoded = codecs.msgpack.decode(codecs.msgpack.encode(message)) as Record<string, unknown>;
      const text = JSON.stringify(decoded, (_key, value) =>
        value instanceof Uint8Array ? `bytes:${Array.from(value)}` : value,
      );
      expect(text).toContain(`bytes:${Array.from(bytesOf(floats))}`);
      expect(text).toContain(`bytes:${Array.from(bytesOf(words))}`);
    }
    // An own `__proto__` key beside a Date (so msgpackr encodes it) stays a key (decoded, as always,
    // as `__proto_`) when its typed array is replaced.
    const ownProto = Object.defineProperty({ when: new Date(5) }, '__proto__', {
      value: words,
      enumerable: true,
    });
    const decoded = codecs.msgpack.decode(codecs.msgpack.encode(ownProto)) as Record<string, unknown>;
    expect(Object.getPrototypeOf(decoded)).toBe(Object.prototype);
    expect(Array.from(decoded.__proto_ as Uint8Array)).toEqual(Array.from(bytesOf(words)));
    // The caller's values are untouched.
    expect(floats).toBeInstanceOf(Float64Array);
    expect(Array.from(floats)).toEqual([1.5, -2.25]);
  });

  it('never decodes bytes msgpackr refuses, and agrees with it on the ones it takes', () => {
    const valid = plainData.map(referenceEncode);
    // Valid encodings cut short, extended, or with one byte changed; and bytes at random.
    const damaged = fc.oneof(
      fc.uint8Array({ maxLength: 64 }),
      fc.tuple(valid, fc.nat(), fc.nat(255)).map(([bytes, at, byte]) => {
        const copy = bytes.slice();
        if (copy.length > 0) copy[at % copy.length] = byte;
        return copy;
      }),
      fc.tuple(valid, fc.nat()).map(([bytes, cut]) => bytes.subarray(0, cut % (bytes.length + 1))),
      fc.tuple(valid, fc.uint8Array({ minLength: 1, maxLength: 4 })).map(([bytes, extra]) => {
        const longer = new Uint8Array(bytes.length + extra.length);
        longer.set(bytes);
        longer.set(extra, bytes.length);
        return longer;
      }),
    );
    fc.assert(
      fc.property(damaged, (bytes) => {
        const ours = decodePlain(bytes);
        if (ours === NOT_PLAIN) return;
        expect(reference.decode(bytes)).toEqual(ours);
      }),
      { numRuns: 5000 },
    );
  });

  it('takes a string of any length only if it is valid UTF-8, an encoded U+FFFD included', () => {
    for (const length of [7, 8, 15, 16, 63, 64, 300]) {
      const valid = `${'a'.repeat(length - 3)}\uFFFD`; // U+FFFD is 3 bytes of UTF-8
      expect(decodePlain(referenceEncode(valid))).toBe(valid);
      for (const bad of [[0x80], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0xff]]) {
        const bytes = referenceEncode('a'.repeat(length));
        bytes.set(bad, bytes.length - bad.length);
        expect(decodePlain(bytes)).toBe(NOT_PLAIN);
      }
    }
  });

  it('refuses a header that claims more items than there are bytes, before allocating them', () => {
    // An array of 2^32-1 items, and a map of as many entries, in a 5-byte frame.
    expect(decodePlain(new Uint8Array([0xdd, 0xff, 0xff, 0xff, 0xff]))).toBe(NOT_PLAIN);
    expect(decodePlain(new Uint8Array([0xdf, 0xff, 0xff, 0xff, 0xff]))).toBe(NOT_PLAIN);
    expect(decodePlain(new Uint8Array([0xdb, 0xff, 0xff, 0xff, 0xff]))).toBe(NOT_PLAIN);
  });

  it('decodes a frame in the middle of a shared buffer without keeping or reading past it', () => {
    const ring = new Uint8Array(new SharedArrayBuffer(256)).fill(0xc0);
    const bytes = reference.encode({ a: [1, 2], b: 'text' });
    ring.set(bytes, 100);
    const value = decodePlain(ring.subarray(100, 100 + bytes.length)) as { a: number[] };
    expect(value).toEqual({ a: [1, 2], b: 'text' });
    ring.fill(0);
    expect(value.a).toEqual([1, 2]);
    // One byte short: the value does not end where the frame does.
    expect(decodePlain(ring.subarray(100, 100 + bytes.length - 1))).toBe(NOT_PLAIN);
  });

  it('hands out one scratch view per length: each transient result holds the latest encode', () => {
    const first = encodePlainTransient({ n: 1 })!;
    const firstBytes = [...first];
    const second = encodePlainTransient({ n: 2 })!;
    // The same length: the same view, now with the second message's bytes.
    expect(second).toBe(first);
    expect([...second]).toEqual([...codecs.msgpack.encode({ n: 2 })]);
    expect([...second]).not.toEqual(firstBytes);
    const longer = encodePlainTransient({ n: 'a longer message' })!;
    expect(longer).not.toBe(first);
    expect(codecs.msgpack.decode(longer)).toEqual({ n: 'a longer message' });
    // Past the cached lengths, a fresh view each time.
    const big = { s: 'x'.repeat(300) };
    expect(encodePlainTransient(big)).not.toBe(encodePlainTransient(big));
  });

  it('decodes a range of a buffer, given as start and stop, as it decodes those bytes alone', () => {
    fc.assert(
      fc.property(plainData, fc.nat(16), fc.nat(16), (value, before, after) => {
        const bytes = codecs.msgpack.encode(value);
        // Bytes around the range that would change the value if they were read (0xc0: a null).
        const buffer = new Uint8Array(before + bytes.length + after).fill(0xc0);
        buffer.set(bytes, before);
        const stop = before + bytes.length;
        expect(decodePlain(buffer, before, stop)).toEqual(decodePlain(bytes));
        expect(decodePlain(buffer, before, stop)).not.toBe(NOT_PLAIN);
        if (bytes.length > 1) expect(decodePlain(buffer, before, stop - 1)).toBe(NOT_PLAIN);
      }),
      { numRuns: 500 },
    );
  });
});
