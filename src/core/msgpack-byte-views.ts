/**
 * A workaround for msgpackr's typed-array encoding, for the messages the plain-data path
 * (msgpack-plain.ts) leaves to msgpackr.
 */

// Deeper than this, the message is left as it is: msgpackr refuses what is that deep (or cyclic).
const MAX_BYTE_VIEW_DEPTH = 64;

/**
 * msgpackr 1.12.1 (with moreTypes off) writes a typed array other than a Uint8Array as bin of the
 * right byte length, but copies the array's elements into it instead of its bytes, and leaves the
 * rest of the bin as whatever its buffer held: bytes of earlier messages. The plain path writes
 * those correctly; a message it leaves to msgpackr (one that also holds a Map, a Date, …) has them
 * replaced by Uint8Array views of their bytes first. Only the containers on the way to one are
 * copied; everything else is passed as it is.
 */
export function withByteViews(value: unknown, depth = 0): unknown {
  if (typeof value !== 'object' || value === null || depth >= MAX_BYTE_VIEW_DEPTH) return value;
  if (ArrayBuffer.isView(value)) {
    return value instanceof Uint8Array
      ? value
      : new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  }
  if (Array.isArray(value)) return replaced(value, depth) ?? value;
  if (value instanceof Set) {
    const items = replaced([...value], depth);
    return items ? new Set(items) : value;
  }
  if (value instanceof Map) {
    const items = replaced([...value.values()], depth);
    if (!items) return value;
    return new Map([...value.keys()].map((key, i) => [key, items[i]]));
  }
  // Dates, errors and the like go to msgpackr's extensions; objects with toJSON are its to call.
  if (value instanceof Date || value instanceof Error || value instanceof RegExp) return value;
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return value;
  const keys = Object.keys(value);
  const items = replaced(
    keys.map((key) => (value as Record<string, unknown>)[key]),
    depth,
  );
  if (!items) return value;
  // Property descriptors, so that an own `__proto__` key stays a key.
  return Object.defineProperties(
    {},
    Object.fromEntries(keys.map((key, i) => [key, { value: items[i], enumerable: true }])),
  );
}

/** `items` with every element passed through {@link withByteViews}, or undefined if none changed. */
function replaced(items: unknown[], depth: number): unknown[] | undefined {
  let copy: unknown[] | undefined;
  for (let i = 0; i < items.length; i++) {
    const item = withByteViews(items[i], depth + 1);
    if (item === items[i]) continue;
    copy ??= items.slice();
    copy[i] = item;
  }
  return copy;
}
