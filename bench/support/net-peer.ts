/**
 * Baseline: a raw `node:net` Unix socket between parent and child with hand-written 4-byte length
 * framing (bench/support/length-prefix.ts). Objects are msgpack with ipckit's settings, bytes go as
 * they are, so the difference to ipckit is the transport and its framing only.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Packr } from 'msgpackr';
import type { PayloadKind } from './group-protocol.js';
import { Inbox } from './inbox.js';
import { FrameReader, writeFrame } from './length-prefix.js';
import { CHILD_STDIO, childArgs, type Peer } from './peer.js';

const packr = new Packr({ useRecords: false, mapsAsObjects: true, moreTypes: false, int64AsType: 'number' });

export async function startNetPeer(kind: PayloadKind): Promise<Peer> {
  const dir = mkdtempSync(join(tmpdir(), 'ipckit-bench-'));
  const path = join(dir, 'echo.sock');
  const server = createServer();
  server.listen(path);
  await once(server, 'listening');
  const child = spawn(process.execPath, childArgs('echo-count-net-socket.ts', kind, path), {
    stdio: CHILD_STDIO,
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const inbox = new Inbox();
  child.once('exit', (code, signal) => inbox.fail(new Error(`net child exited (${code ?? signal})`)));
  const [socket] = (await Promise.race([
    once(server, 'connection'),
    exited.then(() => {
      throw new Error('net child exited before connecting');
    }),
  ])) as [Socket];
  server.close();
  const reader = new FrameReader((payload) =>
    inbox.push(kind === 'object' ? packr.decode(payload) : payload),
  );
  socket.on('data', (chunk: Buffer) => reader.push(chunk));
  return {
    subject: 'net Unix socket, hand-framed',
    kind,
    pid: child.pid!,
    send(message) {
      const payload = kind === 'object' ? packr.encode(message) : (message as Uint8Array);
      return writeFrame(socket, payload) ? undefined : once(socket, 'drain').then(() => {});
    },
    receive: () => inbox.receive(),
    close: async () => {
      socket.end();
      await exited;
      socket.destroy();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
