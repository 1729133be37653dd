/**
 * The channel between a parent and a child it spawned: two anonymous pipes, one each way, passed
 * as the child's fds 3 (parent -> child) and 4 (child -> parent). The child finds them through the
 * IPCKIT_CHANNEL environment variable and takes them with {@link parentChannel}.
 */
import { fstatSync, type Stats } from 'node:fs';
import { type Channel, type ChannelOptions, checkChannelOptions } from '../core/channel.js';
import { ErrorCodes, IpcError } from '../core/errors.js';
import { native, nativeAvailable } from '../native/binding.js';
import { ShmChannel } from '../shm/shm-channel.js';
import { channelWriteStream, framedReadStream } from './fd-stream.js';
import { PipeChannel } from './pipe-channel.js';

/** The environment variable that tells a child where its channel to the parent is. */
export const CHANNEL_ENV = 'IPCKIT_CHANNEL';
const CHILD_READ_FD = 3;
const CHILD_WRITE_FD = 4;

/** What spawn needs to give a child a pipe channel. */
export interface ChildPipePlan {
  /** Entries for the child's stdio at index 3 and 4. */
  stdio: [number | 'pipe', number | 'pipe'];
  /** Environment to add for the child. */
  env: Record<string, string>;
  /**
   * Called once the child is spawned: closes the child's ends in this process and returns the
   * parent's Channel. `extra` is child.stdio, used when the addon is missing (socketpairs instead).
   */
  attach<T>(what: string, opts: ChannelOptions<T> | undefined, extra: readonly unknown[]): Channel<T>;
  /** Closes every fd if the spawn failed. */
  abort(): void;
}

/**
 * Prepares the two pipes of a parent-child channel. Without the native addon it falls back to the
 * socketpairs Node makes for `stdio: 'pipe'`: same protocol, same API.
 */
export function planChildPipes(): ChildPipePlan {
  const env = { [CHANNEL_ENV]: `pipe:${CHILD_READ_FD}:${CHILD_WRITE_FD}` };
  if (!nativeAvailable()) {
    return {
      stdio: ['pipe', 'pipe'],
      env,
      attach: (what, opts, extra) => {
        const toChild = extra[CHILD_READ_FD] as import('node:net').Socket;
        const fromChild = extra[CHILD_WRITE_FD] as import('node:net').Socket;
        return new PipeChannel(what, fromChild, toChild, opts);
      },
      abort: () => {},
    };
  }
  const [toChildRead, toChildWrite] = native().pipe2();
  const [fromChildRead, fromChildWrite] = native().pipe2();
  growPipe(toChildWrite);
  growPipe(fromChildWrite);
  return {
    stdio: [toChildRead, fromChildWrite],
    env,
    attach: (what, opts) => {
      // pipe2 made these fds, not fs: the addon closes them (fs would warn in a worker thread).
      native().close(toChildRead);
      native().close(fromChildWrite);
      const input = framedReadStream(fromChildRead);
      const output = channelWriteStream(toChildWrite);
      return new PipeChannel(what, input, output, opts);
    },
    abort: () => {
      for (const fd of [toChildRead, toChildWrite, fromChildRead, fromChildWrite]) native().close(fd);
    },
  };
}

/**
 * Kernel buffer of a parent-child pipe: 256 KiB instead of the default 64 KiB, so a large message
 * crosses in a few write/wake-up rounds instead of sixteen per MiB. Not more: the kernel charges a
 * pipe's full size to the user's pipe budget (pipe-user-pages-soft, 64 MiB by default) whether or
 * not it fills, and past that budget every new pipe the user makes, in any program, is shrunk to
 * two pages. At 512 KiB per child, a pool of 128 children stays within it.
 */
const CHILD_PIPE_BYTES = 256 * 1024;

/** Best effort: past the user's pipe budget the kernel refuses (EPERM); the default size still works. */
function growPipe(fd: number): void {
  try {
    native().setPipeSize(fd, CHILD_PIPE_BYTES);
  } catch {
    // Keep the default size.
  }
}

/** Options for {@link parentChannel}. */
export interface ParentChannelOptions<T = unknown> extends ChannelOptions<T> {
  /**
   * Exit when the parent vanishes: when the channel ends with ERR_IPC_PEER_GONE (the parent died or
   * exited without closing it), this process sends itself SIGTERM, so its SIGTERM handlers run (a
   * process without one ends at once). A parent that closed the channel has said goodbye: that
   * does not count. Detection rides on the channel, so it needs the event loop to turn and, while
   * more than `receiveHighWaterMark` messages sit unreceived, waits until they are received.
   * Default false. May be turned on by a later call.
   */
  exitWithParent?: boolean;
}

