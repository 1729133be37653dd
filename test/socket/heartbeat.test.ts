import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { connect, ErrorCodes, type IpcError, listen } from '../../src/index.js';
import { isolateRuntimeDir, rejectionOf, watchdog } from '../helpers.js';
import { startFixture } from './child.js';
import { sendsBeyondBuffers } from './flood.js';
import { greeting, rawConnect } from './raw.js';
import { listenUrl, transports } from './transports.js';

let env: ReturnType<typeof isolateRuntimeDir>;
beforeEach(() => {
  env = isolateRuntimeDir();
});
afterEach(() => env.cleanup());

// Long enough that a process merely starved of CPU on a loaded machine is not declared dead.
const HEARTBEAT_MS = 1000;

describe.each(transports)('heartbeats over %s', (transport) => {
  it('a SIGSTOPped server is declared dead by the client while its data waits to be written', async () => {
    const server = startFixture('socket-echo-server.ts', [
      listenUrl(transport, env.dir),
      JSON.stringify({ heartbeatMs: HEARTBEAT_MS }),
    ]);
    try {
      const url = await server.line('LISTENING');
      const client = await connect<Uint8Array>(url);
      const disconnected = new Promise<IpcError>((resolve) => client.on('disconnect', resolve));
      expect(await client.request('pid')).toBe(server.process.pid);
      server.process.kill('SIGSTOP');
      // Far more than the socket buffers hold: these sends are still waiting when the peer is declared dead.
      const sends = sendsBeyondBuffers(client);
      const request = rejectionOf(client.request('pid'));
      const reason = await watchdog(disconnected, 10_000, 'heartbeat declares the server dead');
      expect(reason.code).toBe(ErrorCodes.PEER_GONE);
      expect(reason.message).toContain('no heartbeat');
      expect((await watchdog(request, 5000, 'request fails')).code).toBe(ErrorCodes.PEER_GONE);
      const outcomes = await watchdog(Promise.all(sends), 5000, 'queued sends settle');
      // The first ones fit in the buffers; the rest were still waiting and fail with the peer.
      expect(outcomes[0]).toBe('accepted');
      expect(outcomes.at(-1)).toBe(ErrorCodes.PEER_GONE);
      expect(new Set(outcomes)).toEqual(new Set(['accepted', ErrorCodes.PEER_GONE]));
      await client.close();
    } finally {
      server.process.kill('SIGCONT');
      server.kill();
    }
  });

  it('a SIGSTOPped client is declared dead by the server, which keeps serving others', async () => {
    await using server = await listen(listenUrl(transport, env.dir), { heartbeatMs: HEARTBEAT_MS });
    server.handle('ping', () => 'pong');
    const frozen = startFixture('socket-connect-and-wait.ts', [server.url]);
    try {
      const pid = Number(await frozen.line('CONNECTED'));
      const conn = await watchdog(server.accept(), 5000, 'accept');
      const gone = new Promise<IpcError>((resolve) =>
        server.on('disconnect', (c, reason) => c === conn && resolve(reason)),
      );
      frozen.process.kill('SIGSTOP');
      const reason = await watchdog(gone, 10_000, 'heartbeat declares the client dead');
      expect(reason.code).toBe(ErrorCodes.PEER_GONE);
      expect(reason.message).toContain('no heartbeat');
      expect((await rejectionOf(conn.receive())).code).toBe(ErrorCodes.PEER_GONE);
      expect(pid).toBe(frozen.process.pid);
      const other = await connect(server.url);
      expect(await other.request('ping')).toBe('pong');
      await other.close();
    } finally {
      frozen.process.kill('SIGCONT');
      frozen.kill();
    }
  });

  it('a lingering close is not cut short by a heartbeat: the socket stays open until the client ends its side', async () => {
    await using server = await listen(listenUrl(transport, env.dir), { heartbeatMs: 200 });
    const ping = Buffer.from([0x80, 0, 0, 2]);
    // A: alive (it sends PINGs) but not reading, so it has not seen the goodbye yet.
    const slow = await rawConnect(server.url);
    slow.write(greeting());
    const conn = await watchdog(server.accept(), 5000, 'accept the slow client');
    const disconnects: IpcError[] = [];
    const gone = new Promise<void>((resolve) =>
      server.on('disconnect', (c, reason) => {
        if (c !== conn) return;
        disconnects.push(reason);
        resolve();
      }),
    );
    // B: counts the server's heartbeat ticks (its PINGs); it and A answer each one.
    const ticker = await rawConnect(server.url);
    let ticks = 0;
    const tickWaiters: (() => void)[] = [];
    ticker.on('data', () => {
      ticks++;
      ticker.write(ping);
      slow.write(ping);
      for (const wake of tickWaiters.splice(0)) wake();
    });
    ticker.write(greeting());
    const ticksPass = async (n: number) => {
      const target = ticks + n;
      while (ticks < target) await new Promise<void>((resolve) => tickWaiters.push(resolve));
    };
    await watchdog(ticksPass(2), 5000, 'heartbeats reach the ticker');
    const closing = conn.close();
    await watchdog(ticksPass(3), 5000, 'three heartbeat ticks while the close lingers');
    expect(disconnects).toEqual([]);
    // A reads the goodbye and ends its side: only now does the connection close, cleanly.
    const slowClosed = new Promise<void>((resolve) => slow.once('close', () => resolve()));
    slow.resume();
    await watchdog(closing, 5000, 'close() resolves once the client has ended');
    await watchdog(slowClosed, 5000, 'the slow client sees the end');
    await watchdog(gone, 5000, 'the server reports the connection gone');
    expect(disconnects.map((r) => r.code)).toEqual([ErrorCodes.CLOSED]);
    ticker.destroy();
  });

  it('idle but live peers are never declared dead', async () => {
    // 100 ms: short enough to cross many intervals quickly, long enough that a busy test machine
    // does not stall an event loop for two of them.
    await using server = await listen(listenUrl(transport, env.dir), { heartbeatMs: 100 });
    server.handle('ping', () => 'pong');
    const client = await connect(server.url);
    const drops: IpcError[] = [];
    client.on('disconnect', (reason) => drops.push(reason));
    server.on('disconnect', (_conn, reason) => drops.push(reason));
    // Ten intervals of silence from the application: only heartbeats cross.
    await new Promise<void>((resolve) => {
      let ticks = 0;
      const timer = setInterval(() => {
        if (++ticks === 10) {
          clearInterval(timer);
          resolve();
        }
      }, 100);
    });
    expect(drops).toEqual([]);
    expect(await client.request('ping')).toBe('pong');
    expect(server.stats().connections).toBe(1);
    await client.close();
  });
});
