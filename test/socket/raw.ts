/**
 * Raw access to a socket server for protocol-level tests: a plain node:net connection to a server's
 * URL, and the bytes of a valid hello and handshake to prefix hostile input with.
 */
import { connect as netConnect, type Socket } from 'node:net';
import { DEFAULT_MAX_MESSAGE_BYTES, encodeHello, FrameBatch } from '../../src/core/framing.js';
import { parseAddress } from '../../src/socket/address.js';
import { jsonFrame, Kind, SOCKET_PROTOCOL_VERSION } from '../../src/socket/protocol.js';
import { watchdog } from '../helpers.js';

/** Connects a plain socket to a socket server URL; resolves once connected. */
export async function rawConnect(url: string): Promise<Socket> {
  const address = parseAddress(url);
  const socket =
    address.kind === 'tcp'
      ? netConnect({ host: address.host, port: address.port })
      : netConnect(address.path);
  socket.on('error', () => {});
  await watchdog(
    new Promise<void>((resolve) => socket.once('connect', () => resolve())),
    5000,
    `raw connect to ${url}`,
  );
  return socket;
}

/** A hello and a handshake frame: what a legitimate client sends first. */
export function greeting(extra: Record<string, unknown> = {}): Buffer {
  const batch = new FrameBatch();
  batch.add(
    jsonFrame(Kind.HANDSHAKE, { v: SOCKET_PROTOCOL_VERSION, max: DEFAULT_MAX_MESSAGE_BYTES, ...extra }),
  );
  return Buffer.concat([encodeHello('msgpack'), batch.take()]);
}

/** Resolves when the socket closes (the server cut it, or it ended). */
export function closed(socket: Socket, ms = 10_000): Promise<void> {
  if (socket.destroyed && socket.closed) return Promise.resolve();
  socket.resume(); // a socket nobody reads never sees the end of its input
  return watchdog(
    new Promise<void>((resolve) => socket.once('close', () => resolve())),
    ms,
    'raw socket closes',
  );
}
