/**
 * spawn(): start a process with a typed channel attached, and control it through the returned
 * {@link ChildProcess}. The channel transport is chosen in channel-plan.ts (two anonymous pipes
 * today); the child takes its end with `parentChannel()`. Extra fds go with `share`.
 */
import { type ChildProcess as NodeChild, spawn as nodeSpawn, type StdioOptions } from 'node:child_process';
import { Stream } from 'node:stream';
import type { Channel, ChannelOptions } from '../core/channel.js';
import { ErrorCodes, fromSystemError, IpcError } from '../core/errors.js';
import { fdExhaustionError } from '../core/fd-exhaustion.js';
import type { ShmChannelMode } from '../shm/shm-channel.js';
import {
  CHANNEL_ENV_NAME,
  type ChannelKind,
  type ChannelPlan,
  checkChannelKind,
  checkChannelOptions,
  checkShmOptions,
  planChannel,
  type StdioEntry,
} from './channel-plan.js';
import { ChildProcess } from './child-process.js';
import { cwdFailure, launchFailure } from './launch-failure.js';
import { planShares, SHARE_ENV, type ShareItem } from './share.js';

export { ChildProcess, type ExitStatus, type ProcessState, type StopOptions } from './child-process.js';

/** Options for {@link spawn}. */
export interface SpawnOptions<T = unknown> extends ChannelOptions<T> {
  /** Attach a message channel: `'pipe'` (two anonymous pipes), `'shm'` (a ShmChannel) or `false` (default). */
  channel?: ChannelKind | false;
  /**
   * With `channel: 'shm'`: bytes of each of its two rings, a power of two from 4 KiB to 1 GiB.
   * Messages larger than half a ring still go, in pieces. Default 1 MiB.
   */
  capacity?: number;
  /** With `channel: 'shm'`: how its readers wait, `'default'` or `'latency'` (see ShmChannel). */
  mode?: ShmChannelMode;
  /** Environment of the child. Default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** Working directory of the child. */
  cwd?: string;
  /**
   * The child's stdin, stdout and stderr, as in `child_process.spawn`; an entry may also be an
   * object with an `fd`, such as a `PipeReader` or `PipeWriter`. Default `'inherit'`.
   */
  stdio?: 'inherit' | 'pipe' | 'ignore' | StdioOptions | readonly (StdioEntry | { readonly fd: number })[];
  /**
   * Extra fds for the child (numbers, or objects with an `fd` such as a `PipeReader`): it gets them
   * as consecutive fds after its channel's and finds each with `inheritedFd(index)`. Your copies
   * stay open; close them when the child has its own.
   */
  share?: readonly ShareItem[];
  /**
   * Start the child in a new process group (and session) that it leads: `kill`, `pause`, `resume`
   * and `stop` then signal the whole group, and whatever is left of the group is SIGKILLed when the
   * child exits, so grandchildren do not leak. Default false.
   */
  killGroup?: boolean;
}

/** A {@link ChildProcess} spawned with a channel: `channel` is always there. */
export type ChildProcessWithChannel<T> = ChildProcess<T> & { readonly channel: Channel<T> };

export function spawn<T = unknown>(
  command: string,
  args: readonly string[],
  opts: SpawnOptions<T> & { channel: ChannelKind },
): ChildProcessWithChannel<T>;
export function spawn<T = unknown>(
  command: string,
  args?: readonly string[],
  opts?: SpawnOptions<T>,
): ChildProcess<T>;
/**
 * Starts `command` with `args`. With `{ channel: 'pipe' }` the returned handle's `channel` talks to
 * the child's `parentChannel()`.
 * @throws ERR_IPC_NOT_FOUND if the command is not found, ERR_IPC_PERMISSION if it is not executable;
 * TypeError/RangeError for bad options
 * (checked before anything is started).
 */
