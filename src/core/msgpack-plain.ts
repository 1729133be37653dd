/**
 * msgpack for plain data, the common case: objects and arrays of strings, numbers, booleans, null
 * and bytes (any typed array or DataView, sent as bin).
 * It writes and reads standard msgpack, the bytes msgpackr reads and writes, in a fraction of
 * msgpackr's time for small messages, which is most of what a small message costs end to end.
 * Anything else (Date, Map, Set, undefined, bigint, class instances, extensions,
 * invalid UTF-8, deep nesting, truncated or trailing bytes) makes these functions give up, and the
 * caller hands the whole message to msgpackr, so behaviour outside plain data is msgpackr's own.
 */

/** What {@link decodePlain} returns when the bytes are not plain data it reads: use msgpackr. */
export const NOT_PLAIN: unique symbol = Symbol('not plain msgpack');

// Deeper data goes to msgpackr, which has its own limits and errors for it (a cyclic object is
// infinitely deep).
const MAX_DEPTH = 64;

// ─── Encoding ────────────────────────────────────────────────────────────────────────────────────

// Messages that do not fit go to msgpackr, which grows its buffer; small messages are the point.
const SCRATCH_BYTES = 8192;
const scratch = new Uint8Array(SCRATCH_BYTES);
const scratchView = new DataView(scratch.buffer);
const textEncoder = new TextEncoder();
// Buffer's native UTF-8 writer takes any Uint8Array; from about 24 characters on it beats a loop.
const utf8Write = (Buffer.prototype as unknown as { utf8Write?: BufferWrite }).utf8Write;
const NATIVE_WRITE_FROM = 24;
let at = 0;

type BufferWrite = (this: Uint8Array, text: string, offset: number) => number;

/**
 * Views of the scratch memory's first bytes, one per length, made once: a transient result is
 * overwritten by the next encode anyway, so the same view may serve every message of that length,
 * and a fresh view (55–65 ns on the benchmark VM) cost half as much as encoding a small object.
 */
const VIEWS_UP_TO = 256;
const scratchViews: (Uint8Array | undefined)[] = new Array(VIEWS_UP_TO + 1);

/**
 * Encodes `value` into scratch memory that the next call overwrites, and returns a view of it; or
 * undefined if `value` is not plain data or does not fit. The view itself may be returned again by
 * a later call that encodes as many bytes.
 */
export function encodePlainTransient(value: unknown): Uint8Array | undefined {
  at = 0;
  if (!writeValue(value, 0)) return undefined;
  const length = at;
  if (length > VIEWS_UP_TO) return scratch.subarray(0, length);
  let view = scratchViews[length];
  if (view === undefined) {
    view = scratch.subarray(0, length);
    scratchViews[length] = view;
  }
  return view;
}

/** As {@link encodePlainTransient}, but into memory of its own. */
export function encodePlain(value: unknown): Uint8Array | undefined {
  at = 0;
  return writeValue(value, 0) ? scratch.slice(0, at) : undefined;
}

function writeValue(value: unknown, depth: number): boolean {
  switch (typeof value) {
    case 'string':
      return writeString(value);
    case 'number':
      return writeNumber(value);
    case 'boolean':
      if (at >= SCRATCH_BYTES) return false;
      scratch[at++] = value ? 0xc3 : 0xc2;
      return true;
    case 'object': {
      if (value === null) {
        if (at >= SCRATCH_BYTES) return false;
        scratch[at++] = 0xc0;
        return true;
      }
      if (depth >= MAX_DEPTH) return false;
      if (ArrayBuffer.isView(value)) return writeBytes(value);
      const proto = Object.getPrototypeOf(value);
      if (proto === Array.prototype) return writeArray(value as unknown[], depth + 1);
      if (proto === Object.prototype || proto === null) {
        return writeObject(value as Record<string, unknown>, depth + 1);
      }
      return false;
    }
    default:
      // undefined, bigint, functions and symbols: msgpackr has its own rules for each.
      return false;
  }
}

function writeHeader(count: number, fix: number, short: number): boolean {
  if (at + 5 > SCRATCH_BYTES) return false;
  if (count < 16) scratch[at++] = fix | count;
  else if (count < 0x10000) scratchView.setUint16(tagged(short, 2), count);
  else scratchView.setUint32(tagged(short + 1, 4), count);
  return true;
}

/** Any typed array or DataView as bin: its bytes, which arrive as a Uint8Array. */
function writeBytes(view: ArrayBufferView): boolean {
  const length = view.byteLength;
  if (at + 5 + length > SCRATCH_BYTES) return false;
  if (length < 0x100) scratch[tagged(0xc4, 1)] = length;
  else scratchView.setUint16(tagged(0xc5, 2), length);
  scratch.set(new Uint8Array(view.buffer, view.byteOffset, length), at);
  at += length;
  return true;
}

