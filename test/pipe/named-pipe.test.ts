import { spawn as nodeSpawn } from 'node:child_process';
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, onTestFinished } from 'vitest';
import { ErrorCodes, NamedPipe } from '../../src/index.js';
import { fixtureArgs, isolateRuntimeDir, openFdCount, rejectionOf, watchdog } from '../helpers.js';
import { startFixture } from '../socket/child.js';

let env: ReturnType<typeof isolateRuntimeDir>;
beforeEach(() => {
  env = isolateRuntimeDir();
});
afterEach(() => env.cleanup());

describe('NamedPipe', () => {
  it('serves several clients, each a duplex channel, on a 0600 socket in the runtime dir', async () => {
    await using server = await NamedPipe.listen<string>('svc');
    expect(server.path).toBe(join(env.dir, 'svc.sock'));
    expect(statSync(server.path).mode & 0o777).toBe(0o600);
    void (async () => {
      for await (const connection of server) {
        void (async () => {
          for await (const message of connection) await connection.send(message.toUpperCase());
        })();
      }
    })();
    const clients = await Promise.all([1, 2, 3].map(() => NamedPipe.connect<string>('svc')));
    await Promise.all(clients.map((c, i) => c.send(`client ${i}`)));
    const replies = await Promise.all(clients.map((c) => watchdog(c.receive(), 5000, 'reply')));
    expect(replies).toEqual(['CLIENT 0', 'CLIENT 1', 'CLIENT 2']);
    await Promise.all(clients.map((c) => c.close()));
  });

  it('connecting where nobody listens is ERR_IPC_NOT_FOUND; a second listener is ERR_IPC_EXISTS', async () => {
    await expect(NamedPipe.connect('nobody')).rejects.toMatchObject({ code: ErrorCodes.NOT_FOUND });
    const server = await NamedPipe.listen('once');
    await expect(NamedPipe.listen('once')).rejects.toMatchObject({ code: ErrorCodes.EXISTS });
    await server.close();
    await expect(NamedPipe.connect('once')).rejects.toMatchObject({ code: ErrorCodes.NOT_FOUND });
  });

  it('replaces a stale socket file left by a dead server', async () => {
    const path = join(env.dir, 'stale.sock');
    const child = nodeSpawn(
      process.execPath,
      [
        '-e',
        `require('net').createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, 'SIGKILL'))`,
      ],
      { stdio: 'ignore' },
    );
    mkdirSync(env.dir, { recursive: true, mode: 0o700 });
    await new Promise((resolve) => child.once('exit', resolve));
    expect(statSync(path).isSocket()).toBe(true);
    const server = await NamedPipe.listen('stale');
    const client = await NamedPipe.connect('stale');
    await client.close();
    await server.close();
  });

  it('several listens racing over a stale socket file: exactly one gets the name, the others ERR_IPC_EXISTS', async () => {
    const path = join(env.dir, 'race.sock');
    mkdirSync(env.dir, { recursive: true, mode: 0o700 });
    for (let round = 0; round < 10; round++) {
      const dead = nodeSpawn(
        process.execPath,
        [
          '-e',
          `require('net').createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, 'SIGKILL'))`,
        ],
        { stdio: 'ignore' },
      );
      await watchdog(new Promise((resolve) => dead.once('exit', resolve)), 10_000, 'the dead server');
      const results = await Promise.allSettled([1, 2, 3].map(() => NamedPipe.listen<string>('race')));
      const winners = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
      const codes = results.flatMap((r) =>
        r.status === 'rejected' ? [(r.reason as { code?: string }).code] : [],
      );
      expect({ round, winners: winners.length, codes }).toEqual({
        round,
        winners: 1,
        codes: [ErrorCodes.EXISTS, ErrorCodes.EXISTS],
      });
      // The winner is the one clients reach.
      const accepted = winners[0]!.accept();
      const client = await NamedPipe.connect<string>('race');
      await client.send('hi');
      expect(await watchdog((await watchdog(accepted, 5000, 'accept')).receive(), 5000, 'hi')).toBe('hi');
      await client.close();
      await winners[0]!.close();
    }
  });

  it('a live server whose accept queue is full keeps its name: listen is ERR_IPC_EXISTS, connect ERR_IPC_QUEUE_FULL', async () => {
    const server = startFixture('socket-echo-server.ts', ['pipe://busy']);
    onTestFinished(() => server.kill());
    await server.line('LISTENING');
    const pid = server.process.pid!;
    process.kill(pid, 'SIGSTOP');
    onTestFinished(() => {
      if (server.process.exitCode === null) process.kill(pid, 'SIGCONT');
    });
    // Connections pend in its queue (backlog 511) until the kernel refuses one with EAGAIN.
    const path = join(env.dir, 'busy.sock');
    const inode = statSync(path).ino;
    const sockets: Socket[] = [];
    onTestFinished(() => {
      for (const socket of sockets) socket.destroy();
    });
    const full = new Promise<void>((resolve) => {
      for (let i = 0; i < 700; i++) {
        const socket = netConnect(path);
        socket.on('error', (err: NodeJS.ErrnoException) => {
          if (err.code === 'EAGAIN') resolve();
        });
        sockets.push(socket);
      }
    });
    await watchdog(full, 10_000, 'the accept queue fills');
    expect((await rejectionOf(NamedPipe.listen('busy'))).code).toBe(ErrorCodes.EXISTS);
    expect((await rejectionOf(NamedPipe.connect('busy', { timeout: 5000 }))).code).toBe(
      ErrorCodes.QUEUE_FULL,
    );
    // Its socket file is still the one it bound, and it is still running.
    expect(statSync(path).ino).toBe(inode);
    expect(server.process.exitCode).toBeNull();
  });

  it('refuses a path that is not a socket and a name whose socket path is too long', async () => {
    mkdirSync(env.dir, { recursive: true, mode: 0o700 });
    const long = isolateRuntimeDir();
    try {
      process.env.IPCKIT_DIR = join(long.dir, 'd'.repeat(90));
      await expect(NamedPipe.listen('x'.repeat(30))).rejects.toMatchObject({
        code: ErrorCodes.PATH_TOO_LONG,
      });
      await expect(NamedPipe.connect('x'.repeat(30))).rejects.toMatchObject({
        code: ErrorCodes.PATH_TOO_LONG,
      });
    } finally {
      long.cleanup();
    }
    process.env.IPCKIT_DIR = env.dir;
    writeFileSync(join(env.dir, 'file.sock'), 'not a socket');
    await expect(NamedPipe.connect('file')).rejects.toMatchObject({ code: ErrorCodes.NOT_FOUND });
  });

  it('a client killed with SIGKILL mid-message is ERR_IPC_PEER_GONE on the server, which keeps serving', async () => {
    await using server = await NamedPipe.listen('victim');
    const child = nodeSpawn(process.execPath, fixtureArgs('connect-and-wait-for-kill.ts', server.path), {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    // It waits to be killed: if the test fails first, it must not outlive the test.
    onTestFinished(() => {
      child.kill('SIGKILL');
    });
    const connection = await watchdog(server.accept(), 30_000, 'accept');
    await watchdog(
      new Promise<void>((resolve) =>
        child.stdout!.on('data', (d: Buffer) => d.toString().includes('connected') && resolve()),
      ),
      30_000,
      'fixture connected',
    );
    child.kill('SIGKILL');
    const error = await rejectionOf(watchdog(connection.receive(), 30_000, 'receive'));
    expect(error.code).toBe(ErrorCodes.PEER_GONE);
    expect(error.message).toMatch(/mid-message/);
    const next = await NamedPipe.connect<string>('victim');
    const accepted = await watchdog(server.accept(), 5000, 'accept after');
    await next.send('still serving');
    expect(await watchdog(accepted.receive(), 5000, 'receive after')).toBe('still serving');
    await next.close();
  });

  it('closing the server ends accept iteration and closes accepted connections', async () => {
    const server = await NamedPipe.listen('closing');
    const client = await NamedPipe.connect('closing');
    await watchdog(server.accept(), 5000, 'accept');
    const iteration = (async () => {
      for await (const _ of server) {
      }
      return 'ended';
    })();
    await server.close();
    expect(await watchdog(iteration, 5000, 'iteration ends')).toBe('ended');
    const ended: unknown[] = [];
    for await (const message of client) ended.push(message);
    expect(ended).toEqual([]);
  });

  it('leaks no file descriptor over 1,000 connect/close cycles', async () => {
    await using server = await NamedPipe.listen('cycles');
    void (async () => {
      for await (const connection of server) void connection.receive().catch(() => {});
    })();
    const before = openFdCount();
    for (let i = 0; i < 1000; i++) {
      const client = await NamedPipe.connect('cycles');
      await client.close();
    }
    const settled = async () => {
      while (openFdCount() > before) await new Promise((resolve) => setImmediate(resolve));
    };
    await watchdog(settled(), 30_000, `fd count back to ${before}`);
    expect(openFdCount()).toBeLessThanOrEqual(before);
  });
});
