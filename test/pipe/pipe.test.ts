import { spawn as nodeSpawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { ErrorCodes, Pipe } from '../../src/index.js';
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
