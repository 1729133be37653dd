/**
 * The socket protocol on top of the core framing. Every data frame on a socket connection carries
 * an envelope: its first byte is the kind (low 7 bits) plus a flag (bit 7) meaning "the value is
 * `undefined`, no body follows"; then kind-specific fields; then the body, encoded with the
 * connection's codec. Heartbeats are the core PING control frame. See docs/sockets.md.
 *
 * ```
 * MESSAGE     [0] body                                  a Channel message, either way
 * REQUEST     [1] id:u32 len:u8 method body             client -> server
 * REPLY       [2] id:u32 body                           server -> client (also acks SUBSCRIBE)
 * ERROR       [3] id:u32 json{code,message,…}            server -> client: the request failed
 * CANCEL      [4] id:u32                                client -> server: the caller gave up
 * SUBSCRIBE   [5] id:u32 len:u8 topic                   client -> server, acked by REPLY id
 * UNSUBSCRIBE [6] len:u8 topic                          client -> server
 * PUBLISH     [7] len:u8 topic body                     server -> client
 * DROPPED     [8] count:u32 len:u8 topic                server -> client: publications dropped
 * HANDSHAKE   [9] json{v,max,token?}                    client -> server, the first data frame
 * WELCOME     [10] json{v,max,hb}                       server -> client: the handshake passed
 * ABORT       [11] json{code,message}                   either way: why the sender is hanging up
 * ```
 * Integers are big-endian. Names (methods, topics) are 1–255 bytes of UTF-8.
 */
import { ErrorCodes, IpcError } from '../core/errors.js';
import { checkWellFormed } from '../core/options.js';

/** Envelope kinds. */
export const Kind = {
  MESSAGE: 0,
  REQUEST: 1,
  REPLY: 2,
  ERROR: 3,
  CANCEL: 4,
  SUBSCRIBE: 5,
  UNSUBSCRIBE: 6,
  PUBLISH: 7,
  DROPPED: 8,
  HANDSHAKE: 9,
  WELCOME: 10,
  ABORT: 11,
} as const;

/** Flag on the kind byte: the value is `undefined` and no body follows (any codec, even json). */
export const NO_BODY = 0x80;
/** The kind bits of the first byte. */
export const KIND_MASK = 0x7f;
/** Version of the socket protocol, checked in the handshake. */
export const SOCKET_PROTOCOL_VERSION = 1;
/** Largest frame accepted before the handshake is done: no stranger gets to make us allocate more. */
export const HANDSHAKE_MAX_BYTES = 4096;
/** Longest method or topic name, in UTF-8 bytes. */
export const MAX_NAME_BYTES = 255;
/** Largest envelope head: kind, id, name length, name. A frame may exceed maxMessageBytes by this. */
export const MAX_HEAD_BYTES = 1 + 4 + 1 + MAX_NAME_BYTES;

/** The head of every Channel message. */
export const MESSAGE_HEAD: Uint8Array = Uint8Array.of(Kind.MESSAGE);

// Methods and topics repeat: their encoded bytes are cached (bounded, so arbitrary names cannot
// grow it without limit).
const nameCache = new Map<string, Buffer>();
const NAME_CACHE_SIZE = 1024;

/** Checks a method or topic name and returns its UTF-8 bytes. TypeError/RangeError naming `what`. */
export function encodeName(name: unknown, what: string): Buffer {
  if (typeof name !== 'string') throw new TypeError(`${what} must be a string`);
  const cached = nameCache.get(name);
  if (cached) return cached;
  checkWellFormed(name, what);
  const bytes = Buffer.from(name, 'utf8');
  if (bytes.length === 0 || bytes.length > MAX_NAME_BYTES) {
    throw new RangeError(`${what} must be 1..${MAX_NAME_BYTES} bytes of UTF-8, got ${bytes.length}`);
  }
  if (nameCache.size >= NAME_CACHE_SIZE) nameCache.clear();
  nameCache.set(name, bytes);
  return bytes;
}

function kindByte(kind: number, noBody: boolean): number {
  return noBody ? kind | NO_BODY : kind;
}

// Heads handed straight to transmitParts, which copies them into the batch at once, are written
// into these scratch buffers instead of a fresh allocation per request and per reply.
const requestScratch = Buffer.allocUnsafeSlow(6 + MAX_NAME_BYTES);
let requestScratchName: Buffer | undefined;
let requestScratchView: Buffer = requestScratch;
const replyScratch = Buffer.allocUnsafeSlow(5);

/**
 * REQUEST head in a shared scratch buffer: valid until the next call, so only for a head that is
 * sent (copied) at once. A head that must be kept (queued while reconnecting) is {@link requestHead}.
 */
export function requestHeadNow(id: number, method: Buffer, noBody: boolean): Buffer {
  if (method !== requestScratchName) {
    requestScratch[5] = method.length;
    method.copy(requestScratch, 6);
    requestScratchName = method;
    requestScratchView = requestScratch.subarray(0, 6 + method.length);
  }
  requestScratch[0] = kindByte(Kind.REQUEST, noBody);
  requestScratch.writeUInt32BE(id, 1);
  return requestScratchView;
}

