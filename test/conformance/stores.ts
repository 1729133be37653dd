/**
 * The stores the conformance suite runs against. Adding a store is one line in `stores` below: an
 * entry that says whether the store can run here, and how to set it up for one test.
 *
 * Every test gets its own runtime directory (IPCKIT_DIR) and its own queue names, whatever the
 * store; child processes learn the store from IPCKIT_TEST_STORE (see test/fixtures/mq-store.ts).
 */
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

/** Every store the suite runs against. */
export const stores: StoreUnderTest[] = [sqlite];
