/**
 * Codecs turn messages into bytes and back. msgpack is the default; json, v8 (structured clone) and
 * raw bytes are built in, and any `{ encode, decode }` object works. Decoding is where untrusted bytes
 * enter a process, so every failure becomes ERR_IPC_INVALID_MESSAGE and leaves the channel usable.
 */
import type { StandardSchemaV1 } from '@standard-schema/spec';
import type * as Msgpackr from 'msgpackr';
import { ErrorCodes, IpcError } from './errors.js';
import { lazy, lazyModule } from './lazy-module.js';
import { withByteViews } from './msgpack-byte-views.js';
import { checkMsgpack, MAX_MSGPACK_NESTING } from './msgpack-check.js';
import { decodePlain, encodePlain, encodePlainTransient, NOT_PLAIN } from './msgpack-plain.js';

/** Turns messages of type T into bytes and back. `decode` receives a view it must not keep. */
export interface Codec<T = unknown> {
  /** A short name used in error messages and handshakes. */
  readonly name?: string;
  encode(message: T): Uint8Array;
  decode(bytes: Uint8Array): T;
}

// Records (msgpackr's shared structures) are off: they make the bytes depend on state shared between
// one encoder and one decoder, which two processes started at different times do not have.
// `__proto__` keys decode as the plain key `__proto_`, so a payload cannot reach Object.prototype.
// copyBuffers: a binary field decodes to its own copy, not a view into the frame, which may be a
// read buffer the transport reuses (and a view would pin the whole chunk in memory anyway).
// msgpackr is loaded when the first message beyond plain data is encoded or decoded (about 15 ms,
// once): a process that only sends plain data never loads it.
const msgpackr = lazyModule<typeof Msgpackr>('msgpackr');
const packr = lazy(
  () =>
    new (msgpackr().Packr)({
      useRecords: false,
      mapsAsObjects: true,
      moreTypes: false,
      // A 64-bit integer (a BigInt sent, or another language's int64) is a number when that is
      // exact, else a BigInt: never a rounded number. msgpackr reads 'auto' (unpack.js) but its
      // type declarations predate it.
      int64AsType: 'auto' as 'bigint',
      copyBuffers: true,
      // Never references between values: a received message is a tree (checkMsgpack refuses the
      // extension types too).
      structuredClone: false,
    }),
);

const v8 = lazyModule<typeof import('node:v8')>('node:v8');

/**
 * msgpack into the encoder's working memory, which the next encode overwrites: the plain path's
 * scratch buffer, or msgpackr's in its reset mode (no fresh 8 KiB buffer every hundred messages or
 * so). No copy of the result; only for a transport that copies the bytes before anything else
 * encodes.
 */
function msgpackEncodeTransient(message: unknown): Uint8Array {
  enterEncode();
  try {
    return (
      encodePlainTransient(message) ?? packr().pack(withByteViews(message), msgpackr().RESET_BUFFER_MODE)
    );
  } finally {
    encoding = false;
  }
}

/** msgpack in memory of its own: plain data copied out of the scratch buffer, or msgpackr's result. */
function msgpackEncode(message: unknown): Uint8Array {
  enterEncode();
  try {
    return encodePlain(message) ?? packr().encode(withByteViews(message));
  } finally {
    encoding = false;
  }
}

/**
 * True while a msgpack encode runs. Both of its writers (the plain path and msgpackr) write into
 * one working buffer per process from a position kept between calls, and a message's getters,
 * Proxy traps and toJSON() run in the middle of that: an encode started there (a getter that sends
 * a log line) would overwrite the half-written outer message, which then went out as garbage.
 */
let encoding = false;

/** Marks a msgpack encode as running; refuses one begun while another runs (see {@link encoding}). */
function enterEncode(): void {
  if (encoding) {
    throw new TypeError(
      'a msgpack message cannot be encoded while another is (from a getter, a Proxy trap or toJSON() of the message being sent)',
    );
  }
  encoding = true;
}

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder('utf-8', { fatal: true });

