/**
 * The program a pool worker runs: `node [execArgv] pool-worker.js`, spawned by Pool with a pipe
 * channel. It imports the task module named by IPCKIT_POOL_TASK, says ready, then runs units of
 * work one at a time, in the order they came, and answers each with its results.
 *
 * Messages are read eagerly into a local queue, so a `cancel` for a unit that has not started yet
 * is seen while an earlier unit runs, and the channel never pauses (which would delay noticing
 * that the parent died: the worker exits when it does).
 */
import type { Channel } from '../core/channel.js';
import type { CodecName } from '../core/codec.js';
import { ErrorCodes, IpcError, isIpcError } from '../core/errors.js';
import { Queue } from '../core/queue.js';
import { parentChannel } from '../pipe/child-channel.js';
import {
  type FromWorker,
  POOL_CODEC_ENV,
  POOL_MAX_BYTES_ENV,
  POOL_TASK_ENV,
  type ToWorker,
} from './pool-protocol.js';
import { toWireError, type WireError } from './task-error.js';

type Task = (data: unknown) => unknown;
type Unit = { id: number; items: unknown[] };

const channel = parentChannel<ToWorker | FromWorker>({
  codec: (process.env[POOL_CODEC_ENV] as CodecName | undefined) ?? 'msgpack',
  maxMessageBytes: Number(process.env[POOL_MAX_BYTES_ENV]) || undefined,
  exitWithParent: true,
}) as Channel<ToWorker | FromWorker>;

let exitCode = 0;
try {
  const task = await loadTask();
  if (task) {
    await channel.send({ t: 'ready', pid: process.pid });
    await serve(task);
  } else {
    exitCode = 1;
  }
  await channel.close();
} catch {
  // The pool closed the channel before we were ready, or vanished: nothing is left to do.
  exitCode = 1;
}
// Explicitly: timers or sockets the task module left open must not keep a finished worker alive.
process.exit(exitCode);

async function loadTask(): Promise<Task | undefined> {
  try {
    const url = process.env[POOL_TASK_ENV];
    if (!url) throw new Error(`${POOL_TASK_ENV} is not set: this program is started by ipckit's Pool`);
    const mod = (await import(url)) as { default?: unknown };
    if (typeof mod.default !== 'function') {
      throw new TypeError(`the task module ${url} must default-export a function (data) => result`);
    }
    return mod.default as Task;
  } catch (err) {
    await channel.send({ t: 'init-error', error: toWireError(err) }).catch(() => {});
    return undefined;
  }
}

async function serve(task: Task): Promise<void> {
  const queue = new Queue<Unit>();
  let wake: (() => void) | undefined;
  let inputEnded = false;
  // The reader: takes every message as it arrives.
  void (async () => {
    let lastRun = 0;
    for (;;) {
      let message: ToWorker;
      try {
        message = (await channel.receive()) as ToWorker;
      } catch (err) {
        // A message the codec refused: say which unit it must have been, and go on.
        if (isIpcError(err, ErrorCodes.INVALID_MESSAGE)) {
          await channel.send({ t: 'garbled', after: lastRun, error: toWireError(err) }).catch(() => {});
          continue;
        }
        // The parent closed the channel, or vanished (exitWithParent ends this process).
        break;
      }
      if (message?.t === 'run') {
        lastRun = message.id;
        queue.push({ id: message.id, items: message.items });
      } else if (message?.t === 'cancel') {
        const unit = findUnit(queue, message.id);
        if (unit && queue.remove(unit)) {
          // A parent gone meanwhile no longer cares; this loop learns of it at its next receive.
          await channel.send({ t: 'cancelled', id: unit.id }).catch(() => {});
        }
      }
      wake?.();
    }
    inputEnded = true;
    wake?.();
  })();
  for (;;) {
    const unit = queue.shift();
    if (!unit) {
      if (inputEnded) return;
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
      wake = undefined;
      continue;
    }
    await runUnit(task, unit);
  }
}

function findUnit(queue: Queue<Unit>, id: number): Unit | undefined {
  for (const unit of queue.drain()) {
    queue.push(unit);
    if (unit.id === id) return unit;
  }
  return undefined;
}

async function runUnit(task: Task, unit: Unit): Promise<void> {
  await channel.send({ t: 'start', id: unit.id });
  // The channel writes what was sent on the next tick: let that happen before the task runs, so a
  // task that kills this process cannot take its own 'start' with it (and be retried elsewhere).
  await new Promise<void>((resolve) => setImmediate(resolve));
  const values = new Array<unknown>(unit.items.length);
  let errors: [number, WireError][] | undefined;
  for (let i = 0; i < unit.items.length; i++) {
    try {
      const result = task(unit.items[i]);
      // Awaiting costs a turn of the microtask queue per item: only results that are promises get it.
      values[i] = isThenable(result) ? await result : result;
    } catch (err) {
      values[i] = null;
      errors ??= [];
      errors.push([i, toWireError(err)]);
    }
  }
  await sendResults(unit.id, 0, values, errors);
}

/**
 * Sends results; a batch that cannot be encoded or is over the frame bound is split in halves until
 * the culprit item is alone, and that item alone fails with the encoding error.
 */
async function sendResults(
  id: number,
  offset: number,
  values: unknown[],
  errors: [number, WireError][] | undefined,
): Promise<void> {
  const message: FromWorker = errors
    ? { t: 'done', id, offset, values, errors }
    : { t: 'done', id, offset, values };
  try {
    await channel.send(message);
    return;
  } catch (err) {
    if (!isIpcError(err, ErrorCodes.FRAME_TOO_LARGE) && !isIpcError(err, ErrorCodes.INVALID_MESSAGE))
      throw err;
    if (values.length === 1) {
      const wire = toWireError(
        new IpcError(err.code, `the task's result cannot be sent to the parent: ${err.message}`),
      );
      await channel.send({ t: 'done', id, offset, values: [null], errors: [[0, wire]] });
      return;
    }
  }
  const half = values.length >> 1;
  const part = (from: number, to: number): [number, WireError][] | undefined => {
    const list = errors
      ?.filter(([i]) => i >= from && i < to)
      .map(([i, e]): [number, WireError] => [i - from, e]);
    return list?.length ? list : undefined;
  };
  await sendResults(id, offset, values.slice(0, half), part(0, half));
  await sendResults(id, offset + half, values.slice(half), part(half, values.length));
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    (typeof value === 'object' || typeof value === 'function') &&
    value !== null &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}
