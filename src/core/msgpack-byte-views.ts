/**
 * The walk a message takes before msgpackr encodes it, for the messages the plain-data path
 * (msgpack-plain.ts) leaves to msgpackr: it replaces what msgpackr would write wrongly, and refuses
 * what could not be sent at all, with a TypeError saying why.
 */
import { MAX_MSGPACK_NESTING } from './msgpack-check.js';

const CIRCULAR = 'the message is circular: msgpack carries trees (the v8 codec carries cycles)';

/**
 * msgpackr 1.12.1 (with moreTypes off) writes a typed array other than a Uint8Array as bin of the
 * right byte length, but copies the array's elements into it instead of its bytes, and leaves the
 * rest of the bin as whatever its buffer held: bytes of earlier messages, sent to the peer. So every
 * typed array msgpackr would reach is replaced by a Uint8Array view of its bytes, wherever it is:
 * in an Error's cause and in what a class's toJSON() returns too (msgpackr writes an Error as
 * `[name, message, cause]` and a class instance as its toJSON(), which the walk does the same way).
 * Only the containers on the way to one are copied; everything else is passed as it is.
 *
 * Also refused here, before anything is written:
 * - a cycle (msgpack carries trees; msgpackr would recurse until its stack ran out),
 * - nesting deeper than MAX_MSGPACK_NESTING, which the receiving side refuses,
 * - a Map key that is not a string, number, boolean, null or undefined: a receiver, which reads
 *   maps as objects, could never decode it.
 *
 * An object met in several places is walked in each, as msgpack writes it in each: the walk takes
 * time in proportion to what msgpackr will write, about half of what writing it takes.
 */
export function withByteViews(value: unknown): unknown {
  return new ByteViewWalk().of(value, 0);
}

class ByteViewWalk {
  /** The containers from the message's root to the current one. */
  readonly #path: object[] = [];

  of(value: unknown, depth: number): unknown {
    if (typeof value !== 'object' || value === null) return value;
    if (ArrayBuffer.isView(value)) {
      return value instanceof Uint8Array
        ? value
        : new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
    }
    // msgpackr writes an ArrayBuffer's bytes but a SharedArrayBuffer as an empty map.
    if (value instanceof ArrayBuffer || value instanceof SharedArrayBuffer) return new Uint8Array(value);
    if (value instanceof Date || value instanceof RegExp) return value;
    // A cycle reached at depth d is found by the first look at a power of two past d plus its
    // length: looking only there keeps the walk linear, and a cycle is still found before much
    // of it is walked twice.
    if ((depth & (depth - 1)) === 0 && this.#path.includes(value)) {
      throw new TypeError(CIRCULAR);
    }
    if (depth >= MAX_MSGPACK_NESTING) {
      throw new TypeError(
        this.#path.includes(value)
          ? CIRCULAR
          : `the message is nested deeper than ${MAX_MSGPACK_NESTING} levels`,
      );
    }
    this.#path.push(value);
    const result = this.#contents(value, depth);
    this.#path.pop();
    return result;
  }

  #contents(value: object, depth: number): unknown {
    if (Array.isArray(value)) return this.#items(value, depth) ?? value;
    if (value instanceof Set) {
      const items = this.#items([...value], depth);
      return items ? new Set(items) : value;
    }
    if (value instanceof Map) {
      for (const key of value.keys()) {
        if (key !== null && typeof key === 'object') {
          throw new TypeError(
            'a Map key must be a string, number, boolean, null or undefined (keys become strings)',
          );
        }
      }
      const items = this.#items([...value.values()], depth);
      if (!items) return value;
      return new Map([...value.keys()].map((key, i) => [key, items[i]]));
    }
    if (value instanceof Error) return [value.name, value.message, this.of(value.cause, depth + 1)];
    // As msgpackr: a class instance (not a plain object) with toJSON() is sent as what it returns.
    const withToJson = value as { constructor?: unknown; toJSON?: () => unknown };
    if (withToJson.constructor !== Object && typeof withToJson.toJSON === 'function') {
      const json = withToJson.toJSON();
      return json === value ? value : this.of(json, depth + 1);
    }
    const record = value as Record<string, unknown>;
    const keys = Object.keys(record);
    let copy: PropertyDescriptorMap | undefined;
    for (let i = 0; i < keys.length; i++) {
      const item = record[keys[i]!];
      const walked = this.of(item, depth + 1);
      if (walked === item) continue;
      copy ??= Object.fromEntries(keys.map((key) => [key, { value: record[key], enumerable: true }]));
      copy[keys[i]!]!.value = walked;
    }
    // Property descriptors, so that an own `__proto__` key stays a key.
    return copy ? Object.defineProperties({}, copy) : value;
  }

  /** `items` with every element walked, or undefined if none changed. */
  #items(items: unknown[], depth: number): unknown[] | undefined {
    let copy: unknown[] | undefined;
    for (let i = 0; i < items.length; i++) {
      const item = this.of(items[i], depth + 1);
      if (item === items[i]) continue;
      copy ??= items.slice();
      copy[i] = item;
    }
    return copy;
  }
}
