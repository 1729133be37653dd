/**
 * The stores the conformance suite runs against. Adding a store is one line in `stores` below: an
 * entry that says whether the store can run here, and how to set it up for one test.
 *
 * Every test gets its own runtime directory (IPCKIT_DIR) and its own queue names, whatever the
 * store; child processes learn the store from IPCKIT_TEST_STORE (see test/fixtures/mq-store.ts).
 */
import { spawnSync } from 'node:child_process';
import type { StoreSpec } from '../../src/index.js';

/** A store set up for one test. */
export interface StoreHandle {
  /** The `store` option for MessageQueue.open / remove. */
  store: StoreSpec;
  /** The same, as a string for child processes (IPCKIT_TEST_STORE). */
  spec: string;
  /** Store-specific checks after a load test (e.g. SQLite's integrity_check); resolves to 'ok'. */
  integrity?(queue: string): Promise<string>;
  teardown(): Promise<void>;
}

/** A store under test. */
export interface StoreUnderTest {
  name: string;
  /** Why the store cannot run on this machine (e.g. a server is not installed), or undefined. */
  unavailable(): string | undefined;
  /** Prepares the store for one test; the runtime directory is already isolated. */
  setup(): Promise<StoreHandle>;
}

/** The embedded default store. */
const sqlite: StoreUnderTest = {
  name: 'sqlite',
  unavailable: () => undefined,
  async setup() {
    const { sqliteIntegrity } = await import('./sqlite-integrity.js');
    return { store: 'sqlite', spec: 'sqlite', integrity: sqliteIntegrity, teardown: async () => {} };
  },
};

/**
 * The Redis store on a private redis-server (test/support/redis-server.ts): one server per test
 * file, started by the first test that needs it and killed when the file's process exits; each
 * test gets its own key prefix, whose keys are deleted afterwards.
 */
let redisServer: Promise<import('../support/redis-server.js').RedisServer> | undefined;
let redisPrefixes = 0;

const redis: StoreUnderTest = {
  name: 'redis',
  unavailable: () => redisUnavailableHere(),
  async setup() {
    const { RedisServer } = await import('../support/redis-server.js');
    // fsync every second, like the SQLite store's default durability: what a resolved send
    // survives is a process crash, which is what this suite kills. test/mq/redis-restart.test.ts
    // tests appendfsync always.
    redisServer ??= RedisServer.start({ appendfsync: 'everysec' }).then((server) => {
      process.once('exit', () => server.stopSync());
      return server;
    });
    const server = await redisServer;
    const prefix = `t${process.pid}x${++redisPrefixes}`;
    const spec = server.url(`?prefix=${prefix}`) as `redis://${string}`;
    return {
      store: spec,
      spec,
      async teardown() {
        const { Redis } = await import('ioredis');
        const client = new Redis(server.url());
        try {
          const keys = await client.keys(`${prefix}:*`);
          if (keys.length > 0) await client.del(...keys);
        } finally {
          client.disconnect();
        }
      },
    };
  },
};

function redisUnavailableHere(): string | undefined {
  return spawnSync('redis-server', ['--version']).error
    ? 'redis-server is not installed (apt-get install redis-server)'
    : undefined;
}

/** Every store the suite runs against. */
export const stores: StoreUnderTest[] = [sqlite, redis];
