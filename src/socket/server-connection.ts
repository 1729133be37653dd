/**
 * The server's end of one connection: checks the client's handshake, runs request handlers (with
 * a bound on how many run at once), and queues publications for a subscriber that is behind,
 * dropping the oldest past a bound so a slow subscriber never blocks the publisher.
 */
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Channel, ChannelOptions } from '../core/channel.js';
import { ErrorCodes, IpcError } from '../core/errors.js';
import { Queue } from '../core/queue.js';
import type { TokenCheck } from './auth.js';
import { Hold, Link, type PeerInfo } from './link.js';
import type { ServerLimits } from './options.js';
import {
  droppedFrame,
  encodeName,
  encodeWireError,
  idHead,
  jsonFrame,
  Kind,
  MAX_HEAD_BYTES,
  nameEnd,
  readJson,
  readMethod,
  readName,
  readU32,
  replyHead,
  replyHeadNow,
  SOCKET_PROTOCOL_VERSION,
  toWireError,
} from './protocol.js';
import { SlotMap } from './slot-map.js';
import { LINGER_MS } from './transport.js';

/** A connection accepted by a server: a Channel of plain messages, plus who is on the other end. */
export interface SocketConnection<T = unknown> extends Channel<T> {
  /** Unique within its server, in accept order. */
  readonly id: number;
  /** The peer: address or credentials, TLS state. */
  readonly peer: PeerInfo;
  /** The topics this connection is subscribed to. */
  readonly topics: ReadonlySet<string>;
}

/** What a request handler receives besides the params. */
export interface RequestContext {
  /** The method called. */
  readonly method: string;
  /** The connection the request came on. */
  readonly connection: SocketConnection<unknown>;
  /** Who called. */
  readonly peer: PeerInfo;
  /** Aborted when the caller gives up (timeout, abort) or the connection ends. */
  readonly signal: AbortSignal;
}

/** A request handler: its return value (or resolved value) is the reply; a throw is the error. */
// biome-ignore lint/suspicious/noExplicitAny: params are whatever the client sent; the handler types them.
export type Handler<P = any, R = unknown> = (params: P, ctx: RequestContext) => R | Promise<R>;

/** What a connection needs from its server. */
export interface ServerSide {
  readonly url: string;
  readonly limits: ServerLimits;
  readonly token: TokenCheck | undefined;
  /**
   * TLS with `requestCert` and `rejectUnauthorized`: a client whose certificate the CA did not
   * sign is refused. Node enforces that only in tls.Server, not on a TLSSocket made by hand.
   */
  readonly verifiesClientCerts: boolean;
  readonly handlers: ReadonlyMap<string, Handler>;
  /** True while the server is closing: new requests are refused. */
  readonly draining: boolean;
  established(conn: ServerConnection<unknown>): void;
  closed(conn: ServerConnection<unknown>, reason: IpcError): void;
  subscribe(conn: ServerConnection<unknown>, topic: string): void;
  unsubscribe(conn: ServerConnection<unknown>, topic: string): void;
  dropped(count: number): void;
}

const EMPTY = new Uint8Array(0);
/** Publication bytes queued for one subscriber, whatever the count. */
const MAX_QUEUED_PUBLICATION_BYTES = 16 << 20;
/** Topics one connection may subscribe to. */
const MAX_TOPICS_PER_CONNECTION = 10_000;
/** Bytes a client may leave unread (replies it does not read) before it is cut off as a slow consumer. */
const SLOW_CONSUMER_SLACK_BYTES = 16 << 20;

interface QueuedPublication {
  head: Uint8Array;
  body: Uint8Array;
  topic: string;
}

class Context implements RequestContext {
  readonly method: string;
  readonly connection: ServerConnection<unknown>;
  #controller: AbortController | undefined;
  /** Why the request was aborted before its signal was first read (undefined: it was not). */
  #abortedWith: IpcError | undefined;

  constructor(connection: ServerConnection<unknown>, method: string) {
    this.connection = connection;
    this.method = method;
  }

