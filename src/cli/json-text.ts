/**
 * Message bodies as JSON on the command line: parsing the JSON argument of `mq send` and `call`,
 * and printing bodies that a codec may have decoded into values JSON has no syntax for.
 */
import { UsageError } from './errors.js';

/** Parses a JSON command-line argument; a bad one is the command line's fault (exit code 2). */
export function parseJsonArgument(text: string, what = 'the message'): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    // Shells eat quotes, which is the usual cause: say how to quote.
    throw new UsageError(
      `${what} is not valid JSON (${(err as Error).message}); quote it for the shell, e.g. '{"a":1}'`,
    );
  }
  // JSON.parse reads 1e400 as Infinity, which no JSON can carry back out: it would be received as null.
  if (hasNonFinite(value)) throw new UsageError(`${what} has a number too large for JSON (such as 1e400)`);
  return value;
}

function hasNonFinite(value: unknown): boolean {
  if (typeof value === 'number') return !Number.isFinite(value);
  if (typeof value !== 'object' || value === null) return false;
  return Object.values(value).some(hasNonFinite);
}

/**
 * msgpack and v8 bodies may hold bytes, bigints, maps and sets. They are shown rather than refused:
 * bytes as `{ "$base64": … }`, bigints as decimal strings, maps as objects, sets as arrays.
 */
function replacer(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Uint8Array) return { $base64: Buffer.from(value).toString('base64') };
  if (value instanceof Map) return Object.fromEntries(value);
  if (value instanceof Set) return [...value];
  return value;
}

/** `value` as one line of JSON; `null` for a body JSON cannot express at all (`undefined`). */
export function jsonText(value: unknown): string {
  return JSON.stringify(value, replacer) ?? 'null';
}

/** `value` converted to plain JSON data (what {@link jsonText} prints), for `--json` documents. */
export function jsonValue(value: unknown): unknown {
  return JSON.parse(jsonText(value));
}
