/**
 * One socket connection speaking the socket protocol: the core StreamChannel (framing, hello,
 * goodbye, write coalescing, backpressure) plus the envelope of protocol.ts, the handshake state,
 * heartbeats and the reasons input is paused. The server's connections and the client's current
 * connection both extend it; the kinds each side handles live in those subclasses.
 */
import type { Socket } from 'node:net';
import type { ChannelOptions } from '../core/channel.js';
import { type MessageCodec, resolveCodec } from '../core/codec.js';
import { ErrorCodes, IpcError, type IpcErrorCode } from '../core/errors.js';
import { Control, MAX_FRAME_PAYLOAD } from '../core/framing.js';
import { StreamChannel } from '../core/stream-channel.js';
import { type Beating, joinHeartbeat, leaveHeartbeat } from './heartbeat.js';
import {
  badEnvelope,
  HANDSHAKE_MAX_BYTES,
  jsonFrame,
  KIND_MASK,
  Kind,
  MAX_HEAD_BYTES,
  MESSAGE_HEAD,
  readJson,
} from './protocol.js';
import { endWithin, LINGER_MS } from './transport.js';

/** What is known about the other end of a connection. */
export interface PeerInfo {
  transport: 'tcp' | 'unix' | 'pipe';
  /** TCP: the peer's address. */
  address?: string;
  /** TCP: the peer's port. */
  port?: number;
  /** Unix sockets and named pipes, when the addon is available: the kernel's peer credentials. */
  pid?: number;
  uid?: number;
  gid?: number;
  /** The connection is encrypted. */
  tls: boolean;
  /** With TLS: the peer's certificate was verified against the configured CAs. */
  authorized?: boolean;
}

/** Why input is paused; heartbeat checks stand still while any of these holds. */
export const Hold = {
  /** The Channel's receive queue is full (the application is not reading). */
  QUEUE: 1,
  /** The owner of a client link is not reading. */
  OWNER: 2,
  /** The server has maxConcurrentRequests handlers running for this connection. */
  REQUESTS: 4,
} as const;

const EMPTY = new Uint8Array(0);
/** Silent heartbeat ticks before the peer is declared dead: 2 ticks = 2–3 intervals of silence. */
const MISSED_TICKS = 2;

const knownCodes = new Set<string>(Object.values(ErrorCodes));

/** The base of both ends of a socket connection. */
export abstract class Link<T> extends StreamChannel<T> implements Beating {
  /** The duplex stream (a TLS socket over the raw one when TLS is on). */
  protected readonly socket: Socket;
  /** The codec for request, reply and publication bodies: the channel's, without its schema. */
  protected readonly bodyCodec: MessageCodec<unknown>;
  /** Resolves when the handshake passed; rejects with why the connection failed before that. */
  readonly established: Promise<void>;
  #settle: ((err?: IpcError) => void) | undefined;
  #open = false;
  #ended = false;
  #abortSent = false;
  #abortReceived = false;
  #reason: IpcError | undefined;
  #heartbeatMs = 0;
  #seen = 0;
  #missed = 0;
  #holds = 0;
  /** The peer's side has ended: its goodbye, its end-of-file, an error, or the socket closed. */
  #peerDone = false;
  /** Closing, our goodbye sent: reading only to see the peer's end (see lingerForPeer). */
  #lingering = false;
  #peerEnded: (() => void) | undefined;
  #peerEnd: Promise<void> | undefined;

  protected constructor(what: string, socket: Socket, opts: ChannelOptions<T> | undefined) {
    super(what, socket, socket, opts);
    this.socket = socket;
    this.bodyCodec = resolveCodec<unknown>({ codec: opts?.codec as ChannelOptions<unknown>['codec'] }, what);
    // Until the peer has passed the handshake it may not make us allocate more than a handshake.
    this.setInputLimit(HANDSHAKE_MAX_BYTES);
    this.established = new Promise<void>((resolve, reject) => {
      this.#settle = (err) => {
        this.#settle = undefined;
        if (err) reject(err);
        else resolve();
      };
    });
    this.established.catch(() => {}); // the reason also reaches the owner through linkClosed
    socket.once('close', () => this.#onSocketClose());
  }

