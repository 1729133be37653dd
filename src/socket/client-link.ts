/**
 * The client's end of one connection: sends the handshake, waits for WELCOME, and hands everything
 * the server sends to its owner (the SocketClient, which outlives connections when it reconnects).
 */
import type { Socket } from 'node:net';
import type { ChannelOptions } from '../core/channel.js';
import { ErrorCodes, IpcError } from '../core/errors.js';
import { Link } from './link.js';
import {
  jsonFrame,
  Kind,
  readJson,
  readName,
  readU32,
  readWireError,
  SOCKET_PROTOCOL_VERSION,
  type WireError,
} from './protocol.js';

/** What a client link reports to its owner. */
export interface ClientSide {
  /** A Channel message whose body lies in `data` from `start` to `end`, valid during the call. */
  message(data: Uint8Array, start: number, end: number): void;
  reply(id: number, noBody: boolean, body: Uint8Array): void;
  error(id: number, wire: WireError): void;
  publication(topic: string, noBody: boolean, body: Uint8Array): void;
  dropped(topic: string, count: number): void;
  writable(): void;
  closed(link: ClientLink<unknown>, reason: IpcError): void;
}

const MAX_HEARTBEAT_MS = 24 * 3600 * 1000;

/** The client's end of a connection. */
export class ClientLink<T> extends Link<T> {
  readonly #side: ClientSide;

  constructor(
    what: string,
    socket: Socket,
    opts: ChannelOptions<T> | undefined,
    side: ClientSide,
    token: Buffer | undefined,
  ) {
    super(what, socket, opts);
    this.#side = side;
    const hello: Record<string, unknown> = { v: SOCKET_PROTOCOL_VERSION, max: this.maxMessageBytes };
    if (token) hello.token = token.toString('base64');
    this.transmitFrame(jsonFrame(Kind.HANDSHAKE, hello));
  }

  /** Sends an encoded Channel message; false when the socket is full. */
  sendMessage(payload: Uint8Array): boolean {
    return this.transmit(payload);
  }

  /** Sends one envelope (head and body); false when the socket is full. */
  sendParts(head: Uint8Array, body: Uint8Array): boolean {
    return this.transmitParts(head, body);
  }

  /** Sends one envelope now if nothing else is batched (a lone request); false when the socket is full. */
  sendPartsNow(head: Uint8Array, body: Uint8Array): boolean {
    return this.transmitPartsNow(head, body);
  }

  /** True while the socket is over its high-water mark. */
  get full(): boolean {
    return this.outputFull;
  }

  protected receiveHandshake(kind: number, payload: Uint8Array): void {
    if (kind !== Kind.WELCOME) {
      throw this.refuse(
        new IpcError(
          ErrorCodes.INCOMPATIBLE,
          `${this.what}: the server did not answer the socket handshake (is it an ipckit socket server?)`,
        ),
      );
    }
    const welcome = readJson(payload, this.what);
    if (welcome.v !== SOCKET_PROTOCOL_VERSION) {
      throw this.refuse(
        new IpcError(
          ErrorCodes.INCOMPATIBLE,
          `${this.what}: the server speaks socket protocol version ${String(welcome.v)}, the client ${SOCKET_PROTOCOL_VERSION}`,
        ),
      );
    }
    const heartbeatMs = welcome.hb;
    if (
      typeof heartbeatMs !== 'number' ||
      !Number.isInteger(heartbeatMs) ||
      heartbeatMs < 0 ||
      heartbeatMs > MAX_HEARTBEAT_MS
    ) {
      throw this.refuse(
        new IpcError(ErrorCodes.BAD_FRAME, `${this.what}: the server sent a bad heartbeat interval`),
      );
    }
    this.acceptPeerMax(welcome.max, "the server's");
    this.markEstablished(heartbeatMs);
  }

  protected override receiveMessage(data: Uint8Array, start: number, end: number): void {
    this.#side.message(data, start, end);
  }

  protected receiveEnvelope(kind: number, noBody: boolean, payload: Uint8Array): void {
    switch (kind) {
      case Kind.REPLY:
        this.#side.reply(readU32(payload, 1, this.what), noBody, payload.subarray(5));
        return;
      case Kind.ERROR:
        this.#side.error(readU32(payload, 1, this.what), readWireError(payload, 5, this.what));
        return;
      case Kind.PUBLISH: {
        const { name, end } = readName(payload, 1, this.what);
        this.#side.publication(name, noBody, payload.subarray(end));
        return;
      }
      case Kind.DROPPED: {
        const count = readU32(payload, 1, this.what);
        this.#side.dropped(readName(payload, 5, this.what).name, count);
        return;
      }
      default:
        throw this.refuse(
          new IpcError(ErrorCodes.BAD_FRAME, `${this.what}: a server may not send frames of kind ${kind}`),
        );
    }
  }

  protected override writable(): void {
    super.writable();
    this.#side.writable();
  }

  protected linkClosed(reason: IpcError): void {
    this.#side.closed(this as ClientLink<unknown>, reason);
  }
}
