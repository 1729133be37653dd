/**
 * `ipckit serve URL`: a quick request/reply and echo server for trying sockets from a shell or
 * against a program: it answers `echo` and `ping`, echoes every message sent on a connection, and
 * prints each connection and request. SIGINT or SIGTERM closes it gracefully (running requests
 * finish, clients are told goodbye, a Unix socket file is removed) and it exits with 0.
 */
import { Command, Option } from 'commander';
import { listen, type PeerInfo, parseAddress, type SocketConnection, type SocketServer } from '../index.js';
import { checkArgument } from './arguments.js';
import { jsonText } from './json-text.js';
import { createOutput, type Output } from './output.js';
import { holdStdout, stdoutClosed } from './stdout-closed.js';

/** The environment variable holding the shared token of `serve` and `call`. */
export const TOKEN_ENV = 'IPCKIT_TOKEN';

/** What the server does to what it echoes. */
export type EchoMode = 'echo' | 'upper';

/** Upper-cases every string in `value`, recursively (object keys stay as they are). */
export function upperCase(value: unknown): unknown {
  if (typeof value === 'string') return value.toUpperCase();
  if (Array.isArray(value)) return value.map(upperCase);
  if (value !== null && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, upperCase(v)]));
  }
  return value;
}

/** "unix, pid 4242, uid 1000" / "tcp 127.0.0.1:51324": who is on the other end. */
export function describePeer(peer: PeerInfo): string {
  const parts: string[] = [];
  if (peer.address !== undefined) parts.push(`${peer.transport} ${peer.address}:${peer.port}`);
  else parts.push(peer.transport);
  if (peer.pid !== undefined) parts.push(`pid ${peer.pid}`);
  if (peer.uid !== undefined) parts.push(`uid ${peer.uid}`);
  if (peer.tls) parts.push('tls');
  return parts.join(', ');
}

/** Echoes what one connection sends until it ends. */
async function echoMessages(conn: SocketConnection<unknown>, mode: EchoMode, out: Output): Promise<void> {
  try {
    for await (const message of conn) {
      out.line(`  message on connection ${conn.id}: ${jsonText(message)}`);
      await conn.send(mode === 'upper' ? upperCase(message) : message);
    }
  } catch (err) {
    // A connection that dies is reported by the 'disconnect' event; nothing else to do here.
    void err;
  }
}

/**
 * Starts the server and resolves once it has been stopped by a signal, or because stdout's reader
 * went away (`ipckit serve … | head -1`, the way a script reads the first line).
 */
async function serve(url: string, mode: EchoMode, out: Output): Promise<void> {
  // The server has a socket file and a registry entry to remove: a closed stdout must not make
  // the bin exit at once, with a request half-answered and both left behind (see stdout-closed.ts).
  const release = holdStdout();
  try {
    await serveUntilStopped(url, mode, out);
  } finally {
    release();
  }
}

async function serveUntilStopped(url: string, mode: EchoMode, out: Output): Promise<void> {
  const token = process.env[TOKEN_ENV];
  const server: SocketServer<unknown> = await listen(url, token ? { auth: { token } } : undefined);
  const transform = mode === 'upper' ? upperCase : (value: unknown) => value;
  let requests = 0;
  server
    .handle('echo', (params, ctx) => {
      requests++;
      out.line(`  request ${requests} on connection ${ctx.connection.id}: echo ${jsonText(params)}`);
      return transform(params);
    })
    .handle('ping', (_params, ctx) => {
      requests++;
      out.line(`  request ${requests} on connection ${ctx.connection.id}: ping`);
      return { pong: true, pid: process.pid, time: new Date().toISOString() };
    });
  server.on('connection', (conn) => out.line(`+ connection ${conn.id} (${describePeer(conn.peer)})`));
  server.on('disconnect', (conn, reason) => out.line(`- connection ${conn.id} ended (${reason.code})`));
  server.on('refused', (reason, peer) =>
    out.line(`! refused ${describePeer(peer)}: ${reason.message} (${reason.code})`),
  );

  const stopped = new Promise<string>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
    if (stdoutClosed.aborted) resolve('stdout closed');
    stdoutClosed.addEventListener('abort', () => resolve('stdout closed'), { once: true });
  });
  // Scripts and tests wait for this line: the server accepts connections from here on.
  out.line(
    `listening on ${server.url} (methods: echo, ping; ${mode === 'upper' ? 'upper-casing' : 'echoing'} messages)`,
  );

  const accepting = (async () => {
    const echoes: Promise<void>[] = [];
    for await (const conn of server) echoes.push(echoMessages(conn, mode, out));
    await Promise.all(echoes);
  })().catch((err: unknown) => {
    // The iterator ends cleanly on close; anything else is worth a line, not a crash.
    out.line(`! accepting failed: ${(err as Error).message}`);
  });
  const reason = await stopped;
  out.line(`${reason}: closing (${server.stats().connections} open connection(s))`);
  await server.close({ graceMs: 2000 });
  await accepting;
  out.line('closed');
}

/** Builds the `serve` command. */
export function serveCommand(): Command {
  return new Command('serve')
    .description('run a request/reply and echo server on URL until Ctrl-C, printing what happens')
    .argument('<url>', 'tcp://host:port (port 0 picks one), unix:///path/to.sock or pipe://name')
    .addOption(new Option('--echo', 'echo requests and messages unchanged (the default)').conflicts('upper'))
    .addOption(new Option('--upper', 'reply with every string upper-cased'))
    .addHelpText(
      'after',
      `
Methods: 'echo' replies with its params (upper-cased with --upper); 'ping' replies
{ pong, pid, time }. Messages sent on a connection are sent back the same way.

The first line is 'listening on URL', with the port filled in for tcp://...:0. A TCP address that
is not loopback needs a token: set ${TOKEN_ENV} for both serve and call. Unix sockets and
named pipes accept this user only. SIGINT or SIGTERM closes the server gracefully (exit code 0).

Examples:
  $ ipckit serve unix:///tmp/demo.sock
  $ ipckit call unix:///tmp/demo.sock echo '{"hello":"world"}'`,
    )
    .action(async (url: string, opts: { echo?: boolean; upper?: boolean }) => {
      checkArgument(url, parseAddress);
      await serve(url, opts.upper ? 'upper' : 'echo', createOutput());
    });
}
