import { createServer, type Socket } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { connect, ErrorCodes, type IpcError, listen, type SocketConnection } from '../../src/index.js';
import { parseAddress } from '../../src/socket/address.js';
import { cert, key } from '../fixtures/socket-tls-cert.js';
import { isolateRuntimeDir, isPending, rejectionOf, watchdog } from '../helpers.js';
import { stablePort } from '../support/ports.js';
import { startFixture } from './child.js';
import { listenUrl, transports } from './transports.js';

let env: ReturnType<typeof isolateRuntimeDir>;
beforeEach(() => {
  env = isolateRuntimeDir();
});
afterEach(() => env.cleanup());

const fast = { minDelayMs: 10, maxDelayMs: 100 };

describe.each(transports)('reconnecting clients over %s', (transport) => {
  it('survive a server restart: in-flight requests fail, queued ones go to the new server', async () => {
    // The new server listens where the old one did: over TCP, a port no outgoing connection takes.
    const where =
      transport === 'tcp' ? `tcp://127.0.0.1:${await stablePort()}` : listenUrl(transport, env.dir);
    let server = startFixture('socket-echo-server.ts', [where]);
    try {
      const url = await server.line('LISTENING');
      const client = await connect<string>(url, { reconnect: fast });
      const events: string[] = [];
      const disconnected = new Promise<IpcError>((resolve) =>
        client.on('disconnect', (reason) => {
          events.push('disconnect');
          resolve(reason);
        }),
      );
      const reconnected = new Promise<number>((resolve) =>
        client.on('reconnect', (attempts) => {
          events.push('reconnect');
          resolve(attempts);
        }),
      );
      client.on('reconnecting', () => events.push('reconnecting'));
      const firstPid = await client.request('pid');
      expect(firstPid).toBe(server.process.pid);
      const inFlight = rejectionOf(client.request('hang'));
      await server.line('HANGING 1');
      server.kill();
      expect((await watchdog(inFlight, 10_000, 'in-flight request fails')).code).toBe(ErrorCodes.PEER_GONE);
      expect((await watchdog(disconnected, 10_000, 'disconnect')).code).toBe(ErrorCodes.PEER_GONE);
      expect(client.connected).toBe(false);

      // While disconnected: a request and a message wait in the bounded queue.
      const queuedRequest = client.request('pid');
      const queuedSend = client.send('after restart');
      // Handled below, after the restart; a failure meanwhile must not count as unhandled.
      queuedRequest.catch(() => {});
      queuedSend.catch(() => {});

      server = startFixture('socket-echo-server.ts', [url]);
      expect(await server.line('LISTENING')).toBe(url);
      expect(await watchdog(reconnected, 10_000, 'reconnect')).toBeGreaterThan(0);
      expect(await watchdog(queuedRequest, 10_000, 'queued request answered')).toBe(server.process.pid);
      await queuedSend;
      expect(await watchdog(client.receive(), 5000, 'echo from the new server')).toBe('after restart');
      expect(events[0]).toBe('disconnect');
      expect(events).toContain('reconnecting');
      expect(events.at(-1)).toBe('reconnect');
      await client.close();
    } finally {
      server.kill();
    }
  }, 60_000);

  it('survive a graceful restart: a request made once close() has returned goes to the new server', async () => {
    const where =
      transport === 'tcp' ? `tcp://127.0.0.1:${await stablePort()}` : listenUrl(transport, env.dir);
    const first = await listen(where);
    let ranOnFirst = 0;
    first.handle('who', () => {
      ranOnFirst++;
      return 'first';
    });
    const client = await connect<string>(first.url, { reconnect: fast });
    expect(await client.request('who')).toBe('first');
    // Written before the client has read the server's goodbye: the closing server does not run
    // it, and the client cannot know that, so it fails as any request the connection dropped.
    const inFlight = rejectionOf(client.request('who'));
    await first.close();
    // Made once close() has returned: the server's socket lingered until the client had read its
    // goodbye, so the client knows it is disconnected and queues this for the next server
    // (written to a socket already gone, it failed with EPIPE).
    const after = client.request('who');
    await using second = await listen(first.url);
    second.handle('who', () => 'second');
    expect((await watchdog(inFlight, 10_000, 'the request in flight during close')).code).toBe(
      ErrorCodes.PEER_GONE,
    );
    expect(await watchdog(after, 10_000, 'the request made after close')).toBe('second');
    expect(ranOnFirst).toBe(1);
    await client.close();
  });

  it("what a client sends on reading the server's last message before its goodbye goes to the next connection", async () => {
    await using server = await listen(listenUrl(transport, env.dir));
    const runs: number[] = [];
    server.handle('x', (n: number) => {
      runs.push(n);
      return n;
    });
    const connections = server[Symbol.asyncIterator]();
    const client = await connect<string>(server.url, { reconnect: fast });
    const first = (await watchdog(connections.next(), 10_000, 'the connection'))
      .value as SocketConnection<string>;
    // Read in the same chunk as the goodbye that follows it: the client reacts before it has
    // processed the goodbye, on a link that is still open but whose peer is leaving.
    const reaction = client.receive().then((m) => {
      expect(m).toBe('last');
      return Promise.all([client.request('x', 1), client.send('after the goodbye')]);
    });
    await first.send('last');
    await watchdog(first.close(), 10_000, 'the connection to close');
    const second = (await watchdog(connections.next(), 10_000, 'the next connection'))
      .value as SocketConnection<string>;
    expect((await watchdog(reaction, 10_000, 'the request and the send'))[0]).toBe(1);
    expect(await watchdog(second.receive(), 10_000, 'the message on the next connection')).toBe(
      'after the goodbye',
    );
    expect(runs).toEqual([1]);
    await client.close();
  });

  it('a request that reaches a connection while it closes is not run', async () => {
    await using server = await listen(listenUrl(transport, env.dir));
    let runs = 0;
    server.handle('count', () => ++runs);
    const accepted = new Promise<SocketConnection<unknown>>((resolve) => server.once('connection', resolve));
    const client = await connect(server.url);
    const conn = await watchdog(accepted, 10_000, 'the connection');
    expect(await client.request('count')).toBe(1);
    // The connection lingers until the client has read its goodbye: a request the client wrote
    // before that is read, and refused or left unanswered, never run.
    const closing = conn.close();
    const late = await watchdog(rejectionOf(client.request('count')), 10_000, 'the late request');
    expect([ErrorCodes.CLOSED, ErrorCodes.PEER_GONE]).toContain(late.code);
    await watchdog(closing, 10_000, 'the connection to close');
    expect(runs).toBe(1);
    await client.close();
  });

  it('a handler that outlives graceMs: its request fails (it may have run), and is not sent again', async () => {
    const where =
      transport === 'tcp' ? `tcp://127.0.0.1:${await stablePort()}` : listenUrl(transport, env.dir);
    const first = await listen(where);
    let started!: () => void;
    const running = new Promise<void>((resolve) => {
      started = resolve;
    });
    first.handle('slow', () => {
      started();
      return new Promise(() => {});
    });
    const client = await connect<string>(first.url, { reconnect: fast });
    const slow = rejectionOf(client.request('slow'));
    await watchdog(running, 10_000, 'the handler to start');
    await first.close({ graceMs: 0 });
    await using second = await listen(first.url);
    let ranOnSecond = 0;
    second.handle('slow', () => ++ranOnSecond);
    expect((await watchdog(slow, 10_000, 'the request cut short')).code).toBe(ErrorCodes.PEER_GONE);
    // The client is back on the new server, which never saw that request.
    expect(await watchdog(client.request('slow'), 10_000, 'a new request')).toBe(1);
    await client.close();
  });

  it('close() while redialling a server that never answers leaves nothing behind: the process exits by itself', async () => {
    const where =
      transport === 'tcp' ? `tcp://127.0.0.1:${await stablePort()}` : listenUrl(transport, env.dir);
    const server = await listen(where, { tls: { key, cert } });
    const client = startFixture('socket-close-while-redialling.ts', [server.url]);
    // Where the server was, something that takes connections and never says a word (a frozen
    // server): the client's redial waits there, in its TLS handshake, for connectTimeoutMs.
    const silent: Socket[] = [];
    const hole = createServer((socket) => {
      silent.push(socket);
      client.process.kill('SIGUSR1');
    });
    try {
      await client.line('CONNECTED');
      await server.close();
      const address = parseAddress(server.url);
      await new Promise<void>((resolve) =>
        address.kind === 'tcp'
          ? hole.listen(address.port, address.host, resolve)
          : hole.listen(address.path, resolve),
      );
      await client.line('CLOSED');
      const exit = await watchdog(client.exited, 20_000, 'the closed client process exits by itself');
      expect(exit).toEqual({ code: 0, signal: null });
    } finally {
      client.kill();
      for (const socket of silent) socket.destroy();
      hole.close();
    }
  }, 60_000);

  it('resubscribe after reconnecting', async () => {
    let server = await listen(listenUrl(transport, env.dir));
    const url = server.url;
    const client = await connect(url, { reconnect: fast });
    const sub = client.subscribe<string>('news');
    await sub.ready;
    server.publish('news', 'before');
    expect(await sub.receive({ timeout: 5000 })).toBe('before');
    const reconnected = new Promise((resolve) => client.once('reconnect', resolve));
    const disconnected = new Promise((resolve) => client.once('disconnect', resolve));
    await server.close({ graceMs: 0 });
    await watchdog(disconnected, 10_000, 'disconnect');
    // Made while disconnected, to a topic the client had: ready only once the next server has it.
    const later = client.subscribe<string>('news');
    expect(await isPending(later.ready)).toBe(true);
    server = await listen(url);
    const subscribed = new Promise((resolve) => server.once('subscribe', resolve));
    await watchdog(reconnected, 10_000, 'reconnect');
    await watchdog(later.ready, 10_000, 'the later subscription is ready');
    expect(server.subscribers('news')).toBe(1);
    await watchdog(subscribed, 10_000, 'resubscribed');
    server.publish('news', 'after');
    expect(await sub.receive({ timeout: 5000 })).toBe('after');
    expect(await later.receive({ timeout: 5000 })).toBe('after');
    await client.close();
    await server.close();
  });

  it('a subscription still unanswered when the connection drops is ready once the next one has it', async () => {
    await using server = await listen(listenUrl(transport, env.dir));
    const accepted = server.accept();
    const client = await connect(server.url, { reconnect: fast });
    const conn = await watchdog(accepted, 5000, 'accept');
    const sub = client.subscribe<string>('t');
    // Dropped in the same tick: the SUBSCRIBE never reaches the server on this connection.
    conn.destroy();
    await watchdog(sub.ready, 10_000, 'ready after the reconnect');
    expect(server.subscribers('t')).toBe(1);
    server.publish('t', 'after');
    expect(await sub.receive({ timeout: 5000 })).toBe('after');
    await client.close();
  });

  it('what was queued for a server that comes back with a smaller maxMessageBytes: too large is refused here', async () => {
    let server = await listen(listenUrl(transport, env.dir));
    const url = server.url;
    const client = await connect(url, { reconnect: fast });
    const disconnected = new Promise((resolve) => client.once('disconnect', resolve));
    const reconnected = new Promise<number>((resolve) =>
      client.once('reconnect', (_attempts, tooLarge) => resolve(tooLarge)),
    );
    await server.close({ graceMs: 0 });
    await watchdog(disconnected, 10_000, 'disconnect');
    const big = 'x'.repeat(200_000);
    await client.send(big); // queued: resolves
    const bigRequest = rejectionOf(client.request('len', big));
    await client.send('small');
    server = await listen(url, { maxMessageBytes: 100_000 });
    server.handle('len', (s: string) => s.length);
    const accepted = server.accept();
    expect(await watchdog(reconnected, 10_000, 'reconnect')).toBe(1);
    const refused = await watchdog(bigRequest, 5000, 'the big request fails');
    expect(refused.code).toBe(ErrorCodes.FRAME_TOO_LARGE);
    expect(refused.message).toMatch(/the server's maxMessageBytes \(100000\)/);
    // The connection stayed up: the small message arrived, and requests go on.
    const conn = await watchdog(accepted, 5000, 'accept');
    expect(await watchdog(conn.receive(), 5000, 'the small message')).toBe('small');
    expect(await client.request('len', 'abc')).toBe(3);
    await client.close();
    await server.close();
  });

  it('a send waiting past the full queue, too large for the next server, is refused here', async () => {
    let server = await listen(listenUrl(transport, env.dir));
    const url = server.url;
    const client = await connect(url, { reconnect: { ...fast, maxQueued: 1 } });
    const disconnected = new Promise((resolve) => client.once('disconnect', resolve));
    const reconnected = new Promise((resolve) => client.once('reconnect', resolve));
    await server.close({ graceMs: 0 });
    await watchdog(disconnected, 10_000, 'disconnect');
    await client.send('queued'); // fills the queue
    const waiting = rejectionOf(client.send('x'.repeat(200_000)));
    const after = client.send('after');
    expect(await isPending(waiting)).toBe(true);
    server = await listen(url, { maxMessageBytes: 100_000 });
    const accepted = server.accept();
    await watchdog(reconnected, 10_000, 'reconnect');
    const refused = await watchdog(waiting, 5000, 'the waiting send fails');
    expect(refused.code).toBe(ErrorCodes.FRAME_TOO_LARGE);
    expect(refused.message).toMatch(/the server's maxMessageBytes \(100000\)/);
    await watchdog(after, 5000, 'the send behind it goes out');
    // The connection stayed up: both small messages arrived, in order.
    const conn = await watchdog(accepted, 5000, 'accept');
    expect(await watchdog(conn.receive(), 5000, 'queued')).toBe('queued');
    expect(await watchdog(conn.receive(), 5000, 'after')).toBe('after');
    await client.close();
    await server.close();
  });

  it('the queue while disconnected is bounded: past it requests fail and sends wait', async () => {
    const server = await listen(listenUrl(transport, env.dir));
    const client = await connect(server.url, { reconnect: { ...fast, retries: 1000, maxQueued: 2 } });
    const disconnected = new Promise((resolve) => client.once('disconnect', resolve));
    await server.close({ graceMs: 0 });
    await watchdog(disconnected, 5000, 'disconnect');
    const first = client.request('x');
    void first.catch(() => {});
    await client.send('one'); // queued: resolves
    expect((await rejectionOf(client.request('y'))).code).toBe(ErrorCodes.QUEUE_FULL);
    expect((await rejectionOf(client.send('two', { timeout: 30 }))).code).toBe(ErrorCodes.TIMEOUT);
    const closing = rejectionOf(first);
    await client.close();
    expect((await closing).code).toBe(ErrorCodes.CLOSED);
  });

  it('a queued request that times out gives its place in the reconnect queue back', async () => {
    const server = await listen(listenUrl(transport, env.dir));
    const client = await connect(server.url, { reconnect: { ...fast, retries: 1000, maxQueued: 1 } });
    const disconnected = new Promise((resolve) => client.once('disconnect', resolve));
    await server.close({ graceMs: 0 });
    await watchdog(disconnected, 5000, 'disconnect');
    expect((await rejectionOf(client.request('x', undefined, { timeout: 20 }))).code).toBe(
      ErrorCodes.TIMEOUT,
    );
    // Its place is free: the next request is queued, not refused as ERR_IPC_QUEUE_FULL.
    const next = rejectionOf(client.request('y'));
    expect(await isPending(next)).toBe(true);
    await client.close();
    expect((await next).code).toBe(ErrorCodes.CLOSED);
  });

  it('a send waiting for room when the connection drops goes to the reconnect queue', async () => {
    const server = startFixture('socket-echo-server.ts', [listenUrl(transport, env.dir)]);
    try {
      const url = await server.line('LISTENING');
      const client = await connect<Uint8Array>(url, { reconnect: { ...fast, retries: 1000 } });
      await client.request('pid');
      process.kill(server.process.pid!, 'SIGSTOP'); // it reads nothing more: the socket fills up
      const big = new Uint8Array(64 * 1024);
      let sent = 0;
      while (client.trySend(big)) if (++sent > 100_000) throw new Error('the socket never filled up');
      const waiting = client.send(big);
      expect(await isPending(waiting)).toBe(true);
      const disconnected = new Promise((resolve) => client.once('disconnect', resolve));
      server.kill();
      await watchdog(disconnected, 10_000, 'disconnect');
      await watchdog(waiting, 5000, 'the waiting send, queued for the next server');
      await watchdog(client.send(new Uint8Array(8), { timeout: 5000 }), 10_000, 'a new send, queued too');
      await client.close();
    } finally {
      server.kill();
    }
  });

  it('gives up with the reason of the last refusal: queued requests reject with it too (ERR_IPC_AUTH)', async () => {
    const where =
      transport === 'tcp' ? `tcp://127.0.0.1:${await stablePort()}` : listenUrl(transport, env.dir);
    let server = await listen(where, { auth: { token: 'first' } });
    const client = await connect(server.url, { auth: { token: 'first' }, reconnect: fast });
    const gaveUp = new Promise<IpcError>((resolve) => client.once('giveup', resolve));
    let queued: ReturnType<typeof rejectionOf> | undefined;
    client.once('disconnect', () => {
      queued = rejectionOf(client.request('queued'));
    });
    await server.close({ graceMs: 0 });
    server = await listen(where, { auth: { token: 'second' } });
    try {
      expect((await watchdog(gaveUp, 10_000, 'giveup')).code).toBe(ErrorCodes.AUTH);
      expect((await watchdog(queued!, 5000, 'the queued request')).code).toBe(ErrorCodes.AUTH);
      expect((await rejectionOf(client.request('new'))).code).toBe(ErrorCodes.AUTH);
    } finally {
      await client.close();
      await server.close();
    }
  });

  it('gives up after `retries` attempts: giveup event, and the client fails with ERR_IPC_PEER_GONE', async () => {
    const server = await listen(listenUrl(transport, env.dir));
    const client = await connect(server.url, { reconnect: { ...fast, retries: 2 } });
    const attempts: number[] = [];
    const delays: number[] = [];
    client.on('reconnecting', (attempt, delayMs) => {
      attempts.push(attempt);
      delays.push(delayMs);
    });
    const gaveUp = new Promise<[IpcError, number]>((resolve) =>
      client.once('giveup', (reason, unsent) => resolve([reason, unsent])),
    );
    // Sent while disconnected: they resolve (queued), so their loss is reported on giveup.
    const queuedSends: Promise<void>[] = [];
    let queuedRequest: ReturnType<typeof rejectionOf> | undefined;
    client.once('disconnect', () => {
      queuedSends.push(client.send('a'), client.send('b'));
      queuedRequest = rejectionOf(client.request('queued'));
    });
    await server.close({ graceMs: 0 });
    const [reason, unsent] = await watchdog(gaveUp, 10_000, 'giveup');
    await Promise.all(queuedSends);
    expect(reason.code).toBe(ErrorCodes.PEER_GONE);
    expect(reason.message).toContain('gave up reconnecting after 2 attempts');
    expect(reason.message).toContain('2 queued message(s) discarded unsent');
    expect(unsent).toBe(2);
    expect(attempts).toEqual([1, 2]);
    // minDelayMs is a floor; the first delay is at most twice it, the second at most four times.
    expect(delays[0]).toBeGreaterThanOrEqual(fast.minDelayMs);
    expect(delays[0]).toBeLessThanOrEqual(2 * fast.minDelayMs);
    expect(delays[1]).toBeGreaterThanOrEqual(2 * fast.minDelayMs);
    expect(delays[1]).toBeLessThanOrEqual(4 * fast.minDelayMs);
    expect((await rejectionOf(client.request('x'))).code).toBe(ErrorCodes.PEER_GONE);
    // A request queued while disconnected fails with the reason, naming the client once up front.
    const queued = await watchdog(queuedRequest!, 5000, 'the queued request fails');
    expect(queued.code).toBe(ErrorCodes.PEER_GONE);
    expect(queued.message).toMatch(/^socket client \S+: gave up reconnecting/);
    expect((await rejectionOf(client.receive())).code).toBe(ErrorCodes.PEER_GONE);
    await client.close();
  });

  it('without reconnect, a server goodbye ends the client cleanly and it stays ended', async () => {
    const server = await listen(listenUrl(transport, env.dir));
    const client = await connect(server.url);
    const gone = new Promise<IpcError>((resolve) => client.once('disconnect', resolve));
    await server.close({ graceMs: 0 });
    expect((await watchdog(gone, 5000, 'disconnect')).code).toBe(ErrorCodes.CLOSED);
    const rest: unknown[] = [];
    for await (const message of client) rest.push(message);
    expect(rest).toEqual([]);
    expect((await rejectionOf(client.request('x'))).code).toBe(ErrorCodes.CLOSED);
    expect(() => client.subscribe('t')).toThrow(expect.objectContaining({ code: ErrorCodes.CLOSED }));
    await client.close();
  });
});