/** REPLY head in a shared scratch buffer: valid until the next call (see {@link requestHeadNow}). */
export function replyHeadNow(id: number, noBody: boolean): Buffer {
  replyScratch[0] = kindByte(Kind.REPLY, noBody);
  replyScratch.writeUInt32BE(id, 1);
  return replyScratch;
}

/** REQUEST head of its own, to be kept (queued while reconnecting). */
export function requestHead(id: number, method: Buffer, noBody: boolean): Buffer {
  return Buffer.from(requestHeadNow(id, method, noBody));
}

/** REPLY head of its own. */
export function replyHead(id: number, noBody: boolean): Buffer {
  return Buffer.from(replyHeadNow(id, noBody));
}

/** A head made of the kind and one id: ERROR and CANCEL. */
export function idHead(kind: number, id: number): Buffer {
  const head = Buffer.allocUnsafe(5);
  head[0] = kind;
  head.writeUInt32BE(id, 1);
  return head;
}

/** SUBSCRIBE head (the topic is all of it). */
export function subscribeHead(id: number, topic: Buffer): Buffer {
  const head = Buffer.allocUnsafe(6 + topic.length);
  head[0] = Kind.SUBSCRIBE;
  head.writeUInt32BE(id, 1);
  head[5] = topic.length;
  topic.copy(head, 6);
  return head;
}

/** UNSUBSCRIBE, whole. */
export function unsubscribeFrame(topic: Buffer): Buffer {
  const frame = Buffer.allocUnsafe(2 + topic.length);
  frame[0] = Kind.UNSUBSCRIBE;
  frame[1] = topic.length;
  topic.copy(frame, 2);
  return frame;
}

/** PUBLISH head. */
export function publishHead(topic: Buffer, noBody: boolean): Buffer {
  const head = Buffer.allocUnsafe(2 + topic.length);
  head[0] = kindByte(Kind.PUBLISH, noBody);
  head[1] = topic.length;
  topic.copy(head, 2);
  return head;
}

/** DROPPED, whole. */
export function droppedFrame(count: number, topic: Buffer): Buffer {
  const frame = Buffer.allocUnsafe(6 + topic.length);
  frame[0] = Kind.DROPPED;
  frame.writeUInt32BE(Math.min(count, 0xffff_ffff), 1);
  frame[5] = topic.length;
  topic.copy(frame, 6);
  return frame;
}

/** A frame of one kind byte and a JSON body: HANDSHAKE, WELCOME, ABORT. */
export function jsonFrame(kind: number, value: unknown): Buffer {
  const body = Buffer.from(JSON.stringify(value), 'utf8');
  const frame = Buffer.allocUnsafe(1 + body.length);
  frame[0] = kind;
  body.copy(frame, 1);
  return frame;
}

// ---- reading ----------------------------------------------------------------------------------

/** The error for an envelope that does not parse. */
export function badEnvelope(what: string, detail: string): IpcError {
  return new IpcError(ErrorCodes.BAD_FRAME, `${what}: malformed frame: ${detail}`);
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
}

/** Reads the u32 at `offset`, checking the frame is long enough. */
export function readU32(payload: Uint8Array, offset: number, what: string): number {
  if (payload.length < offset + 4) throw badEnvelope(what, 'too short for its id');
  return (
    ((payload[offset]! << 24) |
      (payload[offset + 1]! << 16) |
      (payload[offset + 2]! << 8) |
      payload[offset + 3]!) >>>
    0
  );
}

/** Checks the length-prefixed name at `offset`; returns where it ends (where the body starts). */
export function nameEnd(payload: Uint8Array, offset: number, what: string): number {
  const length = payload[offset];
  if (length === undefined || length === 0 || payload.length < offset + 1 + length) {
    throw badEnvelope(what, 'name length out of range');
  }
  return offset + 1 + length;
}

/** Reads a length-prefixed name at `offset`: returns it and where the body starts. */
export function readName(payload: Uint8Array, offset: number, what: string): { name: string; end: number } {
  const end = nameEnd(payload, offset, what);
  return { name: asBuffer(payload).toString('utf8', offset + 1, end), end };
}

// Requests mostly repeat a few methods: the last name read is kept with its bytes, so a repeat
// costs a byte comparison instead of a string decode.
let lastName = '';
let lastNameBytes: Buffer = Buffer.alloc(0);

/** The method name at `offset`, which {@link nameEnd} checked ends at `end`. */
export function readMethod(payload: Uint8Array, offset: number, end: number): string {
  const start = offset + 1;
  const length = end - start;
  if (length === lastNameBytes.length) {
    let i = 0;
    while (i < length && payload[start + i] === lastNameBytes[i]) i++;
    if (i === length) return lastName;
  }
  const bytes = asBuffer(payload);
  lastName = bytes.toString('utf8', start, end);
  lastNameBytes = Buffer.from(bytes.subarray(start, end));
  return lastName;
}

