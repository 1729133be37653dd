import { readdirSync, readlinkSync } from 'node:fs';
import type { StandardSchemaV1 } from '@standard-schema/spec';
import { describe, expect, it } from 'vitest';
import { type ChildProcess, ErrorCodes, spawn } from '../../src/index.js';
import { fixtureArgs, rejectionOf, watchdog } from '../helpers.js';
import { isolatedWithChildren } from '../support/spawned-children.js';

const children = isolatedWithChildren();

function start<T>(fixture: string, args: string[] = [], opts: Parameters<typeof spawn<T>>[2] = {}) {
  const child = spawn<T>(process.execPath, fixtureArgs(fixture, ...args), {
    channel: 'pipe',
    stdio: ['ignore', 'pipe', 'inherit'],
    ...opts,
  });
  children.push(child as ChildProcess<unknown>);
  return child;
}

/** Resolves when the child prints `line` on stdout. */
function printed(child: ChildProcess<unknown>, line: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = '';
    child.process.stdout!.on('data', (chunk: Buffer) => {
      seen += chunk.toString();
      if (seen.split('\n').includes(line)) resolve();
    });
    child.process.once('exit', () =>
      reject(new Error(`child exited before printing ${line}; it printed ${seen}`)),
    );
  });
}

describe('spawn with a pipe channel', () => {
  it('a parent that sends and closes before the child has started loses nothing: the child gets it all, then a clean end', async () => {
    const child = start<number>('receive-all-then-report.ts');
    let out = '';
    child.process.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    for (const n of [1, 2, 3]) await child.channel!.send(n);
    // The child's hello then meets a closed pipe (EPIPE): what waits in its input still counts.
    await child.channel!.close();
    expect(await watchdog(child.exited, 30_000, 'the child exits')).toMatchObject({ code: 0 });
    expect(JSON.parse(out)).toEqual({ got: [1, 2, 3], end: 'clean' });
  });

  it('exchanges messages both ways and ends cleanly when the parent closes', async () => {
    const child = start<{ i: number; text: string }>('echo-parent-channel.ts');
    const channel = child.channel!;
    for (let i = 0; i < 100; i++) await channel.send({ i, text: `message ${i}` });
    for (let i = 0; i < 100; i++) {
      expect(await watchdog(channel.receive(), 30_000, `echo ${i}`)).toEqual({ i, text: `message ${i}` });
    }
    await channel.close();
    expect(await watchdog(child.exited, 30_000, 'child exit')).toEqual({ code: 0, signal: null });
  });

  it('carries 4 MiB messages intact with the raw codec', async () => {
    const child = start<Uint8Array>('echo-parent-channel.ts', [], {
      codec: 'raw',
      env: { ...process.env, FIXTURE_CODEC: 'raw' },
    });
    // Every byte set, in a pattern that never repeats at a power-of-two stride: a chunk read at
    // the wrong offset (the read buffer grows while this crosses) cannot compare equal.
    const big = new Uint8Array(4 << 20);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7 + (i >>> 12) * 13 + (i >>> 20)) & 0xff;
    await child.channel!.send(big);
    const back = await watchdog(child.channel!.receive(), 30_000, 'big echo');
    expect(back.byteLength).toBe(big.byteLength);
    expect(Buffer.compare(back, big)).toBe(0);
    await child.channel!.close();
  });

  it('keeps binary fields of received messages intact while later reads arrive', async () => {
    // The receiver reuses one read buffer: a decoded message must not keep a view into it.
    const child = start<{ i: number; data: Uint8Array }>('echo-parent-channel.ts');
    const channel = child.channel!;
    const count = 3000;
    const sending = (async () => {
      for (let i = 0; i < count; i++) await channel.send({ i, data: new Uint8Array(100).fill(i % 256) });
    })();
    const received: { i: number; data: Uint8Array }[] = [];
    for (let i = 0; i < count; i++) received.push(await watchdog(channel.receive(), 30_000, `echo ${i}`));
    await sending;
    for (const [i, message] of received.entries()) {
      expect(message.i).toBe(i);
      expect(message.data.every((b) => b === i % 256)).toBe(true);
    }
    await channel.close();
  });

  it('refuses to talk to a child using another codec, with ERR_IPC_INCOMPATIBLE', async () => {
    const child = start('echo-parent-channel.ts', [], { codec: 'json' });
    await expect(watchdog(child.channel!.receive(), 30_000, 'receive')).rejects.toMatchObject({
      code: ErrorCodes.INCOMPATIBLE,
    });
  });

  it('parentChannel() in a process spawned without a channel is ERR_IPC_NOT_FOUND', async () => {
    const child = start('report-parent-channel.ts', [], { channel: false });
    await watchdog(printed(child as ChildProcess<unknown>, ErrorCodes.NOT_FOUND), 30_000, 'report');
  });

  it.each(['pipe', 'shm'] as const)(
    'parentChannel() in a %s child whose fds a launcher did not pass on is ERR_IPC_NOT_FOUND',
    async (channel) => {
      // The variable reaches the program, the fds do not (as through the tsx command): Node's own
      // fds take their numbers.
      const child = spawn<unknown>(
        '/bin/sh',
        [
          '-c',
          'exec 3<&- 4<&-; exec "$0" "$@"',
          process.execPath,
          ...fixtureArgs('report-parent-channel.ts'),
        ],
        { channel, stdio: ['ignore', 'pipe', 'inherit'] },
      );
      children.push(child);
      await watchdog(printed(child, ErrorCodes.NOT_FOUND), 30_000, 'report');
    },
  );

  it('a child killed with SIGKILL mid-message is ERR_IPC_PEER_GONE and nothing partial is delivered', async () => {
    const child = start('raw-bytes-to-parent.ts', ['truncated']);
    await watchdog(printed(child as ChildProcess<unknown>, 'written'), 30_000, 'fixture ready');
    child.kill('SIGKILL');
    const error = await rejectionOf(watchdog(child.channel!.receive(), 30_000, 'receive after kill'));
    expect(error.code).toBe(ErrorCodes.PEER_GONE);
    expect(error.message).toMatch(/mid-message/);
    await expect(child.channel!.send({ late: true })).rejects.toMatchObject({ code: ErrorCodes.PEER_GONE });
  });

  it('a peer that exits without closing is ERR_IPC_PEER_GONE after its complete messages', async () => {
    const child = start('raw-bytes-to-parent.ts', ['exit']);
    expect(await watchdog(child.channel!.receive(), 30_000, 'first')).toEqual({ n: 1 });
    await expect(watchdog(child.channel!.receive(), 30_000, 'second')).rejects.toMatchObject({
      code: ErrorCodes.PEER_GONE,
    });
  });

  it('a child that exits leaving a process that holds its pipes: ERR_IPC_PEER_GONE, and the fds go', async () => {
    // The shell's background sleep inherits the channel's fds (3 and 4) and prints its pid.
    const child = spawn('/bin/sh', ['-c', 'sleep 120 </dev/null >/dev/null 2>&1 & echo $!'], {
      channel: 'pipe',
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    children.push(child as ChildProcess<unknown>);
    let output = '';
    child.process.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    await watchdog(child.exited, 20_000, 'the shell exits');
    const holder = Number(output.trim());
    try {
      expect(holder).toBeGreaterThan(0);
      const pipes = [3, 4].map((fd) => readlinkSync(`/proc/${holder}/fd/${fd}`));
      const held = () =>
        readdirSync('/proc/self/fd').some((fd) => {
          try {
            return pipes.includes(readlinkSync(`/proc/self/fd/${fd}`));
          } catch {
            return false; // closed meanwhile
          }
        });
      expect(held()).toBe(true);
      await expect(watchdog(child.channel!.receive(), 20_000, 'the end')).rejects.toMatchObject({
        code: ErrorCodes.PEER_GONE,
      });
      const released = (async () => {
        while (held()) await new Promise((resolve) => setImmediate(resolve));
      })();
      await watchdog(released, 10_000, "the parent's ends of the pipes are closed");
    } finally {
      if (holder > 0) process.kill(holder, 'SIGKILL');
    }
  });

  it('refuses a 2^32-1 length prefix with ERR_IPC_FRAME_TOO_LARGE and keeps the process running', async () => {
    const child = start('raw-bytes-to-parent.ts', ['oversize']);
    await expect(watchdog(child.channel!.receive(), 30_000, 'receive')).rejects.toMatchObject({
      code: ErrorCodes.FRAME_TOO_LARGE,
    });
    await expect(child.channel!.receive()).rejects.toMatchObject({ code: ErrorCodes.FRAME_TOO_LARGE });
  });

  it('refuses a peer that does not speak ipckit with ERR_IPC_BAD_FRAME', async () => {
    const child = start('raw-bytes-to-parent.ts', ['garbage']);
    await expect(watchdog(child.channel!.receive(), 30_000, 'receive')).rejects.toMatchObject({
      code: ErrorCodes.BAD_FRAME,
    });
  });

  it('decodes a __proto__ key without touching Object.prototype, and goes on', async () => {
    const child = start<Record<string, unknown>>('raw-bytes-to-parent.ts', ['proto']);
    const hostile = await watchdog(child.channel!.receive(), 30_000, 'hostile');
    expect(Object.getPrototypeOf(hostile)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(await child.channel!.receive()).toEqual({ n: 1 });
  });

  it('reports a too-deeply nested message as ERR_IPC_INVALID_MESSAGE and delivers the next one', async () => {
    const child = start('raw-bytes-to-parent.ts', ['deep']);
    await expect(watchdog(child.channel!.receive(), 30_000, 'deep')).rejects.toMatchObject({
      code: ErrorCodes.INVALID_MESSAGE,
    });
    expect(await child.channel!.receive()).toEqual({ n: 1 });
  });

  it('rejects a message that fails the schema and delivers the next one; iteration ends at close', async () => {
    const schema: StandardSchemaV1<unknown, { n: number }> = {
      '~standard': {
        version: 1,
        vendor: 'test',
        validate: (v) =>
          typeof (v as { n?: unknown })?.n === 'number'
            ? { value: v as { n: number } }
            : { issues: [{ message: 'bad n' }] },
      },
    };
    const child = start<{ n: number }>('send-sequence-to-parent.ts', ['{"n":"one"}', '{"n":2}', '{"n":3}'], {
      codec: 'json',
      schema,
    });
    const channel = child.channel!;
    await expect(watchdog(channel.receive(), 30_000, 'bad')).rejects.toMatchObject({
      code: ErrorCodes.INVALID_MESSAGE,
    });
    const rest: number[] = [];
    for await (const message of channel) rest.push(message.n);
    expect(rest).toEqual([2, 3]);
  });
});