function writeArray(array: unknown[], depth: number): boolean {
  const length = array.length;
  if (!writeHeader(length, 0x90, 0xdc)) return false;
  for (let i = 0; i < length; i++) {
    if (!writeValue(array[i], depth)) return false;
  }
  return true;
}

function writeObject(object: Record<string, unknown>, depth: number): boolean {
  const keys = Object.keys(object);
  const count = keys.length;
  if (!writeHeader(count, 0x80, 0xde)) return false;
  for (let i = 0; i < count; i++) {
    const key = keys[i]!;
    if (!writeString(key) || !writeValue(object[key], depth)) return false;
  }
  return true;
}

function writeNumber(value: number): boolean {
  if (at + 9 > SCRATCH_BYTES) return false;
  if (value >>> 0 === value) {
    if (value < 0x80) scratch[at++] = value;
    else if (value < 0x100) scratch[tagged(0xcc, 1)] = value;
    else if (value < 0x10000) scratchView.setUint16(tagged(0xcd, 2), value);
    else scratchView.setUint32(tagged(0xce, 4), value);
  } else if ((value | 0) === value) {
    if (value >= -0x20) scratch[at++] = value & 0xff;
    else if (value >= -0x80) scratch[tagged(0xd0, 1)] = value & 0xff;
    else if (value >= -0x8000) scratchView.setInt16(tagged(0xd1, 2), value);
    else scratchView.setInt32(tagged(0xd2, 4), value);
  } else {
    // Integers beyond 32 bits as well, as msgpackr writes them: every number survives exactly, but
    // for -0, which (-0 >>> 0 === -0) wrote as the integer 0 above, as msgpackr does too.
    scratchView.setFloat64(tagged(0xcb, 8), value);
  }
  return true;
}

/** Writes a type byte and keeps `size` bytes after it; returns where those start. */
function tagged(type: number, size: number): number {
  scratch[at] = type;
  const start = at + 1;
  at = start + size;
  return start;
}

function writeString(text: string): boolean {
  const length = text.length;
  if (at + 5 + length * 3 > SCRATCH_BYTES) return false;
  // Most strings (keys above all) are ASCII, and then the header is known before the bytes.
  const out = scratch;
  const start = at;
  let next = start;
  if (length < 32) {
    out[next++] = 0xa0 | length;
  } else if (length < 0x100) {
    out[next++] = 0xd9;
    out[next++] = length;
  } else {
    return writeUtf8String(text);
  }
  if (length >= NATIVE_WRITE_FROM && utf8Write !== undefined) {
    // As many bytes as UTF-16 units: all ASCII (anything else, a lone surrogate too, takes more).
    if (utf8Write.call(out, text, next) !== length) return writeUtf8String(text);
    at = next + length;
    return true;
  }
  // Locals, not the module's `at`, in the loop: the engine keeps those in registers.
  for (let i = 0; i < length; i++) {
    const unit = text.charCodeAt(i);
    if (unit >= 0x80) return writeUtf8String(text);
    out[next++] = unit;
  }
  at = next;
  return true;
}

/** str8/16/32 sized for the worst case (3 bytes per UTF-16 unit), then the length patched in. */
function writeUtf8String(text: string): boolean {
  const worst = text.length * 3;
  const headerBytes = worst < 0x100 ? 2 : worst < 0x10000 ? 3 : 5;
  const start = at;
  at += headerBytes;
  if (text.length < 64) {
    if (!writeUtf8Units(text)) return false;
  } else {
    // Long strings: the platform encoder. It writes a lone surrogate as U+FFFD, as msgpackr does
    // for strings this long.
    at +=
      utf8Write !== undefined
        ? utf8Write.call(scratch, text, at)
        : textEncoder.encodeInto(text, scratch.subarray(at)).written;
  }
  const byteLength = at - start - headerBytes;
  if (headerBytes === 2) {
    scratch[start] = 0xd9;
    scratch[start + 1] = byteLength;
  } else if (headerBytes === 3) {
    scratch[start] = 0xda;
    scratchView.setUint16(start + 1, byteLength);
  } else {
    scratch[start] = 0xdb;
    scratchView.setUint32(start + 1, byteLength);
  }
  return true;
}

