/**
 * Pool: a fixed number of worker processes running one task module, like Python's
 * multiprocessing.Pool. `run` sends one item; `map` cuts its input into chunks so that tiny tasks
 * cost one message per chunk rather than per item. Scheduling is round-robin between calls, so a
 * large `map` does not starve a `run` made after it. Each worker has at most two units out at once
 * (the next is already there when one finishes); everything else waits in the pool, bounded by
 * `maxQueue` calls.
 *
 * Failure policy: a task that throws rejects with a {@link TaskError}. A worker that dies fails the
 * unit it was running with ERR_IPC_PEER_GONE (not retried: a task that crashes its worker would
 * likely crash the next one, and a task may not be safe to run twice), puts the units sent to it
 * that had not started back in the queue (a worker says when it starts a unit), and is replaced. A task module that fails to load breaks the pool:
 * every call rejects with that error. A closing pool does not wait for ever for a worker to get
 * ready (see {@link Pool.close}).
 */
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { closedError, ErrorCodes, IpcError, isIpcError } from '../core/errors.js';
import { checkMaxMessageBytes } from '../core/framing.js';
import { choiceError, numberError } from '../core/options.js';
import { Queue } from '../core/queue.js';
import { checkWaitOptions, type WaitOptions } from '../core/wait.js';
import type { ChannelKind } from './channel-plan.js';
import { describeExit, type ExitStatus } from './child-process.js';
import { childExecArgv, moduleUrl, siblingModule } from './node-args.js';
import { type Job, MapJob, RunJob, type Unit } from './pool-jobs.js';
import {
  type FromWorker,
  POOL_CODEC_ENV,
  POOL_MAX_BYTES_ENV,
  POOL_TASK_ENV,
  type ToWorker,
} from './pool-protocol.js';
import { PoolWorker, START_GRACE, type WorkerHooks } from './pool-worker-process.js';
import { checkEnv, spawn } from './spawn.js';
import { TaskError, type WireError } from './task-error.js';

/** The codecs a pool can use: both sides must build the same one, so it is named, not passed. */
export type PoolCodec = 'msgpack' | 'json' | 'v8';

/** Options for {@link Pool.create}. */
export interface PoolOptions {
  /** Number of worker processes. Default `os.availableParallelism()`. */
  size?: number;
  /**
   * The transport between the pool and each worker: `'pipe'` (default) or `'shm'` (a ShmChannel
   * per worker: the lowest round trip for small tasks, at a shared segment of about 2 MiB each).
   */
  channel?: ChannelKind;
  /** How data and results are encoded: `'msgpack'` (default), `'json'` or `'v8'` (structured clone). */
  codec?: PoolCodec;
  /** Largest message either way, in bytes (a larger chunk is split; a larger single item fails). Default 64 MiB. */
  maxMessageBytes?: number;
  /** Calls (`run`/`map`) that may wait for a worker; beyond it they reject with ERR_IPC_QUEUE_FULL. Default 100000. */
  maxQueue?: number;
  /**
   * Node flags for the workers. Default: this process's `execArgv`. Debugger flags and flags that
   * would run something else than the worker program (`-e`, `-p`, `--check`, `--test`, `--watch`…)
   * are left out. The tsx loader is added when the task module is TypeScript and no loader is
   * among them.
   */
  execArgv?: readonly string[];
  /** Environment of the workers. Default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** Working directory of the workers. */
  cwd?: string;
}

/** Options for {@link Pool.map}. */
export interface MapOptions extends WaitOptions {
  /**
   * Items per message. Default: the input split in about four chunks per worker, at most 1024 items
   * each; use 1 for long tasks of uneven length.
   */
  chunkSize?: number;
}

/** Units out at one worker at a time: one running, one waiting so the worker never idles. */
const WINDOW = 2;
/** Workers that die before they are ready, in a row, after which the pool gives up. */
const MAX_START_FAILURES = 3;
const MAX_AUTO_CHUNK = 1024;

