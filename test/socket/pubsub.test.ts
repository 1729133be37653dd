import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { connect, ErrorCodes, listen } from '../../src/index.js';
import { isolateRuntimeDir, rejectionOf, watchdog } from '../helpers.js';
import { startFixture } from './child.js';
import { listenUrl, transports } from './transports.js';

let env: ReturnType<typeof isolateRuntimeDir>;
beforeEach(() => {
  env = isolateRuntimeDir();
});
afterEach(() => env.cleanup());

function until(check: () => boolean, what: string, ms = 10_000): Promise<void> {
  return watchdog(
    new Promise<void>((resolve) => {
      const poll = () => (check() ? resolve() : setImmediate(poll));
      poll();
    }),
    ms,
    what,
  );
}

describe.each(transports)('pub/sub over %s', (transport) => {
  it('subscribers get every publication of their topic, in order, and only theirs', async () => {
    await using server = await listen(listenUrl(transport, env.dir));
    const a = await connect(server.url);
    const b = await connect(server.url);
    const pricesA = a.subscribe<number>('prices');
    const pricesB = b.subscribe<number>('prices');
    const news = b.subscribe<string>('news');
    await Promise.all([pricesA.ready, pricesB.ready, news.ready]);
    expect(server.subscribers('prices')).toBe(2);
    for (let i = 0; i < 500; i++) expect(server.publish('prices', i)).toBe(2);
    expect(server.publish('news', 'hello')).toBe(1);
    expect(server.publish('nobody', 'x')).toBe(0);
    const take = async (sub: AsyncIterable<number>, n: number) => {
      const got: number[] = [];
      for await (const v of sub) {
        got.push(v);
        if (got.length === n) break;
      }
      return got;
    };
    const expected = Array.from({ length: 500 }, (_, i) => i);
    expect(await watchdog(take(pricesA, 500), 10_000, 'a receives')).toEqual(expected);
    expect(await watchdog(take(pricesB, 500), 10_000, 'b receives')).toEqual(expected);
    expect(await watchdog(news.receive(), 5000, 'news')).toBe('hello');
    expect(pricesA.dropped + pricesB.dropped).toBe(0);
    await Promise.all([a.close(), b.close()]);
  });

  it('leaving the loop unsubscribes on the server; other local subscriptions to the topic go on', async () => {
    await using server = await listen(listenUrl(transport, env.dir));
    const client = await connect(server.url);
    const unsubscribed = new Promise<string>((resolve) =>
      server.on('unsubscribe', (topic) => resolve(topic)),
    );
    const first = client.subscribe<number>('t');
    const second = client.subscribe<number>('t');
    await first.ready;
    expect(server.subscribers('t')).toBe(1); // one server subscription per topic and connection
    server.publish('t', 1);
    for await (const v of first) {
      expect(v).toBe(1);
      break;
    }
    expect(first.closed).toBe(true);
    expect(await second.receive({ timeout: 5000 })).toBe(1);
    second.unsubscribe();
    expect(await watchdog(unsubscribed, 5000, 'server unsubscribe')).toBe('t');
    expect(server.subscribers('t')).toBe(0);
    await expect(second.receive()).rejects.toMatchObject({ code: ErrorCodes.CLOSED });
    await client.close();
  });

  it('subscriptions end cleanly when the client closes and with PEER_GONE when the server dies', async () => {
    const server = await listen(listenUrl(transport, env.dir));
    const client = await connect(server.url);
    const sub = client.subscribe('t');
    await sub.ready;
    const ended = (async () => {
      for await (const _ of sub) {
      }
      return 'ended';
    })();
    await client.close();
    expect(await watchdog(ended, 5000, 'iteration ends')).toBe('ended');
    const other = await connect(server.url);
    const orphan = other.subscribe('t');
    await orphan.ready;
    const failure = rejectionOf(orphan.receive());
    for (const conn of [await server.accept(), await server.accept()]) conn.destroy();
    expect((await watchdog(failure, 5000, 'subscription fails')).code).toBe(ErrorCodes.PEER_GONE);
    await server.close();
  });

  it('a stalled subscriber never blocks the publisher: its oldest publications are dropped and counted', async () => {
    const total = 20_000;
    const hwm = 256;
    await using server = await listen(listenUrl(transport, env.dir), {
      subscriberHighWaterMark: hwm,
      heartbeatMs: 0,
    });
    const healthy = await connect(server.url);
    const fast = healthy.subscribe<{ n: number }>('ticks', { highWaterMark: total });
    await fast.ready;
    const stalled = startFixture('socket-count-publications.ts', [server.url, 'ticks', String(total)]);
    try {
      await stalled.line('READY');
      await until(() => server.subscribers('ticks') === 2, 'both subscribed');
      stalled.process.kill('SIGSTOP');
      const padding = 'x'.repeat(1000);
      let received = 0;
      let inOrder = true;
      const reader = (async () => {
        for await (const { n } of fast) {
          if (n !== received) inOrder = false;
          received++;
          if (received === total) break;
        }
      })();
      // Publish in chunks small enough for the healthy subscriber's buffers, letting it keep up
      // between them; publish itself never waits.
      const chunkSize = 100;
      for (let chunk = 0; chunk < total / chunkSize; chunk++) {
        for (let i = chunk * chunkSize; i < (chunk + 1) * chunkSize; i++) {
          // About 1 KB each: 20 MB in all, far more than socket buffers hold.
          expect(server.publish('ticks', { n: i, padding })).toBe(2);
        }
        await until(() => received >= (chunk + 1) * chunkSize, `healthy subscriber got chunk ${chunk}`);
      }
      await watchdog(reader, 10_000, 'healthy subscriber done');
      expect(inOrder).toBe(true);
      expect(fast.dropped).toBe(0);
      const dropped = server.stats().dropped;
      expect(dropped).toBeGreaterThan(0);
      expect(server.stats().delivered).toBe(2 * total);
      // Once it runs again it learns exactly how many it lost: received + dropped is everything.
      stalled.process.kill('SIGCONT');
      const [got, lost, ordered] = (await stalled.line('DONE', 30_000)).split(' ');
      expect(Number(got) + Number(lost)).toBe(total);
      expect(Number(lost)).toBe(dropped);
      expect(Number(got)).toBeLessThan(total);
      expect(ordered).toBe('true');
      await healthy.close();
    } finally {
      stalled.process.kill('SIGCONT');
      stalled.kill();
    }
  }, 90_000);
});