/**
 * msgpackr caches a DataView on the buffer it decodes (`buffer.dataView = new DataView(…)`). Given a
 * fresh view per frame, that is a DataView allocation plus a new hidden class per message, a fifth
 * of a small message's decode. Frames mostly sit in the same buffer (a read buffer, a shared-memory
 * ring), so decode them as ranges of one cached view over that buffer instead. The last buffer is
 * held strongly only up to 1 MiB, so a large one is not kept alive until the next decode; larger
 * ones (a ring mapping) keep their view in a WeakMap, which holds nothing alive.
 */
let wholeBuffer: ArrayBufferLike | undefined;
let wholeView: Uint8Array | undefined;
const MAX_PINNED_BUFFER = 1 << 20;
const largeBufferViews = new WeakMap<ArrayBufferLike, Uint8Array>();

function wholeViewOf(buffer: ArrayBufferLike): Uint8Array {
  if (buffer === wholeBuffer) return wholeView!;
  if (buffer.byteLength <= MAX_PINNED_BUFFER) {
    wholeBuffer = buffer;
    wholeView = new Uint8Array(buffer);
    return wholeView;
  }
  let view = largeBufferViews.get(buffer);
  if (!view) {
    view = new Uint8Array(buffer);
    largeBufferViews.set(buffer, view);
  }
  return view;
}

/**
 * msgpackr takes its fast paths for small messages (strings decoded in JS, map keys from its key
 * cache) only when the decoded range ends within the first 140 bytes of the view; further in, it
 * calls its native string extractor, which costs more than the copy. Small frames are therefore
 * decoded from a scratch copy at offset 0. Safe because `copyBuffers` means nothing decoded refers
 * back to the bytes.
 */
const SMALL_FRAME = 128;
const smallFrame = new Uint8Array(SMALL_FRAME);

function msgpackDecode(bytes: Uint8Array): unknown {
  return msgpackDecodeRange(bytes, 0, bytes.length);
}

/**
 * {@link msgpackDecode} of `data` from `start` to `stop`, with no view made of that range for
 * plain data (a view costs about as much as decoding a small object's number field and key).
 */
function msgpackDecodeRange(data: Uint8Array, start: number, stop: number): unknown {
  const plain = decodePlain(data, start, stop);
  return plain !== NOT_PLAIN ? plain : msgpackrDecode(range(data, start, stop));
}

/** `data` from `start` to `end`: `data` itself when that is all of it, else a view. */
function range(data: Uint8Array, start: number, end: number): Uint8Array {
  return start === 0 && end === data.length ? data : data.subarray(start, end);
}

function msgpackrDecode(bytes: Uint8Array): unknown {
  checkMsgpack(bytes, 0, bytes.length);
  return msgpackrDecodeAny(bytes);
}

function msgpackrDecodeAny(bytes: Uint8Array): unknown {
  const length = bytes.length;
  if (length === 0) return packr().decode(bytes);
  if (length <= SMALL_FRAME) {
    smallFrame.set(bytes);
    return packr().decode(smallFrame, { start: 0, end: length });
  }
  return packr().decode(wholeViewOf(bytes.buffer), {
    start: bytes.byteOffset,
    end: bytes.byteOffset + bytes.length,
  });
}

/** The deepest JSON the json codec decodes, as deep as msgpack (v8 is bounded by its decoder's stack). */
const MAX_JSON_NESTING = MAX_MSGPACK_NESTING;

/**
 * Refuses JSON nested deeper than MAX_JSON_NESTING. V8's JSON.parse is not recursive, so it
 * accepts any depth, and the value would then overflow the stack of whatever walks it (a
 * JSON.stringify, a deep clone, a schema). Text of fewer than two bytes per level cannot be that
 * deep and is not scanned.
 */
