/**
 * A channel's pipe grows to 1 MiB when a write larger than its buffer goes through it, and at most
 * 16 pipes of a process are grown at once (the user's pipe budget is shared by every program).
 */
import { once } from 'node:events';
import type { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { native } from '../../src/native/binding.js';
import { channelWriteStream } from '../../src/pipe/fd-stream.js';

const MiB = 1024 * 1024;

/** A pipe of 256 KiB (a channel's starting size) whose write end is a channel's write stream. */
function channelPipe(): { readFd: number; writeFd: number; writer: Socket } {
  const [readFd, writeFd] = native().pipe2();
  native().setPipeSize(writeFd, 256 * 1024);
  return { readFd, writeFd, writer: channelWriteStream(writeFd) };
}

describe('channel pipe growth', () => {
  it('grows a pipe for a write larger than its buffer, not for smaller ones; 16 at most at once', async () => {
    const pipes = Array.from({ length: 18 }, channelPipe);
    try {
      pipes[0]!.writer.write(Buffer.alloc(100 * 1024));
      expect(native().getPipeSize(pipes[0]!.writeFd)).toBe(256 * 1024);
      // Nobody reads: each write stays queued, but the pipe grows before it is written.
      for (const pipe of pipes.slice(0, 17)) pipe.writer.write(Buffer.alloc(300 * 1024));
      const sizes = pipes.slice(0, 17).map((pipe) => native().getPipeSize(pipe.writeFd));
      expect(sizes.slice(0, 16)).toEqual(Array(16).fill(MiB));
      expect(sizes[16]).toBe(256 * 1024);
      // A grown pipe closed gives its place back.
      pipes[0]!.writer.destroy();
      await once(pipes[0]!.writer, 'close');
      pipes[17]!.writer.write(Buffer.alloc(300 * 1024));
      expect(native().getPipeSize(pipes[17]!.writeFd)).toBe(MiB);
    } finally {
      for (const pipe of pipes) {
        pipe.writer.destroy();
        native().close(pipe.readFd);
      }
      await Promise.all(pipes.map((pipe) => (pipe.writer.closed ? undefined : once(pipe.writer, 'close'))));
    }
  });
});
