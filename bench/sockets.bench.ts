/**
 * Sockets: ipckit's listen/connect against the baselines the issue names, all measured in the
 * same run, interleaved run by run: a hand-framed `node:net` echo (4-byte length prefix; writes
 * coalesced for throughput), `process.send`, and zeromq.js 6 (REQ/REP, PUSH/PULL over ipc:// and
 * tcp://). The peer of every subject is a child process, so both ends have a core.
 *
 * Cases: request/reply round trip over unix and tcp; pipelined one-way 64 B messages over unix
 * (raw bytes, the transports' own cost; and msgpack objects, ipckit's default codec); requests/s
 * with 64 clients; and the server's memory for 1,000 idle connections.
 *
 * Standalone: `node --import tsx bench/sockets.bench.ts [--quick] [--runs N] [--json]`.
 * The same file is the child program: `… sockets.bench.ts --child <role> …`.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect as netConnect, createServer as netCreateServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { connect, listen, type SocketClient } from '../src/index.js';
import {
  type CaseResult,
  type Measurement,
  median,
  type RunOptions,
  ratio,
  type Scenario,
  summarize,
  withPeakRss,
} from './scenario.js';
import { CHILD_LOADER } from './support/peer.js';
import { inPrivateRuntimeDir } from './support/sync-procs.js';

const SELF = fileURLToPath(import.meta.url);
const MiB = 1 << 20;

/** `{ id, name }` whose msgpack encoding is 64 bytes. */
const OBJECT_64 = { id: 1_000_000, name: 'x'.repeat(47) };
const BYTES_64 = new Uint8Array(64).fill(7);

// ---- small framing for the raw net baseline ---------------------------------------------------

/** Splits a byte stream into 4-byte-length-prefixed frames. */
function frameReader(onFrame: (frame: Buffer) => void): (chunk: Buffer) => void {
  let pending: Buffer | undefined;
  return (chunk) => {
    let buf = pending ? Buffer.concat([pending, chunk]) : chunk;
    let pos = 0;
    while (buf.length - pos >= 4) {
      const length = buf.readUInt32BE(pos);
      if (buf.length - pos - 4 < length) break;
      onFrame(buf.subarray(pos + 4, pos + 4 + length));
      pos += 4 + length;
    }
    pending = pos < buf.length ? buf.subarray(pos) : undefined;
    if (pending) pending = Buffer.from(pending);
    buf = Buffer.alloc(0);
  };
}

function frame(payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(4 + payload.length);
  out.writeUInt32BE(payload.length, 0);
  out.set(payload, 4);
  return out;
}

// Raw net protocol: first byte 0 = echo me, 1 = count me, 2 = expect u32 more then answer.
const ECHO = 0;
const COUNT = 1;
const EXPECT = 2;

// ---- child roles ------------------------------------------------------------------------------

