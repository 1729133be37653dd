/**
 * Options of `listen` and `connect`, their defaults, and the checks that turn a bad value into a
 * TypeError/RangeError naming the option (as a rejected promise: these functions are async).
 */
import type { ConnectionOptions as TlsConnectionOptions, TlsOptions } from 'node:tls';
import type { ChannelOptions } from '../core/channel.js';
import { booleanOption, numberError } from '../core/options.js';
import type { WaitOptions } from '../core/wait.js';

/** Who may connect (server side) or whom we expect to reach (client side). */
export interface AuthOptions {
  /**
   * A shared secret. The server refuses a client that does not present it (compared in constant
   * time); the client sends it in the handshake. Use TLS as well when the network is not trusted.
   */
  token?: string | Uint8Array;
  /**
   * Unix sockets and named pipes only: the user id(s) allowed on the other end, checked with the
   * kernel's peer credentials (SO_PEERCRED). A server defaults to its own uid; a client defaults to
   * its own uid and root's (both only when the native addon is built).
   */
  uid?: number | readonly number[];
}

/** Options of {@link listen}. */
export interface ListenOptions<T = unknown> extends ChannelOptions<T> {
  /** Who may connect. A TCP listener on a non-loopback address requires `auth.token` or `tls`. */
  auth?: AuthOptions;
  /** Serve TLS (node:tls options: `key`, `cert`, `ca`, `requestCert`, …). */
  tls?: TlsOptions;
  /** Open connections (handshaking ones included); more are refused with ERR_IPC_QUEUE_FULL. Default 1024. */
  maxConnections?: number;
  /** Interval of heartbeats, announced to clients; a peer silent for 2–3 intervals is dead. Default 5000; 0 disables. */
  heartbeatMs?: number;
  /** Absolute deadline for a new connection to finish its handshake (TLS included). Default 10000. */
  handshakeTimeoutMs?: number;
  /**
   * Accepted connections waiting to be taken by `accept()` / the iterator. Past it the oldest one
   * is no longer offered (it stays connected and keeps serving requests and subscriptions). Default 1024.
   */
  maxPending?: number;
  /** Requests one connection may have running at once; past it the server stops reading from it. Default 1024. */
  maxConcurrentRequests?: number;
  /**
   * Publications queued for one subscriber whose socket is full; past it the oldest is dropped and
   * counted (the subscriber is told how many). Default 1024.
   */
  subscriberHighWaterMark?: number;
  /** Send handler stacks to clients with their errors (debugging only). Default false. */
  exposeErrorStacks?: boolean;
  /** File mode of a unix:// socket. Default 0o600 (named pipes are always 0o600). */
  mode?: number;
}

/** Reconnection policy of a client. */
export interface ReconnectOptions {
  /** Attempts after a disconnect before giving up. Default Infinity. */
  retries?: number;
  /** First delay; it doubles each attempt, with jitter. Default 100. */
  minDelayMs?: number;
  /** Largest delay. Default 5000. */
  maxDelayMs?: number;
  /** Sends and requests queued while disconnected (more sends wait, more requests fail). Default 1024. */
  maxQueued?: number;
  /** Bytes queued while disconnected. Default 16 MiB. */
  maxQueuedBytes?: number;
}

/** Options of {@link connect}. `timeout` and `signal` bound the first connection (handshake included). */
export interface ConnectOptions<T = unknown> extends ChannelOptions<T>, WaitOptions {
  /** The token to present, and optionally the uid(s) the server must run as (Unix sockets). */
  auth?: AuthOptions;
  /** Connect with TLS: `true` for the system's CAs, or node:tls options (`ca`, `servername`, …). */
  tls?: boolean | TlsConnectionOptions;
  /** Reconnect after the connection drops. Off by default. */
  reconnect?: boolean | ReconnectOptions;
  /** Requests awaiting a reply; past it `request` rejects with ERR_IPC_QUEUE_FULL. Default 10000. */
  maxPendingRequests?: number;
  /** Messages buffered per subscription; past it the oldest is dropped and counted. Default 1024. */
  subscriptionHighWaterMark?: number;
  /**
   * Time allowed for one connection attempt, handshake included: each reconnection, and the first
   * connection unless `timeout` bounds it. Default 10000.
   */
  connectTimeoutMs?: number;
}