function checkJsonNesting(bytes: Uint8Array): void {
  if (bytes.length <= 2 * MAX_JSON_NESTING) return;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    if (inString) {
      if (b === 0x5c)
        i++; // a backslash escapes the next byte, a quote included
      else if (b === 0x22) inString = false;
    } else if (b === 0x22) inString = true;
    else if (b === 0x5b || b === 0x7b) {
      if (++depth > MAX_JSON_NESTING) throw new Error(`JSON nested deeper than ${MAX_JSON_NESTING} levels`);
    } else if (b === 0x5d || b === 0x7d) depth--;
  }
}

/** The built-in codecs. */
export const codecs = {
  /**
   * MessagePack: plain data by ipckit's own encoder and decoder, the rest via msgpackr; Date, Map (as
   * object), Set (as array), typed arrays (as bytes). Compact and fast: the default.
   */
  msgpack: {
    name: 'msgpack',
    encode: msgpackEncode,
    // Decodes to the type the channel declares, as JSON.parse's `any` lets json and v8 do: so that
    // `codecs.msgpack` is a `Codec<Job>` (the `schema` option is what checks the type at run time).
    decode: msgpackDecode as <T>(bytes: Uint8Array) => T,
  } satisfies Codec,
  /** UTF-8 JSON: what any other language can read. */
  json: {
    name: 'json',
    encode: (message: unknown) => {
      const text = JSON.stringify(message);
      if (text === undefined) throw new TypeError('json codec cannot encode undefined or a function');
      return textEncoder.encode(text);
    },
    decode: (bytes: Uint8Array) => {
      checkJsonNesting(bytes);
      return JSON.parse(textDecoder.decode(bytes));
    },
  } satisfies Codec,
  /** V8's structured clone (`v8.serialize`): Map, Set, Date, BigInt, typed arrays, cycles. Node to Node only. */
  v8: {
    name: 'v8',
    encode: (message: unknown) => v8().serialize(message),
    // A copy first: the deserializer makes typed arrays and Buffers over the bytes it is given where
    // their alignment allows, and these bytes are the transport's read buffer, reused next read.
    decode: (bytes: Uint8Array) => v8().deserialize(new Uint8Array(bytes)),
  } satisfies Codec,
  /** No encoding: Uint8Array in, Uint8Array out (a copy the receiver owns). */
  raw: {
    name: 'raw',
    encode: (message: Uint8Array) => {
      if (!(message instanceof Uint8Array)) throw new TypeError('raw codec sends Uint8Array messages only');
      return message;
    },
    // A plain Uint8Array: copying a Buffer view through slice() builds a Buffer, three times slower.
    decode: (bytes: Uint8Array) => new Uint8Array(bytes),
  } satisfies Codec<Uint8Array>,
} as const;

/**
 * `bytes` as a plain Uint8Array over the same memory. A transport's buffer may be a Buffer, whose
 * toString() and slice() behave differently (its slice() is a view, not a copy).
 */
export function plainBytes(bytes: Uint8Array): Uint8Array {
  return bytes instanceof Buffer ? new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length) : bytes;
}

/** The name of a built-in codec. */
export type CodecName = keyof typeof codecs;

/** Options shared by everything that carries messages. */
export interface CodecOptions<T = unknown> {
  /** A built-in codec name or a custom `{ encode, decode }`. Default `'msgpack'`. */
  codec?: CodecName | Codec<T>;
  /** A Standard Schema validator (zod, valibot, arktype, …) checked on every received message. */
  schema?: StandardSchemaV1<unknown, T>;
}

