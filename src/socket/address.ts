/**
 * Socket addresses: `tcp://host:port`, `unix:///path/to.sock` and `pipe://name` (a named pipe: a Unix
 * socket in the runtime directory, or `\\.\pipe\…` on Windows). Parsed once, up front, so a bad
 * address is a TypeError/RangeError naming it, and a too-long socket path is ERR_IPC_PATH_TOO_LONG
 * instead of a path Node would silently truncate.
 */
import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import { basename, resolve } from 'node:path';
import { checkSocketPath, namedPipeAddress } from '../core/platform.js';
import { NAME_PATTERN } from '../core/runtime-dir.js';

/** A parsed socket address. */
export type SocketAddress =
  | { kind: 'tcp'; host: string; port: number }
  | { kind: 'unix'; path: string }
  | { kind: 'pipe'; name: string; path: string };

/** The transports a URL can name. */
export type SocketTransport = SocketAddress['kind'];

/**
 * Parses a socket URL. Throws TypeError for something that is not one, RangeError for a bad port,
 * ERR_IPC_INVALID_NAME for a bad pipe name and ERR_IPC_PATH_TOO_LONG for a socket path over the limit.
 */
export function parseAddress(url: unknown, option = 'url'): SocketAddress {
  if (typeof url !== 'string') throw new TypeError(`${option} must be a string such as 'tcp://127.0.0.1:0'`);
  const match = /^([a-z]+):\/\/(.*)$/.exec(url);
  if (!match) {
    throw new TypeError(
      `${option} must look like tcp://host:port, unix:///path or pipe://name, got '${url}'`,
    );
  }
  const scheme = match[1]!;
  const rest = match[2]!;
  switch (scheme) {
    case 'tcp':
      return parseTcp(rest, url, option);
    case 'unix': {
      if (rest === '') throw new TypeError(`${option}: unix:// needs a path, as in unix:///run/app.sock`);
      const path = resolve(rest);
      checkSocketPath(path, `socket ${url}`);
      return { kind: 'unix', path };
    }
    case 'pipe':
      return { kind: 'pipe', name: rest, path: namedPipeAddress(rest) };
    default:
      throw new TypeError(`${option}: unknown scheme '${scheme}://' (use tcp://, unix:// or pipe://)`);
  }
}

function parseTcp(rest: string, url: string, option: string): SocketAddress {
  // [v6]:port or host:port; the port is mandatory (0 picks a free one when listening).
  const match = /^(?:\[([^\]]+)\]|([^:/[\]]+)):(\d{1,5})$/.exec(rest);
  if (!match) throw new TypeError(`${option}: tcp:// needs host:port, as in tcp://127.0.0.1:0, got '${url}'`);
  const host = match[1] ?? match[2]!;
  if (match[1] !== undefined && isIP(host) !== 6) {
    throw new TypeError(`${option}: '[${host}]' is not an IPv6 address`);
  }
  const port = Number(match[3]);
  if (port > 65535) throw new RangeError(`${option}: port ${port} is out of range 0..65535`);
  return { kind: 'tcp', host, port };
}

/** The URL of an address, e.g. the bound one with its port filled in. */
export function formatAddress(address: SocketAddress): string {
  switch (address.kind) {
    case 'tcp':
      return `tcp://${isIP(address.host) === 6 ? `[${address.host}]` : address.host}:${address.port}`;
    case 'unix':
      return `unix://${address.path}`;
    case 'pipe':
      return `pipe://${address.name}`;
  }
}

/**
 * True for hosts that only this machine can reach: 127.0.0.0/8, ::1 (also as ::ffff:127.x) and
 * `localhost`. Anything else (0.0.0.0, ::, a name) may be reachable from the network.
 */
export function isLoopback(host: string): boolean {
  const lower = host.toLowerCase();
  if (lower === 'localhost') return true;
  if (isIP(lower) === 4) return lower.startsWith('127.');
  if (isIP(lower) === 6) {
    if (lower === '::1' || lower === '0:0:0:0:0:0:0:1') return true;
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(lower);
    return mapped !== null && mapped[1]!.startsWith('127.');
  }
  return false;
}

/**
 * The name a unix:// socket file is registered under (its file name, then a hash of its path, so
 * that `ipckit ls` shows it and gc can tell which path a name belongs to), or undefined if none fits.
 */
export function unixSocketRegistryName(path: string): string | undefined {
  const base = basename(path)
    .replace(/[^A-Za-z0-9._-]/g, '_')
    .replace(/^[^A-Za-z0-9]+/, '');
  const hash = createHash('sha256').update(path).digest('hex').slice(0, 8);
  const name = `${base.slice(0, 80) || 'socket'}-${hash}`;
  return NAME_PATTERN.test(name) ? name : undefined;
}
