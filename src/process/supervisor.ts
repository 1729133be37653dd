/**
 * Supervisor: keeps named child processes running. Children start in the order they were added
 * and stop in reverse. A child that exits is restarted according to its policy after a backoff
 * (100 ms doubling to 5 s by default, counted over the restarts in the current window); more than
 * `maxRestarts` restarts within `windowMs` and the supervisor gives up on that child and emits
 * 'giveup'. Each name has one stable channel ({@link Supervisor.channel}) that follows the
 * restarts. Failures are reported by events, never by an 'error' event (which would throw when
 * nobody listens).
 */
import { EventEmitter } from 'node:events';
import type { Channel } from '../core/channel.js';
import { closedError, ErrorCodes, IpcError } from '../core/errors.js';
import { numberError } from '../core/options.js';
import { MAX_TIMEOUT_MS } from '../core/wait.js';
import { ChildProcess, describeExit, type ExitStatus } from './child-process.js';
import { SupervisedChannel } from './supervised-channel.js';

/** When a child that exited is started again. */
export type RestartPolicy = 'always' | 'on-failure' | 'never';

/** The delay before restart n (1-based, within the window): `min(maxMs, initialMs * factor^(n-1))`. */
export interface BackoffOptions {
  /** Default 100. */
  initialMs?: number;
  /** Default 5000, at most 2^31 - 1 (the longest Node timer). */
  maxMs?: number;
  /** Default 2. */
  factor?: number;
}

/** Options for a {@link Supervisor}, and defaults for its children. */
export interface SupervisorOptions {
  /**
   * `'always'` restarts whatever the exit; `'on-failure'` (default) restarts unless the child
   * exited with code 0; `'never'` does not restart. A child stopped by the supervisor is never
   * restarted.
   */
  restart?: RestartPolicy;
  /** Restarts allowed within `windowMs`; one more failure and the supervisor gives up. Default 5. */
  maxRestarts?: number;
  /** The sliding window over which restarts are counted, in ms. Default 60000. */
  windowMs?: number;
  backoff?: BackoffOptions;
  /** How long `stop()` lets each child exit after SIGTERM before SIGKILL (at most 2^31 - 1). Default 5000. */
  graceMs?: number;
  /** Messages `channel(name).send` buffers while the child is down. Default 1024. */
  maxBuffered?: number;
}

/** Options for one supervised child (overriding the supervisor's). */
export interface SupervisedChildOptions extends SupervisorOptions {
  /**
   * Resolves when a freshly spawned child is ready (e.g. after its first message, read from
   * `child.channel`); the next child starts only then, and the name's channel attaches only then.
   * If it rejects, the child is killed: in `start()` that fails the start; later it counts as a
   * failure to restart.
   */
  ready?: (child: ChildProcess<unknown>) => unknown;
}

/** What a 'restart' event says. */
export interface RestartInfo {
  /** The restart's number within the current window (1 for the first). */
  attempt: number;
  /** The backoff before the new child is spawned. */
  delayMs: number;
  /** How the previous child ended (`{ code: null, signal: null }` if it could not be spawned). */
  lastExit: ExitStatus;
}

/** The events of a {@link Supervisor} and their arguments. */
export interface SupervisorEvents {
  /** A child (first or restarted) was spawned and is ready. */
  start: [name: string, child: ChildProcess<unknown>];
  /** A child exited (whatever the reason, including `stop()`). */
  exit: [name: string, status: ExitStatus];
  /** A child that exited will be started again after `info.delayMs`. */
  restart: [name: string, info: RestartInfo];
  /**
   * The supervisor stopped restarting `name`: more than `maxRestarts` restarts in `windowMs`.
   * `error` is set when the last attempt failed to spawn (or to get ready) rather than exited.
   */
  giveup: [name: string, lastExit: ExitStatus, error?: unknown];
}

type Phase = 'idle' | 'starting' | 'up' | 'backoff' | 'done' | 'gaveup' | 'stopped';