  get peer(): PeerInfo {
    return this.connection.peer;
  }

  // Made on first use: most handlers never look, and an AbortController per request is not free.
  // A CANCEL (or the connection's end) that came before is not lost: the signal starts aborted.
  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.#abortedWith) this.#controller.abort(this.#abortedWith);
    }
    return this.#controller.signal;
  }

  /** The client cancelled, or the connection ended: aborts the signal, now or when first read. */
  abort(reason: IpcError): void {
    if (this.#abortedWith) return;
    this.#abortedWith = reason;
    this.#controller?.abort(reason);
  }
}

/**
 * Requests parked past maxConcurrentRequests before the connection stops being read. Reading on
 * lets the CANCELs of requests that ran into the limit arrive: with only as many parked as may run,
 * handlers waiting for their cancel (a client that timed out) held the connection forever, the
 * cancels unread behind the parked requests that had started.
 */
const PARKED_PAST_LIMIT = 64;

/** The server's end of a connection. */
export class ServerConnection<T> extends Link<T> implements SocketConnection<T> {
  readonly id: number;
  readonly peer: PeerInfo;
  readonly topics = new Set<string>();
  readonly #server: ServerSide;
  #deadline: NodeJS.Timeout | undefined;
  /**
   * Requests that arrived while maxConcurrentRequests handlers ran, in order, each started when a
   * handler finishes. Parking them, rather than pausing input at the limit, keeps the connection
   * read: a CANCEL from a client whose request timed out must reach its handler, and would sit
   * unread behind a paused socket (the connection wedged until a handler ended on its own). Input
   * pauses once PARKED_PAST_LIMIT more are parked than may run.
   */
  readonly #parked = new Map<number, () => void>();
  #idle: (() => void)[] = [];
  /** The requests whose handlers run, by id: a CANCEL or the connection's end aborts their signal. */
  readonly #running = new SlotMap<Context>();
  #publications = new Queue<QueuedPublication>();
  #queuedBytes = 0;
  #dropped: Map<string, number> | undefined;

