/**
 * The error convention for bad options and arguments, in one place: a value of the wrong type is a
 * TypeError, a value of the right type that is out of range (or not an integer, NaN, Infinity) is
 * a RangeError; both name the option.
 */

/**
 * The error for a bad numeric option: a RangeError if `value` is a number (of the wrong value), a
 * TypeError if it is not a number at all. `message` names the option; for a string or a bigint,
 * whose text reads like a number, the message says what it is.
 */
export function numberError(value: unknown, message: string): TypeError | RangeError {
  if (typeof value === 'number') return new RangeError(message);
  const kind = typeof value === 'string' || typeof value === 'bigint' ? ` (a ${typeof value})` : '';
  return new TypeError(`${message}${kind}`);
}

/**
 * The error for an option that takes one of a few strings: a RangeError for another string, a
 * TypeError for a value that is not a string at all. `message` names the option and its choices.
 */
export function choiceError(value: unknown, message: string): TypeError | RangeError {
  return typeof value === 'string' ? new RangeError(message) : new TypeError(message);
}

/** A boolean option, or `fallback` when it is undefined; any other value is a TypeError naming it. */
export function booleanOption(value: unknown, name: string, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw new TypeError(`${name} must be a boolean, got ${shown(value)}`);
  return value;
}

/** A short text for a bad value (String() throws on some objects and reads a string like a number). */
function shown(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'object' && value !== null) return Array.isArray(value) ? 'an array' : 'an object';
  return String(value);
}

const LONE_SURROGATE = /\p{Surrogate}/u;

/**
 * A TypeError if `text` has a lone UTF-16 surrogate. Names and keys travel and are stored as UTF-8,
 * where one becomes U+FFFD: two different names would become one, and a name would not match itself.
 */
export function checkWellFormed(text: string, name: string): void {
  if (LONE_SURROGATE.test(text)) {
    throw new TypeError(`${name} must be well-formed Unicode (it has a lone surrogate)`);
  }
}
