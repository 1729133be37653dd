import { spawn as nodeSpawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { ErrorCodes, Pipe, spawn } from '../../src/index.js';
import { native } from '../../src/native/binding.js';
import { openFdCount, watchdog } from '../helpers.js';

describe('Pipe', () => {
  it('carries framed messages from writer to reader, and the reader ends when the writer closes', async () => {
    const { reader, writer } = Pipe.create();
    const sender = writer.sender<{ n: number }>();
    const receiver = reader.receiver<{ n: number }>();
    for (let n = 0; n < 1000; n++) void sender.send({ n });
    await sender.close();
    const got: number[] = [];
    for await (const message of receiver) got.push(message.n);
    expect(got).toEqual(Array.from({ length: 1000 }, (_, n) => n));
    await expect(sender.send({ n: 1 })).rejects.toMatchObject({ code: ErrorCodes.CLOSED });
  });

  it('one-way ends refuse the other direction with ERR_IPC_CLOSED', async () => {
    const { reader, writer } = Pipe.create();
    const sender = writer.sender();
    const receiver = reader.receiver();
    await expect((sender as unknown as { receive(): Promise<unknown> }).receive()).rejects.toMatchObject({
      code: ErrorCodes.CLOSED,
    });
    await expect((receiver as unknown as { send(x: unknown): Promise<void> }).send(1)).rejects.toMatchObject({
      code: ErrorCodes.CLOSED,
    });
    await sender.close();
    await receiver.close();
  });

  it("hands an end to a child's stdio: the child's stdout arrives on the reader's stream", async () => {
    const { reader, writer } = Pipe.create();
    const child = nodeSpawn('sh', ['-c', 'echo hello from sh'], { stdio: ['ignore', writer.fd, 'inherit'] });
    writer.close(); // the child has its copy; ours must go so the reader sees end-of-file
    let text = '';
    for await (const chunk of reader.stream()) text += chunk;
    expect(text).toBe('hello from sh\n');
    await new Promise((resolve) => child.once('exit', resolve));
  });

  it("hands an end itself to ipckit spawn's stdio (an object with an fd), type-checked", async () => {
    const { reader, writer } = Pipe.create();
    const child = spawn('sh', ['-c', 'echo hello from sh'], { stdio: ['ignore', writer, 'inherit'] });
    writer.close();
    let text = '';
    for await (const chunk of reader.stream()) text += chunk;
    expect(text).toBe('hello from sh\n');
    expect(await watchdog(child.exited, 10_000, 'the child to exit')).toMatchObject({ code: 0 });
    // Closed, its number may name another file by now: refused, not passed on.
    expect(writer.fd).toBe(-1);
    expect(() => spawn('true', [], { stdio: ['ignore', writer, 'inherit'] })).toThrow(
      expect.objectContaining({ code: ErrorCodes.CLOSED }),
    );
    expect(() => spawn('true', [], { stdio: ['ignore', writer.fd, 'inherit'] })).toThrow(RangeError);
    // Handed to a stream, which closes it when it ends: the same.
    expect(reader.fd).toBe(-1);
  });

  it('sizes the kernel buffer on request and checks the option', () => {
    const { reader, writer } = Pipe.create({ size: 1 << 20 });
    expect(native().getPipeSize(writer.fd)).toBeGreaterThanOrEqual(1 << 20);
    reader.close();
    writer.close();
    expect(() => Pipe.create({ size: 12 })).toThrow(/options.size/);
    expect(() => Pipe.create({ size: 12 })).toThrow(RangeError);
    expect(() => Pipe.create({ size: '65536' as never })).toThrow(TypeError);
    expect(() => Pipe.create({ size: '65536' as never })).toThrow(/options.size/);
  });

  it('an end can be taken once', () => {
    const { reader, writer } = Pipe.create();
    reader.stream().destroy();
    expect(() => reader.receiver()).toThrow(/already closed or in use/);
    writer.close();
  });

  it('a bad option to receiver() or sender() throws before the end is taken: it stays usable', async () => {
    const { reader, writer } = Pipe.create();
    expect(() => reader.receiver({ maxMessageBytes: 2 ** 40 })).toThrow(RangeError);
    expect(() => writer.sender({ codec: 'nope' as never })).toThrow(RangeError);
    const rx = reader.receiver<string>();
    const tx = writer.sender<string>();
    await tx.send('still usable');
    expect(await watchdog(rx.receive(), 5000, 'receive')).toBe('still usable');
    await tx.close();
    await rx.close();
  });

  it('a custom codec that returns something other than bytes fails that send only', async () => {
    const { reader, writer } = Pipe.create();
    const text = {
      name: 'text',
      encode: (m: string) => (m === 'bad' ? (m as unknown as Uint8Array) : Buffer.from(m)),
      decode: (b: Uint8Array) => Buffer.from(b).toString(),
    };
    const rx = reader.receiver<string>({ codec: text });
    const tx = writer.sender<string>({ codec: text });
    await tx.send('one');
    await expect(tx.send('bad')).rejects.toMatchObject({ code: ErrorCodes.INVALID_MESSAGE });
    await tx.send('two');
    expect(await watchdog(rx.receive(), 5000, 'one')).toBe('one');
    expect(await watchdog(rx.receive(), 5000, 'two')).toBe('two');
    await tx.close();
    await rx.close();
  });

  it('leaks no file descriptor over 1,000 create/use/close cycles', async () => {
    const before = openFdCount();
    for (let i = 0; i < 1000; i++) {
      const { reader, writer } = Pipe.create();
      const sender = writer.sender<number>();
      const receiver = reader.receiver<number>();
      await sender.send(i);
      expect(await watchdog(receiver.receive(), 5000, 'receive')).toBe(i);
      await sender.close();
      await receiver.close();
    }
    // Sockets release their fds when their handles close, a tick after destroy().
    await new Promise((resolve) => setImmediate(resolve));
    expect(openFdCount()).toBeLessThanOrEqual(before);
  });
});
