/**
 * `connect(url)`: a client that is a Channel of plain messages, sends requests, and subscribes to
 * topics. With `reconnect` it outlives its connections: after a drop it redials with exponential
 * backoff and jitter, queues sends and requests meanwhile (bounded), and resubscribes. Requests in
 * flight on a connection that drops fail with ERR_IPC_PEER_GONE, never hang.
 */
import type { ConnectionOptions as TlsConnectionOptions } from 'node:tls';
import { ChannelBase } from '../core/channel.js';
import { type MessageCodec, resolveCodec } from '../core/codec.js';
import { closedError, ErrorCodes, IpcError } from '../core/errors.js';
import { Queue } from '../core/queue.js';
import { armWait, checkWaitOptions, type WaitOptions, withWait } from '../core/wait.js';
import { formatAddress, parseAddress, type SocketAddress } from './address.js';
import { expectedServerUids, peerCredentials } from './auth.js';
import { ClientLink, type ClientSide } from './client-link.js';
import { Events } from './events.js';
import { Hold } from './link.js';
import {
  authOption,
  type ConnectOptions,
  intOption,
  type ReconnectPolicy,
  reconnectPolicy,
} from './options.js';
import { type PendingRequest, PendingRequests } from './pending.js';
import {
  encodeName,
  idHead,
  Kind,
  MESSAGE_HEAD,
  requestHead,
  requestHeadNow,
  subscribeHead,
  unsubscribeFrame,
  type WireError,
} from './protocol.js';
import { RemoteError } from './remote-error.js';
import { type SubscribeOptions, Subscription } from './subscription.js';
import { dial, secureContext } from './transport.js';

/** Events of a {@link SocketClient}. None is 'error': failures reach callers as rejections. */
export type ClientEvents = {
  /** The connection dropped; with `reconnect` the client will try again. */
  disconnect: [reason: IpcError];
  /** A reconnection attempt is scheduled. */
  reconnecting: [attempt: number, delayMs: number];
  /**
   * Connected again after a drop (queued sends and requests are being sent, topics resubscribed).
   * `tooLarge`: messages queued meanwhile that exceed the new server's maxMessageBytes, discarded
   * (a queued request over it rejects with ERR_IPC_FRAME_TOO_LARGE instead).
   */
  reconnect: [attempts: number, tooLarge: number];
  /**
   * Reconnection stopped (retries exhausted, or the server refused us); the client has failed.
   * `unsent`: messages whose `send()` had resolved while disconnected, queued for the next
   * connection, and now discarded (the reason's message says so too).
   */
  giveup: [reason: IpcError, unsent: number];
};

const EMPTY = new Uint8Array(0);

interface Queued {
  head: Uint8Array;
  body: Uint8Array;
  /** Set for a request: skipped if it timed out while queued. */
  requestId?: number;
}

interface Topic {
  name: Buffer;
  subs: Set<Subscription<unknown>>;
  /** Settles when the server has registered the topic on the current connection. */
  ready: Promise<void>;
  /** False until `ready` settles: a drop then leaves it pending for the next connection. */
  settled: boolean;
  settle(err?: IpcError): void;
}

/** Gives `topic` a new `ready`, pending until the server registers it (again). */
function armTopic(topic: Topic): Topic {
  topic.settled = false;
  topic.ready = new Promise<void>((resolve, reject) => {
    topic.settle = (err) => {
      topic.settled = true;
      if (err) reject(err);
      else resolve();
    };
  });
  topic.ready.catch(() => {});
  return topic;
}

/** A connected client. Create it with {@link connect}. It is a Channel of plain messages. */
export class SocketClient<T = unknown> extends ChannelBase<T> {
  /** The address it connects to. */
  readonly url: string;
  readonly #address: SocketAddress;
  readonly #opts: ConnectOptions<T> | undefined;
  /** With the context every dial uses, built once (see secureContext). */
  readonly #tls: TlsConnectionOptions | undefined;
  readonly #token: Buffer | undefined;
  readonly #serverUids: readonly number[] | undefined;
  readonly #policy: ReconnectPolicy | undefined;
  readonly #connectTimeoutMs: number;
  readonly #subscriptionLimit: number;
  readonly #bodyCodec: MessageCodec<unknown>;
  readonly #pending: PendingRequests;
  readonly #topics = new Map<string, Topic>();
  readonly #events = new Events<ClientEvents>();
  readonly #side: ClientSide;
  readonly #offline = new Queue<Queued>();
  #offlineBytes = 0;
  #link: ClientLink<T> | undefined;
  #generation = 0;
  #holding = false;
  #failure: IpcError | undefined;
  #attempt = 0;
  #timer: NodeJS.Timeout | undefined;
  #abortDial: (() => void) | undefined;

