import { createServer as netCreateServer } from 'node:net';
import { join } from 'node:path';
import { connect as tlsConnect, createServer as tlsCreateServer } from 'node:tls';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { encodeHello, FrameBatch } from '../../src/core/framing.js';
import { connect, ErrorCodes, type IpcError, listen } from '../../src/index.js';
import { jsonFrame, Kind, SOCKET_PROTOCOL_VERSION } from '../../src/socket/protocol.js';
import { cert, key } from '../fixtures/socket-tls-cert.js';
import { untrustedCert, untrustedKey } from '../fixtures/socket-tls-untrusted-cert.js';
import { isolateRuntimeDir, rejectionOf, watchdog } from '../helpers.js';
import { startFixture } from './child.js';
import { closed, greeting, rawConnect } from './raw.js';
import { listenUrl, transports } from './transports.js';

let env: ReturnType<typeof isolateRuntimeDir>;
beforeEach(() => {
  env = isolateRuntimeDir();
});
afterEach(() => env.cleanup());

/** The server's next refusal. Awaited after other awaits: a watchdog firing meanwhile is reported there. */
function nextRefusal(server: { once(event: 'refused', fn: (reason: IpcError) => void): unknown }) {
  const refusal = watchdog(
    new Promise<IpcError>((resolve) => server.once('refused', resolve)),
    10_000,
    'server refusal',
  );
  refusal.catch(() => {});
  return refusal;
}

