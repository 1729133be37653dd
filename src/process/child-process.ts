/**
 * The handle of a process started by `spawn()`: its channel, its state, and control over it
 * (signals, pause/resume, a graceful stop that escalates, stats).
 *
 * Reaping: Node waits for every child it spawned (libuv's SIGCHLD handler), so no exit path leaves
 * a zombie behind as long as the handle exists; this class never detaches a child from Node.
 * Signals to a direct child are safe from pid reuse: Node refuses to signal a child it has reaped.
 * Signals to a process group (`killGroup`) go only while the leader has not been reaped, plus once
 * right after (see `#onExit`), when the group id cannot yet have been reused.
 */
import type { ChildProcess as NodeChild } from 'node:child_process';
import type { Channel } from '../core/channel.js';
import { numberError } from '../core/options.js';
import { identityOf, type ProcessIdentity } from '../core/process-identity.js';
import { StreamChannel } from '../core/stream-channel.js';
import { MAX_TIMEOUT_MS } from '../core/wait.js';
import { type ProcessStats, processGone, readProcessStats } from './proc-stats.js';

/** How a process ended. */
export interface ExitStatus {
  /** The exit code, or null when a signal ended it. */
  code: number | null;
  /** The signal that ended it, or null. */
  signal: NodeJS.Signals | null;
}

/** `signal SIGKILL` or `code 3`, for messages. */
export function describeExit(status: ExitStatus): string {
  return status.signal ? `signal ${status.signal}` : `code ${status.code}`;
}

/** Options for {@link ChildProcess.stop}. */
export interface StopOptions {
  /**
   * How long the process may take to exit after `signal` before it gets SIGKILL, at most 2^31 - 1
   * (the longest Node timer). Default 5000.
   */
  graceMs?: number;
  /** The polite signal sent first. Default `'SIGTERM'`. */
  signal?: NodeJS.Signals;
}

/** `'running'`, `'paused'` (stopped by {@link ChildProcess.pause}) or `'exited'`. */
export type ProcessState = 'running' | 'paused' | 'exited';

/** A process started by `spawn()`. */
export class ChildProcess<T = unknown> implements AsyncDisposable {
  /** The underlying Node ChildProcess (its stdout/stderr streams when stdio is 'pipe'). */
  readonly process: NodeChild;
  /** The message channel to the child, when spawned with `channel`. */
  readonly channel: Channel<T> | undefined;
  /** Resolves with how the process ended. Never rejects. */
  readonly exited: Promise<ExitStatus>;
  /** The process group the child leads, when spawned with `killGroup` (signals go to all of it). */
  readonly pgid: number | undefined;
  /** pid and start time: names this process even after its pid is reused. */
  readonly identity: ProcessIdentity;
  #state: ProcessState = 'running';
  #status: ExitStatus | undefined;

