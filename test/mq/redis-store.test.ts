/**
 * The Redis store beyond the conformance suite: bad URLs and unreachable or refusing servers give
 * clear IpcErrors; keys that are not an ipckit queue are refused; the key prefix separates
 * namespaces; two "hosts" (processes with separate runtime directories) share one queue; and a
 * receive waiting across a redis-server restart is woken by a message sent after it; a nack the
 * server refused is never turned into an ack by process(). Every test
 * runs its own redis-server on a free loopback port (test/support/redis-server.ts).
 */
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCodes, isIpcError, MessageQueue, type StoreSpec } from '../../src/index.js';
import { gotJson, startFixture } from '../conformance/harness.js';
import { cert, key } from '../fixtures/socket-tls-cert.js';
import { isolateRuntimeDir, rejectionOf, watchdog } from '../helpers.js';
import { RedisServer, redisUnavailable } from '../support/redis-server.js';

const skip = redisUnavailable();

describe.skipIf(skip !== undefined)(`Redis store${skip ? ` (${skip})` : ''}`, () => {
  let server: RedisServer;
  let rt: { dir: string; cleanup(): void };
  let n = 0;
  let prefix: string;
  let store: StoreSpec;

  beforeAll(async () => {
    server = await RedisServer.start();
  });
  afterAll(async () => {
    await server?.stop();
  });
  beforeEach(() => {
    rt = isolateRuntimeDir();
    prefix = `rs${process.pid}x${++n}`;
    store = server.url(`?prefix=${prefix}`) as StoreSpec;
  });
  afterEach(() => rt.cleanup());

  it('refuses malformed URLs and prefixes with ERR_IPC_INVALID_NAME', async () => {
    for (const url of [
      'redis://127.0.0.1:6379/not-a-db',
      'redis://127.0.0.1:6379/0?prefix=has%20space',
      'redis://127.0.0.1:99999',
      'redis:///0',
    ]) {
      const err = await rejectionOf(MessageQueue.open('q', { store: url as StoreSpec }));
      expect([url, err.code]).toEqual([url, ErrorCodes.INVALID_NAME]);
    }
    const removal = await rejectionOf(MessageQueue.remove('q', { store: 'redis://h:1/x' }));
    expect(removal.code).toBe(ErrorCodes.INVALID_NAME);
  });

  it('reads connection options from the URL as typed values, and refuses the others at open', async () => {
    // A number ioredis was handed as a string crashed the process from a timer (connectTimeout).
    const typed = server.url(
      `?prefix=${prefix}&connectTimeout=5000&keepAlive=1000&noDelay=true&family=4&connectionName=mine`,
    ) as StoreSpec;
    const q = await MessageQueue.open<string>('typed', { store: typed });
    await q.send('in');
    const m = await q.receive({ timeout: 10_000 });
    expect(m.body).toBe('in');
    await m.ack();
    await q.close();
    for (const query of [
      // ipckit's own settings, which the store's promises rest on: not to be replaced unseen.
      'maxRetriesPerRequest=1',
      'enableOfflineQueue=false',
      'lazyConnect=false',
      'keyPrefix=x',
      // Settings with a place of their own in the URL.
      'db=1',
      'password=s3cret',
      'tls=true',
      // Unknown or ill-typed.
      'commandTimeout=5',
      'connectTimeout=soon',
      'connectTimeout=0',
      'family=5',
      'noDelay=1',
      'connectionName=two%20words',
      `prefix=${prefix}&prefix=${prefix}`,
    ]) {
      const url = server.url(`?${query}`) as StoreSpec;
      const err = await rejectionOf(MessageQueue.open('refused', { store: url }));
      expect([query, err.code]).toEqual([query, ErrorCodes.INVALID_NAME]);
      expect(err.message).toContain('parameter');
      expect(err.message).not.toContain('s3cret');
    }
  });

  it("a consumer whose clock runs ahead of the server's still gets its messages", async () => {
    const url = server.url('?prefix=skew') as StoreSpec;
    const producer = await MessageQueue.open<string>('skew', { store: url });
    await producer.sendBatch([{ body: 'a' }, { body: 'b' }]);
    const realNow = Date.now;
    // This "host" is 5 s ahead: longer than the lease, so a lease end in the server's clock
    // compared with this clock would have every claimed message expired on arrival.
    Date.now = () => realNow() + 5000;
    try {
      const consumer = await MessageQueue.open<string>('skew', {
        store: url,
        visibilityTimeoutMs: 1000,
        maxAttempts: 3,
      });
      const m = await watchdog(consumer.receive({ timeout: 10_000 }), 15_000, 'receive');
      expect(m.body).toBe('a');
      await m.ack();
      await consumer.close();
    } finally {
      Date.now = realNow;
    }
    expect((await producer.stats()).dead).toBe(0);
    await producer.close();
  });

  it("a waiting consumer whose clock runs behind the server's looks again when the lease it waits for ends", async () => {
    const url = server.url(`?prefix=${prefix}`) as StoreSpec;
    const holder = await MessageQueue.open<string>('skew-behind', { store: url, visibilityTimeoutMs: 1000 });
    await holder.send('job');
    const held = await holder.receive({ timeout: 10_000 });
    const realNow = Date.now;
    // This "host" is a minute behind, and its safety-net poll further still: told when the lease
    // ends in the server's clock, and waiting until its own clock said so, it would wait a minute.
    Date.now = () => realNow() - 60_000;
    try {
      const waiter = await MessageQueue.open<string>('skew-behind', {
        store: url,
        pollIntervalMs: 600_000,
      });
      const again = await watchdog(waiter.receive(), 20_000, 'the receive waiting for the lease to end');
      expect([again.id, again.attempts]).toEqual([held.id, 2]);
      await again.ack();
      await waiter.close();
    } finally {
      Date.now = realNow;
    }
    await holder.close();
  });

  it('reports a server nobody listens on as ERR_IPC_NOT_FOUND, naming the address', async () => {
    const stopped = await RedisServer.start();
    const url = stopped.url();
    await stopped.stop();
    const err = await rejectionOf(MessageQueue.open('q', { store: url as StoreSpec }));
    expect(err.code).toBe(ErrorCodes.NOT_FOUND);
    expect(err.message).toContain(`127.0.0.1:${stopped.port}`);
    expect((err.cause as NodeJS.ErrnoException).code).toBe('ECONNREFUSED');
  });

  it('reports a database number the server does not have as ERR_IPC_NOT_FOUND, never falling back to 0', async () => {
    // redis-server has 16 databases unless told otherwise.
    const url = `redis://127.0.0.1:${server.port}/99?prefix=${prefix}` as StoreSpec;
    const err = await rejectionOf(MessageQueue.open('q', { store: url }));
    expect(err.code).toBe(ErrorCodes.NOT_FOUND);
    expect(err.message).toContain('no database 99');
    const inRange = await MessageQueue.open('q', {
      store: `redis://127.0.0.1:${server.port}/15?prefix=${prefix}` as StoreSpec,
    });
    await inRange.send('in database 15');
    await inRange.close();
    const admin = new Redis(server.port, '127.0.0.1', { db: 0 });
    try {
      expect(await admin.keys(`${prefix}*`)).toEqual([]);
      // A user an ACL forbids SELECT is refused as such, not told the database is missing.
      const user = `noselect${prefix}`;
      await admin.call('ACL', 'SETUSER', user, 'on', '>pw', '~*', '&*', '+@all', '-select');
      const refused = await rejectionOf(
        MessageQueue.open('q', {
          store: `redis://${user}:pw@127.0.0.1:${server.port}/1?prefix=${prefix}` as StoreSpec,
        }),
      );
      expect(refused.code).toBe(ErrorCodes.AUTH);
    } finally {
      admin.disconnect();
    }
  });

  it("a consumer's close() while redis-server is down ends without waiting for it", async () => {
    const down = await RedisServer.start();
    const q = await MessageQueue.open('q', {
      store: down.url(`?prefix=${prefix}`) as StoreSpec,
      visibilityTimeoutMs: 1000,
    });
    await q.send('warm-up');
    await (await q.receive()).ack();
    await down.kill();
    // A claim now waits in the client for a server that is not coming back; so do the claims of a
    // consume() loop and of a process() run, which end with the queue, not with that claim.
    const waiting = rejectionOf(q.receive());
    const looping = q.consume().next();
    const running = q.process(() => {});
    for (let turn = 0; turn < 3; turn++) await new Promise((resolve) => setImmediate(resolve));
    await watchdog(q.close(), 15_000, 'close() with redis-server down');
    expect((await waiting).code).toBe(ErrorCodes.CLOSED);
    expect(await watchdog(looping, 5000, 'the consume() loop ends')).toEqual({
      done: true,
      value: undefined,
    });
    await watchdog(running, 5000, 'the process() run ends');
    await down.stop();
  });

  it('reports wrong or missing credentials as ERR_IPC_AUTH and works with the right ones', async () => {
    const locked = await RedisServer.start({ args: ['--requirepass', 's3cret'] });
    try {
      const wrong = await rejectionOf(
        MessageQueue.open('q', { store: `redis://:nope@127.0.0.1:${locked.port}` }),
      );
      expect(wrong.code).toBe(ErrorCodes.AUTH);
      expect(wrong.message).not.toContain('nope');
      const missing = await rejectionOf(MessageQueue.open('q', { store: locked.url() as StoreSpec }));
      expect(missing.code).toBe(ErrorCodes.AUTH);
      const q = await MessageQueue.open<string>('q', { store: `redis://:s3cret@127.0.0.1:${locked.port}` });
      await q.send('in');
      const m = await q.receive({ timeout: 10_000 });
      expect(m.body).toBe('in');
      await m.ack();
      await q.close();
    } finally {
      await locked.stop();
    }
  });

  it('refuses keys that are not an ipckit queue, or a queue of another schema version', async () => {
    const client = new Redis(server.url());
    try {
      await client.set(`${prefix}:mq:{clash}:meta`, 'a string, not a hash');
      expect((await rejectionOf(MessageQueue.open('clash', { store }))).code).toBe(ErrorCodes.INCOMPATIBLE);
      await client.hset(`${prefix}:mq:{future}:meta`, 'v', '99');
      const err = await rejectionOf(MessageQueue.open('future', { store }));
      expect(err.code).toBe(ErrorCodes.INCOMPATIBLE);
      expect(err.message).toMatch(/schema version 99/);
    } finally {
      client.disconnect();
    }
  });

  it('keeps namespaces apart by prefix, and puts every key of a queue under it', async () => {
    const other = server.url(`?prefix=${prefix}-other`) as StoreSpec;
    const a = await MessageQueue.open<string>('jobs', { store });
    const b = await MessageQueue.open<string>('jobs', { store: other });
    await a.send('for a', { id: 'same-id', type: 't', delayMs: 60_000 });
    await a.send('ready in a', { ttlMs: 60_000 });
    await b.send('for b', { id: 'same-id' });
    expect((await a.stats()).delayed).toBe(1);
    expect(await b.stats()).toMatchObject({ ready: 1, delayed: 0 });
    const client = new Redis(server.url());
    try {
      const keys = await client.keys(`${prefix}:*`);
      expect(keys.length).toBeGreaterThan(0);
      expect(
        keys.every((k) => k.startsWith(`${prefix}:mq:{jobs}:`) || k.startsWith(`${prefix}-other:`)),
      ).toBe(true);
      await a.close();
      expect(await MessageQueue.remove('jobs', { store })).toBe(true);
      expect(await client.keys(`${prefix}:mq:*`)).toEqual([]);
      expect(await MessageQueue.remove('jobs', { store })).toBe(false);
      expect((await b.stats()).ready).toBe(1);
    } finally {
      client.disconnect();
      await b.close();
    }
  });

  it('shares one queue between two "hosts": processes with separate runtime directories', async () => {
    const hostA = isolateRuntimeDir();
    const hostB = isolateRuntimeDir();
    try {
      const spec = String(store);
      const consumer = startFixture('mq-wait-receive.ts', ['shared', '{"types":["job"]}'], spec, {
        IPCKIT_DIR: hostB.dir,
      });
      await consumer.waitFor('waiting', 60_000);
      const producer = startFixture('mq-send.ts', ['shared', '{"from":"A"}', '{"type":"job"}'], spec, {
        IPCKIT_DIR: hostA.dir,
      });
      await producer.waitFor('sent ', 60_000);
      expect((await producer.exit(60_000)).code).toBe(0);
      // The consumer's poll is 10 minutes: only the pub/sub wake-up delivers within the watchdog.
      expect(gotJson(await consumer.waitFor('got ', 10_000))).toEqual({ from: 'A' });
      expect((await consumer.exit(60_000)).code).toBe(0);
      // Nothing of the queue lives on either host's file system.
      for (const host of [hostA, hostB]) {
        const files = (() => {
          try {
            return readdirSync(host.dir);
          } catch {
            return [];
          }
        })();
        expect(files.filter((f) => f.includes('shared'))).toEqual([]);
      }
    } finally {
      hostA.cleanup();
      hostB.cleanup();
    }
  });

  it('works over TLS with a rediss:// URL', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ipckit-test-tls-'));
    const certFile = join(dir, 'cert.pem');
    const keyFile = join(dir, 'key.pem');
    writeFileSync(certFile, cert);
    writeFileSync(keyFile, key, { mode: 0o600 });
    const tlsServer = await RedisServer.start({ tls: { certFile, keyFile } });
    try {
      const spec = `rediss://localhost:${tlsServer.port}/?prefix=${prefix}`;
      // The test certificate is self-signed: the processes trust it the way users add a private CA.
      const env = { NODE_EXTRA_CA_CERTS: certFile };
      const consumer = startFixture('mq-wait-receive.ts', ['secure'], spec, env);
      await consumer.waitFor('waiting', 60_000);
      const producer = startFixture('mq-send.ts', ['secure', '{"over":"tls"}'], spec, env);
      await producer.waitFor('sent ', 60_000);
      expect((await producer.exit(60_000)).code).toBe(0);
      expect(gotJson(await consumer.waitFor('got ', 10_000))).toEqual({ over: 'tls' });
      expect((await consumer.exit(60_000)).code).toBe(0);
    } finally {
      await tlsServer.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('wakes a receive that was waiting across a redis-server restart', async () => {
    const own = await RedisServer.start();
    try {
      const url = own.url() as StoreSpec;
      const consumer = await MessageQueue.open<string>('restart', { store: url, pollIntervalMs: 600_000 });
      const producer = await MessageQueue.open<string>('restart', { store: url });
      const waiting = consumer.receive();
      // Awaited after the restart; should it fail meanwhile, that is reported there, not as unhandled.
      waiting.catch(() => {});
      // The receive has armed its wake-up once the flag is in Redis.
      const client = new Redis(own.url());
      await watchdog(
        (async () => {
          while ((await client.exists('ipckit:mq:{restart}:wait:messages')) === 0) {
            await new Promise((resolve) => setImmediate(resolve));
          }
        })(),
        10_000,
        'the receive to arm its wake-up',
      );
      client.disconnect();
      await own.restart();
      await producer.send('after the restart');
      const m = await watchdog(waiting, 20_000, 'the waiting receive to get the message');
      expect(m.body).toBe('after the restart');
      await m.ack();
      expect(await consumer.stats()).toMatchObject({ ready: 0, inflight: 0 });
      await consumer.close();
      await producer.close();
    } finally {
      await own.stop();
    }
  });

  it("process() never acks a message whose handler's nack failed: it comes back when its lease ends", async () => {
    const q = await MessageQueue.open<string>('nackfail', {
      store,
      visibilityTimeoutMs: 1000,
      maxAttempts: 5,
    });
    const admin = new Redis(server.url());
    const stop = new AbortController();
    try {
      await q.send('job');
      const deliveries: number[] = [];
      const nackErrors: unknown[] = [];
      let redelivered!: () => void;
      const again = new Promise<void>((resolve) => {
        redelivered = resolve;
      });
      const run = q.process(
        async (_body, m) => {
          deliveries.push(m.attempts);
          if (m.attempts > 1) {
            redelivered();
            return;
          }
          // Every write refused for a moment (NOREPLICAS: the server wants a replica it lacks): the
          // handler's nack fails, and the handler goes on.
          await admin.config('SET', 'min-replicas-to-write', '1');
          try {
            await m.nack();
          } catch (err) {
            nackErrors.push(err);
          } finally {
            await admin.config('SET', 'min-replicas-to-write', '0');
          }
        },
        { signal: stop.signal },
      );
      await watchdog(again, 20_000, 'the message to come back after its lease');
      stop.abort();
      await run;
      expect(nackErrors).toHaveLength(1);
      expect(isIpcError(nackErrors[0])).toBe(true);
      expect(deliveries).toEqual([1, 2]);
    } finally {
      stop.abort();
      await admin.config('SET', 'min-replicas-to-write', '0');
      admin.disconnect();
      await q.close();
    }
  });

  it('reports redis errors during use as IpcErrors with the cause', async () => {
    const q = await MessageQueue.open<string>('typed', { store });
    const client = new Redis(server.url());
    try {
      // Another program overwrote one of the queue's keys with another type.
      await client.set(`${prefix}:mq:{typed}:ready`, 'clobbered');
      const err = await rejectionOf(q.send('x'));
      expect(isIpcError(err, ErrorCodes.INCOMPATIBLE)).toBe(true);
      expect(String(err.cause)).toMatch(/WRONGTYPE/);
    } finally {
      client.disconnect();
      await q.close();
    }
  });
});
