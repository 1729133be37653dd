import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FrameBatch } from '../../src/core/framing.js';
import { connect, ErrorCodes, type IpcError, listen } from '../../src/index.js';
import { encodeName, requestHead } from '../../src/socket/protocol.js';
import { MAX_LINGERING_REFUSALS } from '../../src/socket/server.js';
import { cert, key } from '../fixtures/socket-tls-cert.js';
import { isolateRuntimeDir, openFdCount, rejectionOf, watchdog } from '../helpers.js';
import { startFixture } from './child.js';
import { closed, greeting, rawConnect } from './raw.js';
import { listenUrl, transports } from './transports.js';

let env: ReturnType<typeof isolateRuntimeDir>;
beforeEach(() => {
  env = isolateRuntimeDir();
});
afterEach(() => env.cleanup());

const knownCodes = new Set<string>(Object.values(ErrorCodes));

/** Resolves once `done()` holds, checked on every turn of the event loop (bound it with a watchdog). */
async function until(done: () => boolean): Promise<void> {
  while (!done()) await new Promise((resolve) => setImmediate(resolve));
}

function header(length: number): Buffer {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32BE(length >>> 0);
  return bytes;
}

describe.each(transports)('limits over %s', (transport) => {
  it('an oversized length prefix is refused before allocation; the server keeps serving others', async () => {
    await using server = await listen(listenUrl(transport, env.dir), { maxMessageBytes: 1024 });
    server.handle('ping', () => 'pong');
    const healthy = await connect(server.url);
    const reasons: IpcError[] = [];
    server.on('disconnect', (_conn, reason) => reasons.push(reason));
    for (const length of [0xffff_fffe, 0x7fff_ffff, 1024 + 262]) {
      const raw = await rawConnect(server.url);
      let heard = '';
      raw.on('data', (chunk: Buffer) => {
        heard += chunk.toString('latin1');
      });
      const rssBefore = process.memoryUsage().rss;
      raw.write(Buffer.concat([greeting(), header(length), Buffer.from([1, 2, 3])]));
      await closed(raw);
      // Told why before being cut off: the ABORT frame's JSON body.
      expect(heard).toContain(`"code":"${ErrorCodes.FRAME_TOO_LARGE}"`);
      // Nothing near `length` was allocated for the frame.
      expect(process.memoryUsage().rss - rssBefore).toBeLessThan(64 << 20);
    }
    await watchdog(
      until(() => reasons.length === 3),
      10_000,
      'the server reports the three connections gone',
    );
    expect(reasons.map((r) => r.code)).toEqual(Array(3).fill(ErrorCodes.FRAME_TOO_LARGE));
    expect(await healthy.request('ping')).toBe('pong');
    await healthy.close();
  });

  it("what the server accepts bounds the client's sends: refused locally, the connection stays usable", async () => {
    await using server = await listen(listenUrl(transport, env.dir), { maxMessageBytes: 1024 });
    server.handle('len', (s: string) => s.length);
    const client = await connect(server.url); // its own bound: the default 64 MiB
    const disconnects: IpcError[] = [];
    client.on('disconnect', (reason) => disconnects.push(reason));
    for (const err of [
      await rejectionOf(client.request('len', 'x'.repeat(4000))),
      await rejectionOf(client.send('x'.repeat(4000))),
    ]) {
      expect(err.code).toBe(ErrorCodes.FRAME_TOO_LARGE);
      expect(err.message).toMatch(/exceeds the server's maxMessageBytes \(1024\)/);
    }
    expect(await client.request('len', 'x'.repeat(1000))).toBe(1000);
    expect(disconnects).toEqual([]);
    await client.close();
  });

  it("what the client accepts bounds the server's replies, sends and publications", async () => {
    await using server = await listen(listenUrl(transport, env.dir));
    server.handle('big', (n: number) => 'x'.repeat(n));
    const accepted = server.accept();
    const client = await connect(server.url, { maxMessageBytes: 1024 });
    const conn = await watchdog(accepted, 5000, 'accept');
    const disconnects: IpcError[] = [];
    client.on('disconnect', (reason) => disconnects.push(reason));
    // A reply too large for the client becomes an error reply: that request fails, nothing else.
    const reply = await rejectionOf(client.request('big', 4000));
    expect(reply.code).toBe(ErrorCodes.FRAME_TOO_LARGE);
    expect(reply.message).toMatch(/exceeds the client's maxMessageBytes \(1024\)/);
    expect(await client.request('big', 10)).toBe('x'.repeat(10));
    // So does an error whose message is too long: it arrives shortened, the connection stays.
    server.handle('fail', (n: number) => {
      throw new Error('y'.repeat(n));
    });
    const failed = await rejectionOf(client.request('fail', 4000));
    expect(failed.code).toBe(ErrorCodes.REMOTE);
    expect(failed.message).toMatch(/yyy…/);
    server.handle('coded', () => {
      throw Object.assign(new Error('short'), { code: 'C'.repeat(4000) });
    });
    expect((await rejectionOf(client.request('coded'))).code).toBe(ErrorCodes.REMOTE);
    // A client that accepts almost nothing still gets a bare error back, and the server goes on.
    const tiny = await connect(server.url, { maxMessageBytes: 40 });
    expect((await rejectionOf(tiny.request('no-such-method'))).code).toBe(ErrorCodes.NOT_FOUND);
    await tiny.close();
    expect(await client.request('big', 10)).toBe('x'.repeat(10));
    const sent = await rejectionOf(conn.send('x'.repeat(4000)));
    expect(sent.code).toBe(ErrorCodes.FRAME_TOO_LARGE);
    // A publication too large for one subscriber is dropped for it, and it is told.
    const sub = client.subscribe('t');
    await watchdog(sub.ready, 5000, 'subscribed');
    expect(server.publish('t', 'x'.repeat(4000))).toBe(1);
    expect(server.publish('t', 'small')).toBe(1);
    expect(await watchdog(sub.receive(), 5000, 'the next publication')).toBe('small');
    expect(sub.dropped).toBe(1);
    expect(server.stats()).toMatchObject({ delivered: 1, dropped: 1 });
    await conn.send('still here');
    expect(await watchdog(client.receive(), 5000, 'a message after all that')).toBe('still here');
    expect(disconnects).toEqual([]);
    await client.close();
  });

  it.each([-1, 0, 1.5, '1024', null])(
    'a handshake whose max is %s is refused with ERR_IPC_BAD_FRAME',
    async (max) => {
      await using server = await listen(listenUrl(transport, env.dir));
      const raw = await rawConnect(server.url);
      let heard = '';
      raw.on('data', (chunk: Buffer) => {
        heard += chunk.toString('latin1');
      });
      raw.write(greeting({ max }));
      await closed(raw);
      expect(heard).toContain(`"code":"${ErrorCodes.BAD_FRAME}"`);
      expect(heard).toContain('bad max');
    },
  );

  it('at maxConcurrentRequests the connection still reads: a CANCEL reaches its handler, later requests are served', async () => {
    await using server = await listen(listenUrl(transport, env.dir), { maxConcurrentRequests: 4 });
    let aborted = 0;
    // Never answers on its own; ends when the client gives up (ctx.signal).
    server.handle('hang', (_p, ctx) => {
      return new Promise((resolve) => {
        ctx.signal.addEventListener('abort', () => {
          aborted++;
          resolve(undefined);
        });
      });
    });
    server.handle('ping', () => 'pong');
    const client = await connect(server.url);
    const codes = await Promise.all(
      [1, 2, 3, 4].map(async () => (await rejectionOf(client.request('hang', null, { timeout: 50 }))).code),
    );
    expect(codes).toEqual(Array(4).fill(ErrorCodes.TIMEOUT));
    // All four handlers were running: the limit. Their cancels still get through.
    expect(await watchdog(client.request('ping'), 10_000, 'a request after the cancels')).toBe('pong');
    expect(aborted).toBe(4);
    await client.close();
  });

  it('past maxConcurrentRequests the connection still reads: the CANCELs of parked requests that then started reach them', async () => {
    await using server = await listen(listenUrl(transport, env.dir), { maxConcurrentRequests: 2 });
    let releaseFirst!: () => void;
    const latch = new Promise<void>((resolve) => {
      releaseFirst = resolve;
    });
    const started: number[] = [];
    const cancelled: number[] = [];
    server.handle('first', () => latch.then(() => 'done'));
    // Never answers on its own; ends when the client gives up (ctx.signal), however late it looks.
    server.handle('hang', (n: number, ctx) => {
      started.push(n);
      return new Promise((resolve) => {
        ctx.signal.addEventListener('abort', () => {
          cancelled.push(n);
          resolve(undefined);
        });
      });
    });
    server.handle('ping', () => 'pong');
    const client = await connect(server.url);
    const first = [client.request('first'), client.request('first')];
    const hanging = [1, 2, 3].map((n) => rejectionOf(client.request('hang', n, { timeout: 100 })));
    const ping = client.request('ping', undefined, { timeout: 20_000 });
    expect((await Promise.all(hanging)).map((err) => err.code)).toEqual(Array(3).fill(ErrorCodes.TIMEOUT));
    // The cancels were sent while those requests were parked. Each is read either in time (that
    // request never starts) or once it has started (its signal aborts): none is left hanging.
    releaseFirst();
    expect(await Promise.all(first)).toEqual(['done', 'done']);
    expect(await watchdog(ping, 10_000, 'a request behind the cancelled ones')).toBe('pong');
    expect(cancelled.sort()).toEqual(started.sort());
    await client.close();
  });

  it('a request id reused while in flight is refused (ERR_IPC_BAD_FRAME): it could run past the cap', async () => {
    await using server = await listen(listenUrl(transport, env.dir), { maxConcurrentRequests: 2 });
    let started = 0;
    server.handle('hang', () => {
      started++;
      return new Promise(() => {});
    });
    const raw = await rawConnect(server.url);
    let heard = '';
    raw.on('data', (chunk: Buffer) => {
      heard += chunk.toString('latin1');
    });
    const batch = new FrameBatch();
    for (let i = 0; i < 5; i++) batch.add(requestHead(7, encodeName('hang', 'method'), true));
    raw.write(Buffer.concat([greeting(), batch.take()]));
    await closed(raw);
    expect(heard).toContain(`"code":"${ErrorCodes.BAD_FRAME}"`);
    expect(heard).toContain('request id 7 is already in flight');
    expect(started).toBe(1);
  });

  it('maxConcurrentRequests is a cap: requests past it wait, in order, and all are answered', async () => {
    await using server = await listen(listenUrl(transport, env.dir), { maxConcurrentRequests: 3 });
    let running = 0;
    let most = 0;
    const started: number[] = [];
    const release: (() => void)[] = [];
    server.handle('work', (n: number) => {
      started.push(n);
      most = Math.max(most, ++running);
      return new Promise<number>((resolve) =>
        release.push(() => {
          running--;
          resolve(n);
        }),
      );
    });
    const client = await connect(server.url);
    // Sent together, so the server reads them in one chunk: the cap must hold within it too.
    const replies = Promise.all(Array.from({ length: 10 }, (_, n) => client.request<number>('work', n)));
    while (started.length < 10) {
      await watchdog(
        until(() => release.length > 0),
        10_000,
        'a running handler',
      );
      release.shift()!();
    }
    for (const finish of release.splice(0)) finish();
    expect(await watchdog(replies, 10_000, 'every reply')).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(started).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(most).toBe(3);
    await client.close();
  });

  it('a TLS peer that hangs up during the handshake frees its maxConnections slot at once', async () => {
    await using server = await listen(listenUrl(transport, env.dir), {
      tls: { key, cert },
      maxConnections: 1,
      handshakeTimeoutMs: 60_000,
    });
    const gone = new Promise<IpcError>((resolve) => server.once('refused', resolve));
    // A port probe: connects, says nothing, hangs up.
    const probe = await rawConnect(server.url);
    probe.end();
    const reason = await watchdog(gone, 10_000, 'the probe to be let go (not at the 60 s deadline)');
    expect(reason.code).toBe(ErrorCodes.PEER_GONE);
    expect(server.stats().handshaking).toBe(0);
    const client = await connect(server.url, { tls: { ca: cert }, timeout: 5000 });
    await client.close();
  });

  it('before the handshake, frames over 4 KiB are refused', async () => {
    await using server = await listen(listenUrl(transport, env.dir));
    const refused = new Promise<IpcError>((resolve) => server.once('refused', resolve));
    const raw = await rawConnect(server.url);
    raw.write(Buffer.concat([greeting().subarray(0, 13), header(64 * 1024)]));
    // Read at once: the server waits for us to close after its ABORT (up to 2 s) before it is done.
    const gone = closed(raw);
    expect((await watchdog(refused, 5000, 'refusal')).code).toBe(ErrorCodes.FRAME_TOO_LARGE);
    await gone;
  });

  it('a too-large request or message is refused locally and the connection stays usable', async () => {
    await using server = await listen(listenUrl(transport, env.dir), { maxMessageBytes: 1024 });
    server.handle('len', (s: string) => s.length);
    const client = await connect(server.url, { maxMessageBytes: 1024 });
    expect((await rejectionOf(client.request('len', 'x'.repeat(2000)))).code).toBe(
      ErrorCodes.FRAME_TOO_LARGE,
    );
    expect((await rejectionOf(client.send('x'.repeat(2000)))).code).toBe(ErrorCodes.FRAME_TOO_LARGE);
    expect(await client.request('len', 'x'.repeat(1000))).toBe(1000);
    expect(() => server.publish('t', 'x'.repeat(2000))).not.toThrow(); // nobody subscribed: nothing sent
    const sub = client.subscribe('t');
    await sub.ready;
    expect(() => server.publish('t', 'x'.repeat(2000))).toThrow(
      expect.objectContaining({ code: ErrorCodes.FRAME_TOO_LARGE }),
    );
    await client.close();
  });

  it('fuzzed bytes into a live server yield only typed refusals, and the server keeps serving', async () => {
    await using server = await listen(listenUrl(transport, env.dir), { maxMessageBytes: 1 << 16 });
    server.handle('ping', () => 'pong');
    server.handle('echo', (value) => value);
    const healthy = await connect(server.url);
    const reasons: IpcError[] = [];
    server.on('refused', (reason) => reasons.push(reason));
    server.on('disconnect', (_conn, reason) => reasons.push(reason));
    const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 1_000_000);
    console.log(`socket fuzz seed: ${seed} (FUZZ_SEED=${seed} to replay)`);
    const frame = fc
      .tuple(fc.integer({ min: 0, max: 40 }), fc.uint8Array({ maxLength: 40 }))
      .map(([kind, body]) => Buffer.concat([header(body.length + 1), Buffer.from([kind]), body]));
    const input = fc.oneof(
      fc.uint8Array({ minLength: 1, maxLength: 300 }).map((bytes) => Buffer.from(bytes)),
      fc.array(frame, { minLength: 1, maxLength: 8 }).map((frames) => Buffer.concat([greeting(), ...frames])),
      fc.uint8Array({ maxLength: 64 }).map((bytes) => Buffer.concat([greeting(), Buffer.from(bytes)])),
    );
    await fc.assert(
      fc.asyncProperty(input, async (bytes) => {
        const raw = await rawConnect(server.url);
        raw.end(bytes);
        await closed(raw);
        expect(await watchdog(healthy.request('ping'), 5000, 'healthy request')).toBe('pong');
      }),
      { seed, numRuns: 150 },
    );
    expect(reasons.length).toBeGreaterThan(0);
    for (const reason of reasons) expect(knownCodes.has(reason.code)).toBe(true);
    expect(await healthy.request('echo', { still: 'fine' })).toEqual({ still: 'fine' });
    await healthy.close();
  }, 60_000);

  it('a connect flood far past maxConnections holds at most cap + MAX_LINGERING_REFUSALS fds; back to baseline after', async () => {
    const cap = 20;
    const attempts = 600;
    // The flood's connections stay in their handshake for the whole test, however slow the machine.
    await using server = await listen(listenUrl(transport, env.dir), {
      maxConnections: cap,
      handshakeTimeoutMs: 120_000,
    });
    server.handle('ping', () => 'pong');
    const target = server.url.replace(/^tcp:\/\//, '').replace(/^unix:\/\//, '');
    const flood = startFixture('socket-connect-flood.ts', [target, String(attempts), '100']);
    try {
      await flood.line('READY');
      // Taken with the fixture already running, so its stdout pipe is part of the baseline.
      const baseline = openFdCount();
      let peak = baseline;
      let full = 0;
      // 'refused' comes once the refused socket is lingering or closed: the moment its fd counts.
      server.on('refused', (reason) => {
        if (reason.code === ErrorCodes.QUEUE_FULL) full++;
        peak = Math.max(peak, openFdCount());
      });
      flood.process.kill('SIGUSR1');
      const [connected] = (await flood.line('FLOODED', 30_000)).split(' ').map(Number);
      // The client sees 'connect' before the server accepts: wait until every one was taken or refused.
      await watchdog(
        until(() => full + server.stats().handshaking >= connected!),
        20_000,
        `${connected} flood connections accepted or refused`,
      );
      expect(connected).toBeGreaterThan(cap + 10 * MAX_LINGERING_REFUSALS);
      expect(server.stats().handshaking).toBe(cap);
      expect(peak - baseline).toBeLessThanOrEqual(cap + MAX_LINGERING_REFUSALS);
      flood.kill();
      await flood.exited;
      await watchdog(
        until(() => openFdCount() <= baseline && server.stats().handshaking === 0),
        10_000,
        `the fd count back to ${baseline}`,
      );
      // Served once the flood is gone.
      const client = await connect(server.url);
      expect(await client.request('ping')).toBe('pong');
      await client.close();
    } finally {
      flood.kill();
    }
  }, 60_000);

  it('200 slow clients trickling a byte every 500 ms are cut at the handshake deadline; fds return to baseline', async () => {
    await using server = await listen(listenUrl(transport, env.dir), { handshakeTimeoutMs: 1500 });
    server.handle('ping', () => 'pong');
    const deadlines: string[] = [];
    server.on('refused', (reason) => deadlines.push(reason.code));
    const baseline = openFdCount();
    const target = server.url.replace(/^tcp:\/\//, '').replace(/^unix:\/\//, '');
    const slow = startFixture('socket-slow-clients.ts', [target, '200', '500']);
    try {
      await slow.line('OPEN');
      // Served meanwhile.
      const client = await connect(server.url);
      expect(await client.request('ping')).toBe('pong');
      await client.close();
      await slow.line('CUT', 30_000);
      // The child sees its sockets close before this process has run their close events.
      await watchdog(
        (async () => {
          while (deadlines.length < 200 || openFdCount() > baseline) {
            await new Promise((resolve) => setImmediate(resolve));
          }
        })(),
        10_000,
        `200 refusals and the fd count back to ${baseline}`,
      );
      expect(deadlines).toEqual(Array(200).fill(ErrorCodes.TIMEOUT));
      expect(openFdCount()).toBeLessThanOrEqual(baseline);
      expect(server.stats().handshaking).toBe(0);
    } finally {
      slow.kill();
    }
  }, 60_000);
});
