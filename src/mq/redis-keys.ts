/**
 * Where a queue lives in Redis: the store URL (its `prefix` query parameter taken out, the rest
 * for ioredis), and the keys and pub/sub channel of one queue. Every key of a queue carries the
 * queue name as a hash tag (`{name}`), so a queue's keys share one cluster slot and its scripts
 * touch one node.
 */
import { ErrorCodes, IpcError } from '../core/errors.js';

/** The key prefix when the URL names none. */
export const DEFAULT_PREFIX = 'ipckit';

const PREFIX_PATTERN = /^[A-Za-z0-9_.:-]{1,128}$/;

/** A store URL, parsed. */
export interface RedisLocation {
  /** The URL for ioredis: credentials, host, port, db, TLS; without our `prefix` parameter. */
  connectUrl: string;
  /** The namespace every key starts with. */
  prefix: string;
  /** The URL without credentials, for messages. */
  display: string;
}

/**
 * Parses `redis://[user:pass@]host[:port][/db][?prefix=NAME]` (or `rediss://` for TLS). Throws
 * ERR_IPC_INVALID_NAME for a URL that cannot be parsed or a prefix outside `[A-Za-z0-9_.:-]`.
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
  const prefix = parsed.searchParams.get('prefix') ?? DEFAULT_PREFIX;
  if (!PREFIX_PATTERN.test(prefix)) {
    throw new IpcError(
      ErrorCodes.INVALID_NAME,
      `message queue: the Redis key prefix must be 1-128 characters of [A-Za-z0-9_.:-], got ${JSON.stringify(prefix)}`,
    );
  }
  parsed.searchParams.delete('prefix');
  const connectUrl = parsed.toString();
  parsed.username = '';
  parsed.password = '';
  return { connectUrl, prefix, display: parsed.toString() };
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
    'meta', // hash: schema version, seq and lease counters, live count and bytes
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
