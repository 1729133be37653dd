/**
 * Baseline: Node's own IPC channel, `child_process.fork` with `process.send`, with 'json' or
 * 'advanced' serialization. Buffers go as they are with 'advanced'; with 'json' they go as base64
 * strings (encoded here, decoded by the child and back), the usual way to carry bytes in JSON.
 */
import { fork } from 'node:child_process';
import type { PayloadKind } from './group-protocol.js';
import { Inbox } from './inbox.js';
import { CHILD_LOADER, CHILD_STDIO, childPath, type Peer } from './peer.js';

export type Serialization = 'json' | 'advanced';

export function startProcessSendPeer(kind: PayloadKind, serialization: Serialization): Peer {
  const child = fork(childPath('echo-count-process-send.ts'), [kind, serialization], {
    serialization,
    execArgv: [...CHILD_LOADER],
    stdio: [...CHILD_STDIO, 'ipc'],
  });
  const base64 = kind === 'bytes' && serialization === 'json';
  const inbox = new Inbox();
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.on('message', (message) => inbox.push(base64 ? Buffer.from(message as string, 'base64') : message));
  child.once('exit', (code, signal) =>
    inbox.fail(new Error(`process.send child exited (${code ?? signal})`)),
  );
  // process.send() returns false once Node's write queue passes its threshold; the callback of a
  // later send then says the queue has drained up to it.
  let congested = false;
  return {
    subject: `process.send ${serialization}${base64 ? ' (base64)' : ''}`,
    kind,
    pid: child.pid!,
    send(message) {
      const payload = base64 ? Buffer.from(message as Uint8Array).toString('base64') : message;
      if (!congested) {
        congested = !child.send(payload as object);
        return undefined;
      }
      return new Promise<void>((resolve, reject) => {
        child.send(payload as object, (err) => {
          congested = false;
          if (err) reject(err);
          else resolve();
        });
      });
    },
    receive: () => inbox.receive(),
    close: async () => {
      child.disconnect();
      await exited;
    },
  };
}
