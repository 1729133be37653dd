/**
 * One pool worker, seen from the pool: the child process, the units out at it (in the order they
 * were sent, which is the order it runs them), and what it reports. The pool decides what to do
 * about a failure; this class only observes and reports it, once.
 */
import type { Channel } from '../core/channel.js';
import { ErrorCodes, IpcError } from '../core/errors.js';
import type { ExitStatus } from './child-process.js';
import type { Unit } from './pool-jobs.js';
import type { FromWorker, ToWorker } from './pool-protocol.js';
import type { ChildProcessWithChannel } from './spawn.js';
import { readWireError, type WireError } from './task-error.js';

/**
 * How long a worker whose channel the pool closed may take to exit on its own before it is killed:
 * long enough for exit handlers, short enough that a task module keeping its worker busy cannot
 * hang `pool.close()`.
 */
const CLOSE_GRACE_MS = 5000;

/**
 * How long a closing pool waits for a worker to get ready (to finish loading the task module),
 * counted from `close()`, or from the worker's start if it was started later: a module that never
 * finishes loading must not hang `close()`. Longer than {@link CLOSE_GRACE_MS}: loading is real
 * work (a big module, a machine under load), and a worker that misses it fails the calls waiting
 * for it. An object so that tests can shorten it.
 */
export const START_GRACE = { ms: 30_000 };

/** What a worker reports to its pool. */
export interface WorkerHooks {
  ready(worker: PoolWorker): void;
  /** Results for part of a unit; `finished` when the unit is fully answered (or was cancelled). */
  results(
    worker: PoolWorker,
    unit: Unit,
    offset: number,
    values: unknown[],
    errors: [number, WireError][] | undefined,
  ): void;
  finished(worker: PoolWorker, unit: Unit): void;
  /** A unit failed without running (the worker could not decode it); it is no longer out. */
  failed(worker: PoolWorker, unit: Unit, err: IpcError): void;
  /** A send to the worker failed; the unit is no longer counted as out at it. */
  sendFailed(worker: PoolWorker, unit: Unit, err: unknown): void;
  /**
   * The worker is gone (reaped). `running` had started there (its 'start' arrived) and did not
   * finish; `unstarted` were sent to it and never began.
   */
  exited(
    worker: PoolWorker,
    status: ExitStatus,
    running: Unit[],
    unstarted: Unit[],
    initError: WireError | undefined,
  ): void;
}

export class PoolWorker {
  readonly child: ChildProcessWithChannel<ToWorker | FromWorker>;
  /** Units sent and not yet answered, oldest first (a Map keeps insertion order). */
  readonly inflight = new Map<number, Unit>();
  /** Units whose 'start' has arrived. */
  readonly #started = new Set<number>();
  /** Items answered so far per unit, for units answered in several parts. */
  readonly #answered = new Map<number, number>();
  #ready = false;
  #startTimer: NodeJS.Timeout | undefined;
  #startExpired = false;
  #initError: WireError | undefined;
  #closing = false;
  readonly #hooks: WorkerHooks;

  constructor(child: ChildProcessWithChannel<ToWorker | FromWorker>, hooks: WorkerHooks) {
    this.child = child;
    this.#hooks = hooks;
    void this.#read(child.channel);
  }

  get pid(): number {
    return this.child.pid;
  }

  /** True once the task module has loaded. */
  get ready(): boolean {
    return this.#ready;
  }

  /** True if the worker was killed by {@link startDeadline} (it was never ready). */
  get startExpired(): boolean {
    return this.#startExpired;
  }