  /** It sent ABORT and is ending by itself (see #endAfterAbort): destroying it could lose that. */
  get lingering(): boolean {
    return this.#abortSent && !this.#ended;
  }

  /** True once the handshake passed and until the socket closes. */
  get isOpen(): boolean {
    return this.#open && !this.#ended;
  }

  /** True once the handshake passed, even after the connection ended. */
  get wasEstablished(): boolean {
    return this.#open;
  }

  /** Why the connection ended (or is ending); undefined while it is fine. */
  get endReason(): IpcError | undefined {
    return this.#reason;
  }

  // ---- what subclasses implement ----------------------------------------------------------------

  /** A frame while the handshake is in progress. Throw an IpcError to refuse the peer. */
  protected abstract receiveHandshake(kind: number, payload: Uint8Array): void;
  /** Any kind other than MESSAGE and ABORT once established. */
  protected abstract receiveEnvelope(kind: number, noBody: boolean, payload: Uint8Array): void;
  /** The socket closed; `reason` says why (ERR_IPC_CLOSED for a clean goodbye either way). */
  protected abstract linkClosed(reason: IpcError): void;

  /**
   * A Channel message from the peer: its body (after the kind byte) lies in `data` from `start` to
   * `end`, valid during the call.
   */
  protected receiveMessage(data: Uint8Array, start: number, end: number): void {
    // Lingering after our goodbye: nobody will receive it (and a flood must not pile up).
    if (this.#lingering) return;
    this.deliverRange(data, start, end);
  }

  // ---- the envelope -----------------------------------------------------------------------------

  protected override transmit(payload: Uint8Array): boolean {
    return this.transmitParts(MESSAGE_HEAD, payload);
  }

  /** Sends a frame whose whole payload is `frame` (a head with no body). */
  protected transmitFrame(frame: Uint8Array): boolean {
    return this.transmitParts(frame, EMPTY);
  }

  protected override receiveFrameAt(data: Uint8Array, start: number, end: number): void {
    // The bulk of the traffic, a plain message on an open link, is decoded where it lies: two views
    // per message were most of a socket receiver's garbage.
    if (this.#open && start < end && data[start] === Kind.MESSAGE) {
      this.receiveMessage(data, start + 1, end);
      return;
    }
    this.receiveFrame(data.subarray(start, end));
  }

  protected override receiveFrame(payload: Uint8Array): void {
    const first = payload[0];
    if (first === undefined) throw badEnvelope(this.what, 'empty frame');
    const kind = first & KIND_MASK;
    if (kind === Kind.ABORT) throw this.#remoteAbort(payload);
    if (!this.#open) {
      this.receiveHandshake(kind, payload);
      return;
    }
    if (kind === Kind.MESSAGE) this.receiveMessage(payload, 1, payload.length);
    else this.receiveEnvelope(kind, first !== kind, payload);
  }

  #remoteAbort(payload: Uint8Array): IpcError {
    const body = readJson(payload, this.what);
    const code =
      typeof body.code === 'string' && knownCodes.has(body.code) ? body.code : ErrorCodes.PEER_GONE;
    const message = typeof body.message === 'string' ? body.message.slice(0, 4096) : 'the peer hung up';
    const err = new IpcError(code as IpcErrorCode, message);
    this.#reason ??= err;
    this.#abortReceived = true;
    return err;
  }

  /**
   * The peer's `maxMessageBytes`, from its handshake (until then, this end's own): a larger send
   * would end the connection at the peer, so it is refused here with ERR_IPC_FRAME_TOO_LARGE.
   */
  get peerMaxMessageBytes(): number {
    return this.sendLimit;
  }

  /** Takes the peer's `max` from its handshake (`whose`: "the server's"), or refuses the peer. */
  protected acceptPeerMax(max: unknown, whose: string): void {
    if (typeof max !== 'number' || !Number.isInteger(max) || max < 1 || max > MAX_FRAME_PAYLOAD) {
      throw this.refuse(
        new IpcError(ErrorCodes.BAD_FRAME, `${this.what}: ${whose} handshake has a bad max (${String(max)})`),
      );
    }
    this.limitSends(max, whose);
  }

