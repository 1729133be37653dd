// A supervised worker (see supervised-workers.ts): answers each { word } with { upper, pid }, and
// exits with code 1 ("crashes") when it is sent { crash: true }. It exits with its parent.
import { parentChannel } from '../../src/index.js'; // in your project: from 'ipckit'

/** What the supervisor's side sends. */
export type Request = { word: string } | { crash: true };
/** What the worker answers. */
export interface Reply {
  upper: string;
  pid: number;
}

const channel = parentChannel<Request | Reply>({ exitWithParent: true });
for await (const request of channel) {
  if ('crash' in request) process.exit(1);
  if ('word' in request) await channel.send({ upper: request.word.toUpperCase(), pid: process.pid });
}
await channel.close();