  /**
   * Kills the worker (SIGKILL) if it is not ready `ms` from now: the pool is closing and will not
   * wait for ever for a task module that does not finish loading.
   */
  startDeadline(ms: number): void {
    if (this.#ready || this.#startTimer || this.child.exitStatus) return;
    const timer = setTimeout(() => {
      if (this.#ready) return;
      this.#startExpired = true;
      this.child.kill('SIGKILL');
    }, ms);
    this.#startTimer = timer;
    void this.child.exited.then(() => clearTimeout(timer));
  }

  /** Sends a unit; it runs after those already out at this worker. */
  dispatch(unit: Unit): void {
    this.inflight.set(unit.id, unit);
    this.child.channel.send({ t: 'run', id: unit.id, items: unit.items }).catch((err) => {
      if (this.inflight.delete(unit.id)) this.#hooks.sendFailed(this, unit, err);
    });
  }

  /** Asks the worker to drop a unit that has not started (its job settled meanwhile). */
  cancel(unit: Unit): void {
    if (this.inflight.has(unit.id)) this.child.channel.send({ t: 'cancel', id: unit.id }).catch(() => {});
  }

  /** Closes the channel: the worker finishes what it has, then exits. */
  close(): void {
    this.#closing = true;
    void this.child.channel.close();
  }

  async #read(channel: Channel<ToWorker | FromWorker>): Promise<void> {
    try {
      for await (const message of channel) this.#onMessage(message as FromWorker);
    } catch {
      // The worker died (ERR_IPC_PEER_GONE) or sent something unreadable: either way it is done.
    }
    // Every byte the worker wrote has been read by now (end of stream comes after the data), so
    // results sent just before a crash were counted.
    if (this.#closing) {
      // The read ended because the pool closed the channel: the worker sees the end of its input
      // and exits by itself, running its exit handlers. Killing it now would cut those short.
      const timer = setTimeout(() => this.child.kill('SIGKILL'), CLOSE_GRACE_MS);
      void this.child.exited.then(() => clearTimeout(timer));
    } else {
      // A worker whose channel broke while it lives is of no use: end it.
      this.child.kill('SIGKILL');
    }
    const status = await this.child.exited;
    // The worker is gone: release the channel (an shm channel's segment stays mapped otherwise).
    channel.destroy();
    const inflight = [...this.inflight.values()];
    this.inflight.clear();
    const running = inflight.filter((u) => this.#started.has(u.id));
    const unstarted = inflight.filter((u) => !this.#started.has(u.id));
    this.#hooks.exited(this, status, running, unstarted, this.#initError);
  }

  #onMessage(message: FromWorker): void {
    switch (message?.t) {
      case 'ready':
        // Too late: a ready message read after the deadline's kill.
        if (this.#startExpired) return;
        this.#ready = true;
        clearTimeout(this.#startTimer);
        this.#hooks.ready(this);
        return;
      case 'start':
        if (this.inflight.has(message.id)) this.#started.add(message.id);
        return;
      case 'init-error':
        this.#initError = readWireError(message.error);
        return;
      case 'done': {
        const unit = this.inflight.get(message.id);
        if (!unit || !Array.isArray(message.values)) return;
        const offset = Number(message.offset) || 0;
        const errors = Array.isArray(message.errors)
          ? message.errors.map(([i, e]): [number, WireError] => [Number(i), readWireError(e)])
          : undefined;
        this.#hooks.results(this, unit, offset, message.values, errors);
        const answered = (this.#answered.get(unit.id) ?? 0) + message.values.length;
        if (answered < unit.items.length) {
          this.#answered.set(unit.id, answered);
          return;
        }
        this.#answered.delete(unit.id);
        this.#started.delete(unit.id);
        this.inflight.delete(unit.id);
        this.#hooks.finished(this, unit);
        return;
      }
      case 'garbled': {
        const after = Number(message.after) || 0;
        const unit = [...this.inflight.values()].find((u) => u.id > after);
        if (!unit) return;
        this.inflight.delete(unit.id);
        this.#answered.delete(unit.id);
        const wire = readWireError(message.error);
        this.#hooks.failed(
          this,
          unit,
          new IpcError(
            ErrorCodes.INVALID_MESSAGE,
            `pool worker ${this.pid} could not decode a task's data: ${wire.message}`,
          ),
        );
        return;
      }
      case 'cancelled': {
        const unit = this.inflight.get(message.id);
        if (!unit) return;
        this.inflight.delete(unit.id);
        this.#hooks.finished(this, unit);
        return;
      }
    }
  }
}