interface Settings {
  restart: RestartPolicy;
  maxRestarts: number;
  windowMs: number;
  initialMs: number;
  maxMs: number;
  factor: number;
  graceMs: number;
  maxBuffered: number;
  ready: ((child: ChildProcess<unknown>) => unknown) | undefined;
}

interface Entry {
  name: string;
  factory: () => ChildProcess<unknown>;
  settings: Settings;
  channel: SupervisedChannel<unknown>;
  phase: Phase;
  child: ChildProcess<unknown> | undefined;
  /** When each restart in the current window happened (performance.now()). */
  restarts: number[];
  lastExit: ExitStatus | undefined;
  timer: NodeJS.Timeout | undefined;
  /** Why the child being restarted failed its `ready` hook: for the exit that follows its kill. */
  readyError: unknown;
  /** Being started by start(), which reports its failure: its exit meanwhile is no restart's. */
  inStart: boolean;
}

const NO_EXIT: ExitStatus = { code: null, signal: null };

/** Exited with code 0: what `'on-failure'` does not restart. */
function cleanExit(status: ExitStatus): boolean {
  return status.code === 0 && status.signal === null;
}

/** Keeps named child processes running. */
export class Supervisor extends EventEmitter<SupervisorEvents> {
  readonly #defaults: Settings;
  readonly #entries = new Map<string, Entry>();
  /** Children whose channel went to their SupervisedChannel, which releases it when they die. */
  readonly #attached = new WeakSet<ChildProcess<unknown>>();
  #state: 'idle' | 'running' | 'stopping' | 'stopped' = 'idle';
  #starting: Promise<void> | undefined;
  #stopping: Promise<void> | undefined;

  constructor(opts?: SupervisorOptions) {
    super();
    this.#defaults = settings(opts, undefined, 'options');
  }

