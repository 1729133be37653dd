/**
 * Node sockets over raw pipe fds: libuv watches them on the event loop (epoll), exactly as it does
 * for a process's own stdin/stdout when those are pipes. Destroying the socket closes the fd.
 */
import { Socket } from 'node:net';

/** A readable stream over the read end of a pipe or FIFO. */
export function readStream(fd: number): Socket {
  return new Socket({ fd, readable: true, writable: false });
}

/** A writable stream over the write end of a pipe or FIFO. */
export function writeStream(fd: number): Socket {
  const socket = new Socket({ fd, readable: false, writable: true });
  // Node reports a write to a pipe without a reader as EPIPE ('error'); SIGPIPE is ignored by Node.
  return socket;
}
