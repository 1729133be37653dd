/**
 * What a pool and its workers say to each other over the worker's parent channel. One message
 * carries a whole unit of work (one `run`, or one chunk of a `map`) and one carries its results, so
 * the per-message cost is paid per chunk, not per item.
 */
import type { WireError } from './task-error.js';

/** The worker's environment: the task module's URL, the codec and the frame bound. */
export const POOL_TASK_ENV = 'IPCKIT_POOL_TASK';
export const POOL_CODEC_ENV = 'IPCKIT_POOL_CODEC';
export const POOL_MAX_BYTES_ENV = 'IPCKIT_POOL_MAX_MESSAGE_BYTES';

/** Parent → worker. */
export type ToWorker =
  /** Run the task on each item, in order; answer with `done` messages covering every item. */
  | { t: 'run'; id: number; items: unknown[] }
  /** Drop unit `id` if it has not started; answer `cancelled` if it was dropped. */
  | { t: 'cancel'; id: number };

/** Worker → parent. */
export type FromWorker =
  /** The task module is loaded; work may come. */
  | { t: 'ready'; pid: number }
  /**
   * Unit `id` is about to run. Sent (and written) before the task is called, so that when a worker
   * dies the pool knows which unit was running (it fails) and which never started (they go to
   * another worker).
   */
  | { t: 'start'; id: number }
  /** The task module failed to load (or has no default-export function); the worker exits. */
  | { t: 'init-error'; error: WireError }
  /**
   * Results of items `offset .. offset + values.length - 1` of unit `id` (a unit whose results do
   * not fit one message comes in several). `errors` lists the items that threw, by index within
   * `values` (whose slot is then null).
   */
  | { t: 'done'; id: number; offset: number; values: unknown[]; errors?: [number, WireError][] }
  /** Unit `id` was dropped before it started. */
  | { t: 'cancelled'; id: number }
  /**
   * A message could not be decoded: the first unit sent after unit `after` (0: the first unit) is
   * lost, and fails with `error`. The worker goes on.
   */
  | { t: 'garbled'; after: number; error: WireError };
