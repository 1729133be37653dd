/**
 * Parsers for option values shared by the commands. Each throws commander's InvalidArgumentError,
 * which the CLI reports as one line naming the option, with exit code 2.
 */

import { constants } from 'node:buffer';
import { InvalidArgumentError } from 'commander';
import { UsageError } from './errors.js';

const SIZE_UNITS: Record<string, number> = { '': 1, k: 1 << 10, m: 1 << 20, g: 1 << 30 };

/**
 * A segment's size: a whole number of bytes, optionally with a binary unit: `4096`, `64k`, `16M`,
 * `1G` (KiB, MiB, GiB), up to the largest segment (the largest ArrayBuffer Node makes).
 */
export function parseSize(value: string): number {
  const match = /^(\d+)([kmg]?)(?:i?b)?$/i.exec(value.trim());
  const bytes = match ? Number(match[1]) * SIZE_UNITS[match[2]!.toLowerCase()]! : Number.NaN;
  if (!Number.isSafeInteger(bytes) || bytes < 1) {
    throw new InvalidArgumentError('expected a positive number of bytes such as 4096, 64k or 16M');
  }
  // The library's bound on a segment: the largest ArrayBuffer Node makes.
  if (bytes > constants.MAX_LENGTH) {
    throw new InvalidArgumentError(`expected at most ${constants.MAX_LENGTH} bytes, the largest segment`);
  }
  return bytes;
}

/** A non-negative integer (offsets, lengths, milliseconds); decimal or 0x-prefixed hex. */
export function parseNonNegativeInt(value: string): number {
  const text = value.trim();
  const n = /^0x[0-9a-f]+$/i.test(text)
    ? Number.parseInt(text, 16)
    : /^\d+$/.test(text)
      ? Number(text)
      : Number.NaN;
  if (!Number.isSafeInteger(n)) throw new InvalidArgumentError('expected a whole number >= 0');
  return n;
}

/** An integer that may be negative (priorities). */
export function parseInteger(value: string): number {
  const text = value.trim();
  const n = /^[+-]?\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(n)) throw new InvalidArgumentError('expected a whole number');
  return n;
}

/** A message priority: a whole number in the 32 bits a queue stores it in. */
export function parsePriority(value: string): number {
  const n = parseInteger(value);
  if (n < -0x8000_0000 || n > 0x7fff_ffff) {
    throw new InvalidArgumentError('expected a whole number from -2147483648 to 2147483647');
  }
  return n;
}

/**
 * A parser for a text such as a message type or id: not empty, at most `max` characters (a queue
 * refuses others, after the command had already created the queue).
 */
export function textOf(max: number): (value: string) => string {
  return (value) => {
    if (value.length === 0 || value.length > max) {
      throw new InvalidArgumentError(`expected 1 to ${max} characters`);
    }
    return value;
  };
}

/** Milliseconds for a lifetime such as a ttl: 1 to 2^31-1. */
export function parsePositiveMs(value: string): number {
  const n = parseMs(value);
  if (n < 1) throw new InvalidArgumentError('expected milliseconds from 1 to 2147483647');
  return n;
}

/** A positive integer (counts such as --runs). */
export function parsePositiveInt(value: string): number {
  const text = value.trim();
  const n = /^\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError('expected a whole number >= 1');
  return n;
}

/** Milliseconds for a timeout or delay: 0 to 2^31-1, the range Node's timers hold. */
export function parseMs(value: string): number {
  const n = parseNonNegativeInt(value);
  if (n > 0x7fff_ffff) throw new InvalidArgumentError('expected milliseconds from 0 to 2147483647');
  return n;
}

/**
 * Checks an argument up front with the library's own check (`parseAddress` for a socket URL), so
 * a malformed one is a usage error (exit code 2) rather than a failure while running.
 */
export function checkArgument(value: string, check: (value: string) => unknown): string {
  try {
    check(value);
    return value;
  } catch (err) {
    if (err instanceof TypeError || err instanceof RangeError) throw new UsageError(err.message);
    throw err;
  }
}