  /** Use {@link connect}. */
  constructor(url: string, address: SocketAddress, opts: ConnectOptions<T> | undefined) {
    super(`socket client ${url}`, opts);
    this.url = url;
    this.#address = address;
    this.#opts = opts;
    const tls = opts?.tls;
    if (tls !== undefined && typeof tls !== 'boolean' && (typeof tls !== 'object' || tls === null)) {
      throw new TypeError('options.tls must be a boolean or an object');
    }
    if (tls === undefined || tls === false) this.#tls = undefined;
    else {
      const options = tls === true ? {} : tls;
      this.#tls = { ...options, secureContext: secureContext(options, this.what) };
    }
    const { token, uids } = authOption(opts?.auth);
    this.#token = token;
    this.#serverUids = expectedServerUids(address.kind, uids);
    this.#policy = reconnectPolicy(opts?.reconnect);
    this.#connectTimeoutMs = intOption(opts?.connectTimeoutMs, 'connectTimeoutMs', 10_000);
    this.#subscriptionLimit = intOption(opts?.subscriptionHighWaterMark, 'subscriptionHighWaterMark', 1024);
    this.#pending = new PendingRequests(intOption(opts?.maxPendingRequests, 'maxPendingRequests', 10_000));
    this.#bodyCodec = resolveCodec<unknown>(
      { codec: opts?.codec as ConnectOptions<unknown>['codec'] },
      this.what,
    );
    this.#side = {
      message: (data, start, end) => this.deliverRange(data, start, end),
      reply: (id, noBody, body) => this.#onReply(id, noBody, body),
      error: (id, wire) => this.#onError(id, wire),
      publication: (topic, noBody, body) => this.#onPublication(topic, noBody, body),
      dropped: (topic, count) => {
        for (const sub of this.#topics.get(topic)?.subs ?? []) sub.addDropped(count);
      },
      writable: () => this.writable(),
      closed: (link, reason) => this.#onLinkClosed(link as ClientLink<T>, reason),
    };
  }

  /** True while a connection is up (false while reconnecting). */
  get connected(): boolean {
    return this.#link?.reachable === true;
  }

  /** Requests awaiting their reply. */
  get pendingRequests(): number {
    return this.#pending.size;
  }

  /** Listens to a client event. */
  on<K extends keyof ClientEvents & string>(event: K, listener: (...args: ClientEvents[K]) => void): this {
    this.#events.on(event, listener);
    return this;
  }

  /** Listens to the next occurrence of a client event. */
  once<K extends keyof ClientEvents & string>(event: K, listener: (...args: ClientEvents[K]) => void): this {
    this.#events.once(event, listener);
    return this;
  }

  /** Stops listening to a client event. */
  off<K extends keyof ClientEvents & string>(event: K, listener: (...args: ClientEvents[K]) => void): this {
    this.#events.off(event, listener);
    return this;
  }

  /**
   * Flushes queued sends, says goodbye and closes. Requests still awaiting replies reject with
   * ERR_IPC_CLOSED (await them first to keep their replies); while disconnected, what was queued
   * for the next connection is discarded. If the connection drops while sends still wait for room,
   * they reject with the reason and close() resolves.
   */
  override close(): Promise<void> {
    if (!this.closed) {
      const reason = closedError(this.what);
      this.#pending.failAll(() => reason);
      if (!this.#link?.isOpen) {
        this.destroy();
        return Promise.resolve();
      }
    }
    return super.close();
  }

  // ---- request/reply ----------------------------------------------------------------------------

  /**
   * Calls `method` on the server with `params` and resolves with its reply. Many may be in flight.
   * Rejects with the handler's error (an IpcError with the remote code), ERR_IPC_TIMEOUT /
   * ERR_IPC_ABORTED (the server is told to abort `ctx.signal`), ERR_IPC_PEER_GONE if the connection
   * drops first, ERR_IPC_QUEUE_FULL past `maxPendingRequests`.
   */
  request<R = unknown, P = unknown>(method: string, params?: P, opts?: WaitOptions): Promise<R> {
    let name: Buffer;
    try {
      checkWaitOptions(opts);
      name = encodeName(method, 'method');
    } catch (err) {
      return Promise.reject(err);
    }
    const unusable = this.#unusable();
    if (unusable) return Promise.reject(unusable);
    if (this.#pending.full) {
      return Promise.reject(
        new IpcError(
          ErrorCodes.QUEUE_FULL,
          `${this.what}: ${this.#pending.size} requests already await replies (maxPendingRequests)`,
        ),
      );
    }
    let body: Uint8Array | undefined;
    if (params !== undefined) {
      try {
        body = this.#bodyCodec.encode(params);
      } catch (err) {
        return Promise.reject(err);
      }
      if (body.length > this.sendLimit) {
        return Promise.reject(this.tooLargeToSend(`${this.what}: request '${method}'`, body.length));
      }
    }
    let entry!: PendingRequest;
    const promise = new Promise<R>((resolve, reject) => {
      entry = { method, resolve: resolve as (value: unknown) => void, reject, disarm: noop, generation: 0 };
    });
    const id = this.#pending.add(entry);
    /** Its place in the reconnect queue while it waits there. */
    let queued: Queued | undefined;
    // No timer or listener (nor a closure for them) unless the caller asked for one.
    if (opts !== undefined && (opts.signal !== undefined || opts.timeout !== undefined)) {
      entry.disarm = armWait(`${this.what}: request '${method}'`, opts, (err) => {
        if (this.#pending.take(id) === undefined) return;
        // Withdrawn from the reconnect queue too: it would hold a place under maxQueued otherwise.
        if (queued && this.#offline.remove(queued)) {
          this.#offlineBytes -= queued.head.length + queued.body.length;
        }
        // Tell the server, so a handler watching ctx.signal can stop.
        if (entry.generation === this.#generation && this.#link?.isOpen) {
          this.#link.sendParts(idHead(Kind.CANCEL, id), EMPTY);
        }
        entry.reject(err);
      });
      if (!this.#pending.has(id)) return promise; // the signal was already aborted
    }
    const link = this.#link;
    if (link?.reachable) {
      entry.generation = this.#generation;
      const head = requestHeadNow(id, name, body === undefined);
      // A lone request (the caller awaits each reply before the next) leaves at once; several in
      // flight are batched into one write per tick.
      if (this.#pending.size === 1) link.sendPartsNow(head, body ?? EMPTY);
      else link.sendParts(head, body ?? EMPTY);
      return promise;
    }
    queued = { head: requestHead(id, name, body === undefined), body: body ?? EMPTY, requestId: id };
    if (!this.#enqueue(queued, true)) {
      this.#pending.take(id);
      entry.disarm();
      entry.reject(
        this.#policy
          ? new IpcError(ErrorCodes.QUEUE_FULL, `${this.what}: disconnected, and the reconnect queue is full`)
          : new IpcError(ErrorCodes.PEER_GONE, `${this.what}: the connection is ending`, {
              cause: link?.endReason,
            }),
      );
    }
    return promise;
  }

  #onReply(id: number, noBody: boolean, body: Uint8Array): void {
    const entry = this.#pending.take(id);
    if (!entry) return; // timed out or cancelled: the late reply is dropped
    entry.disarm();
    if (noBody) {
      entry.resolve(undefined);
      return;
    }
    let value: unknown;
    try {
      value = this.#bodyCodec.decode(body);
    } catch (err) {
      entry.reject(err);
      return;
    }
    entry.resolve(value);
  }

  #onError(id: number, wire: WireError): void {
    const entry = this.#pending.take(id);
    if (!entry) return;
    entry.disarm();
    entry.reject(new RemoteError(entry.method, wire));
  }

  // ---- pub/sub ----------------------------------------------------------------------------------

  /**
   * Subscribes to `topic` (exact match). Iterate the result; leaving the loop unsubscribes.
   * `await sub.ready` to know the server has registered it. With `reconnect`, subscriptions are
   * renewed after a reconnection (publications sent while disconnected are lost).
   */
  subscribe<M = T>(topic: string, opts?: SubscribeOptions): Subscription<M> {
    const name = encodeName(topic, 'topic');
    const limit = intOption(opts?.highWaterMark, 'highWaterMark', this.#subscriptionLimit);
    const unusable = this.#unusable();
    if (unusable) throw unusable;
    let entry = this.#topics.get(topic);
    if (!entry) {
      entry = armTopic({ name, subs: new Set(), ready: Promise.resolve(), settled: true, settle: noop });
      this.#topics.set(topic, entry);
      if (this.#link?.reachable) this.#sendSubscribe(topic, entry);
    }
    const sub = new Subscription<M>(topic, limit, entry.ready, (s) =>
      this.#unsubscribe(s as Subscription<unknown>),
    );
    entry.subs.add(sub as Subscription<unknown>);
    return sub;
  }

  #sendSubscribe(topic: string, entry: Topic): void {
    const link = this.#link!;
    const id = this.#pending.add({
      method: `subscribe '${topic}'`,
      resolve: () => entry.settle(),
      reject: (err) => {
        if (err instanceof RemoteError) {
          // The server refused the topic: those subscriptions cannot work.
          entry.settle(err);
          for (const sub of [...entry.subs]) sub.end(err);
        }
      },
      disarm: noop,
      generation: this.#generation,
    });
    link.sendParts(subscribeHead(id, entry.name), EMPTY);
  }

  #unsubscribe(sub: Subscription<unknown>): void {
    const entry = this.#topics.get(sub.topic);
    if (!entry?.subs.delete(sub) || entry.subs.size > 0) return;
    this.#topics.delete(sub.topic);
    if (this.#link?.isOpen && !this.closed) this.#link.sendParts(unsubscribeFrame(entry.name), EMPTY);
  }

  #onPublication(topic: string, noBody: boolean, body: Uint8Array): void {
    const entry = this.#topics.get(topic);
    if (!entry) return; // unsubscribed meanwhile
    let item: { ok: true; value: unknown } | { ok: false; error: IpcError };
    if (noBody) item = { ok: true, value: undefined };
    else {
      try {
        item = { ok: true, value: this.#bodyCodec.decode(body) };
      } catch (err) {
        item = { ok: false, error: err as IpcError };
      }
    }
    for (const sub of entry.subs) sub.push(item);
  }

  // ---- the Channel transport --------------------------------------------------------------------

  // The link's write batch takes a copy; the offline queue keeps one of its own.
  protected override readonly copiesPayload = true;

  protected transmit(payload: Uint8Array): boolean {
    const link = this.#link;
    if (link?.reachable) return link.sendMessage(payload);
    // Reconnecting: queue a copy (a raw-codec caller may reuse its buffer once send resolves).
    this.#enqueue({ head: MESSAGE_HEAD, body: new Uint8Array(payload) }, false);
    return !this.#offlineFull();
  }

  protected pauseInput(): void {
    this.#holding = true;
    this.#link?.hold(Hold.OWNER);
  }

  protected resumeInput(): void {
    this.#holding = false;
    this.#link?.release(Hold.OWNER);
  }

  protected async endOutput(): Promise<void> {
    this.#stopReconnecting();
    const link = this.#link;
    if (link?.isOpen) await link.close();
  }

  protected teardown(): void {
    this.#stopReconnecting();
    this.#abortDial?.();
    this.#link?.destroy();
    this.#link = undefined;
    const reason = closedError(this.what);
    this.#pending.failAll(() => reason);
    this.#offline.drain();
    this.#offlineBytes = 0;
    this.#endTopics(reason);
  }

  // ---- connections ------------------------------------------------------------------------------

  /** Opens the first connection; `connect` bounds it with the caller's timeout and signal. */
  async start(opts: WaitOptions | undefined): Promise<void> {
    // Without a timeout of the caller's, the first connection gets connectTimeoutMs too: a server
    // that accepts and never answers the handshake (stopped, or not an ipckit server) would
    // otherwise keep connect() waiting for ever.
    const wait = opts?.timeout === undefined ? { ...opts, timeout: this.#connectTimeoutMs } : opts;
    this.#attach(await this.#open(wait));
  }

  /** Why requests and subscriptions cannot be made now (undefined when they can). */
  #unusable(): IpcError | undefined {
    if (this.closed) return closedError(this.what);
    return this.#failure;
  }

  #enqueue(item: Queued, isRequest: boolean): boolean {
    const policy = this.#policy;
    if (!policy) return false;
    if (isRequest && this.#offlineFull()) return false;
    this.#offline.push(item);
    this.#offlineBytes += item.head.length + item.body.length;
    return true;
  }

  #offlineFull(): boolean {
    const policy = this.#policy;
    return !policy || this.#offline.length >= policy.maxQueued || this.#offlineBytes >= policy.maxQueuedBytes;
  }

  async #open(wait: WaitOptions | undefined): Promise<ClientLink<T>> {
    const dialing = dial(this.#address, this.#tls, this.what);
    let link: ClientLink<T> | undefined;
    // A socket destroyed before it connected (with TLS: before its TLS handshake finished) reports
    // nothing: unsettled, the dial's wait and its connectTimeoutMs timer outlived close() and kept
    // the process alive. Aborting settles it.
    let cut!: () => void;
    const cutShort = new Promise<never>((_, reject) => {
      cut = () => reject(closedError(this.what));
    });
    cutShort.catch(() => {});
    const abort = () => {
      // A link that refused the server has sent it an ABORT and ends once that is out.
      if (link?.lingering) return;
      dialing.socket.destroy();
      link?.destroy();
      cut();
    };
    this.#abortDial = abort;
    const work = (async () => {
      await dialing.connected;
      if (this.#serverUids) this.#checkServer(dialing.raw);
      link = new ClientLink<T>(this.what, dialing.socket, this.#opts, this.#side as ClientSide, this.#token);
      await link.established;
      return link;
    })();
    try {
      return await withWait(`${this.what}: connect`, wait, Promise.race([work, cutShort]));
    } catch (err) {
      abort();
      throw err;
    } finally {
      if (this.#abortDial === abort) this.#abortDial = undefined;
    }
  }

  #checkServer(raw: import('node:net').Socket): void {
    const creds = peerCredentials(raw);
    if (!creds || !this.#serverUids!.includes(creds.uid)) {
      throw new IpcError(
        ErrorCodes.AUTH,
        creds
          ? `${this.what}: the server runs as uid ${creds.uid}, not one of ${this.#serverUids!.join(', ')} (auth.uid lists the users a server may run as)`
          : `${this.what}: cannot read the server's credentials to check auth.uid`,
      );
    }
  }

  /** Makes `link` the connection; returns how many queued messages it is too small for. */
  #attach(link: ClientLink<T>): number {
    this.#link = link;
    this.#generation++;
    // What this server accepts bounds what we send it (the last server's bound until then).
    this.limitSends(link.peerMaxMessageBytes, "the server's");
    if (this.#holding) link.hold(Hold.OWNER);
    for (const [topic, entry] of this.#topics) this.#sendSubscribe(topic, entry);
    // What was queued while disconnected goes out first, in order. What this server would refuse
    // (it would end the connection) stays here: a request fails, a message is counted.
    let tooLarge = 0;
    for (const item of this.#offline.drain()) {
      if (item.body.length > this.sendLimit) {
        if (item.requestId === undefined) tooLarge++;
        else this.#refuseQueuedRequest(item.requestId, item.body.length);
        continue;
      }
      if (item.requestId !== undefined) {
        const entry = this.#pending.get(item.requestId);
        if (!entry) continue; // timed out while queued
        entry.generation = this.#generation;
      }
      link.sendParts(item.head, item.body);
    }
    this.#offlineBytes = 0;
    this.writable();
    return tooLarge;
  }

  /** Fails a request queued while disconnected that the new server's maxMessageBytes refuses. */
  #refuseQueuedRequest(id: number, bytes: number): void {
    const entry = this.#pending.take(id);
    if (!entry) return; // timed out while queued
    entry.disarm();
    entry.reject(this.tooLargeToSend(`${this.what}: request '${entry.method}'`, bytes));
  }

  #onLinkClosed(link: ClientLink<T>, reason: IpcError): void {
    if (link !== this.#link) return; // a connection that never got attached
    this.#link = undefined;
    const generation = this.#generation;
    this.#pending.failGeneration(
      generation,
      (entry) =>
        new IpcError(
          ErrorCodes.PEER_GONE,
          `${this.what}: the connection dropped before the reply to '${entry.method}' (${reason.message})`,
          { cause: reason },
        ),
    );
    if (this.closed) {
      // A close() still flushing sends that waited for room would wait for ever: they can no
      // longer go out, so they fail with the reason and close() goes on.
      this.fail(reason);
      return;
    }
    this.#events.emit('disconnect', reason);
    if (this.#policy && !isFinal(reason)) {
      // The next server has registered nothing yet: a subscription made meanwhile is not ready. A
      // topic whose `ready` is still pending keeps it: the next server's answer settles it.
      for (const topic of this.#topics.values()) if (topic.settled) armTopic(topic);
      this.#scheduleReconnect(reason);
      // Sends that waited for room on the dead connection go to the offline queue now, as new
      // ones do: left waiting, they held up every later send until a reconnect.
      if (!this.closed && this.#link === undefined) this.writable();
      return;
    }
    this.#giveUp(reason);
  }

  #giveUp(cause: IpcError): void {
    // A queued send resolved when it was queued, so losing it now must at least be told.
    let unsent = 0;
    for (const item of this.#offline.drain()) if (item.requestId === undefined) unsent++;
    this.#offlineBytes = 0;
    const reason =
      unsent === 0
        ? cause
        : new IpcError(cause.code, `${cause.message}; ${unsent} queued message(s) discarded unsent`, {
            cause,
          });
    this.#failure = reason.code === ErrorCodes.CLOSED ? closedError(this.what, reason) : reason;
    if (this.#policy) this.#events.emit('giveup', reason, unsent);
    // Named once: our own reasons name this client already, the server's do not.
    const named = reason.message.startsWith(`${this.what}:`)
      ? reason.message
      : `${this.what}: ${reason.message}`;
    // The reason's own code (ERR_IPC_AUTH for a server that now refuses us), as for every other
    // operation: these requests were queued, never sent.
    const pendingError = new IpcError(reason.code, named, { cause: reason });
    this.#pending.failAll(() => pendingError);
    this.#endTopics(reason.code === ErrorCodes.CLOSED ? closedError(this.what) : reason);
    if (reason.code === ErrorCodes.CLOSED) this.peerClosed();
    else this.fail(reason);
  }

  #scheduleReconnect(reason: IpcError): void {
    const policy = this.#policy!;
    if (this.#attempt >= policy.retries) {
      this.#giveUp(
        new IpcError(
          ErrorCodes.PEER_GONE,
          `${this.what}: gave up reconnecting after ${this.#attempt} attempts: ${reason.message}`,
          { cause: reason },
        ),
      );
      return;
    }
    // Exponential backoff with "equal jitter": half the delay fixed, half random, so a crowd of
    // clients dropped together does not come back together. The fixed half starts at minDelayMs,
    // so that is a true minimum.
    const ceiling = Math.min(policy.maxDelayMs, policy.minDelayMs * 2 ** Math.min(this.#attempt + 1, 30));
    const delay = Math.max(policy.minDelayMs, Math.round(ceiling / 2 + (Math.random() * ceiling) / 2));
    this.#attempt++;
    this.#events.emit('reconnecting', this.#attempt, delay);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.#reconnect();
    }, delay);
  }

  async #reconnect(): Promise<void> {
    if (this.closed) return;
    let link: ClientLink<T>;
    try {
      link = await this.#open({ timeout: this.#connectTimeoutMs });
    } catch (err) {
      if (this.closed) return;
      const reason =
        err instanceof IpcError ? err : new IpcError(ErrorCodes.PEER_GONE, String(err), { cause: err });
      if (isFinal(reason)) this.#giveUp(reason);
      else this.#scheduleReconnect(reason);
      return;
    }
    if (this.closed) {
      link.destroy();
      return;
    }
    const attempts = this.#attempt;
    this.#attempt = 0;
    const tooLarge = this.#attach(link);
    this.#events.emit('reconnect', attempts, tooLarge);
  }

  #stopReconnecting(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #endTopics(reason: IpcError): void {
    const subs = [...this.#topics.values()].flatMap((entry) => {
      entry.settle(reason);
      return [...entry.subs];
    });
    this.#topics.clear();
    for (const sub of subs) sub.end(reason);
  }
}

/** Failures that retrying cannot fix: the server refused us or speaks something else. */
function isFinal(reason: IpcError): boolean {
  return (
    reason.code === ErrorCodes.AUTH ||
    reason.code === ErrorCodes.INCOMPATIBLE ||
    reason.code === ErrorCodes.BAD_FRAME
  );
}

function noop(): void {}

/**
 * Connects to `tcp://host:port`, `unix:///path` or `pipe://name` and resolves once the handshake
 * passed. `timeout` / `signal` bound this first connection.
 * @throws ERR_IPC_NOT_FOUND when nobody listens; ERR_IPC_AUTH when refused; ERR_IPC_INCOMPATIBLE
 *   for another protocol version or codec; ERR_IPC_TIMEOUT; TypeError/RangeError for bad options.
 */
export async function connect<T = unknown>(url: string, opts?: ConnectOptions<T>): Promise<SocketClient<T>> {
  checkWaitOptions(opts);
  const address = parseAddress(url);
  const client = new SocketClient<T>(formatAddress(address), address, opts);
  try {
    await client.start(opts);
  } catch (err) {
    client.destroy();
    throw err;
  }
  return client;
}
