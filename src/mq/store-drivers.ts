/**
 * Which driver serves a `store` option: 'sqlite' (the default), a URL whose scheme has a driver
 * (`redis://…`, `rediss://…`), or a StoreDriver object given directly.
 */
import { ErrorCodes, IpcError } from '../core/errors.js';
import type { StoreSpec } from './options.js';
import { redisDriver } from './redis-store.js';
import { sqliteDriver } from './sqlite-store.js';
import type { StoreDriver } from './store.js';

/**
 * URL schemes and the drivers for them. A new store registers here: one line, e.g.
 * `['redis', (url) => redisDriver(url)]`, loading its client lazily inside `open`.
 */
const schemes = new Map<string, (url: string) => StoreDriver>([['redis', (url) => redisDriver(url)]]);

function isDriver(value: unknown): value is StoreDriver {
  const v = value as StoreDriver;
  return (
    typeof v === 'object' && v !== null && typeof v.open === 'function' && typeof v.remove === 'function'
  );
}

/** Resolves `options.store`; throws TypeError for a malformed one, ERR_IPC_NOT_FOUND for an unknown scheme. */
export function resolveStoreDriver(spec: StoreSpec | undefined): StoreDriver {
  if (spec === undefined || spec === 'sqlite') return sqliteDriver;
  if (isDriver(spec)) return spec;
  if (typeof spec !== 'string') {
    throw new TypeError(
      "options.store must be 'sqlite', a store URL such as 'redis://127.0.0.1:6379', or a StoreDriver",
    );
  }
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(spec)?.[1]?.toLowerCase();
  if (scheme === undefined) {
    throw new RangeError(`options.store must be 'sqlite' or a store URL, got ${JSON.stringify(spec)}`);
  }
  const factory = schemes.get(scheme === 'rediss' ? 'redis' : scheme);
  if (!factory) {
    throw new IpcError(
      ErrorCodes.NOT_FOUND,
      `message queue: no store driver for '${scheme}:' URLs in this build`,
    );
  }
  return factory(spec);
}
