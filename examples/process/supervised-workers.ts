// A supervised worker process: it crashes, the Supervisor restarts it after a backoff, and the
// channel we hold keeps working. A message sent while the worker is down waits for the new one.
//
//   node --import tsx examples/process/supervised-workers.ts
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { Supervisor, spawn } from '../../src/index.js'; // in your project: from 'ipckit'
import type { Reply, Request } from './worker.js';

const workerFile = fileURLToPath(new URL('./worker.ts', import.meta.url));
const sup = new Supervisor({ restart: 'on-failure', maxRestarts: 3, windowMs: 60_000 });
sup.on('start', (name, child) => console.log(`[${name}] started, pid ${child.pid}`));
sup.on('exit', (name, status) =>
  console.log(`[${name}] exited (code ${status.code}, signal ${status.signal})`),
);
sup.on('restart', (name, info) => console.log(`[${name}] restart #${info.attempt} in ${info.delayMs} ms`));
sup.on('giveup', (name) => console.log(`[${name}] gave up`));

// The factory runs for the first start and for every restart. (The worker is TypeScript, so it
// runs with the tsx loader; a compiled worker is just [workerFile].)
sup.add('upper', () => spawn(process.execPath, ['--import', 'tsx', workerFile], { channel: 'pipe' }));
await sup.start();

// One channel for the whole life of the supervisor, whichever process is behind it.
const channel = sup.channel<Request | Reply>('upper');
const ask = async (word: string) => {
  await channel.send({ word });
  const reply = (await channel.receive({ timeout: 15_000 })) as Reply;
  console.log(`${word} -> ${reply.upper} (pid ${reply.pid})`);
  return reply.pid;
};

const firstPid = await ask('hello');
const exited = once(sup, 'exit');
await channel.send({ crash: true });
await exited;
// Sent while the worker is down: buffered, then delivered to the new worker. (A message the old
// worker's pipe had already accepted when it died would be lost with it: at most once.)
const secondPid = await ask('again');
console.log(firstPid === secondPid ? 'same worker?!' : 'answered by the restarted worker');

await sup.stop();
console.log('supervisor stopped');