/** UTF-8 of a short string; false on a lone surrogate, which msgpackr encodes its own way. */
function writeUtf8Units(text: string): boolean {
  const length = text.length;
  const out = scratch;
  let next = at;
  for (let i = 0; i < length; i++) {
    let unit = text.charCodeAt(i);
    if (unit < 0x80) {
      out[next++] = unit;
    } else if (unit < 0x800) {
      out[next++] = 0xc0 | (unit >> 6);
      out[next++] = 0x80 | (unit & 0x3f);
    } else if (unit < 0xd800 || unit > 0xdfff) {
      out[next++] = 0xe0 | (unit >> 12);
      out[next++] = 0x80 | ((unit >> 6) & 0x3f);
      out[next++] = 0x80 | (unit & 0x3f);
    } else {
      const low = text.charCodeAt(i + 1);
      if (unit > 0xdbff || !(low >= 0xdc00 && low <= 0xdfff)) return false;
      unit = 0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00);
      i++;
      out[next++] = 0xf0 | (unit >> 18);
      out[next++] = 0x80 | ((unit >> 12) & 0x3f);
      out[next++] = 0x80 | ((unit >> 6) & 0x3f);
      out[next++] = 0x80 | (unit & 0x3f);
    }
  }
  at = next;
  return true;
}

// ─── Decoding ────────────────────────────────────────────────────────────────────────────────────

type BufferSlice = (this: Uint8Array, start: number, end: number) => string;
// Buffer's native slicers take any Uint8Array and cost half of TextDecoder for a short string.
const latin1Slice = (Buffer.prototype as unknown as { latin1Slice?: BufferSlice }).latin1Slice;
const utf8Slice = (Buffer.prototype as unknown as { utf8Slice?: BufferSlice }).utf8Slice;
/** From this length on, utf8Slice and a search for U+FFFD beat checking the bytes for ASCII in JS. */
const NATIVE_SLICE_FROM = 16;
// ignoreBOM: a string that starts with U+FEFF keeps it (by default TextDecoder drops it).
const fatalDecoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const fromCharCode = String.fromCharCode;
// Big-endian floats are read through these rather than a DataView, which would have to be made
// for every frame's buffer (or kept, and keep a large buffer alive with it).
const floatBytes = new Uint8Array(8);
const float64 = new Float64Array(floatBytes.buffer);
const float32 = new Float32Array(floatBytes.buffer, 0, 1);
const EMPTY = new Uint8Array(0);

let src: Uint8Array = EMPTY;
let pos = 0;
let end = 0;

/**
 * Decodes `bytes` from `start` to `stop` (by default all of it), which must hold exactly one plain
 * msgpack value, or returns {@link NOT_PLAIN}. The result refers to nothing in `bytes`.
 */
export function decodePlain(bytes: Uint8Array, start = 0, stop = bytes.length): unknown {
  src = bytes;
  pos = start;
  end = stop;
  const value = readValue(0);
  const complete = pos === end;
  src = EMPTY;
  return complete ? value : NOT_PLAIN;
}

function readValue(depth: number): unknown {
  if (pos >= end) return NOT_PLAIN;
  const token = src[pos++]!;
  if (token < 0x80) return token;
  if (token < 0x90) return readMap(token & 0x0f, depth);
  if (token < 0xa0) return readArray(token & 0x0f, depth);
  if (token < 0xc0) return readString(token & 0x1f);
  if (token >= 0xe0) return token - 0x100;
  switch (token) {
    case 0xc0:
      return null;
    case 0xc2:
      return false;
    case 0xc3:
      return true;
    case 0xca:
      return readFloat(4);
    case 0xcb:
      return readFloat(8);
    case 0xcc:
      return readUint(1);
    case 0xcd:
      return readUint(2);
    case 0xce:
      return readUint(4);
    case 0xd0: {
      const value = readUint(1);
      return value === NOT_PLAIN ? value : ((value as number) << 24) >> 24;
    }
    case 0xd1: {
      const value = readUint(2);
      return value === NOT_PLAIN ? value : ((value as number) << 16) >> 16;
    }
    case 0xd2: {
      const value = readUint(4);
      return value === NOT_PLAIN ? value : (value as number) | 0;
    }
    case 0xc4:
    case 0xc5:
    case 0xc6: {
      const length = readUint(1 << (token - 0xc4));
      return length === NOT_PLAIN ? length : readBytes(length as number);
    }
    case 0xd9:
    case 0xda:
    case 0xdb: {
      const length = readUint(1 << (token - 0xd9));
      return length === NOT_PLAIN ? length : readString(length as number);
    }
    case 0xdc:
    case 0xdd: {
      const length = readUint(token === 0xdc ? 2 : 4);
      return length === NOT_PLAIN ? length : readArray(length as number, depth);
    }
    case 0xde:
    case 0xdf: {
      const count = readUint(token === 0xde ? 2 : 4);
      return count === NOT_PLAIN ? count : readMap(count as number, depth);
    }
    default:
      // Extensions and 64-bit integers: msgpackr's options decide what they become.
      return NOT_PLAIN;
  }
}

/** A big-endian unsigned integer of 1, 2 or 4 bytes. */
function readUint(bytes: number): unknown {
  if (pos + bytes > end) return NOT_PLAIN;
  let value = 0;
  for (let i = 0; i < bytes; i++) value = value * 256 + src[pos++]!;
  return value;
}

