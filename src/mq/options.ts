/**
 * The options of MessageQueue and its methods, their defaults, and the checks that turn a bad value
 * into a TypeError or RangeError naming the option.
 */
import type { CodecOptions } from '../core/codec.js';
import { DEFAULT_MAX_MESSAGE_BYTES } from '../core/framing.js';
import { checkWellFormed, numberError } from '../core/options.js';
import { checkWaitOptions, MAX_TIMEOUT_MS, type WaitOptions } from '../core/wait.js';
import type { StoreDriver } from './store.js';

/**
 * Where a queue lives: 'sqlite' (embedded, the default), a `redis://` or `rediss://` URL, or a
 * custom driver. Any string is accepted by the type, so that a URL read from the environment
 * needs no cast; one that is neither is refused when the queue opens (ERR_IPC_NOT_FOUND for an
 * unknown scheme, RangeError for no scheme at all).
 */
export type StoreSpec = 'sqlite' | `redis://${string}` | `rediss://${string}` | (string & {}) | StoreDriver;

/** Options of {@link MessageQueue.open}. */
export interface MessageQueueOptions<T = unknown> extends CodecOptions<T> {
  /** Default 'sqlite': a file in the runtime directory, shared by every process that opens the name. */
  store?: StoreSpec;
  /** How long a delivered message stays invisible to other consumers before it comes back. Default 30 000. */
  visibilityTimeoutMs?: number;
  /** Deliveries after which a nack or lease expiry moves a message to the dead letters. Default 5. */
  maxAttempts?: number;
  /** Live (not dead) messages the queue may hold; a send beyond it waits or is refused (`onFull`). */
  maxMessages?: number;
  /** Total body bytes the live messages may take; as `maxMessages`. */
  maxBytes?: number;
  /** A send to a full queue: 'wait' for room (default; bounded by its `timeout`/`signal`) or 'reject' with ERR_IPC_QUEUE_FULL. */
  onFull?: 'wait' | 'reject';
  /** 'normal' (default): a resolved send survives any process crash. 'fsync': also power loss; slower. */
  durability?: 'normal' | 'fsync';
  /** How long a caller-chosen `id` is remembered for dedupe after its send. Default 300 000 (5 min). */
  dedupeWindowMs?: number;
  /** Largest encoded body accepted, bytes. Default 64 MiB. */
  maxMessageBytes?: number;
  /** A waiting consumer's safety-net re-check when no wake-up arrives. Default 1000 ms. */
  pollIntervalMs?: number;
}

/** Options of `send`. */
export interface SendOptions extends WaitOptions {
  /** For selective receive. Default 'default'. */
  type?: string;
  /** Higher is delivered first. An integer, default 0. */
  priority?: number;
  /** Deliverable only after this many ms. */
  delayMs?: number;
  /** Dropped if not delivered within this many ms. */
  ttlMs?: number;
  /** Your id for the message: a second send with it inside the dedupe window adds nothing. */
  id?: string;
}

/** One message of `sendBatch`. */
export interface BatchMessage<T> extends Omit<SendOptions, keyof WaitOptions> {
  body: T;
}

/** Options of `receive`. */
export interface ReceiveOptions extends WaitOptions {
  /** Only messages of these types. */
  types?: readonly string[];
}

/** Options of `consume`. */
export interface ConsumeOptions {
  types?: readonly string[];
  /** Messages leased ahead of the loop (their leases run meanwhile). Default 32. */
  prefetch?: number;
  /** Ends the loop (cleanly) when it fires. */
  signal?: AbortSignal;
}

/** Options of `process`. */
export interface ProcessOptions {
  types?: readonly string[];
  /** Handlers running at once. Default 1. */
  concurrency?: number;
  /** Messages leased ahead. Default 2 × concurrency, at least 16. */
  prefetch?: number;
  /** Stops taking messages; `process` resolves once the running handlers are done. */
  signal?: AbortSignal;
  /** Told of each handler failure (the message was nacked) and each settle that failed. */
  onError?(err: unknown, message: { id: string } | undefined): void;
}

/** Options of `nack`. */
export interface NackOptions {
  /** Back to the queue after this many ms. Default 0. */
  delayMs?: number;
}

/** The resolved queue options. */
export interface QueueSettings {
  visibilityTimeoutMs: number;
  maxAttempts: number;
  maxMessages: number | undefined;
  maxBytes: number | undefined;
  onFull: 'wait' | 'reject';
  durability: 'normal' | 'fsync';
  dedupeWindowMs: number;
  maxMessageBytes: number;
  pollIntervalMs: number;
}

/** Longest delay, ttl, lease or timeout accepted: the longest Node timer, as for every wait. */
export const MAX_MS = MAX_TIMEOUT_MS;
/** Longest type name. */
const MAX_TYPE_LENGTH = 256;
/** Longest caller-chosen id. */
const MAX_ID_LENGTH = 1024;

/** An integer option in [min, max], or the default when undefined. */
export function intOption(value: unknown, name: string, min: number, max: number, fallback: number): number;
export function intOption(
  value: unknown,
  name: string,
  min: number,
  max: number,
  fallback: undefined,
): number | undefined;
export function intOption(
  value: unknown,
  name: string,
  min: number,
  max: number,
  fallback: number | undefined,
): number | undefined {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw numberError(value, `${name} must be an integer from ${min} to ${max}, got ${String(value)}`);
  }
  return value;
}

