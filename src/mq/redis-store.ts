/**
 * The Redis store: `store: 'redis://host:6379'` (or `rediss://` for TLS). Every queue operation is
 * one Lua script (redis-scripts.ts), so it is atomic and judged by Redis's clock: producers and
 * consumers on several hosts share a queue without a shared file system or shared pids.
 *
 * Connections: one command connection per opened queue, and a subscriber connection for wake-ups
 * once the queue first waits (redis-wake.ts). ioredis reconnects by itself; commands issued while
 * Redis is away wait for it rather than fail (`maxRetriesPerRequest: null`), so a consumer outlives
 * a Redis restart without being recreated, and scripts missing from a restarted server are loaded
 * again on NOSCRIPT by ioredis's `defineCommand`.
 */
import { randomInt } from 'node:crypto';
import type { Redis, RedisOptions } from 'ioredis';
import type * as Msgpackr from 'msgpackr';
import { closedError, ErrorCodes, IpcError } from '../core/errors.js';
import { lazy, lazyModule } from '../core/lazy-module.js';
import { redisError } from './redis-errors.js';
import { parseRedisUrl, type QueueKeys, queueKeys, type RedisLocation } from './redis-keys.js';
import { REDIS_SCHEMA_VERSION, SCRIPT_KEYS, SCRIPTS, scriptSource } from './redis-scripts.js';
import { RedisWake } from './redis-wake.js';
import { RoomAlarm } from './room-alarm.js';
import type {
  ClaimedMessage,
  ClaimRequest,
  ClaimResult,
  QueueStats,
  SendOutcome,
  SendRequest,
  SettleOp,
  SettleResult,
  Store,
  StoreDriver,
  StoredMessage,
  StoreOpenOptions,
} from './store.js';

/** How long opening waits for the first connection before it reports the server unreachable. */
const CONNECT_TIMEOUT_MS = 10_000;

const OUTCOMES: readonly SendOutcome[] = ['sent', 'duplicate', 'full'];

const SETTLE_KIND = { ack: 'a', nack: 'n', extend: 'e', release: 'r' } as const;

interface RedisReceipt {
  /** The message's member: its zero-padded sequence number. */
  m: string;
  /** The delivery's lease token: a stale settle does not match it. */
  lease: number;
}

type Arg = string | number | Buffer;
type Script = (...args: Arg[]) => Promise<unknown>;

/** The connection with the scripts defined on it (ioredis adds a method per defineCommand). */
type ScriptedRedis = Redis & Record<`${keyof typeof SCRIPTS}${'' | 'Buffer'}`, Script>;

type RedisClass = typeof import('ioredis').Redis;

let ioredis: Promise<RedisClass> | undefined;

/** ioredis, loaded on first use: processes that never touch Redis do not pay for it. */
function loadClient(what: string): Promise<RedisClass> {
  const loading =
    ioredis ??
    import('ioredis').then(
      (module) => module.Redis,
      (err) => {
        ioredis = undefined;
        throw new IpcError(ErrorCodes.NATIVE_UNAVAILABLE, `${what}: the ioredis package is not available`, {
          cause: err,
        });
      },
    );
  ioredis = loading;
  return loading;
}