  /** The handshake passed: full-size frames from now on, heartbeats every `heartbeatMs` (0: none). */
  protected markEstablished(heartbeatMs: number): void {
    if (this.#ended) return;
    this.#open = true;
    this.setInputLimit(this.maxMessageBytes + MAX_HEAD_BYTES);
    this.#heartbeatMs = heartbeatMs;
    if (heartbeatMs > 0) joinHeartbeat(heartbeatMs, this);
    this.#settle?.();
  }

  /**
   * Returns `err` as the reason, for `throw link.refuse(err)` inside a receive hook: the stream
   * then fails with it, and {@link inputFailed} tells the peer why (ABORT) and ends the connection.
   */
  protected refuse(err: IpcError): IpcError {
    this.#reason ??= err;
    return err;
  }

  /** Ends the connection now with `err`, telling the peer why when `tellPeer`. */
  abort(err: IpcError, tellPeer = true): void {
    if (this.#ended) return;
    this.#reason ??= err;
    const told = tellPeer ? this.#sendAbort(err) : false;
    this.fail(err);
    // A connect waiting for the handshake learns why now, not when the linger ends (up to
    // LINGER_MS later, with a peer that keeps the connection open).
    this.#settle?.(this.#reason);
    if (told) this.#endAfterAbort();
    else this.socket.destroy();
  }

  /**
   * A bad frame or a refused one (see {@link refuse}): the peer is told why, then cut off. A peer
   * that sent ABORT itself is not answered with one.
   */
  protected override inputFailed(err: IpcError): void {
    this.abort(err, !this.#abortReceived);
  }

  /** Sends ABORT once; false if it cannot be sent (the socket is gone). */
  #sendAbort(err: IpcError): boolean {
    if (this.socket.destroyed) return false;
    if (this.#abortSent) return true;
    this.#abortSent = true;
    this.transmitFrame(jsonFrame(Kind.ABORT, { code: err.code, message: err.message }));
    this.flushNow();
    return true;
  }

  /**
   * Ends the connection once the ABORT is out (see {@link endWithin}). What the peer still sends is
   * read and dropped, so nothing is left unread when it closes.
   */
  #endAfterAbort(): void {
    const socket = this.socket;
    socket.removeAllListeners('data');
    socket.on('data', () => {});
    socket.resume();
    endWithin(socket, LINGER_MS);
  }

  // ---- heartbeats -------------------------------------------------------------------------------

  /**
   * Called every heartbeat interval: sends a PING (unless the output is full: it could not leave)
   * and checks that something arrived since the last tick. Two silent ticks in a row mean 2 to 3
   * intervals without a byte: the peer is dead, frozen or unreachable, even while our own data is
   * stuck waiting to be written (which TCP keepalive cannot tell). Silence does not count while we
   * hold input ourselves: the peer's bytes are then waiting in the kernel, unread.
   */
  beat(): void {
    if (!this.isOpen) return;
    // Not once our output has ended (a lingering close, an ABORT on its way): a write after the end
    // fails the socket, cutting the linger short and losing what the peer has not read yet.
    if (!this.outputFull && !this.socket.writableEnded) this.transmitControl(Control.PING);
    // Any byte from the peer is a sign of life. The socket counts them (after TLS: plaintext
    // bytes, heartbeats included), so nothing is done per message or chunk to know it.
    const read = this.socket.bytesRead;
    if (this.#holds !== 0 || read !== this.#seen) {
      this.#seen = read;
      this.#missed = 0;
      return;
    }
    if (++this.#missed >= MISSED_TICKS) {
      this.abort(
        new IpcError(
          ErrorCodes.PEER_GONE,
          `${this.what}: no heartbeat from the peer for ${MISSED_TICKS * this.#heartbeatMs} ms (dead, frozen or unreachable)`,
        ),
        false,
      );
    }
  }

  // ---- input holds ------------------------------------------------------------------------------

  /** Stops reading for `reason` (a {@link Hold} bit); reading resumes when no reason is left. */
  hold(reason: number): void {
    if (this.#lingering) return;
    if (this.#holds === 0) super.pauseInput();
    this.#holds |= reason;
  }

  /** Lifts one reason to stop reading. */
  release(reason: number): void {
    if ((this.#holds & reason) === 0) return;
    this.#holds &= ~reason;
    if (this.#holds === 0) super.resumeInput();
  }

  protected override pauseInput(): void {
    this.hold(Hold.QUEUE);
  }

  protected override resumeInput(): void {
    this.release(Hold.QUEUE);
  }

  // ---- ending -----------------------------------------------------------------------------------

  override close(): Promise<void> {
    this.#reason ??= new IpcError(ErrorCodes.CLOSED, `${this.what} was closed`);
    return super.close();
  }

  /**
   * Resolves once the peer's side has ended, or after `ms`: a lingering close, which keeps the
   * socket open until the peer has read our goodbye and answered with its own end. Closed at once,
   * a socket the peer then writes to (a request sent before it read the goodbye) fails that write
   * with EPIPE or a reset, and the peer loses the goodbye still waiting in its input.
   */
  protected lingerForPeer(ms: number): Promise<void> {
    if (this.#peerDone || this.#ended || this.socket.destroyed) return Promise.resolve();
    // The peer's end can only be seen by reading: whatever held the input (messages nobody read,
    // requests parked) no longer does, and what comes now is dropped (see receiveMessage).
    this.#lingering = true;
    if (this.#holds !== 0) {
      this.#holds = 0;
      super.resumeInput();
    }
    this.#peerEnd ??= new Promise<void>((resolve) => {
      this.#peerEnded = resolve;
    });
    let timer: NodeJS.Timeout | undefined;
    // Not unref'd: a paused or quiet socket may be all that keeps the loop alive, and close() must
    // settle. It is bounded by `ms`.
    const late = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ms);
    });
    return Promise.race([this.#peerEnd, late]).finally(() => clearTimeout(timer));
  }

  /** Open, and the peer has neither said goodbye nor gone: what is sent now can still reach it. */
  get reachable(): boolean {
    return this.isOpen && !this.#peerDone;
  }

  override destroy(reason?: Error): void {
    this.#reason ??= new IpcError(
      ErrorCodes.CLOSED,
      `${this.what} was destroyed`,
      reason === undefined ? undefined : { cause: reason },
    );
    super.destroy(reason);
  }

  protected override peerClosed(): void {
    this.#reason ??= new IpcError(ErrorCodes.CLOSED, `${this.what}: the peer closed the connection`);
    this.#markPeerDone();
    super.peerClosed();
  }

  protected override peerGone(detail: string, cause?: unknown): void {
    this.#reason ??= new IpcError(
      ErrorCodes.PEER_GONE,
      `${this.what}: ${detail}`,
      cause === undefined ? undefined : { cause },
    );
    this.#markPeerDone();
    super.peerGone(detail, cause);
    // Gone before the handshake (a port probe, a TLS client that gave up): nothing more can be said
    // to it. Closing now frees its maxConnections slot; a TLS socket with our hello still unsent
    // would otherwise not close until the handshake deadline.
    if (!this.#open && !this.socket.destroyed) this.socket.destroy();
  }

  protected override fail(err: IpcError): void {
    this.#reason ??= err;
    super.fail(err);
  }

  protected override teardown(): void {
    this.#reason ??= new IpcError(ErrorCodes.CLOSED, `${this.what} was closed`);
    super.teardown();
  }

  #markPeerDone(): void {
    this.#peerDone = true;
    this.#peerEnded?.();
  }

  #onSocketClose(): void {
    this.#markPeerDone();
    if (this.#ended) return;
    this.#ended = true;
    if (this.#heartbeatMs > 0) leaveHeartbeat(this.#heartbeatMs, this);
    const reason =
      this.#reason ?? new IpcError(ErrorCodes.PEER_GONE, `${this.what}: the connection closed unexpectedly`);
    this.#reason = reason;
    // A socket that closes mid-handshake without a word most likely met a server that wanted
    // something else (TLS, another protocol) or refused us before reading.
    this.#settle?.(reason.code === ErrorCodes.CLOSED && !this.#open ? this.#handshakeClosed() : reason);
    // Stream end/error events have reported this already; a destroyed socket may not have.
    this.peerGone('the connection closed');
    this.linkClosed(reason);
  }

  #handshakeClosed(): IpcError {
    return new IpcError(
      ErrorCodes.PEER_GONE,
      `${this.what}: the peer closed the connection during the handshake`,
    );
  }
}