function oneOf<const V extends string>(value: unknown, name: string, allowed: readonly V[], fallback: V): V {
  if (value === undefined) return fallback;
  if (!allowed.includes(value as V)) {
    throw new RangeError(
      `${name} must be ${allowed.map((v) => `'${v}'`).join(' or ')}, got ${String(value)}`,
    );
  }
  return value as V;
}

/** Checks and completes the options of `open`. */
export function resolveSettings(opts: MessageQueueOptions<unknown> | undefined): QueueSettings {
  if (opts !== undefined && (typeof opts !== 'object' || opts === null)) {
    throw new TypeError('options must be an object');
  }
  const o = opts ?? {};
  return {
    visibilityTimeoutMs: intOption(o.visibilityTimeoutMs, 'options.visibilityTimeoutMs', 1, MAX_MS, 30_000),
    maxAttempts: intOption(o.maxAttempts, 'options.maxAttempts', 1, 1_000_000, 5),
    maxMessages: intOption(o.maxMessages, 'options.maxMessages', 1, Number.MAX_SAFE_INTEGER, undefined),
    maxBytes: intOption(o.maxBytes, 'options.maxBytes', 1, Number.MAX_SAFE_INTEGER, undefined),
    onFull: oneOf(o.onFull, 'options.onFull', ['wait', 'reject'], 'wait'),
    durability: oneOf(o.durability, 'options.durability', ['normal', 'fsync'], 'normal'),
    dedupeWindowMs: intOption(
      o.dedupeWindowMs,
      'options.dedupeWindowMs',
      0,
      Number.MAX_SAFE_INTEGER,
      300_000,
    ),
    maxMessageBytes: intOption(
      o.maxMessageBytes,
      'options.maxMessageBytes',
      1,
      0x7fff_ffff,
      DEFAULT_MAX_MESSAGE_BYTES,
    ),
    pollIntervalMs: intOption(o.pollIntervalMs, 'options.pollIntervalMs', 1, MAX_MS, 1000),
  };
}

/** The message options of `send` / `sendBatch`, checked. */
export interface MessageSettings {
  type: string;
  priority: number;
  delayMs: number;
  ttlMs: number;
  id: string | undefined;
}

const DEFAULT_MESSAGE_SETTINGS: MessageSettings = Object.freeze({
  type: 'default',
  priority: 0,
  delayMs: 0,
  ttlMs: 0,
  id: undefined,
});

/** Checks a message id or type: a non-empty, well-formed string of at most `max` UTF-16 units. */
function checkKey(value: unknown, name: string, max: number): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > max) {
    throw new TypeError(`${name} must be a non-empty string of at most ${max} characters`);
  }
  // Stored as UTF-8, two ids or types would become one: a false duplicate, a filter that matches on
  // one store only.
  checkWellFormed(value, name);
  return value;
}

/** Checks a type name (also those of `types`). */
export function checkType(value: unknown, name: string): string {
  return checkKey(value, name, MAX_TYPE_LENGTH);
}

/** Checks the per-message options. `prefix` names them in errors ('options', 'messages[3]'). */
export function resolveMessageSettings(
  o: Omit<SendOptions, keyof WaitOptions> | undefined,
  prefix: string,
): MessageSettings {
  if (o === undefined) return DEFAULT_MESSAGE_SETTINGS;
  if (o !== undefined && (typeof o !== 'object' || o === null))
    throw new TypeError(`${prefix} must be an object`);
  const m = o ?? {};
  const id = m.id === undefined ? undefined : checkKey(m.id, `${prefix}.id`, MAX_ID_LENGTH);
  return {
    type: m.type === undefined ? 'default' : checkType(m.type, `${prefix}.type`),
    priority: intOption(m.priority, `${prefix}.priority`, -(2 ** 31), 2 ** 31 - 1, 0),
    delayMs: intOption(m.delayMs, `${prefix}.delayMs`, 0, MAX_MS, 0),
    ttlMs: intOption(m.ttlMs, `${prefix}.ttlMs`, 1, MAX_MS, 0),
    id,
  };
}

/** Checks a `types` filter; undefined means every type. */
export function resolveTypes(types: unknown, name: string): readonly string[] | undefined {
  if (types === undefined) return undefined;
  if (!Array.isArray(types) || types.length === 0) {
    throw new TypeError(`${name} must be a non-empty array of type names`);
  }
  return [...new Set(types.map((t, i) => checkType(t, `${name}[${i}]`)))].sort();
}

/** Checks `receive`'s options. */
export function checkReceiveOptions(opts: ReceiveOptions | undefined): readonly string[] | undefined {
  checkWaitOptions(opts);
  return resolveTypes(opts?.types, 'options.types');
}

/** Checks an AbortSignal option. */
export function checkSignal(signal: unknown, name: string): AbortSignal | undefined {
  if (signal !== undefined && !(signal instanceof AbortSignal))
    throw new TypeError(`${name} must be an AbortSignal`);
  return signal as AbortSignal | undefined;
}
