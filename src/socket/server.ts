/**
 * `listen(url)`: a server for tcp://, unix:// and pipe:// addresses. It accepts connections as
 * Channels (async iteration), answers requests with registered handlers, publishes to subscribers,
 * enforces the connection cap, handshake deadline and authentication, and closes gracefully.
 */
import type { Socket } from 'node:net';
import type { SecureContext, TLSSocket, TlsOptions } from 'node:tls';
import { type MessageCodec, resolveCodec } from '../core/codec.js';
import { closedError, ErrorCodes, IpcError } from '../core/errors.js';
import { checkMaxMessageBytes, encodeHello, FrameBatch, frameTooLarge } from '../core/framing.js';
import { numberError } from '../core/options.js';
import { Queue } from '../core/queue.js';
import { armWait, checkWaitOptions, type WaitOptions } from '../core/wait.js';
import { nativeAvailable } from '../native/binding.js';
import { formatAddress, isLoopback, parseAddress, type SocketAddress } from './address.js';
import { allowedClientUids, peerCredentials, TokenCheck } from './auth.js';
import { Events } from './events.js';
import type { PeerInfo } from './link.js';
import { authOption, type ListenOptions, type ServerLimits, serverLimits } from './options.js';
import { encodeName, jsonFrame, Kind, publishHead } from './protocol.js';
import {
  type Handler,
  ServerConnection,
  type ServerSide,
  type SocketConnection,
} from './server-connection.js';
import { type Bound, bind, endWithin, LINGER_MS, secureContext, tlsModule } from './transport.js';

/** Events of a {@link SocketServer}. None is 'error': failures are reported where they happen. */
export type ServerEvents<T> = {
  /** A connection passed its handshake. */
  connection: [conn: SocketConnection<T>];
  /** An established connection ended; `reason.code` is ERR_IPC_CLOSED for a clean goodbye. */
  disconnect: [conn: SocketConnection<T>, reason: IpcError];
  /** A connection was turned away before or during its handshake (auth, cap, deadline, protocol). */
  refused: [reason: IpcError, peer: PeerInfo];
  subscribe: [topic: string, conn: SocketConnection<T>];
  unsubscribe: [topic: string, conn: SocketConnection<T>];
};

/** Counters of a server, for monitoring and tests. */
export interface ServerStats {
  /** Connections that passed their handshake and are open. */
  connections: number;
  /** Connections still in their handshake. */
  handshaking: number;
  /** Connections accepted since listen (handshake passed). */
  accepted: number;
  /** Connections refused (auth, cap, deadline, protocol). */
  refused: number;
  /** Publications handed to subscribers (one per subscriber). */
  delivered: number;
  /** Publications dropped for subscribers that were behind. */
  dropped: number;
}

/** Options of {@link SocketServer.close}. */
export interface ServerCloseOptions {
  /** How long running requests may take to finish before connections are closed anyway. Default 5000. */
  graceMs?: number;
}

/** What `listen` hands a server's constructor. */
export interface ServerInit<T> {
  url: string;
  address: SocketAddress;
  bound: Bound;
  limits: ServerLimits;
  opts: ListenOptions<T> | undefined;
  token: TokenCheck | undefined;
  uids: readonly number[] | undefined;
  tls: { context: SecureContext; options: TlsOptions } | undefined;
}

interface AcceptWaiter<T> {
  resolve(conn: SocketConnection<T>): void;
  reject(err: unknown): void;
  disarm(): void;
}

/**
 * Refused connections kept open at once to deliver their courtesy refusal (see #refuseRaw). Past
 * it a refused connection is destroyed at once, so a connect flood costs at most
 * maxConnections + MAX_LINGERING_REFUSALS fds. A fixed number, not one scaled by maxConnections:
 * the default cap (1024) plus as many lingering would pass the common soft fd limit of 1024, and a
 * well-behaved client frees its slot as soon as it has read the refusal, so a few slots serve every
 * refusal that is not a flood.
 */
export const MAX_LINGERING_REFUSALS = 16;