/** Opens a command connection with the scripts defined; rejects if Redis cannot be reached. */
async function connect(location: RedisLocation, what: string): Promise<ScriptedRedis> {
  const Redis = await loadClient(what);
  const options: RedisOptions = {
    lazyConnect: true,
    // Wait for a reconnect instead of failing: a Redis restart must not end a consumer.
    maxRetriesPerRequest: null,
    connectTimeout: CONNECT_TIMEOUT_MS,
    retryStrategy: (times) => Math.min(times * 50, 1000),
    connectionName: 'ipckit-mq',
    // Only the typed ones parseRedisUrl accepts, none of the settings above that the store's
    // promises rest on; the URL itself carries no query, which ioredis would rank above these.
    ...location.options,
  };
  const redis = new Redis(location.connectUrl, options) as ScriptedRedis;
  // The socket's own error (ECONNREFUSED, a TLS failure): connect() rejects only with "Connection is closed".
  let socketError: unknown;
  const onError = (err: unknown) => {
    socketError ??= err;
  };
  redis.on('error', onError);
  for (const [name, body] of Object.entries(SCRIPTS)) {
    redis.defineCommand(name, { numberOfKeys: SCRIPT_KEYS, lua: scriptSource(body) });
  }
  try {
    await redis.connect();
  } catch (err) {
    redis.disconnect();
    const cause = socketError ?? err;
    const failure = redisError(cause, what);
    // Refused, unresolvable, timed out, a failed TLS handshake: all "cannot reach"; credentials apart.
    const code = failure.code === ErrorCodes.AUTH ? ErrorCodes.AUTH : ErrorCodes.NOT_FOUND;
    const detail = (cause as Error)?.message ?? String(cause);
    const problem = code === ErrorCodes.AUTH ? 'Redis refused the credentials at' : 'cannot reach Redis at';
    throw new IpcError(code, `${what}: ${problem} ${location.display}: ${detail}`, { cause });
  }
  redis.off('error', onError);
  redis.on('error', () => {
    // Reported through the commands that fail; reconnection is ioredis's business.
  });
  // ioredis selects the database as it connects but, when the server has no such database, only
  // reports it as an 'error' event and goes on in database 0: queues meant to be apart would share it.
  const db = redis.options.db ?? 0;
  if (db !== 0) {
    try {
      await redis.select(db);
    } catch (err) {
      redis.disconnect();
      // An ACL that forbids SELECT is a refusal of this user, as for any other command.
      const refused = redisError(err, what).code === ErrorCodes.AUTH;
      throw new IpcError(
        refused ? ErrorCodes.AUTH : ErrorCodes.NOT_FOUND,
        `${what}: Redis at ${location.display} ${refused ? 'refuses to select' : 'has no'} database ${db}: ${(err as Error)?.message ?? String(err)}`,
        { cause: err },
      );
    }
  }
  return redis;
}

// Loaded with the first Redis queue, not with ipckit.
const msgpackr = lazyModule<typeof Msgpackr>('msgpackr');
/** Arrays only, no record extension: the scripts read these with Redis's cmsgpack. */
const packr = lazy(() => new (msgpackr().Packr)({ useRecords: false }));

function str(value: unknown): string {
  return Buffer.isBuffer(value) ? value.toString('utf8') : String(value);
}

/**
 * Reads what the scripts' listed() returns: metadata packed 6 values a message (member, id, type,
 * priority, attempts, enqueued), and the bodies.
 */
function listedMessages(meta: Buffer, bodies: Buffer[]): { m: string; stored: StoredMessage }[] {
  const flat = msgpackr().unpack(meta) as unknown[];
  const out: { m: string; stored: StoredMessage }[] = [];
  if (!Array.isArray(flat)) return out;
  for (let i = 0, k = 0; i + 5 < flat.length; i += 6, k++) {
    out.push({
      m: flat[i] as string,
      stored: {
        id: String(flat[i + 1]),
        type: String(flat[i + 2]),
        // cmsgpack writes large integers as 64-bit ones, which msgpackr reads as bigint.
        priority: Number(flat[i + 3]),
        attempts: Number(flat[i + 4]),
        enqueuedAt: Number(flat[i + 5]),
        body: bodies[k]!,
      },
    });
  }
  return out;
}

/**
 * A flat HGETALL reply (field, count, …) as an object. fromEntries defines the keys: assigning
 * one, a type named '__proto__' would set the object's prototype instead and go uncounted.
 */
function counts(flat: readonly string[]): Record<string, number> {
  const entries: [string, number][] = [];
  for (let i = 0; i < flat.length; i += 2) entries.push([flat[i]!, Number(flat[i + 1])]);
  return Object.fromEntries(entries);
}

/** Settles packed for apply_settles: 4 values each (kind, member, lease, ms). */
function packSettles(ops: readonly SettleOp[]): Buffer {
  const flat: (string | number)[] = [];
  for (const op of ops) {
    const { m, lease } = op.receipt as RedisReceipt;
    const ms = op.kind === 'nack' ? op.delayMs : op.kind === 'extend' ? op.leaseMs : 0;
    flat.push(SETTLE_KIND[op.kind], m, lease, ms);
  }
  return packr().pack(flat);
}