/** A codec with the schema check folded into decode. */
export interface MessageCodec<T> {
  readonly name: string;
  encode(message: T): Uint8Array;
  /**
   * Like {@link MessageCodec.encode}, but the bytes may be scratch memory that the next encode (by
   * any channel of this process) overwrites, in a view that a later encode may return again: for a
   * transport that copies them at once.
   */
  encodeTransient(message: T): Uint8Array;
  /**
   * Decodes and validates; throws ERR_IPC_INVALID_MESSAGE. `owned`: `bytes` is a buffer of its own
   * that nothing else refers to, so the raw codec returns it instead of copying it.
   */
  decode(bytes: Uint8Array, owned?: boolean): T;
  /**
   * {@link MessageCodec.decode} of `data` from `start` to `end`, for a transport whose message lies
   * inside a larger buffer (a shared-memory ring): the msgpack codec reads it in place, without a
   * view of the range.
   */
  decodeRange(data: Uint8Array, start: number, end: number): T;
  /**
   * {@link MessageCodec.decode} for a receiver that can wait (a message queue): a schema whose
   * validation returns a promise is awaited, where decode refuses it.
   */
  decodeAsync(bytes: Uint8Array): T | Promise<T>;
  /**
   * True when `decode(bytes, true)` of a plain Uint8Array is `bytes` itself: the raw codec without
   * a schema. A transport holding such bytes of its own may then deliver them without the call.
   */
  readonly passesOwnedThrough: boolean;
}

/** Resolves `codec` / `schema` options into one encoder/decoder, checking them eagerly. */
export function resolveCodec<T>(opts: CodecOptions<T> | undefined, what: string): MessageCodec<T> {
  const spec = opts?.codec ?? 'msgpack';
  let codec: Codec<T>;
  if (typeof spec === 'string') {
    if (!Object.hasOwn(codecs, spec)) {
      throw new RangeError(
        `options.codec must be one of ${Object.keys(codecs).join(', ')} or a codec object`,
      );
    }
    codec = codecs[spec] as unknown as Codec<T>;
  } else if (spec && typeof spec.encode === 'function' && typeof spec.decode === 'function') {
    // Checked now: the name goes into each connection's hello, where anything else would throw
    // from an event handler (a server's) instead of from this call.
    if (spec.name !== undefined && typeof spec.name !== 'string') {
      throw new TypeError(`options.codec.name must be a string, got ${typeof spec.name}`);
    }
    codec = spec;
  } else {
    throw new TypeError('options.codec must be a codec name or an object with encode() and decode()');
  }
  const schema = opts?.schema;
  if (schema !== undefined && typeof schema?.['~standard']?.validate !== 'function') {
    throw new TypeError('options.schema must be a Standard Schema validator');
  }
  const name = codec.name ?? 'custom';
  // The raw codec's decode is a copy; bytes the transport owns (a large frame assembled in a buffer
  // of its own) already are one, and copying 1 MiB again cost more than the rest of its receive.
  const keepsOwned = codec === (codecs.raw as Codec<unknown>);
  const hasScratch = codec === (codecs.msgpack as Codec<unknown>);
  const isV8 = codec === (codecs.v8 as Codec<unknown>);
  const encodeFailed = (err: unknown): IpcError =>
    new IpcError(ErrorCodes.INVALID_MESSAGE, `${what}: cannot encode message with ${name}`, { cause: err });
  // A custom codec's result is checked: anything but bytes would corrupt the stream's framing.
  const custom = !Object.values(codecs).includes(codec as never);
  const encodeWith = (message: T): Uint8Array => {
    const bytes = codec.encode(message);
    return custom ? asBytes(bytes) : bytes;
  };
  /** `owned`: the bytes are the receiver's own (a large frame assembled apart from the read buffer). */
  const decodeRange = (data: Uint8Array, start: number, end: number, owned = false): T => {
    const value = decodeOnly(data, start, end, owned);
    return schema ? validate(schema, value, what) : value;
  };
  const decodeOnly = (data: Uint8Array, start: number, end: number, owned: boolean): T => {
    let value: T;
    try {
      if (hasScratch) value = msgpackDecodeRange(data, start, end) as T;
      // v8 copies what it decodes, as its typed arrays may be views of it; owned bytes need no copy.
      else if (owned && isV8) value = v8().deserialize(range(data, start, end)) as T;
      else value = codec.decode(range(data, start, end));
    } catch (err) {
      throw new IpcError(ErrorCodes.INVALID_MESSAGE, `${what}: cannot decode message with ${name}`, {
        cause: err,
      });
    }
    return value;
  };
  return {
    name,
    encode(message) {
      try {
        return encodeWith(message);
      } catch (err) {
        throw encodeFailed(err);
      }
    },
    encodeTransient(message) {
      try {
        return hasScratch ? msgpackEncodeTransient(message) : encodeWith(message);
      } catch (err) {
        throw encodeFailed(err);
      }
    },
    decode(bytes, owned) {
      if (owned && keepsOwned) {
        // A plain Uint8Array, as every other raw message is: a view, not a copy.
        const message = plainBytes(bytes) as T;
        return schema ? validate(schema, message, what) : message;
      }
      return decodeRange(bytes, 0, bytes.length, owned);
    },
    decodeRange,
    passesOwnedThrough: keepsOwned && !schema,
    decodeAsync(bytes) {
      const value = decodeOnly(bytes, 0, bytes.length, false);
      return schema ? validateMaybeAsync(schema, value, what) : value;
    },
  };
}

