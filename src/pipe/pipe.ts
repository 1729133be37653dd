/**
 * Anonymous pipes: one-way byte channels made by pipe2(2). Each end is a file descriptor that can be
 * handed to a child in its `stdio`, read or written as a Node stream, or carry framed messages.
 */
import type { Socket } from 'node:net';
import { type ChannelOptions, checkChannelOptions, type Receiver, type Sender } from '../core/channel.js';
import { ErrorCodes, fromSystemError, IpcError } from '../core/errors.js';
import { numberError } from '../core/options.js';
import { StreamChannel } from '../core/stream-channel.js';
import { native } from '../native/binding.js';
import { framedReadStream, readStream, writeStream } from './fd-stream.js';
import { PipeChannel } from './pipe-channel.js';

/** Options for {@link Pipe.create}. */
export interface PipeOptions {
  /** Kernel buffer size in bytes (F_SETPIPE_SZ; the kernel rounds up). Default: the system's, 64 KiB. */
  size?: number;
}

/** What one end of a pipe can become; the fd is consumed by the first. */
abstract class PipeEnd {
  #fd: number;
  #taken = false;

  constructor(fd: number) {
    this.#fd = fd;
  }

  /**
   * The file descriptor, e.g. for `spawn(cmd, args, { stdio: ['ignore', writer.fd, 'inherit'] })`;
   * -1 once closed (as a closed FileHandle's) or handed to a stream, receiver or sender, which
   * closes it when it ends: the number may then name another file.
   */
  get fd(): number {
    return this.#taken ? -1 : this.#fd;
  }

  /** Closes this process's copy of the fd (after handing it to a child, close yours). Idempotent. */
  close(): void {
    if (this.#taken) return;
    this.#taken = true;
    try {
      // pipe2 and inheritance open pipe fds, never fs: the addon closes them (no worker warning).
      native().close(this.#fd);
    } catch {}
  }

  protected take(what: string): number {
    if (this.#taken) {
      throw new IpcError(ErrorCodes.CLOSED, `pipe ${what} end (fd ${this.#fd}) is already closed or in use`);
    }
    this.#taken = true;
    return this.#fd;
  }
}

/** The read end of an anonymous pipe. */
export class PipeReader extends PipeEnd {
  /** The raw bytes as a Node Readable (a net.Socket); it owns the fd from now on. */
  stream(): Socket {
    return readStream(this.take('read'));
  }

  /** Framed messages written by a {@link PipeWriter.sender} on the other end. */
  receiver<T = unknown>(opts?: ChannelOptions<T>): Receiver<T> {
    const what = `pipe reader (fd ${this.fd})`;
    checkChannelOptions(opts, what); // before the fd is taken: a bad option leaves the end usable
    return new PipeChannel<T>(what, framedReadStream(this.take('read')), undefined, {
      ...opts,
      handshake: false,
    });
  }
}

/** The write end of an anonymous pipe. */
export class PipeWriter extends PipeEnd {
  /** The raw bytes as a Node Writable (a net.Socket); it owns the fd from now on. */
  stream(): Socket {
    return writeStream(this.take('write'));
  }

  /** A message sender; the reader's `receiver()` must use the same codec. */
  sender<T = unknown>(opts?: ChannelOptions<T>): Sender<T> {
    const what = `pipe writer (fd ${this.fd})`;
    checkChannelOptions(opts, what); // before the fd is taken: a bad option leaves the end usable
    return new StreamChannel<T>(what, undefined, writeStream(this.take('write')), {
      ...opts,
      handshake: false,
    });
  }
}

/** Anonymous pipes. */
export const Pipe = {
  /**
   * Makes a one-way pipe. Both fds are close-on-exec: a child gets one only through `stdio`.
   * @throws ERR_IPC_NATIVE_UNAVAILABLE without the addon; TypeError/RangeError for a bad `size`.
   */
  create(opts?: PipeOptions): { reader: PipeReader; writer: PipeWriter } {
    const size = opts?.size;
    if (size !== undefined && (!Number.isInteger(size) || size < 4096 || size > 1 << 30)) {
      throw numberError(size, `options.size must be an integer from 4096 to 2^30, got ${String(size)}`);
    }
    const binding = native();
    let fds: [number, number];
    try {
      fds = binding.pipe2();
    } catch (err) {
      throw fromSystemError(err, 'pipe2');
    }
    if (size !== undefined) {
      try {
        binding.setPipeSize(fds[1], size);
      } catch (err) {
        binding.close(fds[0]);
        binding.close(fds[1]);
        throw fromSystemError(err, `pipe size ${size}`);
      }
    }
    return { reader: new PipeReader(fds[0]), writer: new PipeWriter(fds[1]) };
  },
};