/** A listening socket server. Create it with {@link listen}. */
export class SocketServer<T = unknown> implements AsyncIterable<SocketConnection<T>>, AsyncDisposable {
  /** The bound address as a URL, the port filled in (`tcp://127.0.0.1:40123`). */
  readonly url: string;
  readonly #address: SocketAddress;
  readonly #bound: Bound;
  readonly #init: ServerInit<T>;
  readonly #limits: ServerLimits;
  readonly #bodyCodec: MessageCodec<unknown>;
  readonly #maxMessageBytes: number;
  readonly #handlers = new Map<string, Handler>();
  readonly #topics = new Map<string, Set<ServerConnection<T>>>();
  readonly #connections = new Set<ServerConnection<T>>();
  readonly #refusing = new Set<Socket>();
  readonly #pending = new Queue<ServerConnection<T>>();
  readonly #waiters = new Queue<AcceptWaiter<T>>();
  readonly #events = new Events<ServerEvents<T>>();
  readonly #side: ServerSide;
  #nextId = 1;
  #established = 0;
  #draining = false;
  /** Set while close() waits for the last connection to report its end. */
  #allGone: (() => void) | undefined;
  #closing: Promise<void> | undefined;
  #stats = { accepted: 0, refused: 0, delivered: 0, dropped: 0 };

