/**
 * Where a queue lives in Redis: the store URL (credentials, host, port and database for ioredis;
 * the query parameters read here, into the key prefix and typed connection options), and the keys
 * and pub/sub channel of one queue. Every key of a queue carries the queue name as a hash tag
 * (`{name}`), so a queue's keys share one cluster slot and its scripts touch one node.
 */
import { ErrorCodes, IpcError } from '../core/errors.js';
import { MAX_MS } from './options.js';

/** The key prefix when the URL names none. */
export const DEFAULT_PREFIX = 'ipckit';

const PREFIX_PATTERN = /^[A-Za-z0-9_.:-]{1,128}$/;

/**
 * The ioredis connection options a store URL may set as query parameters, typed. Only these:
 * ioredis would take any other parameter as an option, as a string (`connectTimeout=1` then
 * crashes the process from a timer), and one named like ipckit's own settings
 * (`maxRetriesPerRequest`, `enableOfflineQueue`, `lazyConnect`, `keyPrefix`) would silently take
 * their place and break what the store promises.
 */
export interface RedisConnectionOptions {
  family?: number;
  connectTimeout?: number;
  keepAlive?: number;
  noDelay?: boolean;
  connectionName?: string;
}

/** How each accepted parameter is read: its value, or undefined for one of the wrong form. */
const CONNECTION_PARAMS: Record<keyof RedisConnectionOptions, (value: string) => unknown> = {
  family: (v) => (['0', '4', '6'].includes(v) ? Number(v) : undefined),
  connectTimeout: (v) => integer(v, 1),
  keepAlive: (v) => integer(v, 0),
  noDelay: (v) => (v === 'true' ? true : v === 'false' ? false : undefined),
  // CLIENT SETNAME takes no spaces.
  connectionName: (v) => (/^[\x21-\x7e]{1,128}$/.test(v) ? v : undefined),
};

const PARAM_FORMS: Record<keyof RedisConnectionOptions, string> = {
  family: '0, 4 or 6',
  connectTimeout: `an integer from 1 to ${MAX_MS} (ms)`,
  keepAlive: `an integer from 0 to ${MAX_MS} (ms)`,
  noDelay: 'true or false',
  connectionName: '1-128 printable ASCII characters without spaces',
};

/** Where a refused parameter's setting belongs instead. */
const PARAM_HINTS: Record<string, string> = {
  db: 'give the database as the path: redis://host:port/N',
  username: 'give credentials before the host: redis://user:password@host',
  password: 'give credentials before the host: redis://user:password@host',
  tls: 'use a rediss:// URL',
  keyPrefix: 'use prefix=NAME',
};

function integer(value: string, min: number): number | undefined {
  if (!/^\d{1,10}$/.test(value)) return undefined;
  const n = Number(value);
  return n >= min && n <= MAX_MS ? n : undefined;
}

/** A store URL, parsed. */
export interface RedisLocation {
  /** The URL for ioredis: credentials, host, port, db, TLS; no query parameters. */
  connectUrl: string;
  /** The namespace every key starts with. */
  prefix: string;
  /** Connection options from the query parameters; they override ipckit's defaults for them. */
  options: RedisConnectionOptions;
  /** The URL without credentials or query parameters, for messages. */
  display: string;
}

/**
 * Parses `redis://[user:pass@]host[:port][/db][?prefix=NAME&…]` (or `rediss://` for TLS). Throws
 * ERR_IPC_INVALID_NAME for a URL that cannot be parsed, a prefix outside `[A-Za-z0-9_.:-]`, or a
 * query parameter that is not `prefix` or one of {@link RedisConnectionOptions} in its form.
 */
export function parseRedisUrl(url: string): RedisLocation {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (err) {
    throw new IpcError(ErrorCodes.INVALID_NAME, `message queue: ${JSON.stringify(url)} is not a valid URL`, {
      cause: err,
    });
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw new IpcError(
      ErrorCodes.INVALID_NAME,
      `message queue: ${parsed.protocol} is not a Redis URL scheme`,
    );
  }
  if (parsed.hostname === '') {
    throw new IpcError(ErrorCodes.INVALID_NAME, 'message queue: the Redis URL names no host');
  }
  if (parsed.pathname.length > 1 && !/^\/\d{1,5}$/.test(parsed.pathname)) {
    throw new IpcError(
      ErrorCodes.INVALID_NAME,
      `message queue: the Redis URL path must be a database number, got ${JSON.stringify(parsed.pathname)}`,
    );
  }
  let prefix = DEFAULT_PREFIX;
  const options: Record<string, unknown> = {};
  const seen = new Set<string>();
  for (const [key, value] of parsed.searchParams) {
    const bad = (why: string) =>
      new IpcError(
        ErrorCodes.INVALID_NAME,
        `message queue: the Redis URL parameter ${JSON.stringify(key)}: ${why}`,
      );
    if (seen.has(key)) throw bad('given twice');
    seen.add(key);
    if (key === 'prefix') {
      if (!PREFIX_PATTERN.test(value)) {
        throw new IpcError(
          ErrorCodes.INVALID_NAME,
          `message queue: the Redis key prefix must be 1-128 characters of [A-Za-z0-9_.:-], got ${JSON.stringify(value)}`,
        );
      }
      prefix = value;
      continue;
    }
    if (!Object.hasOwn(CONNECTION_PARAMS, key)) {
      const hint = Object.hasOwn(PARAM_HINTS, key) ? PARAM_HINTS[key] : undefined;
      throw bad(
        hint ?? `not supported (the parameters are prefix, ${Object.keys(CONNECTION_PARAMS).join(', ')})`,
      );
    }
    const name = key as keyof RedisConnectionOptions;
    const read = CONNECTION_PARAMS[name](value);
    if (read === undefined) throw bad(`must be ${PARAM_FORMS[name]}, got ${JSON.stringify(value)}`);
    options[name] = read;
  }
  parsed.search = '';
  parsed.hash = '';
  const connectUrl = parsed.toString();
  parsed.username = '';
  parsed.password = '';
  return { connectUrl, prefix, options: options as RedisConnectionOptions, display: parsed.toString() };
}

/** The keys of one queue, in the order every script takes them (see redis-scripts.ts). */
export interface QueueKeys {
  /** KEYS[1..13] of every script. */
  readonly keys: readonly string[];
  /** Prefix of the per-type ready sets: the type name follows. */
  readonly typePrefix: string;
  /** The pub/sub channel the scripts publish wake-ups on. */
  readonly channel: string;
}

/** The key names of the queue `name` under `prefix`. */
export function queueKeys(prefix: string, name: string): QueueKeys {
  const base = `${prefix}:mq:{${name}}:`;
  const keys = [
    'meta', // hash: schema version, seq counter, live count and bytes
    'msg', // hash: member -> msgpack record (id, type, priority, enqueued, expires, attempts, lease, state, size)
    'body', // hash: member -> body bytes
    'ready', // zset: every ready message, score -priority, member the zero-padded sequence number
    'delayed', // zset: score the moment it becomes ready
    'inflight', // zset: score the lease's end
    'dead', // zset: score the moment it died
    'expiring', // zset: ready or delayed messages with a ttl, score the moment it expires
    'pcount', // hash: priority -> ready messages
    'tcount', // hash: type -> ready messages
    'dedupe', // zset: caller-chosen ids, score the end of their dedupe window
    'wait:messages', // set while a consumer waits for a message (armed wake-up)
    'wait:room', // set while a producer waits for room
  ].map((k) => base + k);
  return { keys, typePrefix: `${base}type:`, channel: `${base}wake` };
}