/** Resolved server limits. */
export interface ServerLimits {
  maxConnections: number;
  heartbeatMs: number;
  handshakeTimeoutMs: number;
  maxPending: number;
  maxConcurrentRequests: number;
  subscriberHighWaterMark: number;
  exposeErrorStacks: boolean;
  mode: number;
}

/** Resolved reconnection policy. */
export interface ReconnectPolicy {
  retries: number;
  minDelayMs: number;
  maxDelayMs: number;
  maxQueued: number;
  maxQueuedBytes: number;
}

/** An integer option in [min, max], or its default. */
export function intOption(
  value: unknown,
  name: string,
  fallback: number,
  min = 1,
  max = 2 ** 31 - 1,
): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !(Number.isInteger(value) || value === Infinity)) {
    throw numberError(value, `options.${name} must be an integer, got ${String(value)}`);
  }
  if (value < min || value > max)
    throw new RangeError(`options.${name} must be in ${min}..${max}, got ${value}`);
  return value;
}

/** Checks `listen` options into limits. */
export function serverLimits(opts: ListenOptions<unknown> | undefined): ServerLimits {
  if (opts !== undefined && (typeof opts !== 'object' || opts === null)) {
    throw new TypeError('options must be an object');
  }
  return {
    maxConnections: intOption(opts?.maxConnections, 'maxConnections', 1024),
    heartbeatMs: intOption(opts?.heartbeatMs, 'heartbeatMs', 5000, 0),
    handshakeTimeoutMs: intOption(opts?.handshakeTimeoutMs, 'handshakeTimeoutMs', 10_000),
    maxPending: intOption(opts?.maxPending, 'maxPending', 1024),
    maxConcurrentRequests: intOption(opts?.maxConcurrentRequests, 'maxConcurrentRequests', 1024),
    subscriberHighWaterMark: intOption(opts?.subscriberHighWaterMark, 'subscriberHighWaterMark', 1024),
    exposeErrorStacks: booleanOption(opts?.exposeErrorStacks, 'options.exposeErrorStacks', false),
    mode: intOption(opts?.mode, 'mode', 0o600, 0, 0o777),
  };
}

/** Checks the `reconnect` option; undefined when reconnection is off. */
export function reconnectPolicy(value: ConnectOptions['reconnect']): ReconnectPolicy | undefined {
  if (value === undefined || value === false) return undefined;
  if (value !== true && (typeof value !== 'object' || value === null)) {
    throw new TypeError('options.reconnect must be a boolean or an object');
  }
  const opts = value === true ? {} : value;
  const minDelayMs = intOption(opts.minDelayMs, 'reconnect.minDelayMs', 100, 0);
  const policy: ReconnectPolicy = {
    retries: intOption(opts.retries, 'reconnect.retries', Infinity, 0, Infinity),
    minDelayMs,
    maxDelayMs: intOption(opts.maxDelayMs, 'reconnect.maxDelayMs', Math.max(5000, minDelayMs), minDelayMs),
    maxQueued: intOption(opts.maxQueued, 'reconnect.maxQueued', 1024, 0),
    maxQueuedBytes: intOption(opts.maxQueuedBytes, 'reconnect.maxQueuedBytes', 16 << 20, 0),
  };
  return policy;
}

/** Checks `auth`, returning the token's bytes and the allowed uids (undefined: not given). */
export function authOption(auth: AuthOptions | undefined): {
  token: Buffer | undefined;
  uids: readonly number[] | undefined;
} {
  if (auth === undefined) return { token: undefined, uids: undefined };
  if (typeof auth !== 'object' || auth === null) throw new TypeError('options.auth must be an object');
  let token: Buffer | undefined;
  if (auth.token !== undefined) {
    if (typeof auth.token === 'string') token = Buffer.from(auth.token, 'utf8');
    else if (auth.token instanceof Uint8Array) token = Buffer.from(auth.token);
    else throw new TypeError('options.auth.token must be a string or a Uint8Array');
    if (token.length === 0 || token.length > 1024) {
      throw new RangeError('options.auth.token must be 1..1024 bytes');
    }
  }
  let uids: readonly number[] | undefined;
  if (auth.uid !== undefined) {
    const list = typeof auth.uid === 'number' ? [auth.uid] : auth.uid;
    if (!Array.isArray(list) || list.length === 0) {
      throw new TypeError('options.auth.uid must be a uid or a non-empty array of uids');
    }
    for (const uid of list) intOption(uid, 'auth.uid', 0, 0, 2 ** 32 - 1);
    uids = [...list];
  }
  return { token, uids };
}