async function child(role: string, args: string[]): Promise<void> {
  const send = (message: unknown) => process.send!(message);
  // A parent that crashed must not leave its peers running.
  process.on('disconnect', () => process.exit(0));
  switch (role) {
    case 'ipckit': {
      const server = await listen(args[0]!, {
        codec: args[1] as 'msgpack',
        heartbeatMs: 0,
        maxConnections: 4096,
      });
      server.handle('echo', (params) => params);
      let counted = 0;
      let target = Infinity;
      let reached: (() => void) | undefined;
      // The count travels in the connection's codec: a number, or 4 bytes with the raw codec.
      server.handle('expect', (n: number | Uint8Array) => {
        target = counted + (typeof n === 'number' ? n : Buffer.from(n).readUInt32BE(0));
        if (counted >= target) return undefined;
        return new Promise<undefined>((resolve) => {
          reached = () => resolve(undefined);
        });
      });
      void (async () => {
        for await (const conn of server) {
          void (async () => {
            try {
              for await (const _ of conn) {
                if (++counted >= target && reached) {
                  reached();
                  reached = undefined;
                }
              }
            } catch {}
          })();
        }
      })();
      send({ url: server.url, ...memory() });
      break;
    }
    case 'net': {
      const server = netCreateServer({ noDelay: true }, (socket) => {
        let counted = 0;
        let target = Infinity;
        const out: Buffer[] = [];
        const read = frameReader((f) => {
          if (f[0] === ECHO) out.push(frame(f));
          else if (f[0] === COUNT) {
            if (++counted === target) out.push(frame(Uint8Array.of(EXPECT)));
          } else {
            target = counted + f.readUInt32BE(1);
            if (counted >= target) out.push(frame(Uint8Array.of(EXPECT)));
          }
        });
        socket.on('data', (chunk) => {
          read(chunk);
          if (out.length) socket.write(out.length === 1 ? out[0]! : Buffer.concat(out));
          out.length = 0;
        });
        socket.on('error', () => {});
      });
      await new Promise<void>((resolve) =>
        args[0] === 'tcp' ? server.listen(0, '127.0.0.1', resolve) : server.listen(args[0]!, resolve),
      );
      const address = server.address();
      send({ where: typeof address === 'string' ? address : (address?.port ?? 0), ...memory() });
      break;
    }
    case 'zmq-rep': {
      const zmq = await import('zeromq');
      const rep = new zmq.Reply();
      await rep.bind(args[0]!);
      send({ endpoint: rep.lastEndpoint });
      for await (const [msg] of rep) await rep.send(msg!);
      break;
    }
    case 'zmq-pull': {
      const zmq = await import('zeromq');
      const pull = new zmq.Pull();
      await pull.bind(args[0]!);
      let counted = 0;
      let target = Infinity;
      process.on('message', (m: { expect: number }) => {
        target = counted + m.expect;
        if (counted >= target) send({ done: counted });
      });
      send({ endpoint: pull.lastEndpoint });
      for await (const _ of pull) if (++counted === target) send({ done: counted });
      break;
    }
    case 'process-send': {
      let counted = 0;
      let target = Infinity;
      process.on('message', (m: { echo?: unknown; count?: true; expect?: number }) => {
        if (m.echo !== undefined) send(m);
        else if (m.count) {
          if (++counted === target) send({ done: counted });
        } else if (m.expect !== undefined) {
          target = counted + m.expect;
          if (counted >= target) send({ done: counted });
        }
      });
      send({ ready: true });
      break;
    }
  }
  process.on('message', (m: { memory?: true }) => {
    if (m.memory) send(memory());
  });
}

/** RSS after a full GC, in MiB (children run with --expose-gc). */
function memory(): { rssMiB: number } {
  (globalThis as { gc?: () => void }).gc?.();
  (globalThis as { gc?: () => void }).gc?.();
  return { rssMiB: process.memoryUsage.rss() / MiB };
}

// ---- the parent side --------------------------------------------------------------------------

interface Peer {
  subject: string;
  /** Runs `n` round trips; returns µs per round trip. */
  roundTrips?(n: number): Promise<number>;
  /** Sends `n` messages one way and waits until the peer has them; returns msg/s. */
  oneWay?(n: number): Promise<number>;
  close(): Promise<void>;
}

class ChildHandle {
  readonly proc: ChildProcess;
  #waiters: { resolve(m: Record<string, unknown>): void; reject(err: Error): void }[] = [];
  /** Messages that arrived before anyone asked for them. */
  #early: Record<string, unknown>[] = [];
  #exited: Error | undefined;