function readFloat(bytes: 4 | 8): unknown {
  if (pos + bytes > end) return NOT_PLAIN;
  // msgpack is big-endian, the typed arrays are the machine's: little-endian on every Node target.
  for (let i = bytes - 1; i >= 0; i--) floatBytes[i] = src[pos++]!;
  return bytes === 8 ? float64[0] : float32[0];
}

/** bin as a Uint8Array of its own, never a view of the frame (as msgpackr's `copyBuffers`). */
function readBytes(length: number): unknown {
  if (pos + length > end) return NOT_PLAIN;
  const bytes = new Uint8Array(length);
  bytes.set(src.subarray(pos, pos + length));
  pos += length;
  return bytes;
}

function readArray(length: number, depth: number): unknown {
  // Every element takes a byte: a header claiming more is refused before anything is allocated.
  if (depth >= MAX_DEPTH || length > end - pos) return NOT_PLAIN;
  const array = new Array(length);
  for (let i = 0; i < length; i++) {
    const item = readValue(depth + 1);
    if (item === NOT_PLAIN) return NOT_PLAIN;
    array[i] = item;
  }
  return array;
}

function readMap(count: number, depth: number): unknown {
  if (depth >= MAX_DEPTH || count * 2 > end - pos) return NOT_PLAIN;
  const object: Record<string, unknown> = {};
  for (let i = 0; i < count; i++) {
    let key = readKey();
    if (key === undefined) return NOT_PLAIN;
    // As msgpackr does: a payload cannot reach Object.prototype through a `__proto__` key.
    if (key === '__proto__') key = '__proto_';
    const item = readValue(depth + 1);
    if (item === NOT_PLAIN) return NOT_PLAIN;
    object[key] = item;
  }
  return object;
}

// Keys repeat from message to message: the same string back skips building it and lets the engine
// find the property by identity. One slot per (length, first two bytes), as msgpackr's key cache.
const KEY_CACHE_SLOTS = 4096;
const MAX_CACHED_KEY = 16;
const keyCache: (string | undefined)[] = new Array(KEY_CACHE_SLOTS);

function readKey(): string | undefined {
  if (pos >= end) return undefined;
  const token = src[pos]!;
  if (token < 0xa0 || token >= 0xa0 + MAX_CACHED_KEY) {
    // A long key, or not a string: msgpackr turns numbers and others into keys its own way.
    const key = readValue(MAX_DEPTH);
    return typeof key === 'string' ? key : undefined;
  }
  const length = token - 0xa0;
  const start = pos + 1;
  if (start + length > end) return undefined;
  const first = length > 1 ? (src[start]! << 8) | src[start + 1]! : length > 0 ? src[start]! : 0;
  const slot = ((length << 7) ^ first) & (KEY_CACHE_SLOTS - 1);
  const cached = keyCache[slot];
  if (cached !== undefined && cached.length === length) {
    let i = 0;
    while (i < length && cached.charCodeAt(i) === src[start + i]) i++;
    if (i === length) {
      pos = start + length;
      return cached;
    }
  }
  pos = start;
  const key = readString(length);
  if (typeof key !== 'string') return undefined;
  // Only ASCII keys (as many UTF-16 units as bytes) are cached, so the byte compare above is exact.
  if (key.length === length) keyCache[slot] = key;
  return key;
}

function readString(length: number): unknown {
  const start = pos;
  const stop = start + length;
  if (stop > end) return NOT_PLAIN;
  pos = stop;
  const bytes = src;
  if (length < 8) {
    let text = '';
    for (let i = start; i < stop; i++) {
      const byte = bytes[i]!;
      if (byte >= 0x80) return decodeUtf8(start, stop);
      text += fromCharCode(byte);
    }
    return text;
  }
  if (length >= NATIVE_SLICE_FROM && utf8Slice !== undefined) {
    // utf8Slice replaces bad bytes with U+FFFD, and only then (or for an encoded U+FFFD) does a
    // U+FFFD appear: without one the bytes were valid UTF-8, decoded as TextDecoder would.
    const text = utf8Slice.call(bytes, start, stop);
    return text.indexOf('\uFFFD') === -1 ? text : decodeUtf8(start, stop);
  }
  if (latin1Slice !== undefined) {
    for (let i = start; i < stop; i++) {
      if (bytes[i]! >= 0x80) return decodeUtf8(start, stop);
    }
    return latin1Slice.call(bytes, start, stop);
  }
  return decodeUtf8(start, stop);
}

/** Valid UTF-8 only: other bytes are msgpackr's to decode, with its own replacement rules. */
function decodeUtf8(start: number, stop: number): unknown {
  try {
    return fatalDecoder.decode(src.subarray(start, stop));
  } catch {
    return NOT_PLAIN;
  }
}
