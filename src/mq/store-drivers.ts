/**
 * Which driver serves a `store` option: 'sqlite' (the default), a URL whose scheme has a driver
 * (`redis://…`, `rediss://…`), or a StoreDriver object given directly.
 *
 * A store's code is loaded by the first queue that opens (or removes) one, not with ipckit: most of
 * the message queue is its stores, and a process that never opens a queue should not pay to load
 * them (about 14 ms of importing ipckit on the 2-core VM).
 */
import { ErrorCodes, fromSystemError, IpcError } from '../core/errors.js';
import { fdExhaustionError } from '../core/fd-exhaustion.js';
import type { StoreSpec } from './options.js';
import { parseRedisUrl } from './redis-keys.js';
import type { StoreDriver } from './store.js';

/** File descriptors that must be free before a store's module is imported (see loadedOnUse). */
const FDS_TO_LOAD = 4;

/**
 * A driver whose module is imported by its first `open` or `remove`. Node remembers an import that
 * failed and fails every later one the same way, so a store whose files could not be read once
 * (no file descriptor left) would be lost to the process for good: the import is not tried while
 * fewer than FDS_TO_LOAD fds are free (ERR_IPC_SYSTEM, EMFILE), and the next open tries again.
 */
function loadedOnUse(name: string, load: () => Promise<StoreDriver>): StoreDriver {
  let loading: Promise<StoreDriver> | undefined;
  const loaded = async () => {
    if (!loading) {
      const exhausted = fdExhaustionError(`the ${name} store cannot be loaded`, FDS_TO_LOAD);
      if (exhausted) throw exhausted;
      loading = load().catch((err: unknown) => {
        throw fromSystemError(err, `the ${name} store's module could not be loaded`);
      });
    }
    return loading;
  };
  return {
    name,
    open: async (queue, options) => (await loaded()).open(queue, options),
    remove: async (queue) => (await loaded()).remove(queue),
  };
}

const sqliteDriver = loadedOnUse('sqlite', async () => (await import('./sqlite-store.js')).sqliteDriver);

/**
 * URL schemes and the drivers for them. A new store registers here: one line that checks the URL
 * at once and loads the store's module with its first queue, as 'redis' does.
 */
const schemes = new Map<string, (url: string) => StoreDriver>([
  [
    'redis',
    (url) => {
      parseRedisUrl(url); // a malformed URL fails here, before anything is loaded
      return loadedOnUse('redis', async () => (await import('./redis-store.js')).redisDriver(url));
    },
  ],
]);

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