  constructor(role: string, args: string[]) {
    this.proc = fork(SELF, ['--child', role, ...args], {
      execArgv: [...CHILD_LOADER, '--expose-gc'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.proc.on('message', (m) => {
      const waiter = this.#waiters.shift();
      if (waiter) waiter.resolve(m as Record<string, unknown>);
      else this.#early.push(m as Record<string, unknown>);
    });
    this.proc.once('exit', (code) => {
      this.#exited = new Error(`bench child ${role} exited (${code})`);
      for (const waiter of this.#waiters.splice(0)) waiter.reject(this.#exited);
    });
  }

  next(): Promise<Record<string, unknown>> {
    const early = this.#early.shift();
    if (early) return Promise.resolve(early);
    if (this.#exited) return Promise.reject(this.#exited);
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  send(message: unknown): void {
    this.proc.send(message as object);
  }

  kill(): Promise<void> {
    if (this.proc.exitCode !== null) return Promise.resolve();
    const exited = new Promise<void>((resolve) => this.proc.once('exit', () => resolve()));
    this.proc.kill('SIGKILL');
    return exited;
  }
}

function elapsedUs(start: number): number {
  return (performance.now() - start) * 1000;
}

async function ipckitPeer(
  subject: string,
  url: string,
  codec: 'msgpack' | 'raw',
  message: unknown,
): Promise<Peer> {
  const child = new ChildHandle('ipckit', [url, codec]);
  const { url: bound } = (await child.next()) as { url: string };
  const client: SocketClient<unknown> = await connect(bound, { codec, timeout: 20_000 });
  return {
    subject,
    async roundTrips(n) {
      const start = performance.now();
      for (let i = 0; i < n; i++) await client.request('echo', message);
      return elapsedUs(start) / n;
    },
    async oneWay(n) {
      const count = Buffer.alloc(4);
      count.writeUInt32BE(n);
      const done = client.request('expect', codec === 'raw' ? new Uint8Array(count) : n);
      const start = performance.now();
      for (let i = 0; i < n; i++) await client.send(message);
      await done;
      return n / ((performance.now() - start) / 1000);
    },
    async close() {
      await client.close();
      await child.kill();
    },
  };
}

/** A raw framed client: request() writes an echo frame and resolves with the next frame back. */
async function netPeer(subject: string, where: 'tcp' | string): Promise<Peer> {
  const child = new ChildHandle('net', [where]);
  const { where: bound } = (await child.next()) as { where: string | number };
  const socket = await rawNet(bound);
  const waiting: (() => void)[] = [];
  socket.on(
    'data',
    frameReader(() => waiting.shift()?.()),
  );
  const echo = frame(Buffer.concat([Uint8Array.of(ECHO), BYTES_64.subarray(1)]));
  const count = frame(Buffer.concat([Uint8Array.of(COUNT), BYTES_64.subarray(1)]));
  return {
    subject,
    async roundTrips(n) {
      const start = performance.now();
      for (let i = 0; i < n; i++) {
        await new Promise<void>((resolve) => {
          waiting.push(resolve);
          socket.write(echo);
        });
      }
      return elapsedUs(start) / n;
    },
    async oneWay(n) {
      const expect = Buffer.alloc(5);
      expect[0] = EXPECT;
      expect.writeUInt32BE(n, 1);
      const done = new Promise<void>((resolve) => waiting.push(resolve));
      const start = performance.now();
      socket.write(frame(expect));
      // Coalesced: 1,024 frames per write, waiting for 'drain' when the socket is full.
      const batch = Buffer.concat(Array(1024).fill(count));
      let left = n;
      while (left > 0) {
        const take = Math.min(1024, left);
        const ok = socket.write(take === 1024 ? batch : batch.subarray(0, take * count.length));
        left -= take;
        if (!ok) await new Promise((resolve) => socket.once('drain', resolve));
      }
      await done;
      return n / ((performance.now() - start) / 1000);
    },
    async close() {
      socket.destroy();
      await child.kill();
    },
  };
}

function rawNet(where: string | number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket =
      typeof where === 'number'
        ? netConnect({ port: where, host: '127.0.0.1', noDelay: true })
        : netConnect(where);
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

async function zmqReqRep(subject: string, bind: string): Promise<Peer> {
  const zmq = await import('zeromq');
  const child = new ChildHandle('zmq-rep', [bind]);
  const { endpoint } = (await child.next()) as { endpoint: string };
  const req = new zmq.Request();
  req.connect(endpoint);
  const payload = Buffer.from(BYTES_64);
  return {
    subject,
    async roundTrips(n) {
      const start = performance.now();
      for (let i = 0; i < n; i++) {
        await req.send(payload);
        await req.receive();
      }
      return elapsedUs(start) / n;
    },
    async close() {
      req.close();
      await child.kill();
    },
  };
}

async function zmqPushPull(subject: string, bind: string): Promise<Peer> {
  const zmq = await import('zeromq');
  const child = new ChildHandle('zmq-pull', [bind]);
  const { endpoint } = (await child.next()) as { endpoint: string };
  const push = new zmq.Push();
  push.connect(endpoint);
  const payload = Buffer.from(BYTES_64);
  return {
    subject,
    async oneWay(n) {
      const done = child.next();
      child.send({ expect: n });
      const start = performance.now();
      for (let i = 0; i < n; i++) await push.send(payload);
      await done;
      return n / ((performance.now() - start) / 1000);
    },
    async close() {
      push.close();
      await child.kill();
    },
  };
}

async function processSendPeer(subject: string): Promise<Peer> {
  const child = new ChildHandle('process-send', []);
  await child.next();
  return {
    subject,
    async roundTrips(n) {
      const start = performance.now();
      for (let i = 0; i < n; i++) {
        const reply = child.next();
        child.send({ echo: OBJECT_64 });
        await reply;
      }
      return elapsedUs(start) / n;
    },
    async oneWay(n) {
      const done = child.next();
      child.send({ expect: n });
      const start = performance.now();
      for (let i = 0; i < n; i++) {
        // process.send has no backpressure signal but its callback: wait on it every 1,024.
        if (i % 1024 === 1023) await new Promise((resolve) => child.proc.send({ count: true }, resolve));
        else child.proc.send({ count: true });
      }
      await done;
      return n / ((performance.now() - start) / 1000);
    },
    async close() {
      await child.kill();
    },
  };
}

// ---- measuring --------------------------------------------------------------------------------

/** Standalone `--case text`: only the cases whose name contains it. */
let caseFilter: string | undefined;

function wanted(name: string): boolean {
  return caseFilter === undefined || name.includes(caseFilter);
}

/** Fails a stuck measurement with the subject's name instead of hanging the whole suite. */
function bounded<T>(what: string, work: Promise<T>, ms = 180_000): Promise<T> {
  let timer: NodeJS.Timeout;
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`sockets bench: ${what} did not finish within ${ms / 1000} s`)),
      ms,
    );
  });
  return Promise.race([work, guard]).finally(() => clearTimeout(timer));
}

interface Spec {
  case: string;
  unit: string;
  higherIsBetter: boolean;
  notes?: string;
  /** Work per run. */
  size: number;
  warmUp: number;
  run(peer: Peer, size: number): Promise<number>;
}

/** Takes `runs` rounds in which every peer runs once, rotating who goes first. */
async function measure(peers: Peer[], spec: Spec, opts: RunOptions): Promise<CaseResult> {
  for (const peer of peers) {
    opts.progress(`sockets: ${spec.case}, warming up ${peer.subject}`);
    await bounded(`${spec.case}: ${peer.subject} warm-up`, spec.run(peer, spec.warmUp));
  }
  const values = peers.map(() => [] as number[]);
  const peaks = peers.map(() => 0);
  for (let run = 0; run < opts.runs; run++) {
    opts.progress(`sockets: ${spec.case}, run ${run + 1}/${opts.runs}`);
    for (let j = 0; j < peers.length; j++) {
      const i = (j + run) % peers.length;
      const { value, peakRssMiB } = await withPeakRss(() =>
        bounded(`${spec.case}: ${peers[i]!.subject}`, spec.run(peers[i]!, spec.size)),
      );
      values[i]!.push(value);
      peaks[i] = Math.max(peaks[i]!, peakRssMiB);
    }
  }
  const [ours, ...baselines] = peers.map((peer, i) =>
    summarize(peer.subject, values[i]!, Math.round(peaks[i]!)),
  ) as [Measurement, ...Measurement[]];
  const result: CaseResult = {
    case: spec.case,
    unit: spec.unit,
    higherIsBetter: spec.higherIsBetter,
    ours,
    baselines,
  };
  if (spec.notes) result.notes = spec.notes;
  return result;
}

async function withPeers<T>(make: (() => Promise<Peer>)[], work: (peers: Peer[]) => Promise<T>): Promise<T> {
  const peers: Peer[] = [];
  try {
    for (const m of make) peers.push(await m());
    return await work(peers);
  } finally {
    for (const peer of peers) await peer.close().catch(() => {});
  }
}

const roundTrip = (peer: Peer, n: number) => peer.roundTrips!(n);
const oneWay = (peer: Peer, n: number) => peer.oneWay!(n);

/** requests/s with `clients` connections, each keeping `window` requests in flight. */
async function manyClients(url: string, clients: number, window: number, total: number): Promise<number> {
  const conns = await Promise.all(Array.from({ length: clients }, () => connect(url, { timeout: 20_000 })));
  try {
    const perClient = Math.ceil(total / clients);
    const start = performance.now();
    await Promise.all(
      conns.map(async (client) => {
        let next = 0;
        await Promise.all(
          Array.from({ length: window }, async () => {
            while (next < perClient) {
              next++;
              await client.request('echo', OBJECT_64);
            }
          }),
        );
      }),
    );
    return (perClient * clients) / ((performance.now() - start) / 1000);
  } finally {
    await Promise.all(conns.map((c) => c.close()));
  }
}

async function manyRawClients(
  where: string,
  clients: number,
  window: number,
  total: number,
): Promise<number> {
  const sockets = await Promise.all(Array.from({ length: clients }, () => rawNet(where)));
  const echo = frame(Buffer.concat([Uint8Array.of(ECHO), BYTES_64.subarray(1)]));
  try {
    const perClient = Math.ceil(total / clients);
    const start = performance.now();
    await Promise.all(
      sockets.map(async (socket) => {
        const waiting: (() => void)[] = [];
        socket.on(
          'data',
          frameReader(() => waiting.shift()?.()),
        );
        let next = 0;
        await Promise.all(
          Array.from({ length: window }, async () => {
            while (next < perClient) {
              next++;
              await new Promise<void>((resolve) => {
                waiting.push(resolve);
                socket.write(echo);
              });
            }
          }),
        );
      }),
    );
    return (perClient * clients) / ((performance.now() - start) / 1000);
  } finally {
    for (const socket of sockets) socket.destroy();
  }
}

/** The server child's RSS growth, in MiB, for `count` idle connections. */
let idleRuns = 0;

async function idleMemory(kind: 'ipckit' | 'net', dir: string, count: number): Promise<number> {
  const path = join(dir, `idle-${kind}-${idleRuns++}.sock`);
  const child = new ChildHandle(kind, kind === 'ipckit' ? [`unix://${path}`, 'msgpack'] : [path]);
  const ready = (await child.next()) as { rssMiB: number };
  const clients: { close(): unknown }[] = [];
  try {
    for (let i = 0; i < count; i += 50) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(50, count - i) }, () =>
          kind === 'ipckit' ? connect(`unix://${path}`, { timeout: 20_000 }) : rawNet(path),
        ),
      );
      for (const c of batch)
        clients.push(kind === 'ipckit' ? (c as SocketClient) : { close: () => (c as Socket).destroy() });
      // A connect completes once the kernel queues it, before the server accepts it. A message
      // answered by the server means its event loop has turned, accepting what was queued;
      // without it the listen backlog fills and connects fail with EAGAIN.
      child.send({ memory: true });
      await child.next();
    }
    // Two readings a moment apart: the connections are all accepted and settled by the second.
    child.send({ memory: true });
    await child.next();
    child.send({ memory: true });
    const after = (await child.next()) as { rssMiB: number };
    return after.rssMiB - ready.rssMiB;
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await child.kill();
  }
}

