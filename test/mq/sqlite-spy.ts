/**
 * The real SQLite store driver, with one method of every store it opens seen first by a test: to
 * count or record what the queue asks of its store, without a mock store.
 */
import type { Store, StoreDriver } from '../../src/index.js';
import { resolveStoreDriver } from '../../src/mq/store-drivers.js';

type StoreMethod = {
  [K in keyof Store]-?: Store[K] extends (...args: never[]) => unknown ? K : never;
}[keyof Store];

/** The SQLite driver, with `method` of each store it opens called as `around(original)`. */
export function sqliteAround<K extends StoreMethod>(
  name: string,
  method: K,
  around: (original: Store[K]) => Store[K],
): StoreDriver {
  const sqlite = resolveStoreDriver('sqlite');
  return {
    name,
    remove: (queue) => sqlite.remove(queue),
    async open(queue, options) {
      const store = await sqlite.open(queue, options);
      const wrapped = around((store[method] as (...args: unknown[]) => unknown).bind(store) as Store[K]);
      return new Proxy(store, {
        get(target, prop) {
          if (prop === method) return wrapped;
          const value = Reflect.get(target, prop);
          return typeof value === 'function' ? value.bind(target) : value;
        },
      });
    },
  };
}