export function spawn<T = unknown>(
  command: string,
  args: readonly string[] = [],
  opts?: SpawnOptions<T>,
): ChildProcess<T> {
  if (typeof command !== 'string' || command === '')
    throw new TypeError('command must be a non-empty string');
  if (!Array.isArray(args) || args.some((a) => typeof a !== 'string')) {
    throw new TypeError('args must be an array of strings');
  }
  if (opts !== undefined && (typeof opts !== 'object' || opts === null)) {
    throw new TypeError('options must be an object');
  }
  checkEnv(opts?.env);
  const channelKind = checkChannelKind(opts?.channel);
  if (channelKind) checkChannelOptions(opts as ChannelOptions<unknown>);
  const shm = checkShmOptions(channelKind, opts?.capacity, opts?.mode);
  const killGroup = opts?.killGroup ?? false;
  if (typeof killGroup !== 'boolean') throw new TypeError('options.killGroup must be a boolean');
  const base = normalizeStdio(opts?.stdio);
  const plan: ChannelPlan | undefined = channelKind ? planChannel(channelKind, shm) : undefined;
  let shares: ReturnType<typeof planShares>;
  try {
    shares = planShares(opts?.share, 3 + (plan?.stdio.length ?? 0));
  } catch (err) {
    plan?.abort();
    throw err;
  }
  const stdio: StdioEntry[] = [...base, ...(plan?.stdio ?? []), ...shares.stdio];
  let child: NodeChild;
  try {
    child = nodeSpawn(command, args, {
      stdio,
      cwd: opts?.cwd,
      env: childEnv(opts?.env ?? process.env, { ...plan?.env, ...shares.env }),
      detached: killGroup,
    });
  } catch (err) {
    plan?.abort();
    // Node's own checks of the options it takes as they are (cwd, stdio entries): its TypeError
    // names the option, as ours do.
    if (err instanceof TypeError || err instanceof RangeError) throw err;
    throw cwdFailure(command, opts?.cwd) ?? fromSystemError(err, `spawn ${command}`);
  }
  if (child.pid === undefined) {
    // Asked before the channel's fds are given back, which may be what made the spawn fail.
    const exhausted = fdExhaustionError(`spawn ${command}`);
    plan?.abort();
    // Node reports ENOENT/EACCES/EMFILE asynchronously; observe it so it is not an unhandled 'error'.
    child.once('error', () => {});
    if (exhausted) throw exhausted;
    const env = opts?.env ?? process.env;
    throw launchFailure(command, opts?.cwd, env.PATH);
  }
  let channel: Channel<T> | undefined;
  try {
    channel = plan?.attach<T>(`channel to ${command} (pid ${child.pid})`, opts, child.stdio, child.pid);
  } catch (err) {
    // Never leave a running child nobody holds a handle to. Node still reaps it.
    child.kill('SIGKILL');
    throw err;
  }
  return new ChildProcess<T>(child, channel, { group: killGroup });
}

/**
 * A TypeError unless `env` is an object of variables (or undefined/null: this process's). Node
 * itself takes anything: a string would become the variables `0`, `1`, … of its characters.
 */
export function checkEnv(env: unknown): void {
  if (env === undefined || env === null) return;
  if (typeof env !== 'object' || Array.isArray(env)) {
    const got = Array.isArray(env) ? 'an array' : `a ${typeof env}`;
    throw new TypeError(`options.env must be an object of environment variables, got ${got}`);
  }
}

/**
 * The child's environment: the caller's plus what the channel and shares add. Variables this
 * process inherited from its own parent for its own channel must not reach the child, which would
 * take fds it does not have for its channel.
 */
function childEnv(base: NodeJS.ProcessEnv, add: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base };
  delete env[CHANNEL_ENV_NAME];
  delete env[SHARE_ENV];
  return Object.assign(env, add);
}

/** An object that only holds an fd (a pipe end), not one of Node's streams. */
function isFdHolder(entry: unknown): entry is { readonly fd: number } {
  return (
    typeof entry === 'object' &&
    entry !== null &&
    !(entry instanceof Stream) &&
    typeof (entry as { fd?: unknown }).fd === 'number'
  );
}

function normalizeStdio(stdio: SpawnOptions['stdio']): StdioEntry[] {
  if (stdio === undefined) return ['inherit', 'inherit', 'inherit'];
  if (typeof stdio === 'string') return [stdio, stdio, stdio];
  if (!Array.isArray(stdio))
    throw new TypeError("options.stdio must be 'inherit', 'pipe', 'ignore' or an array");
  // Node takes any object with a numeric `fd` at run time; its types take only its own streams.
  const list = (stdio as readonly (StdioEntry | { readonly fd: number })[]).map((entry, i) => {
    if (typeof entry === 'number' && entry < 0) {
      throw new RangeError(
        `options.stdio[${i}] must be an fd >= 0, got ${entry} (a closed pipe end's fd is -1)`,
      );
    }
    if (!isFdHolder(entry)) return entry;
    if (entry.fd < 0)
      throw new IpcError(ErrorCodes.CLOSED, `options.stdio[${i}] is closed (its fd is ${entry.fd})`);
    return entry.fd;
  });
  if (list.length > 3) {
    throw new RangeError('options.stdio takes at most 3 entries; pass further fds with options.share');
  }
  while (list.length < 3) list.push('inherit');
  return list;
}