let inherited: Channel<unknown> | undefined;
let exitWithParent = false;

/** The parent channel: a PipeChannel that can end this process when the parent vanishes. */
class ParentPipeChannel<T> extends PipeChannel<T> {
  protected override peerGone(detail: string, cause?: unknown): void {
    super.peerGone(detail, cause);
    if (exitWithParent) process.kill(process.pid, 'SIGTERM');
  }
}

/**
 * The channel to the parent, in a child started by `spawn(..., { channel: 'pipe' | 'shm' })`. Use the same
 * codec as the parent (default msgpack). Calling it again returns the same channel (its options are
 * those of the first call, except that `exitWithParent: true` can be turned on later).
 * If the parent dies, the channel ends with ERR_IPC_PEER_GONE; `exitWithParent` then ends this process.
 * @throws ERR_IPC_NOT_FOUND when this process was not spawned with a channel.
 */
export function parentChannel<T = unknown>(opts?: ParentChannelOptions<T>): Channel<T> {
  const exitOption = opts?.exitWithParent;
  if (exitOption !== undefined && typeof exitOption !== 'boolean') {
    throw new TypeError('options.exitWithParent must be a boolean');
  }
  if (exitOption) exitWithParent = true;
  if (inherited) return inherited as Channel<T>;
  const spec = process.env[CHANNEL_ENV];
  // Before the variable is dropped and the fds are taken: a bad option leaves the channel to a
  // call with good ones.
  if (spec) checkChannelOptions(opts, 'parent channel');
  const shm = spec ? /^shm:(\d+)$/.exec(spec) : null;
  if (shm) {
    // spawn(..., { channel: 'shm' }): a ShmChannel in the anonymous segment at this fd. The variable
    // goes only once the addon is there: a failure to load it (out of fds) leaves it for a retry.
    const fd = Number(shm[1]);
    checkInherited(fd, 'shm');
    native().setCloexec(fd, true);
    delete process.env[CHANNEL_ENV];
    inherited = ShmChannel.openInherited<unknown>(fd, opts as ChannelOptions<unknown>, () => {
      if (exitWithParent) process.kill(process.pid, 'SIGTERM');
    });
    return inherited as Channel<T>;
  }
  const match = spec ? /^pipe:(\d+):(\d+)$/.exec(spec) : null;
  if (!match) {
    throw new IpcError(
      ErrorCodes.NOT_FOUND,
      'parentChannel(): this process has no parent channel (spawn it with ipckit spawn(..., { channel: "pipe" }))',
    );
  }
  const readFd = Number(match[1]);
  const writeFd = Number(match[2]);
  checkInherited(readFd, 'pipe');
  checkInherited(writeFd, 'pipe');
  // Our own children must not inherit the channel: neither its fds nor the variable pointing at
  // them. The variable goes last: out of fds, nativeAvailable() throws, and a retry needs it.
  if (nativeAvailable()) {
    native().setCloexec(readFd, true);
    native().setCloexec(writeFd, true);
  }
  delete process.env[CHANNEL_ENV];
  inherited = new ParentPipeChannel<unknown>(
    'parent channel',
    framedReadStream(readFd),
    channelWriteStream(writeFd),
    opts as ChannelOptions<unknown>,
  );
  return inherited as Channel<T>;
}

/**
 * Throws ERR_IPC_NOT_FOUND unless `fd` is open and of the kind spawn() passes: the variable can
 * reach a process the fds did not, through a launcher that runs the program in a child of its own
 * without passing them on (the tsx command does). Taking whatever is open there instead failed
 * with a bare ERR_INVALID_FD_TYPE, or could take over an unrelated pipe.
 */
function checkInherited(fd: number, kind: 'pipe' | 'shm'): void {
  let stat: Stats | undefined;
  try {
    stat = fstatSync(fd);
  } catch {} // closed: stat stays undefined
  if (stat && (kind === 'shm' ? stat.isFile() : stat.isFIFO() || stat.isSocket())) return;
  throw new IpcError(
    ErrorCodes.NOT_FOUND,
    `parentChannel(): the channel's fd ${fd} was not inherited (it is ${stat ? 'another kind of file' : 'closed'}): was this program started by a launcher that runs it in a process of its own without passing fds on, such as the tsx command? Run it with node (node --import tsx for TypeScript)`,
  );
}