  /** @internal Made by `spawn()`. */
  constructor(child: NodeChild, channel: Channel<T> | undefined, opts?: { group?: boolean }) {
    this.process = child;
    this.channel = channel;
    const pid = child.pid!;
    this.pgid = opts?.group ? pid : undefined;
    // The child cannot have been reaped yet (that needs a turn of the event loop), so this reads
    // our child's own /proc entry.
    this.identity = identityOf(pid) ?? { pid, startTime: 0 };
    // A failed kill() is reported as an 'error' event; it must not crash the process.
    child.on('error', () => {});
    this.exited = new Promise<ExitStatus>((resolve) => {
      child.once('exit', (code, signal) => {
        this.#state = 'exited';
        this.#status = { code, signal };
        if (channel instanceof StreamChannel) channel.peerExited();
        this.#onExit();
        resolve(this.#status);
      });
    });
  }

  /** The process id. */
  get pid(): number {
    return this.identity.pid;
  }

  /** `'running'`, `'paused'` (SIGSTOP) or `'exited'`. */
  get state(): ProcessState {
    return this.#state;
  }

  /** How it ended, once it has (the value `exited` resolves with). */
  get exitStatus(): ExitStatus | undefined {
    return this.#status;
  }

  /**
   * Sends `signal` (default SIGTERM) to the process, or to its whole group with `killGroup`.
   * Returns false if it has already exited. A paused process acts on most signals only once
   * resumed; {@link stop} takes care of that.
   */
  kill(signal: NodeJS.Signals | number = 'SIGTERM'): boolean {
    if (this.#state === 'exited') return false;
    if (this.pgid === undefined) return this.process.kill(signal);
    try {
      process.kill(-this.pgid, signal);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
      throw err;
    }
  }

  /** Suspends the process (SIGSTOP; its whole group with `killGroup`). No-op once exited. */
  pause(): void {
    if (this.#state === 'running' && this.kill('SIGSTOP')) this.#state = 'paused';
  }

  /** Continues a paused process (SIGCONT). No-op unless paused. */
  resume(): void {
    if (this.#state === 'paused' && this.kill('SIGCONT')) this.#state = 'running';
  }

  /**
   * Asks the process to exit with `signal` (default SIGTERM) and sends SIGKILL if it has not exited
   * after `graceMs` (default 5000). A paused process is continued so it can act on the signal.
   * Resolves with how it ended (`signal: 'SIGKILL'` when it had to be killed).
   */
  stop(opts?: StopOptions): Promise<ExitStatus> {
    const graceMs = opts?.graceMs ?? 5000;
    const signal = opts?.signal ?? 'SIGTERM';
    if (typeof graceMs !== 'number' || !(graceMs >= 0) || !Number.isFinite(graceMs)) {
      return Promise.reject(
        numberError(graceMs, `options.graceMs must be a finite number >= 0, got ${String(graceMs)}`),
      );
    }
    // Past this, Node's setTimeout fires after 1 ms: the SIGKILL would come at once.
    if (graceMs > MAX_TIMEOUT_MS) {
      return Promise.reject(
        new RangeError(
          `options.graceMs must be at most ${MAX_TIMEOUT_MS} ms (the longest Node timer), got ${graceMs}`,
        ),
      );
    }
    if (typeof signal !== 'string') {
      return Promise.reject(new TypeError('options.signal must be a signal name such as "SIGTERM"'));
    }
    if (this.#state === 'exited') return this.exited;
    try {
      const paused = this.#state === 'paused';
      this.kill(signal);
      // After the signal, so that a handler for it runs as soon as the process continues; sent
      // also to a process that pause() did not stop (kill -STOP from outside), as systemd does.
      if (paused) this.resume();
      else this.kill('SIGCONT');
    } catch (err) {
      return Promise.reject(err);
    }
    const timer = setTimeout(() => this.kill('SIGKILL'), graceMs);
    return this.exited.finally(() => clearTimeout(timer));
  }

  /** CPU time and memory from /proc. ERR_IPC_NOT_FOUND once the process has exited. */
  stats(): Promise<ProcessStats> {
    if (this.#state === 'exited') return Promise.reject(processGone(`process ${this.pid}`));
    return readProcessStats(this.identity, `process ${this.pid}`);
  }

  /**
   * `await using child = spawn(...)`: at the end of the scope, closes the channel and stops the
   * process (see {@link stop}), as `Supervisor.stop()` does: the goodbye first (the child may exit
   * on its own), then the signals. Once the child has exited, a close still waiting (to write into
   * a pipe that a process the child left behind holds open and does not read) is cut short with
   * destroy(): nothing of the channel (its fds, a shm channel's segment) is held after the scope.
   */
  async [Symbol.asyncDispose](): Promise<void> {
    const closing = this.channel?.close();
    await this.stop();
    this.channel?.destroy();
    await closing;
  }

  #onExit(): void {
    if (this.pgid === undefined) return;
    // The leader is gone; what is left of its group must not outlive it. The group id stays
    // reserved while any member lives, so this reaches exactly the group we created.
    try {
      process.kill(-this.pgid, 'SIGKILL');
    } catch {}
  }
}