  /** Use {@link listen}; this is public only so NamedPipe can make its subclass. */
  constructor(init: ServerInit<T>) {
    this.#init = init;
    this.url = init.url;
    this.#address = init.address;
    this.#bound = init.bound;
    this.#limits = init.limits;
    this.#bodyCodec = resolveCodec<unknown>(
      { codec: init.opts?.codec as ListenOptions<unknown>['codec'] },
      `socket ${init.url}`,
    );
    this.#maxMessageBytes = checkMaxMessageBytes(init.opts?.maxMessageBytes);
    const server = this;
    this.#side = {
      url: init.url,
      limits: init.limits,
      token: init.token,
      verifiesClientCerts:
        init.tls !== undefined &&
        init.tls.options.requestCert === true &&
        init.tls.options.rejectUnauthorized !== false,
      handlers: this.#handlers,
      get draining() {
        return server.#draining;
      },
      established: (conn) => this.#onEstablished(conn as ServerConnection<T>),
      closed: (conn, reason) => this.#onClosed(conn as ServerConnection<T>, reason),
      subscribe: (conn, topic) => this.#subscribe(conn as ServerConnection<T>, topic),
      unsubscribe: (conn, topic) => this.#unsubscribe(conn as ServerConnection<T>, topic),
      dropped: (count) => {
        this.#stats.dropped += count;
      },
    };
    init.bound.server.on('connection', (socket: Socket) => this.#onConnection(socket));
  }

  /** The socket file of a unix:// or pipe:// server. */
  get path(): string | undefined {
    return this.#address.kind === 'tcp' ? undefined : this.#address.path;
  }

  /** Counters: connections, refusals, publications delivered and dropped. */
  stats(): ServerStats {
    return {
      connections: this.#established,
      handshaking: this.#connections.size - this.#established,
      ...this.#stats,
    };
  }

  /** Listens to a server event. */
  on<K extends keyof ServerEvents<T> & string>(
    event: K,
    listener: (...args: ServerEvents<T>[K]) => void,
  ): this {
    this.#events.on(event, listener);
    return this;
  }

  /** Listens to the next occurrence of a server event. */
  once<K extends keyof ServerEvents<T> & string>(
    event: K,
    listener: (...args: ServerEvents<T>[K]) => void,
  ): this {
    this.#events.once(event, listener);
    return this;
  }

  /** Stops listening to a server event. */
  off<K extends keyof ServerEvents<T> & string>(
    event: K,
    listener: (...args: ServerEvents<T>[K]) => void,
  ): this {
    this.#events.off(event, listener);
    return this;
  }

  // ---- accepting --------------------------------------------------------------------------------

  /** The next connection that passed its handshake. Rejects with ERR_IPC_CLOSED once the server closes. */
  accept(opts?: WaitOptions): Promise<SocketConnection<T>> {
    try {
      checkWaitOptions(opts);
    } catch (err) {
      return Promise.reject(err);
    }
    const ready = this.#pending.shift();
    if (ready) return Promise.resolve(ready);
    if (this.#closing) return Promise.reject(closedError(`socket ${this.url}`));
    return new Promise((resolve, reject) => {
      const waiter: AcceptWaiter<T> = { resolve, reject, disarm: () => {} };
      this.#waiters.push(waiter);
      waiter.disarm = armWait(`socket ${this.url}: accept`, opts, (err) => {
        this.#waiters.remove(waiter);
        reject(err);
      });
    });
  }

  async *[Symbol.asyncIterator](): AsyncIterator<SocketConnection<T>> {
    for (;;) {
      try {
        yield await this.accept();
      } catch (err) {
        if (err instanceof IpcError && err.code === ErrorCodes.CLOSED) return;
        throw err;
      }
    }
  }

  // ---- request/reply ----------------------------------------------------------------------------

  /**
   * Answers requests for `method` with `handler`: its return value (or what its promise resolves
   * to) is the reply; what it throws reaches the client as an IpcError with the same code and
   * message (ERR_IPC_REMOTE for errors without an ipckit code), never with the stack unless
   * `exposeErrorStacks`. A later call for the same method replaces the handler.
   */
  // biome-ignore lint/suspicious/noExplicitAny: see Handler
  handle<P = any, R = unknown>(method: string, handler: Handler<P, R>): this {
    encodeName(method, 'method');
    if (typeof handler !== 'function') throw new TypeError('handler must be a function');
    this.#handlers.set(method, handler as Handler);
    return this;
  }

  /** Removes the handler of `method`; requests for it then fail with ERR_IPC_NOT_FOUND. */
  unhandle(method: string): boolean {
    return this.#handlers.delete(method);
  }

  // ---- pub/sub ----------------------------------------------------------------------------------

  /**
   * Publishes `message` to every connection subscribed to `topic` (exact match) and returns how many
   * there are. Never waits: a subscriber whose socket is full gets it queued, and past
   * `subscriberHighWaterMark` its oldest queued publication is dropped and counted.
   * @throws ERR_IPC_CLOSED after close(); ERR_IPC_INVALID_MESSAGE if the codec cannot encode it.
   */
  publish(topic: string, message: unknown): number {
    const name = encodeName(topic, 'topic');
    if (this.#closing) throw closedError(`socket ${this.url}`);
    const subscribers = this.#topics.get(topic);
    if (!subscribers || subscribers.size === 0) return 0;
    const body = message === undefined ? new Uint8Array(0) : this.#bodyCodec.encode(message);
    if (body.length > this.#maxMessageBytes) {
      throw frameTooLarge(
        `socket ${this.url}: publication on '${topic}'`,
        body.length,
        this.#maxMessageBytes,
      );
    }
    const head = publishHead(name, message === undefined);
    let delivered = 0;
    for (const conn of subscribers) if (conn.publish(head, body, topic)) delivered++;
    this.#stats.delivered += delivered;
    return subscribers.size;
  }

  /** How many connections are subscribed to `topic`. */
  subscribers(topic: string): number {
    return this.#topics.get(topic)?.size ?? 0;
  }

  // ---- closing ----------------------------------------------------------------------------------

  /**
   * Stops accepting, lets running requests finish (new ones are refused with ERR_IPC_CLOSED) for up
   * to `graceMs`, then says goodbye to every connection and closes it. Idempotent.
   */
  close(opts?: ServerCloseOptions): Promise<void> {
    if (this.#closing) return this.#closing;
    const graceMs = opts?.graceMs ?? 5000;
    if (typeof graceMs !== 'number' || !(graceMs >= 0)) {
      return Promise.reject(
        numberError(graceMs, `options.graceMs must be a number >= 0, got ${String(graceMs)}`),
      );
    }
    this.#closing = this.#shutdown(graceMs);
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #shutdown(graceMs: number): Promise<void> {
    this.#draining = true;
    const server = this.#bound.server;
    const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
    this.#bound.release();
    for (const waiter of this.#waiters.drain()) {
      waiter.disarm();
      waiter.reject(closedError(`socket ${this.url}`));
    }
    for (const socket of this.#refusing) socket.destroy();
    for (const conn of this.#connections) if (!conn.isOpen) conn.destroy();
    const open = [...this.#connections];
    await bounded(Promise.all(open.map((conn) => conn.whenIdle())), graceMs);
    await bounded(Promise.all(open.map((conn) => conn.close())), LINGER_MS);
    for (const conn of this.#connections) conn.destroy();
    for (const conn of this.#pending.drain()) conn.destroy();
    // A destroyed socket reports its close a tick later: close() resolves once every connection
    // has gone, its 'disconnect' emitted and `stats().connections` at 0.
    if (this.#connections.size > 0) {
      await bounded(
        new Promise<void>((resolve) => {
          this.#allGone = resolve;
        }),
        LINGER_MS,
      );
    }
    await stopped;
  }

  // ---- connections ------------------------------------------------------------------------------

  #onConnection(raw: Socket): void {
    if (this.#closing) {
      raw.destroy();
      return;
    }
    raw.on('error', () => {}); // reported through the connection; never an unhandled 'error'
    const peer = this.#peerOf(raw);
    const uids = this.#init.uids;
    if (uids && peer.uid !== undefined && !uids.includes(peer.uid)) {
      this.#refuseRaw(
        raw,
        peer,
        new IpcError(
          ErrorCodes.AUTH,
          `socket ${this.url}: authentication failed: uid ${peer.uid} is not allowed (allowed: ${uids.join(', ')})`,
        ),
      );
      return;
    }
    if (uids && peer.uid === undefined && this.#init.opts?.auth?.uid !== undefined) {
      this.#refuseRaw(
        raw,
        peer,
        new IpcError(
          ErrorCodes.AUTH,
          `socket ${this.url}: cannot read the peer's credentials to check auth.uid`,
        ),
      );
      return;
    }
    if (this.#connections.size >= this.#limits.maxConnections) {
      this.#refuseRaw(
        raw,
        peer,
        new IpcError(
          ErrorCodes.QUEUE_FULL,
          `socket ${this.url}: the server is at maxConnections (${this.#limits.maxConnections})`,
        ),
      );
      return;
    }
    let socket: Socket = raw;
    const tls = this.#init.tls;
    if (tls) {
      const secure = new (tlsModule().TLSSocket)(raw, {
        isServer: true,
        secureContext: tls.context,
        requestCert: tls.options.requestCert ?? false,
        // Never refused by TLS itself: OpenSSL would cut a client with no certificate short (the
        // client saw only a closed connection). Our handshake refuses it instead, with the reason
        // (see verifiesClientCerts), as it refuses an untrusted one.
        rejectUnauthorized: false,
      });
      secure.once('secure', () => {
        peer.authorized = clientCertVerified(secure);
      });
      socket = secure;
    }
    const conn = new ServerConnection<T>(this.#side, this.#nextId++, socket, peer, this.#init.opts);
    this.#connections.add(conn);
  }

  #peerOf(raw: Socket): PeerInfo {
    const transport = this.#address.kind;
    const peer: PeerInfo = { transport, tls: this.#init.tls !== undefined };
    if (transport === 'tcp') {
      if (raw.remoteAddress !== undefined) peer.address = raw.remoteAddress;
      if (raw.remotePort !== undefined) peer.port = raw.remotePort;
    } else {
      const creds = peerCredentials(raw);
      if (creds) {
        peer.pid = creds.pid;
        peer.uid = creds.uid;
        peer.gid = creds.gid;
      }
    }
    return peer;
  }

  /**
   * Turns a connection away before it costs anything: our hello and an ABORT frame saying why, so
   * the client fails with the reason (ERR_IPC_AUTH, ERR_IPC_QUEUE_FULL) instead of a bare reset.
   * The socket then lingers until the client closes it (at most LINGER_MS): destroying it with the
   * reply unread could reset the connection and lose the reply. At most MAX_LINGERING_REFUSALS
   * linger at once; past that (a connect flood) a refusal is a bare reset, or the fds would grow
   * with the flood instead of staying within maxConnections. 'refused' is emitted once the socket
   * is either lingering or closed, so a listener sees the fds the refusal really costs.
   */
  #refuseRaw(raw: Socket, peer: PeerInfo, reason: IpcError): void {
    this.#stats.refused++;
    if (this.#init.tls || this.#refusing.size >= MAX_LINGERING_REFUSALS) {
      // Under TLS the client expects TLS first; there is no way to say why in clear.
      raw.destroy();
    } else {
      const batch = new FrameBatch();
      const abort = jsonFrame(Kind.ABORT, { code: reason.code, message: reason.message });
      batch.add(abort);
      const hello = encodeHello(this.#bodyCodec.name);
      this.#refusing.add(raw);
      raw.once('close', () => this.#refusing.delete(raw));
      // Read (and dropped) so that the client's end is seen and frees the lingering slot at once:
      // unread, each refusal held its slot for all of LINGER_MS, and a few well-behaved clients
      // refused in a row got a bare reset instead of the reason.
      raw.on('data', () => {});
      endWithin(raw, LINGER_MS, Buffer.concat([hello, batch.take()]));
    }
    this.#events.emit('refused', reason, peer);
  }

  #onEstablished(conn: ServerConnection<T>): void {
    this.#established++;
    this.#stats.accepted++;
    this.#events.emit('connection', conn);
    const waiter = this.#waiters.shift();
    if (waiter) {
      waiter.disarm();
      waiter.resolve(conn);
      return;
    }
    this.#pending.push(conn);
    // Nobody is taking connections (a server used only for requests and publications): the oldest
    // stops being offered, but stays connected.
    if (this.#pending.length > this.#limits.maxPending) this.#pending.shift();
  }

  #onClosed(conn: ServerConnection<T>, reason: IpcError): void {
    if (!this.#connections.delete(conn)) return;
    if (this.#connections.size === 0) this.#allGone?.();
    for (const topic of conn.topics) this.#unsubscribe(conn, topic);
    if (conn.wasEstablished) {
      this.#established--;
      this.#events.emit('disconnect', conn, reason);
    } else {
      this.#stats.refused++;
      this.#events.emit('refused', reason, conn.peer);
    }
  }

  #subscribe(conn: ServerConnection<T>, topic: string): void {
    let set = this.#topics.get(topic);
    if (!set) {
      set = new Set();
      this.#topics.set(topic, set);
    }
    set.add(conn);
    this.#events.emit('subscribe', topic, conn);
  }

  #unsubscribe(conn: ServerConnection<T>, topic: string): void {
    const set = this.#topics.get(topic);
    if (!set?.delete(conn)) return;
    if (set.size === 0) this.#topics.delete(topic);
    this.#events.emit('unsubscribe', topic, conn);
  }
}

function bounded(work: Promise<unknown>, ms: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    timer.unref();
    work.then(
      () => {
        clearTimeout(timer);
        resolve();
      },
      () => {
        clearTimeout(timer);
        resolve();
      },
    );
  });
}

/**
 * Listens on `url` with `make` building the server object (NamedPipe uses its own subclass).
 * Options are checked before anything is bound.
 */
export async function listenWith<T, S extends SocketServer<T>>(
  url: string,
  opts: ListenOptions<T> | undefined,
  make: (init: ServerInit<T>) => S,
): Promise<S> {
  const address = parseAddress(url);
  const limits = serverLimits(opts as ListenOptions<unknown> | undefined);
  resolveCodec(opts, `socket ${url}`);
  checkMaxMessageBytes(opts?.maxMessageBytes);
  const { token, uids } = authOption(opts?.auth);
  if (uids && address.kind === 'tcp') {
    throw new TypeError(
      'options.auth.uid applies to unix:// and pipe:// addresses only (TCP has no peer credentials)',
    );
  }
  if (uids && !nativeAvailable()) {
    throw new IpcError(
      ErrorCodes.NATIVE_UNAVAILABLE,
      `socket ${url}: options.auth.uid needs the native addon to read peer credentials`,
    );
  }
  if (address.kind === 'tcp' && !isLoopback(address.host) && !token && !opts?.tls) {
    throw new IpcError(
      ErrorCodes.AUTH,
      `socket ${url}: refusing to listen on a non-loopback address without options.auth.token or options.tls`,
    );
  }
  let tls: ServerInit<T>['tls'];
  if (opts?.tls !== undefined) {
    if (typeof opts.tls !== 'object' || opts.tls === null)
      throw new TypeError('options.tls must be an object');
    tls = { context: secureContext(opts.tls, `socket ${url}`), options: opts.tls };
  }
  // Unix sockets are same-user by default: the file is 0600 and the kernel's credentials must match.
  const allowed = allowedClientUids(address.kind, uids);
  const bound = await bind(address, limits.mode, `socket ${url}`);
  const init: ServerInit<T> = {
    url: formatAddress(bound.address),
    address: bound.address,
    bound,
    limits,
    opts,
    token: token ? new TokenCheck(token) : undefined,
    uids: allowed,
    tls,
  };
  return make(init);
}

/**
 * Listens on `tcp://host:port` (port 0 picks one; see `server.url`), `unix:///path` or `pipe://name`.
 * @throws ERR_IPC_EXISTS when the address is taken; ERR_IPC_AUTH for a non-loopback TCP address
 *   without auth.token or tls; ERR_IPC_PATH_TOO_LONG; TypeError/RangeError for bad options.
 */
export function listen<T = unknown>(url: string, opts?: ListenOptions<T>): Promise<SocketServer<T>> {
  return listenWith<T, SocketServer<T>>(url, opts, (init) => new SocketServer<T>(init));
}

/**
 * Whether the client's certificate chain verified, as tls.Server decides for its own connections
 * (its internal onServerSocketSecure): a TLSSocket made by hand, as here, never sets `authorized`
 * itself, so every client, trusted or not, read as unauthorized and none was refused. Node keeps
 * the verification result on the handle; without that method, nobody counts as verified.
 */
function clientCertVerified(secure: TLSSocket): boolean {
  // No certificate is never verified. Checked first: a client that resumes a TLS 1.3 session (one
  // it got from a connection the handshake then refused) without a certificate has no verify error.
  if (Object.keys(secure.getPeerCertificate()).length === 0) {
    secure.authorizationError = new Error('no client certificate was presented');
    return false;
  }
  const handle = (secure as unknown as { _handle?: { verifyError?(): Error | null } })._handle;
  if (typeof handle?.verifyError !== 'function') return false;
  const error = handle.verifyError() as (Error & { code?: string }) | null;
  if (error) {
    secure.authorizationError = error;
    return false;
  }
  secure.authorized = true;
  return true;
}
