/**
 * Per-test set-up for the conformance suite: an isolated runtime directory, the store under test,
 * a fresh queue name, and every queue the test opened closed afterwards.
 */
import { afterEach, beforeEach } from 'vitest';
import { MessageQueue, type MessageQueueOptions } from '../../src/index.js';
import { isolateRuntimeDir } from '../helpers.js';
import type { StoreHandle, StoreUnderTest } from './stores.js';

/** What a conformance test works with. */
export interface QueueContext {
  /** A queue name no other test uses. */
  name: string;
  handle: StoreHandle;
  /** Opens `name` (or another) on the store under test; closed after the test. */
  open<T = unknown>(options?: MessageQueueOptions<T>, name?: string): Promise<MessageQueue<T>>;
}

let counter = 0;

/** Registers beforeEach/afterEach hooks and returns the context they fill in. */
export function useQueueContext(store: StoreUnderTest): QueueContext {
  const opened: MessageQueue<unknown>[] = [];
  let cleanup: (() => void) | undefined;
  const ctx = {} as QueueContext;
  beforeEach(async () => {
    cleanup = isolateRuntimeDir().cleanup;
    ctx.handle = await store.setup();
    ctx.name = `q${process.pid}-${++counter}`;
    ctx.open = async <T>(options?: MessageQueueOptions<T>, name = ctx.name) => {
      const q = await MessageQueue.open<T>(name, { ...options, store: ctx.handle.store });
      opened.push(q as MessageQueue<unknown>);
      return q;
    };
  });
  afterEach(async () => {
    await Promise.allSettled(opened.splice(0).map((q) => q.close()));
    await ctx.handle?.teardown();
    cleanup?.();
  });
  return ctx;
}
