/**
 * spawn(): start a process with a typed channel attached, and control it.
 * The channel is two anonymous pipes (see src/pipe/child-channel.ts); the child takes its end with
 * `parentChannel()`.
 */
import { type ChildProcess as NodeChild, spawn as nodeSpawn, type StdioOptions } from 'node:child_process';
import type { Channel, ChannelOptions } from '../core/channel.js';
import { ErrorCodes, fromSystemError, IpcError } from '../core/errors.js';
import { planChildPipes } from '../pipe/child-channel.js';

/** Options for {@link spawn}. */
export interface SpawnOptions<T = unknown> extends ChannelOptions<T> {
  /** Attach a message channel: `'pipe'` (two anonymous pipes) or `false` (default). */
  channel?: 'pipe' | false;
  /** Environment of the child. Default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** Working directory of the child. */
  cwd?: string;
  /** The child's stdin, stdout and stderr, as in `child_process.spawn`. Default `'inherit'`. */
  stdio?: 'inherit' | 'pipe' | 'ignore' | StdioOptions;
}

/** How a process ended. */
export interface ExitStatus {
  /** The exit code, or null when a signal ended it. */
  code: number | null;
  /** The signal that ended it, or null. */
  signal: NodeJS.Signals | null;
}

/** A process started by {@link spawn}. */
export class ChildProcess<T = unknown> {
  /** The underlying Node ChildProcess (its stdout/stderr streams when stdio is 'pipe'). */
  readonly process: NodeChild;
  /** The message channel to the child, when spawned with `channel`. */
  readonly channel: Channel<T> | undefined;
  /** Resolves when the process has exited. Never rejects. */
  readonly exited: Promise<ExitStatus>;
  #state: 'running' | 'paused' | 'exited' = 'running';

  constructor(child: NodeChild, channel: Channel<T> | undefined) {
    this.process = child;
    this.channel = channel;
    this.exited = new Promise<ExitStatus>((resolve) => {
      child.once('exit', (code, signal) => {
        this.#state = 'exited';
        resolve({ code, signal });
      });
    });
  }

  /** The process id. */
  get pid(): number {
    return this.process.pid!;
  }

  /** `'running'`, `'paused'` (SIGSTOP) or `'exited'`. */
  get state(): 'running' | 'paused' | 'exited' {
    return this.#state;
  }

  /** Sends a signal; false if the process has already exited. */
  kill(signal: NodeJS.Signals | number = 'SIGTERM'): boolean {
    if (this.#state === 'exited') return false;
    return this.process.kill(signal);
  }

  /** Suspends the process (SIGSTOP). */
  pause(): void {
    if (this.kill('SIGSTOP')) this.#state = 'paused';
  }

  /** Continues a paused process (SIGCONT). */
  resume(): void {
    if (this.kill('SIGCONT')) this.#state = 'running';
  }

  /** SIGTERM, then SIGKILL if it has not exited after `graceMs` (default 5000). */
  async stop(opts?: { graceMs?: number }): Promise<ExitStatus> {
    const graceMs = opts?.graceMs ?? 5000;
    if (this.#state === 'paused') this.resume();
    this.kill('SIGTERM');
    const timer = setTimeout(() => this.kill('SIGKILL'), graceMs);
    const status = await this.exited;
    clearTimeout(timer);
    return status;
  }
}

/** A {@link ChildProcess} spawned with a channel: `channel` is always there. */
export type ChildProcessWithChannel<T> = ChildProcess<T> & { readonly channel: Channel<T> };

export function spawn<T = unknown>(
  command: string,
  args: readonly string[],
  opts: SpawnOptions<T> & { channel: 'pipe' },
): ChildProcessWithChannel<T>;
export function spawn<T = unknown>(
  command: string,
  args?: readonly string[],
  opts?: SpawnOptions<T>,
): ChildProcess<T>;
/**
 * Starts `command` with `args`. With `{ channel: 'pipe' }` the returned handle's `channel` talks to
 * the child's `parentChannel()`.
 * @throws ERR_IPC_NOT_FOUND if the command does not exist (reported by the promise `exited` too).
 */
export function spawn<T = unknown>(
  command: string,
  args: readonly string[] = [],
  opts?: SpawnOptions<T>,
): ChildProcess<T> {
  const channelKind = opts?.channel ?? false;
  if (channelKind !== false && channelKind !== 'pipe') {
    throw new RangeError(`options.channel must be 'pipe' or false, got ${String(channelKind)}`);
  }
  const base = normalizeStdio(opts?.stdio);
  const plan = channelKind === 'pipe' ? planChildPipes() : undefined;
  const stdio: StdioOptions = plan ? [...base, ...plan.stdio] : base;
  let child: NodeChild;
  try {
    child = nodeSpawn(command, args, {
      stdio,
      cwd: opts?.cwd,
      env: plan ? { ...(opts?.env ?? process.env), ...plan.env } : (opts?.env ?? process.env),
    });
  } catch (err) {
    plan?.abort();
    throw fromSystemError(err, `spawn ${command}`);
  }
  if (child.pid === undefined) {
    plan?.abort();
    // Node reports ENOENT asynchronously; observe it so it is not an unhandled 'error'.
    child.once('error', () => {});
    throw new IpcError(ErrorCodes.NOT_FOUND, `spawn ${command}: the command could not be started`);
  }
  const channel = plan?.attach<T>(`channel to ${command} (pid ${child.pid})`, opts, child.stdio);
  return new ChildProcess<T>(child, channel);
}

type StdioEntry = Extract<StdioOptions, readonly unknown[]>[number];

function normalizeStdio(stdio: SpawnOptions['stdio']): StdioEntry[] {
  if (stdio === undefined) return ['inherit', 'inherit', 'inherit'];
  if (typeof stdio === 'string') return [stdio, stdio, stdio];
  const list: StdioEntry[] = [...(stdio as StdioEntry[])];
  if (list.length > 3)
    throw new RangeError('options.stdio takes at most 3 entries; fds 3 and 4 carry the channel');
  while (list.length < 3) list.push('inherit');
  return list;
}