  constructor(
    server: ServerSide,
    id: number,
    socket: Socket,
    peer: PeerInfo,
    opts: ChannelOptions<T> | undefined,
  ) {
    super(`socket ${server.url} connection #${id}`, socket, opts);
    this.#server = server;
    this.id = id;
    this.peer = peer;
    // Absolute, from accept: a client trickling its handshake a byte at a time is cut off here.
    const ms = server.limits.handshakeTimeoutMs;
    this.#deadline = setTimeout(() => {
      this.abort(new IpcError(ErrorCodes.TIMEOUT, `${this.what}: handshake not completed within ${ms} ms`));
    }, ms);
    this.#deadline.unref();
  }

  /** Handlers running now. */
  get running(): number {
    return this.#running.size;
  }

  /** Resolves when no handler is running. */
  whenIdle(): Promise<void> {
    // A connection that ended has nobody to answer: its handlers' results go nowhere.
    if (this.#running.size === 0 || !this.isOpen) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  // ---- handshake --------------------------------------------------------------------------------

  protected receiveHandshake(kind: number, payload: Uint8Array): void {
    if (kind !== Kind.HANDSHAKE) {
      throw this.refuse(
        new IpcError(
          ErrorCodes.INCOMPATIBLE,
          `${this.what}: the client did not send the socket handshake (is it an ipckit socket client?)`,
        ),
      );
    }
    const hello = readJson(payload, this.what);
    if (hello.v !== SOCKET_PROTOCOL_VERSION) {
      throw this.refuse(
        new IpcError(
          ErrorCodes.INCOMPATIBLE,
          `${this.what}: the client speaks socket protocol version ${String(hello.v)}, the server ${SOCKET_PROTOCOL_VERSION}`,
        ),
      );
    }
    if (this.#server.verifiesClientCerts && !this.peer.authorized) {
      const why = (this.socket as TLSSocket).authorizationError;
      throw this.refuse(
        new IpcError(
          ErrorCodes.AUTH,
          `${this.what}: authentication failed: the client certificate is not trusted${why ? ` (${String((why as Error).message ?? why)})` : ''}`,
        ),
      );
    }
    const token = this.#server.token;
    if (token) {
      const presented = typeof hello.token === 'string' ? Buffer.from(hello.token, 'base64') : undefined;
      if (!presented || !token.matches(presented)) {
        throw this.refuse(
          new IpcError(
            ErrorCodes.AUTH,
            `${this.what}: authentication failed: ${presented ? 'wrong token' : 'this server requires auth.token'}`,
          ),
        );
      }
    }
    this.acceptPeerMax(hello.max, "the client's");
    clearTimeout(this.#deadline);
    this.#deadline = undefined;
    const heartbeatMs = this.#server.limits.heartbeatMs;
    this.transmitFrame(
      jsonFrame(Kind.WELCOME, { v: SOCKET_PROTOCOL_VERSION, hb: heartbeatMs, max: this.maxMessageBytes }),
    );
    this.markEstablished(heartbeatMs);
    this.#server.established(this as ServerConnection<unknown>);
  }

  // ---- requests and subscriptions ---------------------------------------------------------------

  protected receiveEnvelope(kind: number, noBody: boolean, payload: Uint8Array): void {
    switch (kind) {
      case Kind.REQUEST:
        this.#request(noBody, payload);
        return;
      case Kind.CANCEL: {
        const id = readU32(payload, 1, this.what);
        // A parked request the client gave up on never starts (the client has forgotten its id).
        if (this.#parked.delete(id)) {
          this.#releaseIfRoom();
          return;
        }
        this.#running
          .get(id)
          ?.abort(new IpcError(ErrorCodes.ABORTED, `${this.what}: the client cancelled request ${id}`));
        return;
      }
      case Kind.SUBSCRIBE: {
        const id = readU32(payload, 1, this.what);
        const { name: topic } = readName(payload, 5, this.what);
        if (!this.topics.has(topic)) {
          if (this.topics.size >= MAX_TOPICS_PER_CONNECTION) {
            this.#replyError(
              id,
              new IpcError(
                ErrorCodes.QUEUE_FULL,
                `${this.what}: more than ${MAX_TOPICS_PER_CONNECTION} topics`,
              ),
            );
            return;
          }
          this.topics.add(topic);
          this.#server.subscribe(this as ServerConnection<unknown>, topic);
        }
        this.transmitFrame(replyHead(id, true));
        return;
      }
      case Kind.UNSUBSCRIBE: {
        const { name: topic } = readName(payload, 1, this.what);
        if (this.topics.delete(topic)) this.#server.unsubscribe(this as ServerConnection<unknown>, topic);
        return;
      }
      default:
        throw this.refuse(
          new IpcError(ErrorCodes.BAD_FRAME, `${this.what}: a client may not send frames of kind ${kind}`),
        );
    }
  }

  #request(noBody: boolean, payload: Uint8Array): void {
    const id = readU32(payload, 1, this.what);
    // Replies, cancels and the concurrency count go by id: one reused while in flight would mix
    // two requests up (and let a client run past maxConcurrentRequests).
    if (this.#running.has(id) || this.#parked.has(id)) {
      throw this.refuse(
        new IpcError(ErrorCodes.BAD_FRAME, `${this.what}: request id ${id} is already in flight`),
      );
    }
    const end = nameEnd(payload, 5, this.what);
    const method = readMethod(payload, 5, end);
    let params: unknown;
    if (!noBody) {
      try {
        params = this.bodyCodec.decode(payload.subarray(end));
      } catch (err) {
        this.#replyError(id, err);
        return;
      }
    }
    const refusal = this.#closingRefusal();
    if (refusal) {
      this.#replyError(id, refusal);
      return;
    }
    const handler = this.#server.handlers.get(method);
    if (!handler) {
      this.#replyError(
        id,
        new IpcError(ErrorCodes.NOT_FOUND, `socket ${this.#server.url}: no handler for method '${method}'`),
      );
      return;
    }
    const limit = this.#server.limits.maxConcurrentRequests;
    if (this.#running.size >= limit) {
      this.#parked.set(id, () => {
        const refusal = this.#closingRefusal();
        if (refusal) this.#replyError(id, refusal);
        else this.#run(id, method, handler, params);
      });
      if (this.#parked.size >= limit + PARKED_PAST_LIMIT) this.hold(Hold.REQUESTS);
      return;
    }
    this.#run(id, method, handler, params);
  }

  /**
   * Why a request read now is not run: the server is shutting down, or this connection is closing
   * (its goodbye sent or on its way, see endOutput's linger), when no reply may reach the client.
   */
  #closingRefusal(): IpcError | undefined {
    if (this.#server.draining)
      return new IpcError(ErrorCodes.CLOSED, `socket ${this.#server.url} is shutting down`);
    if (this.closed) return new IpcError(ErrorCodes.CLOSED, `${this.what} is closing`);
    return undefined;
  }

  #run(id: number, method: string, handler: Handler, params: unknown): void {
    const ctx = new Context(this as ServerConnection<unknown>, method);
    this.#running.set(id, ctx);
    let result: unknown;
    try {
      result = handler(params, ctx);
    } catch (err) {
      this.#settled(id);
      this.#replyError(id, err);
      return;
    }
    if (isThenable(result)) {
      result.then(
        (value) => {
          this.#settled(id);
          this.#reply(id, value);
        },
        (err) => {
          this.#settled(id);
          this.#replyError(id, err);
        },
      );
    } else {
      this.#settled(id);
      this.#reply(id, result);
    }
  }

  #settled(id: number): void {
    this.#running.take(id);
    const next = this.#parked.entries().next();
    if (!next.done && this.isOpen) {
      this.#parked.delete(next.value[0]);
      next.value[1]();
    }
    this.#releaseIfRoom();
    if (this.#running.size === 0 && this.#idle.length > 0) {
      for (const resolve of this.#idle.splice(0)) resolve();
    }
  }

  /** Resumes reading once fewer requests are parked than may run. */
  #releaseIfRoom(): void {
    if (this.#parked.size < this.#server.limits.maxConcurrentRequests + PARKED_PAST_LIMIT) {
      this.release(Hold.REQUESTS);
    }
  }

  #reply(id: number, value: unknown): void {
    if (!this.#canSend()) return;
    let body: Uint8Array | undefined;
    if (value !== undefined) {
      try {
        body = this.bodyCodec.encode(value);
      } catch (err) {
        this.#replyError(id, err);
        return;
      }
      if (body.length > this.sendLimit) {
        this.#replyError(id, this.tooLargeToSend(`${this.what}: reply to request ${id}`, body.length));
        return;
      }
    }
    this.transmitParts(replyHeadNow(id, body === undefined), body ?? EMPTY);
    this.#checkSlowConsumer();
  }

  #replyError(id: number, err: unknown): void {
    if (!this.#canSend()) return;
    const wire = toWireError(err, this.#server.limits.exposeErrorStacks);
    // Within what the client accepts (its maxMessageBytes, plus the head room it allows every
    // frame), as every reply: a longer frame would end its connection.
    const head = idHead(Kind.ERROR, id);
    const body = encodeWireError(wire, this.sendLimit + MAX_HEAD_BYTES - head.length);
    if (body === undefined) {
      this.abort(
        new IpcError(
          ErrorCodes.FRAME_TOO_LARGE,
          `${this.what}: the client's maxMessageBytes cannot hold an error reply`,
        ),
      );
      return;
    }
    this.transmitParts(head, body);
    this.#checkSlowConsumer();
  }

  #canSend(): boolean {
    return this.isOpen && !this.closed;
  }

  /**
   * Replies go out even while the socket is full (their number is bounded by the handlers allowed
   * to run), but a client that sends requests and never reads the replies would grow them without
   * end: past a slack it is cut off, as NATS does with a slow consumer.
   */
  #checkSlowConsumer(): void {
    const waiting = this.socket.writableLength;
    if (waiting > this.maxMessageBytes + SLOW_CONSUMER_SLACK_BYTES) {
      this.abort(
        new IpcError(
          ErrorCodes.QUEUE_FULL,
          `${this.what}: the client left ${waiting} bytes of replies unread`,
        ),
      );
    }
  }

  // ---- publications -----------------------------------------------------------------------------

  /**
   * Sends one publication, or queues it while the socket is full. Past the bound the oldest queued
   * one is dropped and counted; the subscriber is told how many with a DROPPED frame. False if this
   * one was not sent nor queued (the connection is ending, or it is too large for the subscriber).
   */
  publish(head: Uint8Array, body: Uint8Array, topic: string): boolean {
    if (!this.#canSend()) return false;
    if (body.length > this.sendLimit) {
      // More than this subscriber accepts: it would end the connection there. Dropped instead, and
      // the subscriber is told (sub.dropped), as for a slow one.
      this.#server.dropped(1);
      this.#countDropped(topic);
      if (this.#publications.length === 0 && !this.outputFull) this.#sendDropped();
      return false;
    }
    if (this.#publications.length === 0 && !this.outputFull) {
      this.transmitParts(head, body);
      return true;
    }
    this.#publications.push({ head, body, topic });
    this.#queuedBytes += head.length + body.length;
    const limit = this.#server.limits.subscriberHighWaterMark;
    let dropped = 0;
    while (
      this.#publications.length > limit ||
      (this.#queuedBytes > MAX_QUEUED_PUBLICATION_BYTES && this.#publications.length > 1)
    ) {
      const oldest = this.#publications.shift()!;
      this.#queuedBytes -= oldest.head.length + oldest.body.length;
      this.#countDropped(oldest.topic);
      dropped++;
    }
    if (dropped > 0) this.#server.dropped(dropped);
    return true;
  }

  #countDropped(topic: string): void {
    this.#dropped ??= new Map();
    this.#dropped.set(topic, (this.#dropped.get(topic) ?? 0) + 1);
  }

  /** Tells the subscriber how many publications of each topic it lost since the last notice. */
  #sendDropped(): void {
    if (!this.#dropped) return;
    for (const [topic, count] of this.#dropped)
      this.transmitFrame(droppedFrame(count, encodeName(topic, 'topic')));
    this.#dropped = undefined;
  }

  /** Publications waiting for this subscriber's socket. */
  get queuedPublications(): number {
    return this.#publications.length;
  }

  /**
   * Ends with a lingering close (see Link.lingerForPeer): a client that sent a request before it
   * read our goodbye still reads the goodbye, and knows that request was never run.
   */
  protected override async endOutput(): Promise<void> {
    await super.endOutput();
    await this.lingerForPeer(LINGER_MS);
  }

  protected override writable(): void {
    super.writable();
    if (!this.#canSend()) return;
    this.#sendDropped();
    while (this.#publications.length > 0 && !this.outputFull) {
      const next = this.#publications.shift()!;
      this.#queuedBytes -= next.head.length + next.body.length;
      this.transmitParts(next.head, next.body);
    }
  }

  // ---- end --------------------------------------------------------------------------------------

  protected linkClosed(reason: IpcError): void {
    clearTimeout(this.#deadline);
    this.#deadline = undefined;
    for (const [, ctx] of this.#running.entries()) ctx.abort(reason);
    this.#parked.clear(); // never started, and nobody is left to answer
    for (const resolve of this.#idle.splice(0)) resolve();
    this.#publications.drain();
    this.#queuedBytes = 0;
    this.#dropped = undefined;
    this.#server.closed(this as ServerConnection<unknown>, reason);
  }
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null &&
    (typeof value === 'object' || typeof value === 'function') &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}
