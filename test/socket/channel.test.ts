import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { connect, ErrorCodes, listen, type SocketConnection } from '../../src/index.js';
import { MAX_LINGERING_REFUSALS } from '../../src/socket/server.js';
import { isolateRuntimeDir, rejectionOf, watchdog } from '../helpers.js';
import { listenUrl, transports } from './transports.js';

let env: ReturnType<typeof isolateRuntimeDir>;
beforeEach(() => {
  env = isolateRuntimeDir();
});
afterEach(() => env.cleanup());

describe.each(transports)('socket connections over %s', (transport) => {
  it('each accepted connection is a duplex Channel; the bound URL has the port filled in', async () => {
    await using server = await listen<string>(listenUrl(transport, env.dir));
    if (transport === 'tcp') expect(server.url).toMatch(/^tcp:\/\/127\.0\.0\.1:[1-9]\d*$/);
    else expect(server.url).toBe(`unix://${env.dir}/server.sock`);
    void (async () => {
      for await (const conn of server) {
        void (async () => {
          for await (const message of conn) await conn.send(`${message}!`);
        })();
      }
    })();
    const clients = await Promise.all([1, 2, 3].map(() => connect<string>(server.url)));
    await Promise.all(clients.map((c, i) => c.send(`hi ${i}`)));
    const replies = await Promise.all(clients.map((c) => watchdog(c.receive(), 5000, 'reply')));
    expect(replies).toEqual(['hi 0!', 'hi 1!', 'hi 2!']);
    await Promise.all(clients.map((c) => c.close()));
  });

  it('peer info names the transport; closing the client ends the server side cleanly after its messages', async () => {
    await using server = await listen<number>(listenUrl(transport, env.dir));
    const client = await connect<number>(server.url);
    const conn = await watchdog(server.accept(), 5000, 'accept');
    expect(conn.peer.transport).toBe(transport);
    expect(conn.peer.tls).toBe(false);
    if (transport === 'tcp') expect(conn.peer.address).toBe('127.0.0.1');
    else expect(conn.peer).toMatchObject({ pid: process.pid, uid: process.getuid!() });
    for (let i = 0; i < 100; i++) void client.send(i);
    await client.close();
    const received: number[] = [];
    for await (const n of conn) received.push(n);
    expect(received).toEqual(Array.from({ length: 100 }, (_, i) => i));
    await expect(client.send(1)).rejects.toMatchObject({ code: ErrorCodes.CLOSED });
  });

  it('close() resolves once every connection is gone: disconnects emitted, no connection counted', async () => {
    const server = await listen(listenUrl(transport, env.dir));
    const disconnects: string[] = [];
    server.on('disconnect', (_conn, reason) => disconnects.push(reason.code));
    const clients = await Promise.all([1, 2].map(() => connect(server.url)));
    await watchdog(
      (async () => {
        while (server.stats().connections < 2) await new Promise((resolve) => setImmediate(resolve));
      })(),
      5000,
      'both connections established',
    );
    await server.close();
    expect(server.stats().connections).toBe(0);
    expect(disconnects).toHaveLength(2);
    await Promise.all(clients.map((c) => c.close()));
  });

  it('accept honours timeout; close() ends iteration and refuses new clients', async () => {
    const server = await listen(listenUrl(transport, env.dir));
    await expect(server.accept({ timeout: 20 })).rejects.toMatchObject({ code: ErrorCodes.TIMEOUT });
    const iteration = (async () => {
      for await (const _ of server) {
      }
      return 'ended';
    })();
    const url = server.url;
    await server.close();
    expect(await watchdog(iteration, 5000, 'iteration ends')).toBe('ended');
    expect((await rejectionOf(connect(url))).code).toBe(ErrorCodes.NOT_FOUND);
    await server.close(); // idempotent
  });

  it('maxConnections: the extra client is refused with ERR_IPC_QUEUE_FULL; the others keep working', async () => {
    await using server = await listen(listenUrl(transport, env.dir), { maxConnections: 2 });
    server.handle('ping', () => 'pong');
    const refused: string[] = [];
    server.on('refused', (reason) => refused.push(reason.code));
    const a = await connect(server.url);
    const b = await connect(server.url);
    const error = await rejectionOf(connect(server.url));
    expect(error.code).toBe(ErrorCodes.QUEUE_FULL);
    expect(error.message).toContain('maxConnections');
    expect(refused).toEqual([ErrorCodes.QUEUE_FULL]);
    expect(await a.request('ping')).toBe('pong');
    await a.close();
    // A slot is free once the server has seen the first one go.
    await watchdog(
      new Promise<void>((resolve) => {
        const check = () => (server.stats().connections < 2 ? resolve() : setImmediate(check));
        check();
      }),
      5000,
      'slot freed',
    );
    const c = await connect(server.url);
    expect(await c.request('ping')).toBe('pong');
    await Promise.all([b.close(), c.close()]);
  });

  it('refused clients that hang up free their lingering slot: one after another, every one learns ERR_IPC_QUEUE_FULL', async () => {
    await using server = await listen(listenUrl(transport, env.dir), { maxConnections: 1 });
    const held = await connect(server.url);
    // Well-behaved clients, one at a time: each reads its refusal and closes. Far fewer than a
    // flood, yet more than MAX_LINGERING_REFUSALS: none may be cut off without the reason.
    const codes: (string | undefined)[] = [];
    for (let i = 0; i < MAX_LINGERING_REFUSALS + 8; i++) {
      codes.push((await rejectionOf(connect(server.url))).code);
    }
    expect(codes).toEqual(Array(MAX_LINGERING_REFUSALS + 8).fill(ErrorCodes.QUEUE_FULL));
    await held.close();
  });

  it('graceful close: running requests finish, new ones are refused, then clients see a clean end', async () => {
    const server = await listen(listenUrl(transport, env.dir));
    let release!: () => void;
    const latch = new Promise<void>((resolve) => {
      release = resolve;
    });
    let started!: () => void;
    const running = new Promise<void>((resolve) => {
      started = resolve;
    });
    server.handle('slow', async () => {
      started();
      await latch;
      return 'finished';
    });
    server.handle('quick', () => 'quick');
    const client = await connect(server.url);
    const slow = client.request('slow');
    await watchdog(running, 5000, 'slow handler started');
    const closing = server.close({ graceMs: 10_000 });
    const refusedDuringDrain = await rejectionOf(client.request('quick'));
    expect(refusedDuringDrain.code).toBe(ErrorCodes.CLOSED);
    expect(refusedDuringDrain.message).toContain('shutting down');
    release();
    expect(await watchdog(slow, 5000, 'slow reply')).toBe('finished');
    await watchdog(closing, 10_000, 'server closed');
    const ended: unknown[] = [];
    for await (const message of client) ended.push(message);
    expect(ended).toEqual([]);
    expect((await rejectionOf(client.request('quick'))).code).toBe(ErrorCodes.CLOSED);
  });

  it('a request still running at the grace deadline is failed with ERR_IPC_PEER_GONE and its signal aborted', async () => {
    const server = await listen(listenUrl(transport, env.dir));
    let aborted!: (reason: unknown) => void;
    const wasAborted = new Promise((resolve) => {
      aborted = resolve;
    });
    let started!: () => void;
    const running = new Promise<void>((resolve) => {
      started = resolve;
    });
    server.handle('forever', (_params, ctx) => {
      ctx.signal.addEventListener('abort', () => aborted(ctx.signal.reason));
      started();
      return new Promise(() => {});
    });
    const client = await connect(server.url);
    // The rejection is taken at once: it may come while close() is still awaited.
    const forever = rejectionOf(client.request('forever'));
    await watchdog(running, 5000, 'handler started');
    await watchdog(server.close({ graceMs: 50 }), 10_000, 'server closed');
    expect((await watchdog(forever, 5000, 'request settles')).code).toBe(ErrorCodes.PEER_GONE);
    expect(await watchdog(wasAborted, 5000, 'handler signal aborted')).toBeInstanceOf(Error);
    await client.close();
  });

  it('close() does not wait out graceMs for a handler whose client has gone', async () => {
    const server = await listen(listenUrl(transport, env.dir));
    let started!: () => void;
    const running = new Promise<void>((resolve) => {
      started = resolve;
    });
    server.handle('forever', () => {
      started();
      return new Promise(() => {});
    });
    const client = await connect(server.url);
    void client.request('forever').catch(() => {});
    await watchdog(running, 5000, 'handler started');
    const closing = server.close({ graceMs: 600_000 });
    client.destroy();
    await watchdog(closing, 10_000, 'server closed once its only client went');
  });

  it('connections not taken from accept() keep serving requests; the backlog is bounded', async () => {
    await using server = await listen(listenUrl(transport, env.dir), { maxPending: 2 });
    server.handle('id', (_params, ctx) => ctx.connection.id);
    const seen: SocketConnection[] = [];
    server.on('connection', (conn) => seen.push(conn));
    const clients = await Promise.all([1, 2, 3, 4].map(() => connect(server.url)));
    const ids = await Promise.all(clients.map((c) => c.request('id')));
    expect(new Set(ids).size).toBe(4);
    expect(seen.map((c) => c.id).sort()).toEqual([...(ids as number[])].sort());
    // Only the two newest are still offered.
    const first = await server.accept({ timeout: 1000 });
    const second = await server.accept({ timeout: 1000 });
    expect([first.id, second.id]).toEqual([seen[2]!.id, seen[3]!.id]);
    await expect(server.accept({ timeout: 20 })).rejects.toMatchObject({ code: ErrorCodes.TIMEOUT });
    await Promise.all(clients.map((c) => c.close()));
  });
});

describe('socket send memory', () => {
  it('a sender looping on trySend reuses its write memory while the kernel takes each batch at once', async () => {
    await using server = await listen<{ id: number; name: string }>('tcp://127.0.0.1:0');
    await using client = await connect<{ id: number; name: string }>(server.url);
    const conn = await watchdog(server.accept(), 5000, 'accept');
    const message = { id: 1, name: 'x'.repeat(47) };
    const before = process.memoryUsage().arrayBuffers;
    // No await, so no tick: the write callbacks of the ~50 batches of 64 KiB this sends cannot
    // run before the loop ends. Loopback TCP takes them all at once.
    let sent = 0;
    while (sent < 50_000 && client.trySend(message)) sent++;
    const growth = process.memoryUsage().arrayBuffers - before;
    expect(sent).toBe(50_000);
    // A fresh batch per flush (as before the fix) comes to about 3 MiB here.
    expect(growth).toBeLessThan(1 << 20);
    let received = 0;
    for await (const m of conn) {
      expect(m).toEqual(message);
      if (++received === sent) break;
    }
  });
});
