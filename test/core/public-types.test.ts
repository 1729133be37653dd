/**
 * The public types as an outside TypeScript program uses them (checked by `npm run typecheck`,
 * which covers the tests; at run time these assertions do nothing). Each case is a call shape of
 * DESIGN.md that once did not compile.
 */
import { describe, expectTypeOf, it } from 'vitest';
import {
  type Channel,
  type ChannelOptions,
  type Codec,
  codecs,
  Fifo,
  type MessageQueueOptions,
  type Receiver,
  type Sender,
} from '../../src/index.js';

interface Job {
  id: number;
}

describe('public types', () => {
  it('every built-in codec is a Codec of the type the channel declares', () => {
    expectTypeOf(codecs.msgpack).toMatchTypeOf<Codec<Job>>();
    expectTypeOf(codecs.json).toMatchTypeOf<Codec<Job>>();
    expectTypeOf(codecs.v8).toMatchTypeOf<Codec<Job>>();
    const options: ChannelOptions<Job> = { codec: codecs.msgpack };
    expectTypeOf(options.codec).not.toBeUndefined();
  });

  it("a FIFO end in 'lines' carries strings, in 'bytes' Uint8Arrays", () => {
    // Checked by the compiler, never called: it would open a FIFO.
    const typesOnly = () => {
      expectTypeOf(Fifo.receiver('x', { format: 'lines' })).resolves.toEqualTypeOf<Receiver<string>>();
      expectTypeOf(Fifo.sender('x', { format: 'lines' })).resolves.toEqualTypeOf<Sender<string>>();
      expectTypeOf(Fifo.receiver('x', { format: 'bytes' })).resolves.toEqualTypeOf<Receiver<Uint8Array>>();
      expectTypeOf(Fifo.receiver<Job>('x')).resolves.toEqualTypeOf<Receiver<Job>>();
    };
    expectTypeOf(typesOnly).toBeFunction();
  });

  it('a queue store may be any string, such as a URL from the environment', () => {
    const fromEnvironment: string = process.env.IPCKIT_TEST_STORE ?? 'sqlite';
    const options: MessageQueueOptions<Job> = { store: fromEnvironment };
    expectTypeOf(options.store).not.toBeNever();
  });

  it('both halves of a channel, like a channel, close with await using', () => {
    expectTypeOf<Sender<Job>>().toMatchTypeOf<AsyncDisposable>();
    expectTypeOf<Receiver<Job>>().toMatchTypeOf<AsyncDisposable>();
    expectTypeOf<Channel<Job>>().toMatchTypeOf<AsyncDisposable>();
  });
});
