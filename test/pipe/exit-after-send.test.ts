/**
 * A process that calls process.exit() right after sending: what send() accepted reaches the peer.
 * Sends are batched and written on the next tick, which process.exit() never runs; the channel
 * writes its batch in the process's 'exit' event instead. The same check for every stream sender.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type ChildProcess, ErrorCodes, Fifo, NamedPipe, type Receiver, spawn } from '../../src/index.js';
import { fixtureArgs, isolateRuntimeDir, watchdog } from '../helpers.js';

let env: ReturnType<typeof isolateRuntimeDir>;
beforeEach(() => {
  env = isolateRuntimeDir();
});
afterEach(() => env.cleanup());

type Where = 'parent' | 'named-pipe' | 'fifo';

/** Starts the fixture and returns the receiving end of its messages. */
type Sent = { i: number; pad?: string };

async function startSender(
  where: Where,
  count: number,
  how: 'send' | 'trySend',
  padBytes?: number,
): Promise<{ receiver: Receiver<Sent>; child: ChildProcess<Sent>; done(): Promise<void> }> {
  const extra = padBytes === undefined ? [] : [String(padBytes)];
  const args = fixtureArgs('send-then-exit.ts', where, 'exit-test', String(count), how, ...extra);
  if (where === 'parent') {
    const child = spawn<Sent>(process.execPath, args, { channel: 'pipe' });
    return { receiver: child.channel!, child, done: () => child.channel!.close() };
  }
  if (where === 'fifo') {
    await Fifo.create('exit-test');
    const receiver = await Fifo.receiver<Sent>('exit-test', { format: 'frames' });
    const child = spawn<Sent>(process.execPath, args, { channel: false });
    return { receiver, child, done: () => receiver.close() };
  }
  const server = await NamedPipe.listen<Sent>('exit-test');
  const child = spawn<Sent>(process.execPath, args, { channel: false });
  const conn = await watchdog(server.accept(), 30_000, 'the child connects');
  return { receiver: conn, child, done: () => server.close() };
}

describe.each(['parent', 'named-pipe', 'fifo'] as const)(
  'process.exit() right after sending, %s',
  (where) => {
    it.each(['send', 'trySend'] as const)('every message accepted by %s arrives', async (how) => {
      // 500 small messages: one batch, well within what the pipe or socket buffers hold.
      const { receiver, child, done } = await startSender(where, 500, how);
      try {
        for (let i = 0; i < 500; i++) {
          expect(await watchdog(receiver.receive(), 30_000, `message ${i}`)).toEqual({ i });
        }
        expect((await watchdog(child.exited, 30_000, 'the child exits')).code).toBe(0);
        // The channel and the named pipe report the vanished peer once its messages are read.
        if (where !== 'fifo') {
          await expect(watchdog(receiver.receive(), 30_000, 'the end')).rejects.toMatchObject({
            code: ErrorCodes.PEER_GONE,
          });
        }
      } finally {
        await done();
      }
    });

    it('large messages, more than the kernel takes at once, arrive whole', async () => {
      // 3 x 1 MiB: a Unix socket takes about 200 KiB at once and a pipe at most 1 MiB, so when
      // the child exits, the stream still holds the tail of what its sends accepted.
      const pad = 1 << 20;
      const { receiver, child, done } = await startSender(where, 3, 'send', pad);
      try {
        for (let i = 0; i < 3; i++) {
          const message = await watchdog(receiver.receive(), 30_000, `message ${i}`);
          expect({ i: message.i, length: message.pad?.length }).toEqual({ i, length: pad });
        }
        expect((await watchdog(child.exited, 30_000, 'the child exits')).code).toBe(0);
      } finally {
        await done();
      }
    });
  },
);