/**
 * The children run in a private runtime directory: a server killed at the end of a case (SIGKILL,
 * so that no case waits on another's shutdown) would otherwise leave its registry entry in the
 * user's own, listed as dead by `ipckit ls` after every benchmark run.
 */
function run(opts: RunOptions): Promise<CaseResult[]> {
  return inPrivateRuntimeDir(() => runCases(opts));
}

async function runCases(opts: RunOptions): Promise<CaseResult[]> {
  const dir = mkdtempSync(join(tmpdir(), 'ipckit-bench-sockets-'));
  const sock = (name: string) => join(dir, `${name}.sock`);
  const rtSize = opts.quick ? 500 : 10_000;
  const owSize = opts.quick ? 50_000 : 1_000_000;
  const results: CaseResult[] = [];
  try {
    if (wanted('round trip, unix, 64 B')) {
      results.push(
        await withPeers(
          [
            () =>
              ipckitPeer(
                'ipckit request/reply (unix, msgpack)',
                `unix://${sock('rt')}`,
                'msgpack',
                OBJECT_64,
              ),
            () => netPeer('node:net framed echo (unix)', sock('net-rt')),
            () => zmqReqRep('zeromq REQ/REP ipc://', `ipc://${sock('zmq-rt')}`),
            () => processSendPeer("process.send 'json'"),
          ],
          (peers) =>
            measure(
              peers,
              {
                case: 'round trip, unix, 64 B',
                unit: 'µs',
                higherIsBetter: false,
                notes: 'target: <= 1.2x the raw net echo, >= 3x faster than zeromq REQ/REP',
                size: rtSize,
                warmUp: rtSize / 2,
                run: roundTrip,
              },
              opts,
            ),
        ),
      );
    }
    if (wanted('round trip, unix, 64 B bytes')) {
      results.push(
        await withPeers(
          [
            () =>
              ipckitPeer(
                'ipckit request/reply (unix, raw codec)',
                `unix://${sock('rt-raw')}`,
                'raw',
                BYTES_64,
              ),
            () => netPeer('node:net framed echo (unix)', sock('net-rt-raw')),
            () => zmqReqRep('zeromq REQ/REP ipc://', `ipc://${sock('zmq-rt-raw')}`),
          ],
          (peers) =>
            measure(
              peers,
              {
                case: 'round trip, unix, 64 B bytes (raw codec)',
                unit: 'µs',
                higherIsBetter: false,
                notes:
                  'the same 64 bytes each way as the net echo and zeromq carry, so no codec on either side: the transports alone; target: <= 1.2x the raw net echo, >= 3x faster than zeromq REQ/REP',
                size: rtSize,
                warmUp: rtSize / 2,
                run: roundTrip,
              },
              opts,
            ),
        ),
      );
    }
    if (wanted('round trip, tcp, 64 B')) {
      results.push(
        await withPeers(
          [
            () =>
              ipckitPeer('ipckit request/reply (tcp, msgpack)', 'tcp://127.0.0.1:0', 'msgpack', OBJECT_64),
            () => netPeer('node:net framed echo (tcp)', 'tcp'),
            () => zmqReqRep('zeromq REQ/REP tcp://', 'tcp://127.0.0.1:*'),
          ],
          (peers) =>
            measure(
              peers,
              {
                case: 'round trip, tcp, 64 B',
                unit: 'µs',
                higherIsBetter: false,
                size: rtSize,
                warmUp: rtSize / 2,
                run: roundTrip,
              },
              opts,
            ),
        ),
      );
    }
    if (wanted('pipelined one-way, unix, 64 B')) {
      results.push(
        await withPeers(
          [
            () => ipckitPeer('ipckit send (unix, raw codec)', `unix://${sock('ow')}`, 'raw', BYTES_64),
            () => netPeer('node:net framed, coalesced writes (unix)', sock('net-ow')),
            () => zmqPushPull('zeromq PUSH/PULL ipc://', `ipc://${sock('zmq-ow')}`),
            () => zmqPushPull('zeromq PUSH/PULL tcp://', 'tcp://127.0.0.1:*'),
          ],
          (peers) =>
            measure(
              peers,
              {
                case: 'pipelined one-way, unix, 64 B',
                unit: 'msg/s',
                higherIsBetter: true,
                notes: 'target: >= 1M msg/s and >= 2x zeromq PUSH/PULL',
                size: owSize,
                warmUp: owSize / 4,
                run: oneWay,
              },
              opts,
            ),
        ),
      );
    }
    if (wanted('pipelined one-way, unix, 64 B msgpack object')) {
      results.push(
        await withPeers(
          [
            () =>
              ipckitPeer(
                'ipckit send (unix, msgpack object)',
                `unix://${sock('ow-obj')}`,
                'msgpack',
                OBJECT_64,
              ),
            () => processSendPeer("process.send 'json'"),
          ],
          (peers) =>
            measure(
              peers,
              {
                case: 'pipelined one-way, unix, 64 B msgpack object',
                unit: 'msg/s',
                higherIsBetter: true,
                notes: 'the codec (pure-JS msgpackr decode) bounds this case, not the transport',
                size: owSize / 2,
                warmUp: owSize / 8,
                run: oneWay,
              },
              opts,
            ),
        ),
      );
    }
    // 64 clients, 16 requests in flight each.
    if (wanted('requests/s, 64 clients')) {
      const total = opts.quick ? 10_000 : 200_000;
      const ipckit = new ChildHandle('ipckit', [`unix://${sock('many')}`, 'msgpack']);
      const net = new ChildHandle('net', [sock('net-many')]);
      try {
        const { url } = (await ipckit.next()) as { url: string };
        const { where } = (await net.next()) as { where: string };
        const subjects: [string, () => Promise<number>][] = [
          ['ipckit request/reply (unix)', () => manyClients(url, 64, 16, total)],
          ['node:net framed echo (unix)', () => manyRawClients(where, 64, 16, total)],
        ];
        const values = subjects.map(() => [] as number[]);
        const peaks = subjects.map(() => 0);
        for (const [subject, work] of subjects) {
          opts.progress(`sockets: requests/s with 64 clients, warming up ${subject}`);
          await bounded(`64 clients: ${subject} warm-up`, work());
        }
        for (let r = 0; r < opts.runs; r++) {
          opts.progress(`sockets: requests/s with 64 clients, run ${r + 1}/${opts.runs}`);
          for (let j = 0; j < subjects.length; j++) {
            const i = (j + r) % subjects.length;
            const { value, peakRssMiB } = await withPeakRss(() =>
              bounded(`64 clients: ${subjects[i]![0]}`, subjects[i]![1]()),
            );
            values[i]!.push(value);
            peaks[i] = Math.max(peaks[i]!, peakRssMiB);
          }
        }
        const [ours, ...baselines] = subjects.map(([subject], i) =>
          summarize(subject, values[i]!, Math.round(peaks[i]!)),
        ) as [Measurement, ...Measurement[]];
        results.push({
          case: 'requests/s, 64 clients x 16 in flight, unix',
          unit: 'req/s',
          higherIsBetter: true,
          ours,
          baselines,
          notes: 'clients in this process, the server in a child',
        });
      } finally {
        await ipckit.kill();
        await net.kill();
      }
    }
    if (wanted('server memory')) {
      const count = 1000;
      const ours: number[] = [];
      const base: number[] = [];
      for (let r = 0; r < Math.min(opts.runs, 3); r++) {
        opts.progress(`sockets: server memory for ${count} idle connections, run ${r + 1}`);
        ours.push(await bounded('idle ipckit connections', idleMemory('ipckit', dir, count)));
        base.push(await bounded('idle net connections', idleMemory('net', dir, count)));
      }
      results.push({
        case: `server memory, ${count} idle connections (RSS growth)`,
        unit: 'MiB',
        higherIsBetter: false,
        ours: summarize('ipckit server (unix)', ours),
        baselines: [summarize('node:net server (unix)', base)],
        notes: 'target: < 30 MiB',
      });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return results;
}

const scenario: Scenario = {
  name: 'sockets',
  description:
    'listen/connect over unix and tcp against node:net framed echo, process.send and zeromq.js (REQ/REP, PUSH/PULL)',
  run,
};
export default scenario;

// ---- standalone -------------------------------------------------------------------------------

function format(value: number): string {
  return value >= 1000 ? Math.round(value).toLocaleString('en-US') : value.toFixed(1);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      runs: { type: 'string' },
      json: { type: 'boolean', default: false },
      case: { type: 'string' },
    },
  });
  caseFilter = values.case;
  const runs = values.runs ? Number(values.runs) : values.quick ? 3 : 5;
  const results = await run({
    quick: values.quick,
    runs,
    progress: (note) => process.stderr.write(`${note}\n`),
  });
  if (values.json) {
    process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
    return;
  }
  for (const result of results) {
    process.stdout.write(`\n${result.case} (${result.unit}, median of ${runs}, [min..max])\n`);
    const rows = [result.ours, ...result.baselines];
    for (const m of rows) {
      const vs = m === result.ours ? '' : `  ipckit ${ratio(result, m).toFixed(2)}x`;
      const rss = m.peakRssMiB === undefined ? '' : `  peak RSS ${m.peakRssMiB} MiB`;
      process.stdout.write(
        `  ${m.subject.padEnd(44)} ${format(m.median).padStart(12)}  [${format(m.min)}..${format(m.max)}]${vs}${rss}\n`,
      );
    }
    if (result.notes) process.stdout.write(`  note: ${result.notes}\n`);
  }
  void median;
}

const isMain = process.argv[1] !== undefined && pathToFileURL(process.argv[1]).href === import.meta.url;
if (isMain && process.argv[2] === '--child') {
  await child(process.argv[3]!, process.argv.slice(4));
} else if (isMain) {
  await main();
  process.exit(0);
}