describe.each(transports)('handshake and authentication over %s', (transport) => {
  it('a client with another codec is ERR_IPC_INCOMPATIBLE on both sides', async () => {
    await using server = await listen(listenUrl(transport, env.dir), { codec: 'msgpack' });
    const refused = nextRefusal(server);
    const error = await rejectionOf(connect(server.url, { codec: 'json' }));
    expect(error.code).toBe(ErrorCodes.INCOMPATIBLE);
    expect(error.message).toContain("codec 'msgpack'");
    expect((await refused).code).toBe(ErrorCodes.INCOMPATIBLE);
  });

  it('a peer that is not ipckit is refused with ERR_IPC_BAD_FRAME, and so is a server that is not', async () => {
    await using server = await listen(listenUrl(transport, env.dir));
    const refused = nextRefusal(server);
    const raw = await rawConnect(server.url);
    raw.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    expect((await refused).code).toBe(ErrorCodes.BAD_FRAME);
    await closed(raw);

    // A plain TCP/Unix server that answers with something else.
    const plain = netCreateServer((socket) => socket.end('HTTP/1.1 400 Bad Request\r\n\r\n'));
    const where =
      transport === 'tcp' ? { host: '127.0.0.1', port: 0 } : { path: join(env.dir, 'plain.sock') };
    await new Promise<void>((resolve) => plain.listen(where, resolve));
    const address = plain.address();
    const url =
      typeof address === 'object' && address ? `tcp://127.0.0.1:${address.port}` : `unix://${address}`;
    try {
      expect((await rejectionOf(connect(url))).code).toBe(ErrorCodes.BAD_FRAME);
    } finally {
      plain.close();
    }
  });

  /**
   * A plain net server on this transport that keeps every connection open and does `greet` with
   * each (never an ipckit handshake). Close it with `stop()`.
   */
  async function plainPeer(name: string, greet: (socket: import('node:net').Socket) => void) {
    const held: import('node:net').Socket[] = [];
    const server = netCreateServer((socket) => {
      socket.on('error', () => {});
      held.push(socket);
      greet(socket);
    });
    const where =
      transport === 'tcp'
        ? { host: '127.0.0.1', port: 0 }
        : { path: listenUrl(transport, env.dir, name).slice('unix://'.length) };
    await watchdog(
      new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(where, resolve);
      }),
      5000,
      'listen',
    );
    const address = server.address();
    const url =
      typeof address === 'object' && address ? `tcp://127.0.0.1:${address.port}` : `unix://${address}`;
    const stop = () => {
      for (const socket of held) socket.destroy();
      server.close();
    };
    return { url, held, stop };
  }

  it('a peer that answers something else and keeps the connection open fails connect with ERR_IPC_BAD_FRAME', async () => {
    const peer = await plainPeer('garbage', (socket) => socket.write('garbage, and no goodbye'));
    try {
      // (The client's socket then lingers up to 2 s to let its ABORT out, as this peer never
      // closes; connect no longer waits for that: 2 ms instead of 2,000 in a standalone run.)
      const err = await watchdog(rejectionOf(connect(peer.url)), 10_000, 'connect fails');
      expect(err.code).toBe(ErrorCodes.BAD_FRAME);
      expect(peer.held.length).toBe(1);
    } finally {
      peer.stop();
    }
  });

  it('a peer that accepts and never answers: connect fails with ERR_IPC_TIMEOUT after connectTimeoutMs', async () => {
    const peer = await plainPeer('silent', () => {}); // accepted, and never a byte back
    try {
      // No timeout of the caller's: connectTimeoutMs bounds the first connection too.
      const err = await watchdog(
        rejectionOf(connect(peer.url, { connectTimeoutMs: 200 })),
        10_000,
        'connect fails',
      );
      expect(err.code).toBe(ErrorCodes.TIMEOUT);
      // The caller's own timeout, when given, is the bound instead.
      const own = await watchdog(
        rejectionOf(connect(peer.url, { connectTimeoutMs: 60_000, timeout: 200 })),
        10_000,
        'connect fails',
      );
      expect(own.code).toBe(ErrorCodes.TIMEOUT);
    } finally {
      peer.stop();
    }
  });

  it.each(['an end', 'a reset'])(
    'a frame cut short by %s: the whole message before it arrives, then ERR_IPC_PEER_GONE',
    async (how) => {
      await using server = await listen(listenUrl(transport, env.dir));
      const accepted = server.accept();
      const raw = await rawConnect(server.url);
      const whole = Buffer.from([0, 0, 0, 2, 0, 0x90]); // a MESSAGE frame: an empty array
      const cut = Buffer.from([0, 0, 0, 100, 0, 0x91]); // declares 100 bytes, then the peer is gone
      raw.write(Buffer.concat([greeting(), whole, cut]));
      const conn = await watchdog(accepted, 5000, 'accept');
      expect(await watchdog(conn.receive(), 5000, 'the whole message')).toEqual([]);
      if (how === 'an end') raw.end();
      else if (transport === 'tcp') raw.resetAndDestroy();
      else raw.destroy();
      const error = await watchdog(rejectionOf(conn.receive()), 5000, 'the cut frame reported');
      expect(error.code).toBe(ErrorCodes.PEER_GONE);
      // The receiver says a message was cut, not just that the peer left.
      expect(error.message).toMatch(/mid-message/);
    },
  );

  it('a hello followed by something other than the socket handshake is ERR_IPC_INCOMPATIBLE', async () => {
    await using server = await listen(listenUrl(transport, env.dir));
    const refused = nextRefusal(server);
    const raw = await rawConnect(server.url);
    const hello = greeting().subarray(0, 6 + 'msgpack'.length);
    const frame = Buffer.from([0, 0, 0, 2, 0, 0x90]); // a MESSAGE frame instead of HANDSHAKE
    raw.write(Buffer.concat([hello, frame]));
    const reason = await refused;
    expect(reason.code).toBe(ErrorCodes.INCOMPATIBLE);
    expect(reason.message).toContain('handshake');
    await closed(raw);
  });

  it('auth.token: a wrong or missing token fails with ERR_IPC_AUTH on the client; the right one connects', async () => {
    await using server = await listen(listenUrl(transport, env.dir), { auth: { token: 's3cret' } });
    server.handle('who', (_p, ctx) => ctx.peer.transport);
    const refusals: string[] = [];
    server.on('refused', (reason) => refusals.push(reason.code));
    const wrong = await rejectionOf(connect(server.url, { auth: { token: 's3cref' } }));
    expect(wrong.code).toBe(ErrorCodes.AUTH);
    expect(wrong.message).toContain('wrong token');
    const missing = await rejectionOf(connect(server.url));
    expect(missing.code).toBe(ErrorCodes.AUTH);
    expect(missing.message).toContain('requires auth.token');
    const longer = await rejectionOf(connect(server.url, { auth: { token: 's3cret-and-more' } }));
    expect(longer.code).toBe(ErrorCodes.AUTH);
    const client = await connect(server.url, { auth: { token: new TextEncoder().encode('s3cret') } });
    expect(await client.request('who')).toBe(transport);
    expect(refusals).toEqual([ErrorCodes.AUTH, ErrorCodes.AUTH, ErrorCodes.AUTH]);
    expect(server.stats()).toMatchObject({ accepted: 1, refused: 3 });
    await client.close();
  });

  it('tls: an encrypted, verified connection; plain and unverified clients are refused', async () => {
    await using server = await listen(listenUrl(transport, env.dir), { tls: { key, cert } });
    server.handle('secure', (_p, ctx) => ctx.peer.tls);
    const client = await connect(server.url, { tls: { ca: cert } });
    expect(await client.request('secure')).toBe(true);
    const conn = await server.accept({ timeout: 5000 });
    expect(conn.peer.tls).toBe(true);
    await client.close();

    const unverified = await rejectionOf(connect(server.url, { tls: true, timeout: 5000 }));
    expect(unverified.code).toBe(ErrorCodes.AUTH);
    const plain = await rejectionOf(connect(server.url, { timeout: 5000 }));
    expect([ErrorCodes.BAD_FRAME, ErrorCodes.PEER_GONE]).toContain(plain.code);
  });

  it('tls options that cannot work fail listen() and connect() with a clear error and leave nothing open', async () => {
    const badListen = await rejectionOf(
      listen(listenUrl(transport, env.dir), { tls: { key: 'not a key', cert } }),
    );
    expect(badListen.code).toBe(ErrorCodes.AUTH);
    expect(badListen.message).toContain('options.tls');
    expect(badListen.cause).toBeInstanceOf(Error);
    await using server = await listen(listenUrl(transport, env.dir), { tls: { key, cert } });
    // In a child, which must exit by itself: a dial that threw had left its socket connecting,
    // holding the process open, and its later error (heard by nobody) killed the process.
    const client = startFixture('socket-connect-with-bad-tls-options.ts', [server.url]);
    try {
      expect(JSON.parse(await client.line('FAILED'))).toEqual([
        { name: 'IpcError', code: ErrorCodes.AUTH },
        { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' },
      ]);
      const exit = await watchdog(client.exited, 20_000, 'the client process exits by itself');
      expect(exit).toEqual({ code: 0, signal: null });
    } finally {
      client.kill();
    }
  });

  it('mutual tls: a trusted client certificate gets in, an untrusted one is ERR_IPC_AUTH before any handler runs', async () => {
    await using server = await listen(listenUrl(transport, env.dir), {
      tls: { key, cert, ca: cert, requestCert: true },
    });
    let handled = 0;
    server.handle('who', (_p, ctx) => {
      handled++;
      return ctx.peer.authorized;
    });
    const trusted = await connect(server.url, { tls: { ca: cert, key, cert } });
    expect(await trusted.request('who')).toBe(true);
    await trusted.close();
    expect(handled).toBe(1);

    const untrusted = await rejectionOf(
      connect(server.url, { tls: { ca: cert, key: untrustedKey, cert: untrustedCert }, timeout: 5000 }),
    );
    expect(untrusted.code).toBe(ErrorCodes.AUTH);
    expect(untrusted.message).toMatch(/client certificate is not trusted/);
    // Without a certificate: refused by the handshake too, with the reason (not a bare close).
    const none = await rejectionOf(connect(server.url, { tls: { ca: cert }, timeout: 5000 }));
    expect(none.code).toBe(ErrorCodes.AUTH);
    expect(none.message).toMatch(/no client certificate was presented/);
    expect(handled).toBe(1);
  });

  it('mutual tls: resuming a TLS session without a certificate is refused too', async () => {
    // sessionIdContext lets TLS 1.3 resume sessions on this server; the ticket comes from a
    // connection that presented no certificate (TLS completes; ipckit's handshake then refuses).
    await using server = await listen(listenUrl(transport, env.dir), {
      tls: { key, cert, ca: cert, requestCert: true, sessionIdContext: 'resume-test' },
    });
    let handled = 0;
    server.handle('who', () => ++handled);
    const address = server.url.startsWith('tcp://')
      ? { host: '127.0.0.1', port: Number(new URL(server.url.replace('tcp:', 'http:')).port) }
      : { path: server.url.slice('unix://'.length) };
    const session = await watchdog(
      new Promise<Buffer>((resolve, reject) => {
        const raw = tlsConnect({ ...address, ca: cert, servername: 'localhost' });
        raw.once('session', (ticket: Buffer) => {
          resolve(ticket);
          raw.destroy();
        });
        raw.once('error', reject);
        raw.resume();
      }),
      10_000,
      'a session ticket',
    );
    const resumed = await rejectionOf(connect(server.url, { tls: { ca: cert, session }, timeout: 5000 }));
    expect(resumed.code).toBe(ErrorCodes.AUTH);
    expect(resumed.message).toMatch(/no client certificate was presented/);
    expect(handled).toBe(0);
  });

  it('tls + auth.token: a wrong or missing token is ERR_IPC_AUTH: the ABORT survives the TLS close', async () => {
    await using server = await listen(listenUrl(transport, env.dir), {
      tls: { key, cert },
      auth: { token: 's3cret' },
    });
    const wrong = await rejectionOf(connect(server.url, { tls: { ca: cert }, auth: { token: 'nope' } }));
    expect(wrong.code).toBe(ErrorCodes.AUTH);
    expect(wrong.message).toContain('wrong token');
    const missing = await rejectionOf(connect(server.url, { tls: { ca: cert } }));
    expect(missing.code).toBe(ErrorCodes.AUTH);
    const client = await connect(server.url, { tls: { ca: cert }, auth: { token: 's3cret' } });
    expect(client.connected).toBe(true);
    await client.close();
  });

  it('tls: a WELCOME with a bad max is refused by the client (ERR_IPC_BAD_FRAME), its ABORT delivered', async () => {
    const heard: Buffer[] = [];
    let closedSocket!: () => void;
    const peerClosed = new Promise<void>((resolve) => {
      closedSocket = resolve;
    });
    const fake = tlsCreateServer({ key, cert }, (socket) => {
      socket.on('error', () => {});
      socket.on('data', (chunk: Buffer) => heard.push(chunk));
      socket.on('close', () => closedSocket());
      const batch = new FrameBatch();
      batch.add(jsonFrame(Kind.WELCOME, { v: SOCKET_PROTOCOL_VERSION, hb: 0, max: -1 }));
      socket.write(Buffer.concat([encodeHello('msgpack'), batch.take()]));
    });
    const where =
      transport === 'tcp'
        ? { host: '127.0.0.1', port: 0 }
        : { path: listenUrl(transport, env.dir, 'fake-tls').slice('unix://'.length) };
    await watchdog(
      new Promise<void>((resolve, reject) => {
        fake.once('error', reject);
        fake.listen(where, resolve);
      }),
      5000,
      'listen',
    );
    const address = fake.address();
    const url =
      typeof address === 'object' && address ? `tcp://127.0.0.1:${address.port}` : `unix://${address}`;
    try {
      const err = await watchdog(rejectionOf(connect(url, { tls: { ca: cert } })), 10_000, 'connect fails');
      expect(err.code).toBe(ErrorCodes.BAD_FRAME);
      await watchdog(peerClosed, 10_000, 'the client ends the connection');
      expect(Buffer.concat(heard).toString('latin1')).toContain(`"code":"${ErrorCodes.BAD_FRAME}"`);
    } finally {
      fake.close();
    }
  });

  it('a TLS client to a plain server fails with ERR_IPC_AUTH', async () => {
    await using server = await listen(listenUrl(transport, env.dir));
    const error = await rejectionOf(connect(server.url, { tls: { ca: cert }, timeout: 5000 }));
    expect(error.code).toBe(ErrorCodes.AUTH);
  });

  it('bad options are TypeError/RangeError naming the option, as rejections', async () => {
    const url = listenUrl(transport, env.dir);
    await expect(listen(url, { maxConnections: 0 })).rejects.toThrow(/maxConnections/);
    await expect(listen(url, { heartbeatMs: -1 })).rejects.toThrow(/heartbeatMs/);
    await expect(listen(url, { auth: { token: 42 as unknown as string } })).rejects.toThrow(TypeError);
    await expect(listen(url, { codec: 'yaml' as 'json' })).rejects.toThrow(/codec/);
    await expect(connect(url, { reconnect: { retries: -1 } })).rejects.toThrow(/reconnect.retries/);
    await expect(connect(url, { timeout: Number.NaN })).rejects.toThrow(/timeout/);
    await expect(listen('http://x:1')).rejects.toThrow(TypeError);
    await expect(connect('tcp://127.0.0.1:99999')).rejects.toThrow(RangeError);
  });

  it('a boolean or number option of the wrong type is a TypeError naming it', async () => {
    const url = listenUrl(transport, env.dir);
    await expect(listen(url, { exposeErrorStacks: 'yes' as never })).rejects.toThrow(TypeError);
    await expect(listen(url, { exposeErrorStacks: 'yes' as never })).rejects.toThrow(/exposeErrorStacks/);
    await expect(listen(url, { maxMessageBytes: '1024' as never })).rejects.toThrow(TypeError);
    await using server = await listen(url);
    await expect(server.close({ graceMs: '5' as never })).rejects.toThrow(TypeError);
  });
});

