import type { StandardSchemaV1 } from '@standard-schema/spec';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { resolveCodec } from '../../src/core/codec.js';
import { codecs, ErrorCodes, IpcError } from '../../src/index.js';

/** A minimal Standard Schema validator: `{ n: number }`. */
const numberRecord: StandardSchemaV1<unknown, { n: number }> = {
  '~standard': {
    version: 1,
    vendor: 'test',
    validate(value) {
      if (typeof value === 'object' && value !== null && typeof (value as { n?: unknown }).n === 'number') {
        return { value: value as { n: number } };
      }
      return { issues: [{ message: 'n must be a number', path: ['n'] }] };
    },
  },
};

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return (err as IpcError).code;
  }
  return undefined;
}

describe('codecs', () => {
  it('round-trips plain data through msgpack, json and v8', () => {
    const message = { id: 7, name: 'job', tags: ['a', 'b'], nested: { ok: true, n: null } };
    for (const name of ['msgpack', 'json', 'v8'] as const) {
      const codec = resolveCodec({ codec: name }, 'test');
      expect(codec.decode(codec.encode(message))).toEqual(message);
    }
  });

  it('msgpack carries 64-bit integers exactly: a number when that is exact, else a BigInt', () => {
    const codec = resolveCodec({ codec: 'msgpack' }, 'test');
    const back = (value: unknown) => codec.decode(codec.encode(value));
    expect(back(5n)).toBe(5);
    expect(back(-(2n ** 53n) + 1n)).toBe(-(2 ** 53) + 1);
    expect(back(2n ** 53n + 1n)).toBe(2n ** 53n + 1n);
    expect(back(2n ** 63n - 1n)).toBe(2n ** 63n - 1n);
    expect(back(-(2n ** 63n))).toBe(-(2n ** 63n));
    expect(back(2n ** 64n - 1n)).toBe(2n ** 64n - 1n);
    expect(back({ id: 2n ** 60n, n: 3 })).toEqual({ id: 2n ** 60n, n: 3 });
  });

  it('msgpack refuses the never-used byte 0xc1 as a value, at any depth; the byte inside data is data', () => {
    const codec = resolveCodec({ codec: 'msgpack' }, 'test');
    for (const bytes of [[0xc1], [0x92, 0x01, 0xc1], [0x81, 0xa1, 0x61, 0x91, 0xc1]]) {
      expect(codeOf(() => codec.decode(Uint8Array.from(bytes)))).toBe(ErrorCodes.INVALID_MESSAGE);
    }
    // A Date sends the message to msgpackr; 0xc1 inside a bin or a string is not a value.
    const message = { when: new Date(5), bytes: new Uint8Array([0xc1, 0xc1]), text: 'Á' };
    const back = codec.decode(codec.encode(message)) as typeof message;
    expect(back.when.getTime()).toBe(5);
    expect(Array.from(back.bytes)).toEqual([0xc1, 0xc1]);
    expect(back.text).toBe('Á');
  });

  it('v8 keeps Map, Date, BigInt and typed arrays', () => {
    const codec = resolveCodec({ codec: 'v8' }, 'test');
    const message = { m: new Map([[1, 'a']]), d: new Date(5), b: 2n ** 70n, t: new Float64Array([1.5]) };
    const back = codec.decode(codec.encode(message)) as typeof message;
    expect(back.m.get(1)).toBe('a');
    expect(back.d.getTime()).toBe(5);
    expect(back.b).toBe(2n ** 70n);
    expect(Array.from(back.t)).toEqual([1.5]);
  });

  it('v8 hands the receiver typed arrays of their own, never views of the bytes it decoded', () => {
    const codec = resolveCodec({ codec: 'v8' }, 'test');
    const wire = new Uint8Array(
      codec.encode({ b: Buffer.from('secret-A'), u: new Uint8Array([1, 2, 3, 4]) }),
    );
    const received = codec.decode(wire) as { b: Buffer; u: Uint8Array };
    wire.fill(0); // as the transport's next read overwrites its buffer
    expect(received.b.toString()).toBe('secret-A');
    expect(Array.from(received.u)).toEqual([1, 2, 3, 4]);
  });

  it('raw passes bytes through and hands the receiver its own copy', () => {
    const codec = resolveCodec<Uint8Array>({ codec: 'raw' }, 'test');
    const wire = new Uint8Array([1, 2, 3]);
    const received = codec.decode(wire);
    wire[0] = 9;
    expect(Array.from(received)).toEqual([1, 2, 3]);
    expect(codeOf(() => codec.encode('text' as unknown as Uint8Array))).toBe(ErrorCodes.INVALID_MESSAGE);
  });

  it('raw hands out plain Uint8Arrays, also for bytes the transport assembled in a Buffer of its own', () => {
    const raw = resolveCodec<Uint8Array>({ codec: 'raw' }, 'test');
    for (const owned of [false, true]) {
      const message = raw.decode(Buffer.from([1, 2, 3]), owned);
      expect(Object.getPrototypeOf(message)).toBe(Uint8Array.prototype);
      expect([...message]).toEqual([1, 2, 3]);
    }
  });

  it('passes owned bytes through undecoded only for the built-in raw codec without a schema', () => {
    const identity: StandardSchemaV1<unknown, unknown> = {
      '~standard': { version: 1, vendor: 'test', validate: (value) => ({ value }) },
    };
    const namedRaw = { name: 'raw', encode: (m: Uint8Array) => m, decode: (b: Uint8Array) => b };
    expect(resolveCodec({ codec: 'raw' }, 'test').passesOwnedThrough).toBe(true);
    expect(resolveCodec({ codec: 'raw', schema: identity }, 'test').passesOwnedThrough).toBe(false);
    expect(resolveCodec({ codec: namedRaw }, 'test').passesOwnedThrough).toBe(false);
    for (const codec of ['msgpack', 'json', 'v8'] as const) {
      expect(resolveCodec({ codec }, 'test').passesOwnedThrough).toBe(false);
    }
  });

  it('accepts a custom codec object', () => {
    const upper = {
      name: 'upper',
      encode: (s: string) => Buffer.from(s.toUpperCase()),
      decode: (b: Uint8Array) => Buffer.from(b).toString(),
    };
    const codec = resolveCodec({ codec: upper }, 'test');
    expect(codec.name).toBe('upper');
    expect(codec.decode(codec.encode('hi'))).toBe('HI');
  });

  it('refuses what a custom encode returns unless it is bytes; another typed array is sent as its bytes', () => {
    const loose = {
      name: 'loose',
      encode: (m: unknown) => m as Uint8Array,
      decode: (b: Uint8Array) => Array.from(b),
    };
    const codec = resolveCodec({ codec: loose }, 'test');
    for (const bad of ['text', 42, [1, 2], null, { length: 3 }]) {
      expect(codeOf(() => codec.encode(bad))).toBe(ErrorCodes.INVALID_MESSAGE);
      expect(codeOf(() => codec.encodeTransient(bad))).toBe(ErrorCodes.INVALID_MESSAGE);
    }
    const wide = new Uint16Array([0x0102, 0x0304]);
    expect(Array.from(codec.encode(wide))).toEqual(Array.from(new Uint8Array(wide.buffer)));
  });

  it('a schema validator that throws is ERR_IPC_INVALID_MESSAGE with the exception as cause', () => {
    const boom = new Error('validator bug');
    const throwing: StandardSchemaV1<unknown, unknown> = {
      '~standard': {
        version: 1,
        vendor: 'test',
        validate: () => {
          throw boom;
        },
      },
    };
    const codec = resolveCodec({ codec: 'json', schema: throwing }, 'test');
    let error: IpcError | undefined;
    try {
      codec.decode(Buffer.from('{}'));
    } catch (err) {
      error = err as IpcError;
    }
    expect(error?.code).toBe(ErrorCodes.INVALID_MESSAGE);
    expect(error?.cause).toBe(boom);
  });

  it('rejects unknown codec names and malformed codec objects, naming the option', () => {
    expect(() => resolveCodec({ codec: 'yaml' as 'json' }, 'test')).toThrow(/options.codec/);
    expect(() => resolveCodec({ codec: { encode: 1 } as never }, 'test')).toThrow(TypeError);
    expect(() => resolveCodec({ schema: {} as never }, 'test')).toThrow(/options.schema/);
  });

  it('rejects a custom codec whose name is not a string up front, not in a later handshake', () => {
    // The name goes into every connection's hello: a number there threw from the event handler of
    // a NamedPipe server's first connection, an uncaught exception that ended the server process.
    const bytes = { encode: () => new Uint8Array(1), decode: () => 1 };
    expect(() => resolveCodec({ codec: { ...bytes, name: 42 } as never }, 'test')).toThrow(
      expect.objectContaining({ name: 'TypeError', message: expect.stringMatching(/options\.codec\.name/) }),
    );
    expect(resolveCodec({ codec: bytes }, 'test').name).toBe('custom');
  });

  it('checks received messages against a Standard Schema and reports the failing path', () => {
    const codec = resolveCodec({ codec: 'json', schema: numberRecord }, 'test');
    expect(codec.decode(codec.encode({ n: 1 }))).toEqual({ n: 1 });
    let error: IpcError | undefined;
    try {
      codec.decode(Buffer.from('{"n":"one"}'));
    } catch (err) {
      error = err as IpcError;
    }
    expect(error).toBeInstanceOf(IpcError);
    expect(error?.code).toBe(ErrorCodes.INVALID_MESSAGE);
    expect(error?.message).toMatch(/at n: n must be a number/);
  });

  it('refuses a schema that validates asynchronously, and its failure is not left unhandled', async () => {
    const unhandled: unknown[] = [];
    const record = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', record);
    try {
      const asyncSchema: StandardSchemaV1<unknown, unknown> = {
        '~standard': {
          version: 1,
          vendor: 'test',
          validate: async () => {
            throw new Error('async refinement failed');
          },
        },
      };
      const codec = resolveCodec({ codec: 'json', schema: asyncSchema }, 'test');
      expect(() => codec.decode(codec.encode({ n: 1 }))).toThrow(/must validate synchronously/);
      // Unhandled rejections are reported once the microtasks of this turn have run.
      await new Promise((resolve) => setImmediate(resolve));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', record);
    }
  });

  it('turns undecodable bytes into ERR_IPC_INVALID_MESSAGE', () => {
    for (const name of ['msgpack', 'json', 'v8'] as const) {
      const codec = resolveCodec({ codec: name }, 'test');
      expect(codeOf(() => codec.decode(new Uint8Array([0xff, 0x00, 0xc1, 0x92])))).toBe(
        ErrorCodes.INVALID_MESSAGE,
      );
    }
  });

  it('msgpack decodes frames that share one read buffer each on its own, and catches over-reads', () => {
    const first = codecs.msgpack.encode({ a: 1, s: 'first' });
    const second = codecs.msgpack.encode([2, 'second']);
    const shared = new Uint8Array(first.length + second.length + 8);
    shared.set(first, 0);
    shared.set(second, first.length);
    const firstView = shared.subarray(0, first.length);
    const secondView = shared.subarray(first.length, first.length + second.length);
    expect(codecs.msgpack.decode(firstView)).toEqual({ a: 1, s: 'first' });
    expect(codecs.msgpack.decode(secondView)).toEqual([2, 'second']);
    expect(codecs.msgpack.decode(firstView)).toEqual({ a: 1, s: 'first' });
    // A frame cut short must fail, not read on into the next frame's bytes of the same buffer.
    const cut = shared.subarray(0, first.length - 2);
    const codec = resolveCodec({ codec: 'msgpack' }, 'test');
    expect(codeOf(() => codec.decode(cut))).toBe(ErrorCodes.INVALID_MESSAGE);
    expect(codeOf(() => codec.decode(shared.subarray(3, 3)))).toBe(ErrorCodes.INVALID_MESSAGE);
  });

  it('msgpack decodes small and large frames anywhere in a large buffer into values of their own', () => {
    const small = { bin: new Uint8Array([1, 2, 3]), s: 'small' };
    const large = { bin: new Uint8Array(300).fill(7), s: 'x'.repeat(200) };
    // A shared-memory ring is a mapping larger than 1 MiB, with frames far from its start.
    const ring = new Uint8Array(2 << 20);
    const smallAt = (1 << 20) + 5;
    const largeAt = (3 << 19) + 11;
    const smallBytes = codecs.msgpack.encode(small);
    const largeBytes = codecs.msgpack.encode(large);
    ring.set(smallBytes, smallAt);
    ring.set(largeBytes, largeAt);
    const first = codecs.msgpack.decode(ring.subarray(smallAt, smallAt + smallBytes.length)) as typeof small;
    const second = codecs.msgpack.decode(ring.subarray(largeAt, largeAt + largeBytes.length)) as typeof large;
    expect(first).toEqual(small);
    expect(second).toEqual(large);
    // Overwriting the buffer, or decoding more frames, must not change what was decoded.
    ring.fill(0);
    codecs.msgpack.decode(codecs.msgpack.encode({ bin: new Uint8Array([9, 9, 9]), s: 'later' }));
    expect(first).toEqual(small);
    expect(second).toEqual(large);
  });

  it('decodeRange decodes a message inside a larger buffer as decode does its bytes alone', () => {
    const values = [{ id: 1_000_000, name: 'x'.repeat(50) }, [1, 'two', null], { when: new Date(0) }];
    for (const name of ['msgpack', 'json', 'v8'] as const) {
      const codec = resolveCodec({ codec: name }, 'test');
      for (const value of values) {
        const bytes = codec.encode(value);
        const buffer = new Uint8Array(bytes.length + 16).fill(0xc1);
        buffer.set(bytes, 7);
        expect(codec.decodeRange(buffer, 7, 7 + bytes.length)).toEqual(codec.decode(bytes));
        // A range cut short fails as the cut bytes alone would: it never reads past its end.
        expect(codeOf(() => codec.decodeRange(buffer, 7, 7 + bytes.length - 1))).toBe(
          ErrorCodes.INVALID_MESSAGE,
        );
      }
    }
    const raw = resolveCodec({ codec: 'raw' }, 'test');
    const buffer = new Uint8Array([9, 1, 2, 3, 9]);
    const copy = raw.decodeRange(buffer, 1, 4) as Uint8Array;
    buffer.fill(0);
    expect([...copy]).toEqual([1, 2, 3]);
    const checked = resolveCodec({ codec: 'msgpack', schema: numberRecord }, 'test');
    const good = checked.encode({ n: 1 });
    const bad = codecs.msgpack.encode({ n: 'one' });
    const both = new Uint8Array(good.length + bad.length);
    both.set(good, 0);
    both.set(bad, good.length);
    expect(checked.decodeRange(both, 0, good.length)).toEqual({ n: 1 });
    expect(codeOf(() => checked.decodeRange(both, good.length, both.length))).toBe(
      ErrorCodes.INVALID_MESSAGE,
    );
  });

  it('never lets a __proto__ key reach Object.prototype', () => {
    const hostileJson = Buffer.from('{"__proto__":{"polluted":true},"a":1}');
    const json = resolveCodec({ codec: 'json' }, 'test');
    const fromJson = json.decode(hostileJson) as Record<string, unknown>;
    expect(Object.getPrototypeOf(fromJson)).toBe(Object.prototype);
    // A msgpack map { "__proto__": { polluted: true } } written by hand.
    const hostileMsgpack = Buffer.from([
      0x81,
      0xa9,
      ...Buffer.from('__proto__'),
      0x81,
      0xa8,
      ...Buffer.from('polluted'),
      0xc3,
    ]);
    const fromMsgpack = codecs.msgpack.decode(hostileMsgpack) as Record<string, unknown>;
    expect(Object.getPrototypeOf(fromMsgpack)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect((fromMsgpack as { polluted?: unknown }).polluted).toBeUndefined();
  });

  it('decodes arbitrary and mangled bytes to a value or ERR_IPC_INVALID_MESSAGE, touching no prototype', () => {
    const sample = { id: 7, name: 'job', when: new Date(0), tags: ['a', 'b'], bytes: new Uint8Array([1, 2]) };
    for (const name of ['msgpack', 'json', 'v8'] as const) {
      const codec = resolveCodec({ codec: name }, 'fuzz');
      const valid = Array.from(
        codec.encode(name === 'json' ? { ...sample, when: 0, bytes: [1, 2] } : sample),
      );
      const mangled = fc
        .array(fc.tuple(fc.nat(valid.length), fc.integer({ min: 0, max: 255 })), {
          minLength: 1,
          maxLength: 4,
        })
        .map((edits) => {
          const bytes = valid.slice();
          for (const [at, byte] of edits) bytes[at % bytes.length] = byte;
          return bytes;
        });
      fc.assert(
        fc.property(
          fc.oneof(fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 300 }), mangled),
          (list) => {
            try {
              codec.decode(Uint8Array.from(list));
            } catch (err) {
              expect(err).toBeInstanceOf(IpcError);
              expect((err as IpcError).code).toBe(ErrorCodes.INVALID_MESSAGE);
            }
            expect(Object.keys(Object.prototype)).toEqual([]);
            expect(Object.keys(Array.prototype)).toEqual([]);
          },
        ),
        { numRuns: 400 },
      );
      // Still sound afterwards.
      expect(codec.decode(codec.encode({ ok: 1 }))).toEqual({ ok: 1 });
    }
  });

  it('bounds nesting: a deeply nested payload is an invalid message, not a crash', () => {
    const deep = Buffer.alloc(500_000, 0x91); // fixarray(1) nested half a million deep
    deep[deep.length - 1] = 0xc0;
    const codec = resolveCodec({ codec: 'msgpack' }, 'test');
    expect(codeOf(() => codec.decode(deep))).toBe(ErrorCodes.INVALID_MESSAGE);
    // The decoder still works afterwards.
    expect(codec.decode(codec.encode({ ok: 1 }))).toEqual({ ok: 1 });
  });

  it('bounds JSON nesting at 1000 levels, which JSON.parse alone would not', () => {
    const json = resolveCodec({ codec: 'json' }, 'test');
    const nested = (depth: number) => Buffer.from(`${'['.repeat(depth)}1${']'.repeat(depth)}`);
    expect(codeOf(() => json.decode(nested(200_000)))).toBe(ErrorCodes.INVALID_MESSAGE);
    expect(codeOf(() => json.decode(nested(1001)))).toBe(ErrorCodes.INVALID_MESSAGE);
    let value = json.decode(nested(1000));
    for (let level = 0; level < 1000; level++) value = (value as unknown[])[0];
    expect(value).toBe(1);
    // Brackets inside strings (escaped quotes too) are text, not nesting.
    const text = JSON.stringify({ s: '\\"'.concat('['.repeat(3000)) });
    expect(json.decode(Buffer.from(text))).toEqual(JSON.parse(text));
  });

  it('msgpack refuses what msgpackr alone would decode unsafely: references, bundled strings, records, lying headers', () => {
    const codec = resolveCodec({ codec: 'msgpack' }, 'test');
    const refused = (hex: string): string | undefined => codeOf(() => codec.decode(Buffer.from(hex, 'hex')));
    // Structured-clone references (0x69, 0x70): a value could share or hold itself.
    expect(refused('d66900000000c0')).toBe(ErrorCodes.INVALID_MESSAGE);
    expect(refused('d57000c0')).toBe(ErrorCodes.INVALID_MESSAGE);
    // Bundled strings (0x62) move msgpackr's read position: it would read past the frame's end.
    expect(refused('d66200000006c478a0a0')).toBe(ErrorCodes.INVALID_MESSAGE);
    // msgpackr's Error extension (0x65) and a record definition (0x72).
    expect(refused('d46593a14ea14da0')).toBe(ErrorCodes.INVALID_MESSAGE);
    expect(refused('d47240')).toBe(ErrorCodes.INVALID_MESSAGE);
    // An array header claiming 33 million items, in 5 bytes: refused before anything is allocated.
    expect(refused('dd01ffffff')).toBe(ErrorCodes.INVALID_MESSAGE);
    // A string that ends inside a UTF-8 sequence, beside something only msgpackr reads (a Date).
    expect(refused('92a2f041d6ff00000000')).toBe(ErrorCodes.INVALID_MESSAGE);
    // Bytes after the value.
    expect(refused('d6ff0000000001')).toBe(ErrorCodes.INVALID_MESSAGE);
    // What ipckit itself sends through msgpackr still decodes: dates (valid or not) and undefined.
    const dates = { at: new Date(5), far: new Date(1e15), bad: new Date(Number.NaN), none: undefined };
    const back = codec.decode(codec.encode(dates)) as typeof dates;
    expect(back.at).toEqual(dates.at);
    expect(back.far).toEqual(dates.far);
    expect(Number.isNaN(back.bad.getTime())).toBe(true);
    expect('none' in back && back.none === undefined).toBe(true);
  });

  it('msgpack refuses 0xc1 and nesting deeper than 1000 levels however deep, beside values only msgpackr reads', () => {
    const codec = resolveCodec({ codec: 'msgpack' }, 'test');
    // fixarray(2) [Date, [[[ … 0xc1 ]]]] at the given depth.
    const nested = (depth: number, last: number) =>
      Buffer.concat([Buffer.from('92d6ff00000000', 'hex'), Buffer.alloc(depth, 0x91), Buffer.from([last])]);
    expect(codeOf(() => codec.decode(nested(1500, 0xc1)))).toBe(ErrorCodes.INVALID_MESSAGE);
    expect(codeOf(() => codec.decode(nested(998, 0xc1)))).toBe(ErrorCodes.INVALID_MESSAGE);
    expect(codeOf(() => codec.decode(nested(1000, 0xc0)))).toBe(ErrorCodes.INVALID_MESSAGE);
    expect(codeOf(() => codec.decode(nested(998, 0xc0)))).toBeUndefined();
  });

  it('msgpack refuses to send a circular message at once, however its cycles branch', () => {
    const codec = resolveCodec({ codec: 'msgpack' }, 'test');
    // Each node holds its parent and three children, and a Date sends the message to msgpackr.
    type Node = { parent?: Node; kids: Node[]; at: Date };
    const root: Node = { kids: [], at: new Date(0) };
    let level = [root];
    for (let depth = 0; depth < 6; depth++) {
      const next: Node[] = [];
      for (const node of level) {
        for (let k = 0; k < 3; k++) {
          const kid: Node = { parent: node, kids: [], at: new Date(0) };
          node.kids.push(kid);
          next.push(kid);
        }
      }
      level = next;
    }
    const error = (() => {
      try {
        codec.encode(root);
      } catch (err) {
        return err as IpcError;
      }
    })();
    expect(error?.code).toBe(ErrorCodes.INVALID_MESSAGE);
    expect(String((error?.cause as Error | undefined)?.message)).toMatch(/circular/);
    // An object met twice without a cycle is no cycle: sent twice, as msgpack does.
    const shared = { d: new Date(7) };
    expect(codec.decode(codec.encode({ a: shared, b: shared }))).toEqual({ a: shared, b: shared });
  });

  it('msgpack refuses a message too deep where a part it holds twice is met the second time', () => {
    const codec = resolveCodec({ codec: 'msgpack' }, 'test');
    const nest = (levels: number, inside: unknown): unknown => {
      let value = inside;
      for (let level = 0; level < levels; level++) value = [value];
      return value;
    };
    // 600 levels deep, fine at the top; the same part again 500 levels down is 1,100 levels deep.
    const part = nest(600, new Date(0));
    expect(codeOf(() => codec.encode([part, nest(500, part)]))).toBe(ErrorCodes.INVALID_MESSAGE);
    expect(codec.decode(codec.encode([part, nest(300, part)]))).toEqual([part, nest(300, part)]);
  });

  it("msgpack sends every typed array as its bytes, in an Error's cause, a class's toJSON() and deep down", () => {
    const codec = resolveCodec({ codec: 'msgpack' }, 'test');
    const floats = new Float64Array([1.5, -2.25]);
    const bytes = new Uint8Array(floats.buffer);
    class Reading {
      toJSON() {
        return { values: floats };
      }
    }
    let deep: unknown = floats;
    for (let level = 0; level < 100; level++) deep = [deep];
    const message = {
      error: new Error('failed', { cause: floats }),
      reading: new Reading(),
      deep,
      shared: new SharedArrayBuffer(2),
      at: new Date(0),
    };
    const back = codec.decode(codec.encode(message)) as {
      error: [string, string, Uint8Array];
      reading: { values: Uint8Array };
      deep: unknown;
      shared: Uint8Array;
    };
    expect(back.error).toEqual(['Error', 'failed', bytes]);
    expect(back.reading.values).toEqual(bytes);
    let found = back.deep;
    for (let level = 0; level < 100; level++) found = (found as unknown[])[0];
    expect(found).toEqual(bytes);
    expect(back.shared).toEqual(new Uint8Array(2));
  });

  it('msgpack refuses to send a Map with an object as a key, which no receiver could decode', () => {
    const codec = resolveCodec({ codec: 'msgpack' }, 'test');
    expect(codeOf(() => codec.encode(new Map([[[1], 'a']])))).toBe(ErrorCodes.INVALID_MESSAGE);
    expect(
      codec.decode(
        codec.encode(
          new Map<unknown, string>([
            [1, 'a'],
            ['b', 'c'],
            [true, 'd'],
          ]),
        ),
      ),
    ).toEqual({
      1: 'a',
      b: 'c',
      true: 'd',
    });
  });

  it('msgpack refuses an encode begun inside another (a getter that sends), and the outer message stays intact', () => {
    const codec = resolveCodec({ codec: 'msgpack' }, 'test');
    // Plain data and data that needs msgpackr, inside and outside: the plain path and msgpackr
    // each write into one working buffer per process, which a nested encode would overwrite.
    const kinds = [{ log: 'plain' }, { at: new Date(0) }];
    const seen: { outer: string; inner: string; transient: boolean; got: unknown; nested?: string }[] = [];
    for (const transient of [false, true]) {
      for (const outer of kinds) {
        for (const inner of kinds) {
          let nested: string | undefined;
          const message = {
            a: 'hello',
            get b() {
              nested = codeOf(() => codec.encode(inner));
              return 2;
            },
            c: 'world',
            ...outer,
          };
          let got: unknown;
          try {
            got = codec.decode((transient ? codec.encodeTransient(message) : codec.encode(message)).slice());
          } catch (err) {
            got = String((err as IpcError).cause ?? err);
          }
          seen.push({ outer: Object.keys(outer)[0]!, inner: Object.keys(inner)[0]!, transient, got, nested });
        }
      }
    }
    expect(seen).toEqual(
      seen.map(({ outer, inner, transient }) => ({
        outer,
        inner,
        transient,
        got: { a: 'hello', b: 2, c: 'world', ...(outer === 'log' ? { log: 'plain' } : { at: new Date(0) }) },
        nested: ErrorCodes.INVALID_MESSAGE,
      })),
    );
    // And the codec works as before afterwards.
    expect(codec.decode(codec.encode({ ok: [1, new Date(1)] }))).toEqual({ ok: [1, new Date(1)] });
  });
});