/** What a custom encode returned, as bytes: a Uint8Array, or a view of any other typed array's bytes. */
function asBytes(result: unknown): Uint8Array {
  if (result instanceof Uint8Array) return result;
  if (ArrayBuffer.isView(result)) return new Uint8Array(result.buffer, result.byteOffset, result.byteLength);
  throw new TypeError(
    `encode() must return a Uint8Array, got ${result === null ? 'null' : Array.isArray(result) ? 'an array' : typeof result}`,
  );
}

function validate<T>(schema: StandardSchemaV1<unknown, T>, value: unknown, what: string): T {
  const result = runValidator(schema, value, what);
  if (isThenable(result)) {
    // Refused, so nobody will await it: its own failure must not become an unhandled rejection.
    Promise.resolve(result).catch(() => {});
    throw new TypeError('options.schema must validate synchronously');
  }
  return validated(result, what);
}

/** A promise, this realm's or not (another vm context's, a library's thenable). */
function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as { then?: unknown } | null)?.then === 'function';
}

/** {@link validate}, awaiting a validator that answers with a promise. */
function validateMaybeAsync<T>(
  schema: StandardSchemaV1<unknown, T>,
  value: unknown,
  what: string,
): T | Promise<T> {
  const result = runValidator(schema, value, what);
  if (!isThenable(result)) return validated(result, what);
  return Promise.resolve(result).then(
    (answer) => validated(answer, what),
    (err: unknown) => {
      throw validatorThrew(err, what);
    },
  );
}

function runValidator<T>(
  schema: StandardSchemaV1<unknown, T>,
  value: unknown,
  what: string,
): StandardSchemaV1.Result<T> | Promise<StandardSchemaV1.Result<T>> {
  try {
    return schema['~standard'].validate(value);
  } catch (err) {
    throw validatorThrew(err, what);
  }
}

function validatorThrew(err: unknown, what: string): IpcError {
  return new IpcError(ErrorCodes.INVALID_MESSAGE, `${what}: the schema validator threw`, { cause: err });
}

/** The validated value, or ERR_IPC_INVALID_MESSAGE naming the first issue and where it is. */
function validated<T>(result: StandardSchemaV1.Result<T>, what: string): T {
  if (typeof result !== 'object' || result === null) {
    throw new IpcError(
      ErrorCodes.INVALID_MESSAGE,
      `${what}: the schema validator gave no result (${result === null ? 'null' : typeof result})`,
    );
  }
  if (result.issues) {
    const first = result.issues[0];
    const where = first?.path?.length
      ? ` at ${first.path.map((p) => String(typeof p === 'object' ? p.key : p)).join('.')}`
      : '';
    throw new IpcError(
      ErrorCodes.INVALID_MESSAGE,
      `${what}: message failed schema validation${where}: ${first?.message ?? 'invalid'}`,
      { cause: result.issues },
    );
  }
  return result.value;
}