/** A pool of worker processes running one task module. */
export class Pool<In = unknown, Out = unknown> implements AsyncDisposable {
  readonly #url: URL;
  readonly #size: number;
  readonly #maxQueue: number;
  readonly #spawnArgs: {
    args: string[];
    env: NodeJS.ProcessEnv;
    cwd: string | undefined;
    channel: ChannelKind;
    codec: PoolCodec;
    maxMessageBytes: number;
  };
  readonly #workers = new Set<PoolWorker>();
  readonly #jobs = new Queue<Job>();
  #nextId = 1;
  #state: 'open' | 'closing' | 'closed' = 'open';
  #broken: IpcError | undefined;
  #startFailures = 0;
  #drainWaiters: (() => void)[] = [];
  #closing: Promise<void> | undefined;
  readonly #hooks: WorkerHooks;

  /**
   * Starts `size` workers running the task module at `module` (a path, relative to the current
   * directory, or a file: URL; e.g. `new URL('./task.js', import.meta.url)`). The module must
   * default-export a function `(data) => result` (async or not).
   * @throws ERR_IPC_NOT_FOUND if the module file does not exist; TypeError/RangeError for bad options.
   */
  static create<In = unknown, Out = unknown>(module: string | URL, opts?: PoolOptions): Pool<In, Out> {
    return new Pool<In, Out>(module, opts);
  }

  private constructor(module: string | URL, opts: PoolOptions | undefined) {
    if (opts !== undefined && (typeof opts !== 'object' || opts === null))
      throw new TypeError('options must be an object');
    const size = opts?.size ?? availableParallelism();
    if (!Number.isInteger(size) || size < 1 || size > 1024) {
      throw numberError(size, `options.size must be an integer from 1 to 1024, got ${String(size)}`);
    }
    const channel = opts?.channel ?? 'pipe';
    if (channel !== 'pipe' && channel !== 'shm') {
      throw choiceError(channel, `options.channel must be 'pipe' or 'shm', got ${String(channel)}`);
    }
    const codec = opts?.codec ?? 'msgpack';
    if (codec !== 'msgpack' && codec !== 'json' && codec !== 'v8') {
      throw new RangeError(
        "options.codec must be 'msgpack', 'json' or 'v8' (a pool's workers build the same codec by name)",
      );
    }
    const maxQueue = opts?.maxQueue ?? 100_000;
    if (!Number.isInteger(maxQueue) || maxQueue < 1) {
      throw numberError(maxQueue, `options.maxQueue must be a positive integer, got ${String(maxQueue)}`);
    }
    const maxMessageBytes = checkMaxMessageBytes(opts?.maxMessageBytes);
    // Checked here: spread into the workers' environment, a string would become its characters.
    checkEnv(opts?.env);
    this.#url = moduleUrl(module, 'Pool.create(module)');
    const bootstrap = siblingModule('pool-worker');
    this.#size = size;
    this.#maxQueue = maxQueue;
    this.#spawnArgs = {
      args: [...childExecArgv(opts?.execArgv, [bootstrap, this.#url]), fileURLToPath(bootstrap)],
      env: {
        ...(opts?.env ?? process.env),
        [POOL_TASK_ENV]: this.#url.href,
        [POOL_CODEC_ENV]: codec,
        [POOL_MAX_BYTES_ENV]: String(maxMessageBytes),
      },
      cwd: opts?.cwd,
      channel,
      codec,
      maxMessageBytes,
    };
    this.#hooks = {
      ready: () => {
        this.#startFailures = 0;
        this.#dispatch();
      },
      results: (worker, unit, offset, values, errors) => {
        if (!unit.job.settled) unit.job.results(unit, offset, values, errors, worker.pid);
      },
      finished: (_worker, unit) => {
        unit.job.dispatched.delete(unit);
        this.#dispatch();
        this.#checkDrained();
      },
      failed: (_worker, unit, err) => {
        unit.job.dispatched.delete(unit);
        unit.job.fail(err);
        this.#dispatch();
        this.#checkDrained();
      },
      sendFailed: (_worker, unit, err) => this.#sendFailed(unit, err),
      exited: (worker, status, running, unstarted, initError) =>
        this.#workerExited(worker, status, running, unstarted, initError),
    };
    for (let i = 0; i < size; i++) this.#spawnWorker(i === 0);
  }

  /** The number of workers the pool keeps. */
  get size(): number {
    return this.#size;
  }

  /** The pids of the current workers (a replaced worker's successor has a new pid). */
  get pids(): number[] {
    return [...this.#workers].map((w) => w.pid);
  }

  /** Calls waiting for a worker (a `map` counts once however many chunks it has left). */
  get queued(): number {
    return this.#jobs.length;
  }

  /** True once `close()` or `destroy()` was called. */
  get closed(): boolean {
    return this.#state !== 'open';
  }

  /**
   * Runs the task on `data` in a worker and resolves with its result. `signal`/`timeout` reject
   * with ERR_IPC_ABORTED/ERR_IPC_TIMEOUT: a task still queued never runs; one already running
   * finishes in its worker and its result is dropped.
   */
  run(data: In, opts?: WaitOptions): Promise<Out> {
    try {
      checkWaitOptions(opts);
    } catch (err) {
      return Promise.reject(err);
    }
    const refused = this.#refusal();
    if (refused) return Promise.reject(refused);
    const job = new RunJob(data, (j, ok) => this.#settled(j, ok));
    job.arm('pool.run', opts);
    if (!job.settled) this.#enqueue(job);
    return job.promise as Promise<Out>;
  }

  /**
   * Runs the task on every item and resolves with the results in input order. Rejects with the
   * first failure reported (a TaskError, a crash) and then stops handing out the rest.
   */
  map(items: Iterable<In>, opts?: MapOptions): Promise<Out[]> {
    let list: readonly In[];
    try {
      checkWaitOptions(opts);
      const chunkSize = opts?.chunkSize;
      if (chunkSize !== undefined && (!Number.isInteger(chunkSize) || chunkSize < 1)) {
        throw numberError(
          chunkSize,
          `options.chunkSize must be a positive integer, got ${String(chunkSize)}`,
        );
      }
      if (items === null || typeof (items as Iterable<In>)?.[Symbol.iterator] !== 'function') {
        throw new TypeError('items must be iterable');
      }
      list = Array.isArray(items) ? items : Array.from(items);
    } catch (err) {
      return Promise.reject(err);
    }
    const refused = this.#refusal();
    if (refused) return Promise.reject(refused);
    if (list.length === 0) return Promise.resolve([]);
    const chunkSize =
      opts?.chunkSize ?? Math.max(1, Math.min(MAX_AUTO_CHUNK, Math.ceil(list.length / (this.#size * 4))));
    const job = new MapJob(list, chunkSize, (j, ok) => this.#settled(j, ok));
    job.arm('pool.map', opts);
    if (!job.settled) this.#enqueue(job);
    return job.promise as Promise<Out[]>;
  }

  /**
   * Takes no more calls, lets every queued and running one finish, then ends the workers (each
   * exits when its channel closes). A worker not ready 30 s after close() (or after its start, if
   * later: a task module that never finishes loading) is killed and not replaced; once no worker is
   * left, the calls still queued reject with ERR_IPC_CLOSED. Idempotent.
   */
  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    if (this.#state === 'open') {
      this.#state = 'closing';
      // Queued calls wait for a worker: one that never gets ready (its task module never finishes
      // loading) must not hold close() up for ever.
      for (const worker of this.#workers) worker.startDeadline(START_GRACE.ms);
    }
    this.#closing = (async () => {
      await new Promise<void>((resolve) => {
        this.#drainWaiters.push(resolve);
        this.#checkDrained();
      });
      this.#state = 'closed';
      const workers = [...this.#workers];
      for (const worker of workers) worker.close();
      await Promise.all(workers.map((w) => w.child.exited));
    })();
    return this.#closing;
  }

  /**
   * Rejects every queued and running call with ERR_IPC_CLOSED (`reason` as cause) and kills the
   * workers (SIGKILL). Resolves once they are reaped.
   */
  async destroy(reason?: Error): Promise<void> {
    this.#state = 'closed';
    this.#failAll(closedError('pool', reason));
    const workers = [...this.#workers];
    for (const worker of workers) worker.child.kill('SIGKILL');
    await Promise.all(workers.map((w) => w.child.exited));
    // A close() waiting for the drain goes on once the workers' exits cleared what they held.
    this.#checkDrained();
  }

  /** `await using pool = Pool.create(...)` closes it (see {@link close}). */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  // ---- scheduling ---------------------------------------------------------------------------------

  #refusal(): IpcError | undefined {
    if (this.#broken) return this.#broken;
    if (this.#state !== 'open') return closedError('pool');
    if (this.#jobs.length >= this.#maxQueue) {
      return new IpcError(ErrorCodes.QUEUE_FULL, `pool: ${this.#jobs.length} calls are queued (maxQueue)`);
    }
    return undefined;
  }

  #enqueue(job: Job): void {
    this.#queue(job);
    this.#dispatch();
  }

  /** Puts `job` in line without handing anything out yet. */
  #queue(job: Job): void {
    if (!job.queued && !job.settled) {
      job.queued = true;
      this.#jobs.push(job);
    }
  }

  /** The next unit, taking turns between queued jobs. */
  #nextUnit(): Unit | undefined {
    for (;;) {
      const job = this.#jobs.shift();
      if (!job) return undefined;
      job.queued = false;
      if (job.settled) continue;
      const unit = job.take(this.#nextId++);
      if (job.hasMore()) {
        job.queued = true;
        this.#jobs.push(job);
      }
      if (unit) return unit;
    }
  }

  /** Hands units to ready workers: first one each, then a second each. */
  #dispatch(): void {
    if (this.#broken) return;
    for (let depth = 1; depth <= WINDOW; depth++) {
      for (const worker of this.#workers) {
        if (!worker.ready || worker.inflight.size >= depth) continue;
        const unit = this.#nextUnit();
        if (!unit) return;
        unit.job.dispatched.add(unit);
        worker.dispatch(unit);
      }
    }
  }

  /**
   * A job settled: it leaves the queue, and if it failed (an error, an abort), workers drop its
   * units that have not started. A job that succeeded has every unit answered.
   */
  #settled(job: Job, ok: boolean): void {
    if (job.queued) {
      this.#jobs.remove(job);
      job.queued = false;
    }
    if (!ok) {
      for (const unit of job.dispatched) {
        for (const worker of this.#workers) worker.cancel(unit);
      }
    }
    this.#checkDrained();
  }

  #sendFailed(unit: Unit, err: unknown): void {
    const job = unit.job;
    job.dispatched.delete(unit);
    if (!job.settled) {
      if (isIpcError(err, ErrorCodes.FRAME_TOO_LARGE)) {
        if (job.split(unit)) this.#enqueue(job);
        else job.fail(err);
      } else if (isIpcError(err, ErrorCodes.INVALID_MESSAGE)) {
        job.fail(err);
      } else {
        // The worker is going away; the unit never reached it.
        job.requeue(unit);
        this.#enqueue(job);
      }
    }
    this.#dispatch();
    this.#checkDrained();
  }

  // ---- workers ------------------------------------------------------------------------------------

  /** `first`: the first worker of a new pool, whose failure on bad options is Pool.create's. */
  #spawnWorker(first = false): void {
    const { args, env, cwd, channel, codec, maxMessageBytes } = this.#spawnArgs;
    try {
      const child = spawn<ToWorker | FromWorker>(process.execPath, args, {
        channel,
        codec,
        maxMessageBytes,
        env,
        cwd,
        stdio: ['ignore', 'inherit', 'inherit'],
      });
      const worker = new PoolWorker(child, this.#hooks);
      this.#workers.add(worker);
      if (this.#state === 'closing') worker.startDeadline(START_GRACE.ms);
    } catch (err) {
      // Options Node checks itself (a cwd that is not a string) fail every worker alike: refused
      // by create(), as bad options are, rather than a pool whose every call fails. Nothing has
      // been started yet.
      if (first && (err instanceof TypeError || err instanceof RangeError)) throw err;
      this.#break(
        isIpcError(err)
          ? err
          : new IpcError(ErrorCodes.SYSTEM, 'pool: cannot start a worker', { cause: err }),
      );
    }
  }

  #workerExited(
    worker: PoolWorker,
    status: ExitStatus,
    running: Unit[],
    unstarted: Unit[],
    initError: WireError | undefined,
  ): void {
    this.#workers.delete(worker);
    for (const unit of [...running, ...unstarted]) unit.job.dispatched.delete(unit);
    if (initError) {
      this.#break(new TaskError(initError, worker.pid, `pool task module ${this.#url.href} failed to load`));
    } else if (
      !worker.ready &&
      !worker.startExpired &&
      this.#state !== 'closed' &&
      ++this.#startFailures >= MAX_START_FAILURES
    ) {
      this.#break(
        new IpcError(
          ErrorCodes.PEER_GONE,
          `pool: ${MAX_START_FAILURES} workers in a row exited before they were ready (last: ${describeExit(status)}); ${
            status.signal
              ? 'were they killed from outside (an OOM killer, an operator)?'
              : `can node run ${this.#url.href}?`
          }`,
        ),
      );
    }
    for (const unit of unstarted) {
      if (unit.job.settled) continue;
      // A unit whose workers keep dying before it starts is failed rather than passed on forever.
      const requeued = (unit.requeued ?? 0) + 1;
      if (requeued >= MAX_START_FAILURES) {
        unit.job.fail(
          new IpcError(
            ErrorCodes.PEER_GONE,
            `pool: ${requeued} workers died while this task waited in them (last: worker ${worker.pid}, ${describeExit(status)})`,
          ),
        );
        continue;
      }
      unit.job.requeue({ ...unit, requeued });
      // Handed out only below, once the running units have failed: an item of a map() that one
      // of them fails must not start in another worker first.
      this.#queue(unit.job);
    }
    // After the requeue: failing a task may settle the last job in sight, and a closing pool that
    // then saw no job would finish while the requeued ones were never run nor failed.
    for (const unit of running) {
      unit.job.fail(
        new IpcError(
          ErrorCodes.PEER_GONE,
          `pool worker ${worker.pid} exited (${describeExit(status)}) while running a task; the task is not retried`,
        ),
      );
    }
    // A worker that did not get ready in time while closing is not replaced: its successor would
    // most likely hang in the same place.
    const wanted =
      this.#state === 'open' || (this.#state === 'closing' && this.#jobs.length > 0 && !worker.startExpired);
    if (!this.#broken && wanted && this.#workers.size < this.#size) this.#spawnWorker();
    if (this.#state === 'closing' && this.#workers.size === 0 && this.#jobs.length > 0) {
      // Closing, and no worker is left to run what is queued: those calls can never finish.
      this.#failAll(
        new IpcError(
          ErrorCodes.CLOSED,
          `pool is closed: no worker got ready to run this call (the task module ${this.#url.href} did not finish loading within ${START_GRACE.ms} ms while the pool closed)`,
        ),
      );
    }
    this.#dispatch();
    this.#checkDrained();
  }

  /** The pool cannot work (its module does not load): everything fails with `err` from now on. */
  #break(err: IpcError): void {
    if (this.#broken) return;
    this.#broken = err;
    this.#failAll(err);
    for (const worker of this.#workers) worker.child.kill('SIGKILL');
    this.#checkDrained();
  }

  #failAll(err: IpcError): void {
    for (const job of this.#jobs.drain()) {
      job.queued = false;
      job.fail(err);
    }
    for (const worker of this.#workers) {
      for (const unit of worker.inflight.values()) unit.job.fail(err);
    }
  }

  #checkDrained(): void {
    if (this.#state === 'open' || this.#drainWaiters.length === 0) return;
    if (this.#jobs.length > 0) return;
    for (const worker of this.#workers) if (worker.inflight.size > 0) return;
    for (const resolve of this.#drainWaiters.splice(0)) resolve();
  }
}
