import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { connect, ErrorCodes, IpcError, listen, RemoteError } from '../../src/index.js';
import { isolateRuntimeDir, rejectionOf, watchdog } from '../helpers.js';
import { startFixture } from './child.js';
import { listenUrl, transports } from './transports.js';

let env: ReturnType<typeof isolateRuntimeDir>;
beforeEach(() => {
  env = isolateRuntimeDir();
});
afterEach(() => env.cleanup());

describe.each(transports)('request/reply over %s', (transport) => {
  it('many requests in flight on one connection get their own replies, whatever order handlers finish in', async () => {
    await using server = await listen(listenUrl(transport, env.dir));
    server.handle('square', async ({ n }: { n: number }) => {
      // Finish out of order: later requests often overtake earlier ones.
      for (let i = 0; i < (n * 7919) % 5; i++) await new Promise((resolve) => setImmediate(resolve));
      return n * n;
    });
    server.handle('sync', (n: number) => n + 1);
    const client = await connect(server.url);
    const results = await watchdog(
      Promise.all(Array.from({ length: 2000 }, (_, n) => client.request('square', { n }))),
      20_000,
      'replies',
    );
    expect(results).toEqual(Array.from({ length: 2000 }, (_, n) => n * n));
    expect(await client.request('sync', 41)).toBe(42);
    expect(client.pendingRequests).toBe(0);
    await client.close();
  });

  it('one at a time or several at once, alternating methods, replies match and maxPendingRequests counts them all', async () => {
    await using server = await listen(listenUrl(transport, env.dir));
    const methods = ['ab', 'ac', 'a-much-longer-method-name', 'é'];
    for (const method of methods) server.handle(method, (n: number) => `${method}:${n}`);
    const client = await connect(server.url, { maxPendingRequests: 3 });
    // Names of equal length that differ in one byte, then longer and shorter ones, in turn.
    for (let n = 0; n < 40; n++) {
      const method = methods[n % methods.length]!;
      expect(await client.request(method, n)).toBe(`${method}:${n}`);
    }
    const three = methods.slice(0, 3).map((method, n) => client.request(method, n));
    expect(client.pendingRequests).toBe(3);
    const refused = await rejectionOf(client.request('ab', 3));
    expect((refused as IpcError).code).toBe(ErrorCodes.QUEUE_FULL);
    expect(await watchdog(Promise.all(three), 10_000, 'replies')).toEqual([
      'ab:0',
      'ac:1',
      'a-much-longer-method-name:2',
    ]);
    expect(client.pendingRequests).toBe(0);
    expect(await client.request('é', 7)).toBe('é:7');
    await client.close();
  });

  it('undefined params and results work with every codec, json included', async () => {
    await using server = await listen(listenUrl(transport, env.dir), { codec: 'json' });
    let got: unknown = 'unset';
    server.handle('nothing', (params) => {
      got = params;
    });
    const client = await connect(server.url, { codec: 'json' });
    expect(await client.request('nothing')).toBeUndefined();
    expect(got).toBeUndefined();
    await client.close();
  });

  it('remote errors arrive as IpcErrors with the remote code and message, and no remote stack', async () => {
    await using server = await listen(listenUrl(transport, env.dir));
    server.handle('denied', () => {
      throw new IpcError(ErrorCodes.PERMISSION, 'ledger: you may not do that');
    });
    server.handle('typeError', async () => {
      throw Object.assign(new TypeError('bad input'), { code: 'E_APP_INPUT' });
    });
    server.handle('throwsString', () => {
      throw 'plain string';
    });
    // Neither String() nor a template can describe it: it has no toString.
    server.handle('throwsBareObject', async () => {
      throw Object.create(null);
    });
    const client = await connect(server.url);

    const denied = await rejectionOf(client.request('denied'));
    expect(denied).toBeInstanceOf(IpcError);
    expect(denied).toBeInstanceOf(RemoteError);
    expect(denied).toMatchObject({ code: ErrorCodes.PERMISSION, message: 'ledger: you may not do that' });
    expect((denied as RemoteError).method).toBe('denied');
    expect((denied as RemoteError).remoteStack).toBeUndefined();

    const typeError = (await rejectionOf(client.request('typeError'))) as RemoteError;
    expect(typeError).toMatchObject({
      code: ErrorCodes.REMOTE,
      message: 'bad input',
      remoteName: 'TypeError',
      remoteCode: 'E_APP_INPUT',
    });
    // The stack is this process's: nothing of the server's handler leaks into it.
    expect(typeError.stack).not.toContain('rpc.test.ts:4');
    expect(typeError.remoteStack).toBeUndefined();

    expect(await rejectionOf(client.request('throwsString'))).toMatchObject({
      code: ErrorCodes.REMOTE,
      message: 'plain string',
    });
    expect(
      await rejectionOf(watchdog(client.request('throwsBareObject'), 5000, 'bare object')),
    ).toMatchObject({
      code: ErrorCodes.REMOTE,
      message: 'the handler threw a value that cannot be described',
    });
    const missing = await rejectionOf(client.request('missing'));
    expect(missing.code).toBe(ErrorCodes.NOT_FOUND);
    expect(missing.message).toContain("'missing'");
    expect(new IpcError(ErrorCodes.TIMEOUT, 'local') instanceof RemoteError).toBe(false);
    await client.close();
  });

  it('exposeErrorStacks sends the handler stack for debugging', async () => {
    await using server = await listen(listenUrl(transport, env.dir), { exposeErrorStacks: true });
    server.handle('boom', function boomHandler() {
      throw new Error('boom');
    });
    const client = await connect(server.url);
    const error = (await rejectionOf(client.request('boom'))) as RemoteError;
    expect(error.remoteStack).toContain('boomHandler');
    await client.close();
  });

  it('a timeout or abort rejects locally, aborts the handler signal, and leaves the connection usable', async () => {
    await using server = await listen(listenUrl(transport, env.dir));
    const aborts: unknown[] = [];
    let notify: () => void = () => {};
    server.handle('wait', (_params, ctx) => {
      ctx.signal.addEventListener('abort', () => {
        aborts.push(ctx.signal.reason);
        notify();
      });
      return new Promise(() => {});
    });
    server.handle('ok', () => 'ok');
    const client = await connect(server.url);
    const abortedOnServer = () =>
      new Promise<void>((resolve) => {
        notify = resolve;
      });

    let seen = abortedOnServer();
    expect((await rejectionOf(client.request('wait', undefined, { timeout: 30 }))).code).toBe(
      ErrorCodes.TIMEOUT,
    );
    await watchdog(seen, 5000, 'server signal aborted on timeout');

    seen = abortedOnServer();
    const controller = new AbortController();
    const pending = client.request('wait', undefined, { signal: controller.signal });
    controller.abort(new Error('user gave up'));
    const aborted = await rejectionOf(pending);
    expect(aborted.code).toBe(ErrorCodes.ABORTED);
    expect((aborted.cause as Error).message).toBe('user gave up');
    await watchdog(seen, 5000, 'server signal aborted on abort');
    expect(aborts).toHaveLength(2);
    expect(aborts.every((r) => r instanceof IpcError && r.code === ErrorCodes.ABORTED)).toBe(true);

    expect(await client.request('ok')).toBe('ok');
    expect(client.pendingRequests).toBe(0);
    await expect(client.request('ok', undefined, { signal: AbortSignal.abort() })).rejects.toMatchObject({
      code: ErrorCodes.ABORTED,
    });
    await client.close();
  });

  it('a cancel that comes before the handler first looks at ctx.signal is not lost', async () => {
    await using server = await listen(listenUrl(transport, env.dir));
    let look!: () => void;
    const mayLook = new Promise<void>((resolve) => {
      look = resolve;
    });
    let seen: AbortSignal | undefined;
    server.handle('late', async (_p, ctx) => {
      await mayLook;
      seen = ctx.signal;
      return 'late';
    });
    server.handle('ping', () => {
      // Frames arrive in order: the cancel, sent before this request, has been handled.
      look();
      return 'pong';
    });
    const client = await connect(server.url);
    expect((await rejectionOf(client.request('late', undefined, { timeout: 50 }))).code).toBe(
      ErrorCodes.TIMEOUT,
    );
    expect(await client.request('ping')).toBe('pong');
    await watchdog(
      (async () => {
        while (!seen) await new Promise((resolve) => setImmediate(resolve));
      })(),
      5000,
      'the handler looked',
    );
    expect(seen!.aborted).toBe(true);
    expect((seen!.reason as IpcError).code).toBe(ErrorCodes.ABORTED);
    await client.close();
  });

  it('bad arguments are TypeError/RangeError naming them, as rejections', async () => {
    await using server = await listen(listenUrl(transport, env.dir));
    const client = await connect(server.url, { maxPendingRequests: 1 });
    await expect(client.request(42 as unknown as string)).rejects.toThrow(TypeError);
    await expect(client.request('')).rejects.toThrow(/method/);
    await expect(client.request('x'.repeat(300))).rejects.toThrow(RangeError);
    // Sent as UTF-8, a lone surrogate would become U+FFFD: a name that never matches itself.
    await expect(client.request('\uD800x')).rejects.toThrow(/well-formed/);
    expect(() => client.subscribe('\uDC00')).toThrow(TypeError);
    expect(() => server.handle('\uD800x', () => 1)).toThrow(TypeError);
    await expect(client.request('x', undefined, { timeout: -1 })).rejects.toThrow(/timeout/);
    expect(() => server.handle('', () => 1)).toThrow(RangeError);
    expect(() => server.handle('m', 'nope' as unknown as () => 1)).toThrow(TypeError);
    server.handle('hang', () => new Promise(() => {}));
    const first = rejectionOf(client.request('hang'));
    expect((await rejectionOf(client.request('hang'))).code).toBe(ErrorCodes.QUEUE_FULL);
    await client.close();
    expect((await first).code).toBe(ErrorCodes.CLOSED);
  });

  it('64 clients x 1,000 concurrent requests, from two processes, are all answered correctly', async () => {
    await using server = await listen(listenUrl(transport, env.dir));
    server.handle('add', ({ a, b }: { a: number; b: number }) => a + b);
    const children = [1, 2].map(() => startFixture('socket-rpc-clients.ts', [server.url, '32', '1000']));
    try {
      const results = await Promise.all(children.map((c) => c.line('RESULT', 120_000)));
      for (const text of results) {
        expect(JSON.parse(text)).toEqual({ ok: 32_000, wrong: 0, failed: 0, firstErrors: [] });
      }
      expect(server.stats().accepted).toBe(64);
    } finally {
      for (const child of children) child.kill();
    }
  }, 150_000);

  it('kill -9 of the server with 100 requests in flight fails all of them with ERR_IPC_PEER_GONE', async () => {
    const server = startFixture('socket-echo-server.ts', [listenUrl(transport, env.dir)]);
    try {
      const url = await server.line('LISTENING');
      const client = await connect(url);
      const disconnected = new Promise<IpcError>((resolve) => client.on('disconnect', resolve));
      const requests = Array.from({ length: 100 }, () => rejectionOf(client.request('hang')));
      await server.line('HANGING 100');
      server.kill();
      const errors = await watchdog(Promise.all(requests), 10_000, 'all 100 requests fail');
      expect(errors.map((e) => e.code)).toEqual(Array(100).fill(ErrorCodes.PEER_GONE));
      expect(errors[0]!.message).toContain("'hang'");
      expect((await watchdog(disconnected, 5000, 'disconnect event')).code).toBe(ErrorCodes.PEER_GONE);
      expect((await rejectionOf(client.request('echo', 1))).code).toBe(ErrorCodes.PEER_GONE);
      await client.close();
    } finally {
      server.kill();
    }
  });
});