  /**
   * Supervises `factory()` under `name`: it is called for the first start and for every restart
   * and must return a fresh `spawn(...)` handle. Added after `start()`, the child starts at once.
   * @throws ERR_IPC_EXISTS if the name is taken; TypeError/RangeError for bad arguments.
   */
  add(name: string, factory: () => ChildProcess<unknown>, opts?: SupervisedChildOptions): this {
    if (typeof name !== 'string' || name === '') throw new TypeError('name must be a non-empty string');
    if (typeof factory !== 'function') throw new TypeError('factory must be a function returning spawn(...)');
    if (this.#entries.has(name))
      throw new IpcError(ErrorCodes.EXISTS, `supervisor: '${name}' is already supervised`);
    if (this.#state === 'stopping' || this.#state === 'stopped') throw closedError('supervisor');
    const childSettings = settings(opts, this.#defaults, 'options');
    const entry: Entry = {
      name,
      factory,
      settings: childSettings,
      channel: new SupervisedChannel(`supervised channel '${name}'`, childSettings.maxBuffered),
      phase: 'idle',
      child: undefined,
      restarts: [],
      lastExit: undefined,
      timer: undefined,
      readyError: undefined,
      inStart: false,
    };
    this.#entries.set(name, entry);
    if (this.#state === 'running') void this.#relaunch(entry);
    return this;
  }

  /**
   * Starts the children in the order they were added, each after the previous is ready. If one
   * cannot be started, those already started are stopped and the promise rejects with its error.
   */
  start(): Promise<void> {
    if (this.#state === 'stopping' || this.#state === 'stopped')
      return Promise.reject(closedError('supervisor'));
    if (this.#starting) return this.#starting;
    this.#state = 'running';
    this.#starting = (async () => {
      const interrupted = () =>
        new IpcError(ErrorCodes.CLOSED, 'supervisor: stop() was called before every child had started');
      for (const entry of this.#entries.values()) {
        if (this.#state !== 'running') throw interrupted();
        if (entry.phase !== 'idle') continue;
        try {
          await this.#launch(entry);
        } catch (err) {
          if (this.#state !== 'running') throw interrupted();
          entry.phase = 'stopped';
          await this.stop();
          throw err;
        }
      }
      // A stop() during the last launch: the start did not complete either.
      if (this.#state !== 'running') throw interrupted();
    })();
    return this.#starting;
  }

  /**
   * Stops every child in reverse order: its channel is closed, then it gets SIGTERM and, after
   * `graceMs`, SIGKILL. Pending restarts are cancelled. Idempotent.
   */
  stop(): Promise<void> {
    if (this.#stopping) return this.#stopping;
    this.#state = 'stopping';
    this.#stopping = (async () => {
      for (const entry of [...this.#entries.values()].reverse()) {
        if (entry.timer) clearTimeout(entry.timer);
        entry.timer = undefined;
        entry.phase = 'stopped';
        const child = entry.child;
        // Goodbye on the child's channel first (it may exit on its own), then the signals. The
        // close cannot hang on a child that does not read: once the child is gone, its channel
        // ends and the close completes.
        const closing = entry.channel.close();
        if (child) await child.stop({ graceMs: entry.settings.graceMs });
        await closing;
      }
      this.#state = 'stopped';
    })();
    return this.#stopping;
  }

  /** The names, in start order. */
  get names(): string[] {
    return [...this.#entries.keys()];
  }

  /** The process currently running under `name`, if one is. */
  child(name: string): ChildProcess<unknown> | undefined {
    return this.#entry(name).child;
  }

  /**
   * The channel to whichever process runs under `name`: one object for the supervisor's whole life
   * (see SupervisedChannel for what happens to messages across restarts).
   */
  channel<T = unknown>(name: string): Channel<T> {
    return this.#entry(name).channel as unknown as Channel<T>;
  }

  /** Restarts of `name` counted in the current window. */
  restarts(name: string): number {
    const entry = this.#entry(name);
    const now = performance.now();
    return entry.restarts.filter((t) => now - t < entry.settings.windowMs).length;
  }

  #entry(name: string): Entry {
    const entry = this.#entries.get(name);
    if (!entry) throw new IpcError(ErrorCodes.NOT_FOUND, `supervisor: no child named '${name}'`);
    return entry;
  }

  /** Calls the factory and watches the child's exit. Throws what the factory threw. */
  #spawnChild(entry: Entry): ChildProcess<unknown> {
    entry.phase = 'starting';
    const child = entry.factory();
    if (!(child instanceof ChildProcess)) {
      throw new TypeError(`supervisor: the factory of '${entry.name}' must return spawn(...)`);
    }
    entry.child = child;
    void child.exited.then((status) => {
      // A child never attached (its ready hook failed, it exited first, stop() came) has no pump
      // to release its channel: an shm child's segment stayed mapped, one per failed start.
      if (!this.#attached.has(child)) child.channel?.destroy();
      this.#exited(entry, child, status);
    });
    return child;
  }

  /** Waits for `ready`, then attaches the child's channel and reports the start. */
  async #ready(entry: Entry, child: ChildProcess<unknown>): Promise<void> {
    const ready = entry.settings.ready;
    if (ready) {
      // A child that exits first (killed by stop(), or crashed) is never ready: a hook still
      // waiting on it, or one that never settles, must not hold up start() or stop().
      const gone = child.exited.then((status) => {
        throw new IpcError(
          ErrorCodes.PEER_GONE,
          `supervisor: '${entry.name}' exited (${status.code ?? status.signal}) before it was ready`,
        );
      });
      gone.catch(() => {}); // the race below may be won by the hook: this one then goes unheard
      await Promise.race([ready(child), gone]);
    }
    if (entry.child !== child && entry.inStart && this.#state === 'running') {
      // It exited as its hook settled: start() fails, as for an exit during the hook.
      throw new IpcError(ErrorCodes.PEER_GONE, `supervisor: '${entry.name}' exited before it was ready`);
    }
    if (entry.child !== child || this.#state !== 'running') return;
    entry.inStart = false;
    entry.phase = 'up';
    this.#attached.add(child);
    entry.channel.attach(child.channel);
    this.#announce('start', entry.name, child);
  }

  /** A first start within start(): any failure is start()'s. */
  async #launch(entry: Entry): Promise<void> {
    entry.inStart = true;
    try {
      const child = this.#spawnChild(entry);
      try {
        await this.#ready(entry, child);
      } catch (err) {
        entry.phase = 'stopped';
        child.kill('SIGKILL');
        throw err;
      }
    } finally {
      entry.inStart = false;
    }
  }

  /** A restart (or a start after `start()`): failures go through the restart policy. */
  async #relaunch(entry: Entry): Promise<void> {
    entry.timer = undefined;
    if (this.#state !== 'running' || entry.phase === 'stopped') return;
    let child: ChildProcess<unknown>;
    try {
      child = this.#spawnChild(entry);
    } catch (err) {
      this.#failed(entry, entry.lastExit ?? NO_EXIT, err, true);
      return;
    }
    try {
      await this.#ready(entry, child);
    } catch (err) {
      // Killed; its exit goes through the restart policy like any other, with this error.
      if (entry.child === child) {
        entry.readyError = err;
        child.kill('SIGKILL');
      }
    }
  }

  #exited(entry: Entry, child: ChildProcess<unknown>, status: ExitStatus): void {
    if (entry.child !== child) return;
    entry.child = undefined;
    entry.lastExit = status;
    entry.channel.detach(child.channel);
    this.#announce('exit', entry.name, status);
    // A child that failed while starting carries why, for 'giveup'. A clean exit (code 0) stays
    // clean, as the restart policy says, even before its ready hook was done.
    const error =
      entry.phase !== 'starting' || cleanExit(status)
        ? undefined
        : (entry.readyError ??
          new IpcError(
            ErrorCodes.PEER_GONE,
            `supervisor: '${entry.name}' exited (${describeExit(status)}) before it was ready`,
          ));
    entry.readyError = undefined;
    if (this.#state !== 'running' || entry.phase === 'stopped' || entry.inStart) return;
    this.#failed(entry, status, error);
  }

  /**
   * Emits an event. A listener that throws must not cut the supervisor's bookkeeping short (skip a
   * restart, kill a child just started): its error is rethrown on the next tick, where it is the
   * application's uncaught exception, as a throwing listener of a Node stream's event would be.
   */
  #announce<K extends keyof SupervisorEvents>(event: K, ...args: SupervisorEvents[K]): void {
    try {
      (this.emit as (event: K, ...args: SupervisorEvents[K]) => boolean)(event, ...args);
    } catch (err) {
      process.nextTick(() => {
        throw err;
      });
    }
  }

  /**
   * Decides what follows an exit (or a failed spawn: `notSpawned`, `status` is then the previous
   * child's): restart after a backoff, or not.
   */
  #failed(entry: Entry, status: ExitStatus, error: unknown, notSpawned = false): void {
    const s = entry.settings;
    const clean = error === undefined && cleanExit(status);
    if (s.restart === 'never' || (s.restart === 'on-failure' && clean)) {
      entry.phase = 'done';
      // Whoever reads the channel learns there why no child will answer: the error is all there is
      // (no 'giveup' event without restarts).
      entry.channel.end(notRestarted(entry.name, status, error, clean, notSpawned));
      return;
    }
    const now = performance.now();
    entry.restarts = entry.restarts.filter((t) => now - t < s.windowMs);
    if (entry.restarts.length >= s.maxRestarts) {
      entry.phase = 'gaveup';
      entry.channel.end(
        new IpcError(
          ErrorCodes.PEER_GONE,
          `supervised channel '${entry.name}': gave up after ${entry.restarts.length} restarts in ${s.windowMs} ms (last: ${describeExit(status)})`,
          error === undefined ? undefined : { cause: error },
        ),
      );
      if (error === undefined) this.#announce('giveup', entry.name, status);
      else this.#announce('giveup', entry.name, status, error);
      return;
    }
    const attempt = entry.restarts.length + 1;
    // factor^(n-1) may be Infinity: from an initialMs of 0 the delay stays 0 (not 0 * Infinity = NaN).
    const delayMs = s.initialMs === 0 ? 0 : Math.min(s.maxMs, s.initialMs * s.factor ** (attempt - 1));
    entry.restarts.push(now);
    entry.phase = 'backoff';
    entry.timer = setTimeout(() => void this.#relaunch(entry), delayMs);
    this.#announce('restart', entry.name, { attempt, delayMs, lastExit: status });
  }
}

function settings(
  opts: SupervisedChildOptions | undefined,
  base: Settings | undefined,
  where: string,
): Settings {
  if (opts !== undefined && (typeof opts !== 'object' || opts === null))
    throw new TypeError(`${where} must be an object`);
  const restart = opts?.restart ?? base?.restart ?? 'on-failure';
  if (restart !== 'always' && restart !== 'on-failure' && restart !== 'never') {
    throw new RangeError(
      `${where}.restart must be 'always', 'on-failure' or 'never', got ${String(restart)}`,
    );
  }
  const count = (key: string, value: number | undefined, fallback: number, min: number): number => {
    const v = value ?? fallback;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) {
      throw numberError(v, `${where}.${key} must be an integer >= ${min}, got ${String(v)}`);
    }
    return v;
  };
  const ms = (
    key: string,
    value: number | undefined,
    fallback: number,
    min: number,
    max = Infinity,
  ): number => {
    const v = value ?? fallback;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min) {
      throw numberError(v, `${where}.${key} must be a finite number >= ${min}, got ${String(v)}`);
    }
    // A timer's delay: past the longest one, Node's setTimeout fires after 1 ms instead.
    if (v > max) {
      throw new RangeError(`${where}.${key} must be at most ${max} ms (the longest Node timer), got ${v}`);
    }
    return v;
  };
  const backoff = opts?.backoff;
  if (backoff !== undefined && (typeof backoff !== 'object' || backoff === null)) {
    throw new TypeError(`${where}.backoff must be an object`);
  }
  const ready = (opts as SupervisedChildOptions | undefined)?.ready;
  if (ready !== undefined && typeof ready !== 'function')
    throw new TypeError(`${where}.ready must be a function`);
  const initialMs = ms('backoff.initialMs', backoff?.initialMs, base?.initialMs ?? 100, 0);
  const maxMs = ms('backoff.maxMs', backoff?.maxMs, base?.maxMs ?? 5000, 0, MAX_TIMEOUT_MS);
  return {
    restart,
    maxRestarts: count('maxRestarts', opts?.maxRestarts, base?.maxRestarts ?? 5, 0),
    windowMs: ms('windowMs', opts?.windowMs, base?.windowMs ?? 60_000, 1),
    initialMs,
    maxMs: Math.max(maxMs, 0),
    factor: ms('backoff.factor', backoff?.factor, base?.factor ?? 2, 1),
    graceMs: ms('graceMs', opts?.graceMs, base?.graceMs ?? 5000, 0, MAX_TIMEOUT_MS),
    maxBuffered: count('maxBuffered', opts?.maxBuffered, base?.maxBuffered ?? 1024, 0),
    ready,
  };
}

/** Why a child that is not restarted will not answer, for its channel's end. */
function notRestarted(
  name: string,
  status: ExitStatus,
  error: unknown,
  clean: boolean,
  notSpawned: boolean,
): IpcError {
  const where = `supervised channel '${name}'`;
  if (clean) return new IpcError(ErrorCodes.CLOSED, `${where}: the child exited with code 0`);
  if (error === undefined) {
    return new IpcError(
      ErrorCodes.PEER_GONE,
      `${where}: the child exited (${describeExit(status)}) and is not restarted`,
    );
  }
  const why = notSpawned
    ? 'the child could not be started'
    : `the child did not get ready (it exited: ${describeExit(status)})`;
  return new IpcError(ErrorCodes.PEER_GONE, `${where}: ${why}, and is not restarted`, { cause: error });
}
