// Publish/subscribe over TCP with a shared token. The server publishes prices; a subscriber in
// another process prints them. The publisher never waits for subscribers: one that falls too far
// behind loses its oldest publications, and `sub.dropped` says how many.
//
//   node --import tsx examples/sockets/pubsub.ts
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { connect, listen, spawn } from '../../src/index.js'; // in your project: from 'ipckit'

type Price = { symbol: string; price: number } | { done: true };
const [role, url] = process.argv.slice(2);

if (role === 'subscriber' && url) {
  const client = await connect(url, { auth: { token: process.env.PRICES_TOKEN! }, timeout: 10_000 });
  for await (const tick of client.subscribe<Price>('prices')) {
    if ('done' in tick) break; // leaving the loop unsubscribes
    console.log(`subscriber: ${tick.symbol} ${tick.price.toFixed(2)}`);
  }
  await client.close();
} else {
  const token = randomBytes(16).toString('hex');
  const server = await listen('tcp://127.0.0.1:0', { auth: { token } });
  console.log(`publisher on ${server.url}`);
  const subscribed = new Promise<void>((resolve) => server.once('subscribe', () => resolve()));
  const subscriber = spawn(
    process.execPath,
    ['--import', 'tsx', fileURLToPath(import.meta.url), 'subscriber', server.url],
    { env: { ...process.env, PRICES_TOKEN: token } },
  );
  await subscribed;
  let price = 100;
  for (const symbol of ['ACME', 'ACME', 'INIT', 'ACME', 'INIT']) {
    price *= 1.01;
    server.publish('prices', { symbol, price });
  }
  server.publish('prices', { done: true });
  console.log(`subscriber exited with code ${(await subscriber.exited).code}`);
  await server.close();
}