describe('address rules', () => {
  it('a TCP listener on a non-loopback address refuses to start without auth or TLS', async () => {
    const error = await rejectionOf(listen('tcp://0.0.0.0:0'));
    expect(error.code).toBe(ErrorCodes.AUTH);
    expect(error.message).toContain('non-loopback');
    expect((await rejectionOf(listen('tcp://[::]:0'))).code).toBe(ErrorCodes.AUTH);
    expect((await rejectionOf(listen('tcp://example.com:0'))).code).toBe(ErrorCodes.AUTH);
    // Loopback in every spelling is fine.
    for (const url of ['tcp://127.0.0.1:0', 'tcp://localhost:0', 'tcp://[::1]:0']) {
      const server = await listen(url);
      await server.close();
    }
  });

  it('auth.uid is for unix sockets and named pipes: on TCP it is a TypeError', async () => {
    await expect(listen('tcp://127.0.0.1:0', { auth: { uid: 0 } })).rejects.toThrow(TypeError);
  });

  it('a unix socket path too long for the kernel is ERR_IPC_PATH_TOO_LONG, never truncated', async () => {
    const long = `unix:///tmp/${'d'.repeat(120)}/s.sock`;
    expect((await rejectionOf(listen(long))).code).toBe(ErrorCodes.PATH_TOO_LONG);
    expect((await rejectionOf(connect(long))).code).toBe(ErrorCodes.PATH_TOO_LONG);
  });
});