/** Parses the JSON body of a HANDSHAKE, WELCOME or ABORT frame into a plain record. */
export function readJson(payload: Uint8Array, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(asBuffer(payload).toString('utf8', 1));
  } catch {
    throw badEnvelope(what, 'handshake body is not JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw badEnvelope(what, 'handshake body is not an object');
  }
  return value as Record<string, unknown>;
}

/** The JSON body of an ERROR frame: what a client learns about a failed request. */
export interface WireError {
  code: string;
  message: string;
  /** The error's class name (`TypeError`, …) when it was not an IpcError. */
  name?: string;
  /** A `code` property of a non-ipckit error (`'ENOENT'`, an application code). */
  remoteCode?: string;
  /** Only when the server opted in with `exposeErrorStacks`. */
  stack?: string;
}

const MAX_WIRE_MESSAGE = 8192;
// What a client keeps of a name or code (readWireError): no use sending more.
const MAX_WIRE_LABEL = 100;

/** Describes an error thrown by a handler for the wire: code and message, no stack unless asked. */
export function toWireError(err: unknown, exposeStack: boolean): WireError {
  try {
    return describeThrown(err, exposeStack);
  } catch {
    // A thrown value whose message or string form throws (a null-prototype object, a hostile
    // getter): the requester still gets an answer, not a request left to time out.
    return { code: ErrorCodes.REMOTE, message: 'the handler threw a value that cannot be described' };
  }
}

function describeThrown(err: unknown, exposeStack: boolean): WireError {
  if (err instanceof IpcError) {
    const wire: WireError = { code: clipLabel(err.code), message: clip(err.message) };
    if (exposeStack && err.stack) wire.stack = clip(err.stack);
    return wire;
  }
  if (err instanceof Error) {
    const wire: WireError = {
      code: ErrorCodes.REMOTE,
      message: clip(err.message),
      name: clipLabel(err.name),
    };
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string' || typeof code === 'number') wire.remoteCode = clipLabel(code);
    if (exposeStack && err.stack) wire.stack = clip(err.stack);
    return wire;
  }
  return { code: ErrorCodes.REMOTE, message: clip(String(err)) };
}

/**
 * The WireError as the JSON an ERROR frame carries, within `limit` bytes (the peer's
 * maxMessageBytes): the stack goes first, then the name and application code, then the message is
 * shortened. Undefined if even the bare code does not fit.
 */
export function encodeWireError(wire: WireError, limit: number): Buffer | undefined {
  const encode = (value: WireError) => Buffer.from(JSON.stringify(value), 'utf8');
  let fitted = wire;
  let bytes = encode(fitted);
  if (bytes.length > limit && fitted.stack !== undefined) {
    fitted = { ...fitted, stack: undefined };
    bytes = encode(fitted);
  }
  // The message matters more than the class name and the application's code.
  if (bytes.length > limit && (fitted.name !== undefined || fitted.remoteCode !== undefined)) {
    fitted = { code: fitted.code, message: fitted.message };
    bytes = encode(fitted);
  }
  while (bytes.length > limit && fitted.message !== '') {
    // Halving ends: a message of a character or two (which the … would not shorten) goes whole.
    const keep = Math.floor(fitted.message.length / 2);
    fitted = { ...fitted, message: keep > 1 ? `${fitted.message.slice(0, keep)}…` : '' };
    bytes = encode(fitted);
  }
  return bytes.length > limit ? undefined : bytes;
}

/** A class name or an error code: short by nature, so a long one is cut hard. */
function clipLabel(value: unknown): string {
  const text = String(value);
  return text.length > MAX_WIRE_LABEL ? `${text.slice(0, MAX_WIRE_LABEL)}…` : text;
}

function clip(value: unknown): string {
  const text = String(value);
  return text.length > MAX_WIRE_MESSAGE ? `${text.slice(0, MAX_WIRE_MESSAGE)}…` : text;
}

/** Parses a WireError, tolerating anything: a hostile server must not be able to crash a client. */
export function readWireError(payload: Uint8Array, offset: number, what: string): WireError {
  let value: unknown;
  try {
    value = JSON.parse(asBuffer(payload).toString('utf8', offset));
  } catch {
    throw badEnvelope(what, 'error body is not JSON');
  }
  const record = (typeof value === 'object' && value !== null ? value : {}) as Record<string, unknown>;
  const wire: WireError = {
    code: typeof record.code === 'string' ? record.code : ErrorCodes.REMOTE,
    message: typeof record.message === 'string' ? clip(record.message) : 'remote error',
  };
  if (typeof record.name === 'string') wire.name = record.name.slice(0, 100);
  if (typeof record.remoteCode === 'string') wire.remoteCode = record.remoteCode.slice(0, 100);
  if (typeof record.stack === 'string') wire.stack = clip(record.stack);
  return wire;
}
