/**
 * Node sockets over raw pipe fds: libuv watches them on the event loop (epoll), exactly as it does
 * for a process's own stdin/stdout when those are pipes. Destroying the socket closes the fd.
 */
import { Socket } from 'node:net';
import { native } from '../native/binding.js';

/** A readable stream over the read end of a pipe or FIFO. */
export function readStream(fd: number): Socket {
  return new Socket({ fd, readable: true, writable: false });
}

/** Node's own read size: the most one read takes from a pipe, at first. */
const FRAMED_READ_BYTES = 64 * 1024;
/**
 * The read size once a read has filled the buffer: the pipe carries bulk data (large messages, or
 * bursts), and a 1 MiB message then takes 4 reads instead of 16. Alternating standalone runs of
 * 400 x 1 MiB parent to child on the benchmark VM: 1,525-1,777 MB/s against 1,279-1,544 MB/s.
 * Only streams that need it pay the larger buffer. 1 MiB reads were no better (medians of 1,367
 * and 1,554 MB/s against 1,580 and 1,822 for 256 KiB, alternating).
 */
const GROWN_READ_BYTES = 256 * 1024;

/**
 * A readable stream over a pipe whose bytes go straight into a frame decoder: every read lands in
 * one buffer reused for the life of the stream (replaced once by a larger one, see
 * GROWN_READ_BYTES), instead of a fresh 64 KiB allocation per read. For 1 MiB messages that halved
 * the receiver's CPU per MB (allocating and collecting the chunks cost more than copying them).
 * Its 'data' events carry views into that buffer, valid only until the listener returns: safe for
 * a StreamChannel, whose decoder copies a frame split across reads and whose codecs must not keep
 * the views they decode (msgpack copies binary fields), never for a stream handed to users.
 * Reading the rest of a large message straight into its own (fresh) memory, which saves that copy,
 * was slower: 1,048–1,245 MB/s against 1,430–1,523 MB/s for 1 MiB messages in alternating runs.
 * The likely reason: the kernel then faults the fresh pages in while it holds the pipe, and the
 * writer waits; a reused buffer takes the bytes fast, and the copy into fresh memory overlaps the
 * writer's next write. Faulting the next message's memory in ahead of time (a spare buffer of the
 * last large size, filled on the turn after a message) did not rescue it: 1,318 against 1,884
 * MB/s with the reads going into it, 1,750 against 1,898 with the copy kept (same run, alternating).
 * Nor does memory used before: reading the rest of a message straight into memory a released view
 * gave back (PipeChannel.receiveView) moved 1,137–1,229 MB/s where copying into that same memory
 * moved 2,108–2,132 (2026-11-29, alternating): the kernel's copy into a 2 MiB working set ran under
 * the pipe's lock, where the writer waits, and the copy out of this buffer runs beside its writes.
 */
export function framedReadStream(fd: number): Socket {
  let buffer = Buffer.allocUnsafeSlow(FRAMED_READ_BYTES);
  const socket: Socket = new Socket({
    fd,
    readable: true,
    writable: false,
    // `onread` is documented for new net.Socket() but missing from @types/node's constructor type.
    // A function as `buffer` is asked for the buffer of every next read.
    onread: {
      buffer: () => buffer,
      callback: (bytes: number, read: Buffer) => {
        socket.emit('data', read.subarray(0, bytes));
        if (bytes === read.length && read.length < GROWN_READ_BYTES) {
          buffer = Buffer.allocUnsafeSlow(GROWN_READ_BYTES);
        }
        return true;
      },
    },
  } as ConstructorParameters<typeof Socket>[0]);
  return socket;
}

/** A pipe that a write larger than its buffer goes through grows to this (see GrowingPipeWriter). */
const LARGE_PIPE_BYTES = 1024 * 1024;
/**
 * At most this many pipes of a process grow at once. The kernel charges a pipe's full size to its
 * user's budget (pipe-user-pages-soft, 64 MiB by default) whether or not it fills, and past that
 * budget every new pipe the user makes, in any program, is shrunk to two pages.
 */
const MAX_LARGE_PIPES = 16;
let largePipes = 0;

/**
 * The write end of a channel's pipe, which grows to LARGE_PIPE_BYTES the first time a write does
 * not fit its buffer: a 1 MiB message then crosses in one write and one wake-up instead of four
 * (a 256 KiB pipe), which doubled the throughput of 1 MiB messages. Only pipes that carry large
 * messages pay the budget for it.
 */
class GrowingPipeWriter extends Socket {
  readonly #fd: number;
  /** The pipe's buffer size; 0 until a write needs it. */
  #size = 0;
  #grown = false;

  constructor(fd: number) {
    super({ fd, readable: false, writable: true });
    this.#fd = fd;
    this.once('close', () => {
      if (this.#grown) largePipes--;
    });
  }

  override _write(chunk: Buffer, encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.#fit(chunk.length);
    super._write(chunk, encoding, callback);
  }

  override _writev(
    chunks: Array<{ chunk: Buffer; encoding: BufferEncoding }>,
    callback: (error?: Error | null) => void,
  ): void {
    let bytes = 0;
    for (const { chunk } of chunks) bytes += chunk.length;
    this.#fit(bytes);
    super._writev!(chunks, callback);
  }

  #fit(bytes: number): void {
    if (this.#size >= LARGE_PIPE_BYTES || bytes <= this.#size || largePipes >= MAX_LARGE_PIPES) return;
    try {
      if (this.#size === 0) this.#size = native().getPipeSize(this.#fd);
      if (bytes <= this.#size) return;
      this.#size = native().setPipeSize(this.#fd, LARGE_PIPE_BYTES);
      this.#grown = true;
      largePipes++;
    } catch {
      // Past the user's budget the kernel refuses (EPERM): keep the size, and stop asking.
      this.#size = LARGE_PIPE_BYTES;
    }
  }
}

/** The write end of a parent-child channel's pipe, grown for large messages (GrowingPipeWriter). */
export function channelWriteStream(fd: number): Socket {
  return new GrowingPipeWriter(fd);
}

/** A writable stream over the write end of a pipe or FIFO. */
export function writeStream(fd: number): Socket {
  const socket = new Socket({ fd, readable: false, writable: true });
  // Node reports a write to a pipe without a reader as EPIPE ('error'); SIGPIPE is ignored by Node.
  return socket;
}