/** What apply_settles returns: 0 for a lost lease, else 1, or an extend's new lease end. */
function settleResults(list: unknown, ops: readonly SettleOp[]): SettleResult[] {
  return (list as number[]).map((v, i) => {
    const n = Number(v);
    return n === 0 ? false : ops[i]?.kind === 'extend' ? n : true;
  });
}

class RedisStore implements Store {
  readonly remote = true;
  readonly #redis: ScriptedRedis;
  readonly #keys: QueueKeys;
  readonly #what: string;
  readonly #options: StoreOpenOptions;
  /** The arguments every script starts with. */
  readonly #head: readonly Arg[];
  #wake: RedisWake | undefined;
  #closed = false;
  readonly #roomAlarm = new RoomAlarm(() => {
    if (!this.#closed) this.#options.onWake('room');
  });

  constructor(redis: ScriptedRedis, keys: QueueKeys, what: string, options: StoreOpenOptions) {
    this.#redis = redis;
    this.#keys = keys;
    this.#what = what;
    this.#options = options;
    this.#head = [...keys.keys, keys.typePrefix, keys.channel, options.maxAttempts];
  }

  /** Runs a script (its Buffer variant with `buffers`), translating errors. */
  async #run(name: keyof typeof SCRIPTS, args: readonly Arg[], buffers = false): Promise<unknown> {
    if (this.#closed) throw closedError(this.#what);
    const script = this.#redis[buffers ? (`${name}Buffer` as const) : name];
    try {
      return await script.call(this.#redis, ...this.#head, ...args);
    } catch (err) {
      if (this.#closed) throw closedError(this.#what, err);
      throw redisError(err, this.#what);
    }
  }

  /** Subscribes for wake-ups, once; a wait armed after this resolves is announced. */
  async #subscribed(): Promise<void> {
    this.#wake ??= new RedisWake(this.#redis, this.#keys.channel, (kind) => {
      if (!this.#closed) this.#options.onWake(kind);
    });
    try {
      await this.#wake.ready();
    } catch (err) {
      throw redisError(err, this.#what);
    }
  }

  async send(request: SendRequest): Promise<SendOutcome[]> {
    const { maxMessages, maxBytes } = request;
    if ((maxMessages !== undefined || maxBytes !== undefined) && request.armRoom) await this.#subscribed();
    const args: Arg[] = [
      this.#options.dedupeWindowMs,
      maxMessages ?? -1,
      maxBytes ?? -1,
      request.armRoom ? 1 : 0,
    ];
    const flat: (string | number)[] = [];
    for (const m of request.messages)
      flat.push(m.id, m.dedupe ? 1 : 0, m.type, m.priority, m.delayMs, m.ttlMs);
    args.push(packr().pack(flat));
    args.push(packr().pack(request.groups));
    for (const m of request.messages) {
      args.push(Buffer.from(m.body.buffer, m.body.byteOffset, m.body.length));
    }
    const askedAt = Date.now();
    const [outcomes, roomIn] = (await this.#run('ipckitMqSend', args)) as [number[], number];
    // In the server's clock, reckoned from before the call as a claim's next due time is.
    if (Number(roomIn) >= 0) this.#roomAlarm.set(askedAt + Number(roomIn));
    return outcomes.map((o) => OUTCOMES[o]!);
  }

  async claim(request: ClaimRequest): Promise<ClaimResult> {
    if (request.arm) await this.#subscribed();
    const settle = request.settle ?? [];
    // As SQLite's: random, so that a delivery from before the queue was removed and made again
    // never matches one of the new queue (see CLAIM).
    const token = randomInt(1, 2 ** 47);
    const args: Arg[] = [request.max, request.leaseMs, request.arm ? 1 : 0, packSettles(settle), token];
    args.push(...(request.types ?? []));
    const askedAt = Date.now();
    const [settled, leaseUntil, nextDue, lease, meta, bodies] = (await this.#run(
      'ipckitMqClaim',
      args,
      true,
    )) as [unknown[], number, number, number, Buffer, Buffer[]];
    const messages: ClaimedMessage[] = [];
    for (const { m, stored } of listedMessages(meta, bodies)) {
      messages.push({ ...stored, receipt: { m, lease: Number(lease) } satisfies RedisReceipt, leaseUntil });
    }
    // The script's times are the server's clock; the waiting consumer sets its timer by its own.
    // Reckoned from before the call (the server's now is leaseUntil - leaseMs), so at worst a
    // round trip early, which costs one more claim: compared with this clock as it is, a host
    // behind the server's slept through the moment by as much, one ahead claimed in a busy loop.
    const dueIn = Number(nextDue) - (Number(leaseUntil) - request.leaseMs);
    return {
      messages,
      nextDueAt: messages.length === 0 && Number(nextDue) >= 0 ? askedAt + dueIn : undefined,
      settled: request.settle ? settleResults(settled, settle) : undefined,
    };
  }

  async settle(ops: readonly SettleOp[]): Promise<SettleResult[]> {
    return settleResults(await this.#run('ipckitMqSettle', [packSettles(ops)]), ops);
  }

  async stats(): Promise<QueueStats> {
    const [ready, delayed, inflight, dead, priorities, types] = (await this.#run('ipckitMqStats', [])) as [
      number,
      number,
      number,
      number,
      string[],
      string[],
    ];
    return { ready, delayed, inflight, dead, byPriority: counts(priorities), byType: counts(types) };
  }

  async peek(limit: number): Promise<StoredMessage[]> {
    const [meta, bodies] = (await this.#run('ipckitMqPeek', [limit], true)) as [Buffer, Buffer[]];
    return listedMessages(meta, bodies).map((l) => l.stored);
  }

  async deadLetters(limit: number): Promise<StoredMessage[]> {
    const [meta, bodies] = (await this.#run('ipckitMqDead', [limit], true)) as [Buffer, Buffer[]];
    return listedMessages(meta, bodies).map((l) => l.stored);
  }

  async replayDead(): Promise<number> {
    return Number(await this.#run('ipckitMqReplay', []));
  }

  async purge(): Promise<number> {
    return Number(await this.#run('ipckitMqPurge', []));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#roomAlarm.close();
    this.#wake?.close();
    this.#redis.disconnect();
  }
}

/** Checks (stamping a new queue) that the keys of `name` hold an ipckit queue of this version. */
async function stamp(redis: ScriptedRedis, keys: QueueKeys, what: string): Promise<void> {
  let version: unknown;
  try {
    version = await redis.ipckitMqOpen(...keys.keys, keys.typePrefix, keys.channel, 1, REDIS_SCHEMA_VERSION);
  } catch (err) {
    throw redisError(err, what);
  }
  if (str(version) !== REDIS_SCHEMA_VERSION) {
    throw new IpcError(
      ErrorCodes.INCOMPATIBLE,
      `${what}: the queue in Redis has schema version ${str(version)}; this ipckit reads version ${REDIS_SCHEMA_VERSION}`,
    );
  }
}

/**
 * The Redis store for `url`: `redis://[user:pass@]host[:port][/db][?prefix=NAME&…]`, or
 * `rediss://` for TLS. Keys are `<prefix>:mq:{<queue>}:…`, the prefix `ipckit` unless the URL
 * names one. A malformed URL, or a query parameter parseRedisUrl does not take, throws
 * ERR_IPC_INVALID_NAME at once.
 */
export function redisDriver(url: string): StoreDriver {
  const location = parseRedisUrl(url);
  return {
    name: 'redis',
    async open(name, options) {
      const what = `message queue '${name}'`;
      const redis = await connect(location, what);
      const keys = queueKeys(location.prefix, name);
      try {
        await stamp(redis, keys, what);
      } catch (err) {
        redis.disconnect();
        throw err;
      }
      return new RedisStore(redis, keys, what, options);
    },
    async remove(name) {
      const what = `message queue '${name}'`;
      const redis = await connect(location, what);
      const keys = queueKeys(location.prefix, name);
      try {
        return (await redis.ipckitMqRemove(...keys.keys, keys.typePrefix, keys.channel, 1)) === 1;
      } catch (err) {
        throw redisError(err, what);
      } finally {
        redis.disconnect();
      }
    },
  };
}
