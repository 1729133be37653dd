/**
 * The embedded store: one SQLite file (WAL) per queue in the runtime directory, shared by every
 * process that opens the queue. Every operation is one `BEGIN IMMEDIATE` transaction; a busy
 * database is retried asynchronously (the event loop never blocks on another process's lock, and
 * the operations that pile up meanwhile join the next group commit).
 *
 * Timed transitions (a delay or lease running out, a ttl passing) are applied lazily by the next
 * transaction that looks ("the sweep"), so nothing runs in the background; a waiting consumer is
 * told when the next one is due and looks then.
 *
 * Wake-ups: a consumer that finds nothing arms its row in `waiters` in the same transaction; a
 * producer disarms the armed rows in its send transaction and rings their doorbells after the
 * commit. SQLite serializes the two transactions, so either the consumer saw the message or the
 * producer saw the armed row: a wake-up is never lost.
 */
import { randomInt } from 'node:crypto';
import { accessSync, constants, existsSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import type BetterSqlite3 from 'better-sqlite3';
import { closedError, fromSystemError } from '../core/errors.js';
import { isAlive, selfIdentity } from '../core/process-identity.js';
import { checkRegistry, register, unregister } from '../core/registry.js';
import { crashpoint } from './crashpoint.js';
import { type Doorbell, type DoorbellTransport, RING_MESSAGES, RING_ROOM, type Ringer } from './doorbell.js';
import { queuePath, removeQueueFiles } from './queue-files.js';
import { RoomAlarm } from './room-alarm.js';
import { removeDeadBells, socketDoorbells } from './socket-doorbell.js';
import { Checkpointer } from './sqlite-checkpoint.js';
import { isBusy, needsReopen, sqliteError } from './sqlite-errors.js';
import { openDatabase, State } from './sqlite-schema.js';
import { type ClaimedRow, type InsertParams, type MessageRow, Statements } from './sqlite-statements.js';
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

/** How long opening waits for another process that holds the new file's lock. */
const OPEN_BUSY_TIMEOUT_MS = 10_000;

/** How often, at most, a process deletes expired dedupe keys. */
const KEY_PRUNE_INTERVAL_MS = 10_000;

interface SqliteReceipt {
  seq: number;
  lease: number;
  /** Body bytes, to keep the totals without reading the row back. */
  size: number;
}

interface Connection {
  db: BetterSqlite3.Database;
  sql: Statements;
  /** Runs a function in BEGIN IMMEDIATE … COMMIT, then checkpoints the WAL if it is due. */
  immediate<T>(work: () => T): T;
}

/** Addresses to ring after a commit, by RING_* kind. */
interface Rings {
  messages: string[];
  room: string[];
}

const NO_RINGS: Rings = { messages: [], room: [] };

function toStored(row: MessageRow): StoredMessage {
  return {
    id: row.id,
    body: row.body,
    type: row.type,
    priority: row.priority,
    attempts: row.attempts,
    enqueuedAt: row.enqueued,
  };
}

function byDeliveryOrder(a: { priority: number; seq: number }, b: { priority: number; seq: number }): number {
  return b.priority - a.priority || a.seq - b.seq;
}

/** {@link byDeliveryOrder} for claimed rows: [seq, id, type, priority, …]. */
function rowsByDeliveryOrder(a: ClaimedRow, b: ClaimedRow): number {
  return b[3] - a[3] || a[0] - b[0];
}

function sum(values: readonly number[]): number {
  let total = 0;
  for (const value of values) total += value;
  return total;
}

/**
 * Waits before retrying a busy database: one turn of the event loop, then 1 ms at a time. Spinning
 * longer steals the CPU from the lock holder on a machine with fewer cores than busy processes
 * (every failed attempt also costs a thrown error), and sleeps longer than a transaction (about a
 * millisecond for a full batch) leave the lock idle. The event loop stays free throughout.
 */
async function backoff(attempt: number): Promise<void> {
  if (attempt === 0) await nextTurn();
  else await sleep(1);
}

class SqliteStore implements Store {
  readonly #path: string;
  readonly #what: string;
  readonly #options: StoreOpenOptions;
  readonly #doorbells: DoorbellTransport;
  readonly #ringer: Ringer;
  #conn: Connection | undefined;
  #bell: Promise<Doorbell> | undefined;
  #bellAddress: string | undefined;
  #closed = false;
  #nextKeyPrune = 0;
  readonly #roomAlarm = new RoomAlarm(() => this.#onRing(RING_ROOM));

  constructor(path: string, what: string, options: StoreOpenOptions, conn: Connection) {
    this.#path = path;
    this.#what = what;
    this.#options = options;
    this.#conn = conn;
    this.#doorbells = socketDoorbells;
    this.#ringer = this.#doorbells.ringer((address) => this.#forgetWaiter(address));
  }

  // ---- the transaction runner -------------------------------------------------------------------

  /** Runs `work` in one immediate transaction, retrying while the database is busy. */
  async #write<T>(work: (sql: Statements) => T): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      if (this.#closed) throw closedError(this.#what);
      try {
        this.#conn ??= connect(this.#path, this.#options.durability, this.#what).conn;
        const conn = this.#conn;
        return conn.immediate(() => work(conn.sql));
      } catch (err) {
        if (isBusy(err)) {
          await backoff(attempt);
          continue;
        }
        if (needsReopen(err)) this.#dropConnection();
        throw sqliteError(err, this.#what);
      }
    }
  }

  #dropConnection(): void {
    const conn = this.#conn;
    this.#conn = undefined;
    try {
      conn?.db.close();
    } catch {}
  }

  // ---- wake-ups --------------------------------------------------------------------------------

  /**
   * Starts this process's doorbell and registers it, once. A start that fails (a planted
   * `.mq-bells`, no fd left) is forgotten, so the next wait tries again rather than fail for good.
   */
  #ensureBell(): Promise<Doorbell> {
    this.#bell ??= this.#startBell().catch((err: unknown) => {
      this.#bell = undefined;
      throw err;
    });
    return this.#bell;
  }

  #startBell(): Promise<Doorbell> {
    return (async () => {
      const bell = await this.#doorbells.listen((kinds) => this.#onRing(kinds));
      const me = selfIdentity();
      try {
        const stale = await this.#write((sql) => {
          sql.addWaiter.run(bell.address, me.pid, me.startTime);
          const gone = sql.waiters
            .all()
            .filter((w) => w.address !== bell.address && !isAlive({ pid: w.pid, startTime: w.started }));
          for (const w of gone) sql.removeWaiter.run(w.address);
          return gone;
        });
        for (const w of stale) {
          if (!w.address.startsWith('\0')) rmSync(w.address, { force: true });
        }
      } catch (err) {
        bell.close();
        throw err;
      }
      this.#bellAddress = bell.address;
      return bell;
    })();
  }

  #onRing(kinds: number): void {
    if (this.#closed) return;
    if (kinds & RING_MESSAGES) this.#options.onWake('messages');
    if (kinds & RING_ROOM) this.#options.onWake('room');
  }

  /** Rings what a transaction disarmed; our own bell is answered without a socket. */
  #ring(rings: Rings): void {
    for (const [addresses, kind] of [
      [rings.messages, RING_MESSAGES],
      [rings.room, RING_ROOM],
    ] as const) {
      for (const address of addresses) {
        if (address === this.#bellAddress) queueMicrotask(() => this.#onRing(kind));
        else this.#ringer.ring(address, kind);
      }
    }
  }

  #forgetWaiter(address: string): void {
    if (this.#closed) return;
    this.#write((sql) => sql.removeWaiter.run(address)).catch(() => {});
  }

  /** Disarms the waiters for `kinds` in the current transaction; returns whom to ring. */
  static #disarm(sql: Statements, messages: boolean, room: boolean): Rings {
    if (!messages && !room) return NO_RINGS;
    return {
      messages: messages ? sql.disarm.all(RING_MESSAGES, RING_MESSAGES) : [],
      room: room ? sql.disarm.all(RING_ROOM, RING_ROOM) : [],
    };
  }

  // ---- the sweep ---------------------------------------------------------------------------------

  /** Applies the timed transitions due by `now`; returns the live bytes it removed (and how many). */
  #sweep(sql: Statements, now: number): { freed: number; bytes: number } {
    sql.promote.run(now);
    sql.requeueExpired.run(now, this.#options.maxAttempts);
    const died = sql.killExpired.all(now, now, this.#options.maxAttempts);
    const dropped = sql.dropStale.all(now);
    const freed = died.length + dropped.length;
    if (freed === 0) return { freed: 0, bytes: 0 };
    const bytes = sum(died) + sum(dropped);
    sql.addTotals.run(-freed, -bytes);
    return { freed, bytes };
  }

  // ---- Store -----------------------------------------------------------------------------------

  async send(request: SendRequest): Promise<SendOutcome[]> {
    const { maxMessages, maxBytes } = request;
    const bounded = maxMessages !== undefined || maxBytes !== undefined;
    if (bounded && request.armRoom) await this.#ensureBell();
    const window = this.#options.dedupeWindowMs;
    const { outcomes, rings, roomAt } = await this.#write((sql) => {
      const now = Date.now();
      const outcomes: SendOutcome[] = [];
      let live = 0;
      let bytes = 0;
      let swept = 0;
      if (bounded) {
        swept = this.#sweep(sql, now).freed;
        const totals = sql.totals.get()!;
        live = totals.live;
        bytes = totals.bytes;
      }
      if (now >= this.#nextKeyPrune && request.messages.some((m) => m.dedupe)) {
        sql.pruneKeys.run(now);
        this.#nextKeyPrune = now + KEY_PRUNE_INTERVAL_MS;
      }
      let sent = 0;
      let sentBytes = 0;
      let full = false;
      const rows: InsertParams = [];
      const { messages } = request;
      // Per transaction, not per run: a send is a run of one, so per run meant two per message.
      const fresh: boolean[] = [];
      const seen = new Set<string>();
      let at = 0;
      for (const size of request.groups) {
        const end = at + size;
        // A run is judged whole before any of it is written: which messages are new (not
        // duplicates, also of an earlier one in the run), and whether all of those fit.
        fresh.length = 0;
        if (!full) {
          seen.clear();
          let count = 0;
          let runBytes = 0;
          for (let i = at; i < end; i++) {
            const m = messages[i]!;
            let duplicate = false;
            if (m.dedupe) {
              const until = sql.keyUntil.get(m.id);
              duplicate = (until !== undefined && until > now) || seen.has(m.id);
              if (window > 0) seen.add(m.id);
            }
            fresh.push(!duplicate);
            if (!duplicate) {
              count++;
              runBytes += m.body.length;
            }
          }
          full =
            (maxMessages !== undefined && live + sent + count > maxMessages) ||
            (maxBytes !== undefined && bytes + sentBytes + runBytes > maxBytes);
        }
        for (let i = at; i < end; i++) {
          const m = messages[i]!;
          if (full) {
            outcomes.push('full');
            continue;
          }
          if (!fresh[i - at]) {
            outcomes.push('duplicate');
            continue;
          }
          if (m.dedupe) sql.putKey.run(m.id, now + window);
          rows.push(
            m.id,
            m.type,
            m.priority,
            m.delayMs > 0 ? State.DELAYED : State.READY,
            m.delayMs > 0 ? now + m.delayMs : null,
            m.ttlMs > 0 ? now + m.ttlMs : null,
            now,
            m.body,
          );
          sent++;
          sentBytes += m.body.length;
          outcomes.push('sent');
        }
        at = end;
      }
      // The rows go in after the checks: the checks read only the keys and totals, never the rows.
      sql.insertRows(rows);
      if (sent > 0) sql.addTotals.run(sent, sentBytes);
      if (full && request.armRoom && this.#bellAddress) sql.arm.run(RING_ROOM, this.#bellAddress);
      const rings = SqliteStore.#disarm(sql, sent > 0, swept > 0);
      const roomAt = full && request.armRoom ? sql.nextRoom.get() : undefined;
      crashpoint('mq.commit:before');
      return { outcomes, rings, roomAt };
    });
    crashpoint('mq.commit:after');
    this.#ring(rings);
    if (roomAt !== undefined && roomAt !== null) this.#roomAlarm.set(roomAt);
    return outcomes;
  }

  async claim(request: ClaimRequest): Promise<ClaimResult> {
    if (request.arm) await this.#ensureBell();
    const { rows, nextDueAt, rings, leaseUntil, lease, settled } = await this.#write((sql) => {
      const now = Date.now();
      const applied = request.settle?.length ? this.#applySettles(sql, request.settle, now) : undefined;
      const { freed } = this.#sweep(sql, now);
      const leaseUntil = now + request.leaseMs;
      const lease = randomInt(1, 2 ** 47);
      const types = request.types;
      let rows: ClaimedRow[];
      if (types === undefined) {
        rows = sql.claimAny.all(leaseUntil, lease, this.#options.maxAttempts, request.max);
      } else if (types.length === 1) {
        rows = sql.claimType.all(leaseUntil, lease, this.#options.maxAttempts, types[0]!, request.max);
      } else {
        const candidates = types.flatMap((type) => sql.readyOfType.all(type, request.max));
        candidates.sort(byDeliveryOrder);
        rows = [];
        for (const candidate of candidates.slice(0, request.max)) {
          const row = sql.claimOne.get(leaseUntil, lease, this.#options.maxAttempts, candidate.seq);
          if (row) rows.push(row);
        }
      }
      let nextDueAt: number | undefined;
      if (rows.length === 0) {
        if (request.arm && this.#bellAddress) sql.arm.run(RING_MESSAGES, this.#bellAddress);
        const inflight = sql.nextInflight.get();
        const delayed = sql.nextDelayed.get();
        nextDueAt =
          inflight === undefined ? delayed : delayed === undefined ? inflight : Math.min(inflight, delayed);
      }
      const rings = SqliteStore.#disarm(
        sql,
        applied?.requeued ?? false,
        freed > 0 || (applied?.freed ?? false),
      );
      return { rows, nextDueAt, rings, leaseUntil, lease, settled: applied?.results };
    });
    if (settled) crashpoint('mq.settle:after');
    crashpoint('mq.claim:after');
    this.#ring(rings);
    rows.sort(rowsByDeliveryOrder);
    const messages: ClaimedMessage[] = rows.map(([seq, id, type, priority, attempts, enqueued, body]) => ({
      receipt: { seq, lease, size: body.length } satisfies SqliteReceipt,
      id,
      body,
      type,
      priority,
      attempts,
      enqueuedAt: enqueued,
      leaseUntil,
    }));
    return { messages, nextDueAt, settled };
  }

  async settle(ops: readonly SettleOp[]): Promise<SettleResult[]> {
    const { results, rings } = await this.#write((sql) => {
      const applied = this.#applySettles(sql, ops, Date.now());
      return { results: applied.results, rings: SqliteStore.#disarm(sql, applied.requeued, applied.freed) };
    });
    crashpoint('mq.settle:after');
    this.#ring(rings);
    return results;
  }

  /**
   * Applies settles in the current transaction. `requeued`: a message became claimable, or will
   * sooner than waiting consumers were told, so they must look again.
   */
  #applySettles(
    sql: Statements,
    ops: readonly SettleOp[],
    now: number,
  ): { results: SettleResult[]; freed: boolean; requeued: boolean } {
    const results: SettleResult[] = [];
    let freed = 0;
    let freedBytes = 0;
    let requeued = false;
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i]!;
      const { seq, lease, size } = op.receipt as SqliteReceipt;
      switch (op.kind) {
        case 'ack': {
          // A run of acks under one lease (one claim's messages, usually) is one statement.
          let end = i + 1;
          while (
            end < ops.length &&
            ops[end]!.kind === 'ack' &&
            (ops[end]!.receipt as SqliteReceipt).lease === lease
          )
            end++;
          if (end === i + 1) {
            const ok = sql.ack.run(seq, lease, now).changes === 1;
            results.push(ok);
            if (ok) {
              freed++;
              freedBytes += size;
            }
            break;
          }
          const seqs: number[] = [];
          for (let k = i; k < end; k++) seqs.push((ops[k]!.receipt as SqliteReceipt).seq);
          const deleted = new Set(sql.ackMany.all(JSON.stringify(seqs), lease, now));
          for (let k = i; k < end; k++) {
            const receipt = ops[k]!.receipt as SqliteReceipt;
            // delete, not has: a second ack of the same delivery in the run fails, as it would alone.
            const ok = deleted.delete(receipt.seq);
            results.push(ok);
            if (ok) {
              freed++;
              freedBytes += receipt.size;
            }
          }
          i = end - 1;
          break;
        }
        case 'nack': {
          const row = sql.nack.get({ max: this.#options.maxAttempts, delay: op.delayMs, now, seq, lease });
          results.push(row !== undefined);
          if (row?.state === State.DEAD) {
            freed++;
            freedBytes += size;
          } else if (row) {
            requeued = true;
          }
          break;
        }
        case 'extend': {
          const until = now + op.leaseMs;
          const before = sql.leaseEnd.get(seq, lease, now);
          if (before === undefined) {
            results.push(false);
            break;
          }
          sql.extend.run(until, seq, lease, now);
          results.push(until);
          // Waiting consumers were told when this lease ends and wait until then (see
          // ClaimResult.nextDueAt): one that now ends sooner must be announced, as a nack is.
          requeued ||= until < before;
          break;
        }
        case 'release': {
          const changed = sql.release.run(seq, lease).changes === 1;
          results.push(changed);
          requeued ||= changed;
          break;
        }
      }
    }
    if (freed > 0) sql.addTotals.run(-freed, -freedBytes);
    return { results, freed: freed > 0, requeued };
  }

  async stats(): Promise<QueueStats> {
    const { stats, rings } = await this.#write((sql) => {
      const { freed } = this.#sweep(sql, Date.now());
      const byPriority = Object.fromEntries(sql.byPriority.all().map((row) => [String(row.priority), row.n]));
      // fromEntries defines the keys: assigning one, a type named '__proto__' would set the
      // object's prototype instead and go uncounted.
      const byType = Object.fromEntries(sql.byType.all().map((row) => [row.type, row.n]));
      const count = (state: number) => sql.countState[state]!.get()!;
      const stats: QueueStats = {
        ready: count(State.READY),
        delayed: count(State.DELAYED),
        inflight: count(State.INFLIGHT),
        dead: count(State.DEAD),
        byPriority,
        byType,
      };
      return { stats, rings: SqliteStore.#disarm(sql, false, freed > 0) };
    });
    this.#ring(rings);
    return stats;
  }

  async peek(limit: number): Promise<StoredMessage[]> {
    const { rows, rings } = await this.#write((sql) => {
      const { freed } = this.#sweep(sql, Date.now());
      return { rows: sql.peek.all(limit), rings: SqliteStore.#disarm(sql, false, freed > 0) };
    });
    this.#ring(rings);
    return rows.map(toStored);
  }

  async deadLetters(limit: number): Promise<StoredMessage[]> {
    const { rows, rings } = await this.#write((sql) => {
      const { freed } = this.#sweep(sql, Date.now());
      return { rows: sql.dead.all(limit), rings: SqliteStore.#disarm(sql, false, freed > 0) };
    });
    this.#ring(rings);
    return rows.map(toStored);
  }

  async replayDead(): Promise<number> {
    const { count, rings } = await this.#write((sql) => {
      const { freed } = this.#sweep(sql, Date.now());
      const sizes = sql.replay.all();
      if (sizes.length > 0) sql.addTotals.run(sizes.length, sum(sizes));
      // The sweep may have freed more room than the replayed messages take back: producers look.
      return { count: sizes.length, rings: SqliteStore.#disarm(sql, sizes.length > 0, freed > 0) };
    });
    this.#ring(rings);
    return count;
  }

  async purge(): Promise<number> {
    const { count, rings } = await this.#write((sql) => {
      const count = sql.purge.run().changes;
      sql.resetTotals.run();
      return { count, rings: SqliteStore.#disarm(sql, false, count > 0) };
    });
    this.#ring(rings);
    return count;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    const bell = this.#bell ? await this.#bell.catch(() => undefined) : undefined;
    if (bell) {
      try {
        await this.#write((sql) => sql.removeWaiter.run(bell.address));
      } catch {
        // Best effort: a stale row is removed by the next process that finds its owner dead.
      }
      bell.close();
    }
    this.#closed = true;
    this.#roomAlarm.close();
    this.#dropConnection();
    await this.#ringer.close();
  }
}

function connect(
  path: string,
  durability: 'normal' | 'fsync',
  what: string,
): { conn: Connection; created: boolean } {
  const { db, created } = openDatabase(path, durability, what);
  const runner = db.transaction((work: () => unknown) => work());
  const checkpointer = new Checkpointer(db, path);
  const conn: Connection = {
    db,
    sql: new Statements(db),
    immediate: <T>(work: () => T) => {
      const result = runner.immediate(work) as T;
      checkpointer.afterCommit();
      return result;
    },
  };
  return { conn, created };
}

/** The embedded SQLite store: `store: 'sqlite'`, the default. */
export const sqliteDriver: StoreDriver = {
  name: 'sqlite',
  async open(name, options) {
    const path = queuePath(name);
    const what = `message queue '${name}'`;
    const deadline = Date.now() + OPEN_BUSY_TIMEOUT_MS;
    for (let attempt = 0; ; attempt++) {
      try {
        const { conn, created } = connect(path, options.durability, what);
        try {
          if (created) register('queue', name, path);
        } catch (err) {
          // An unusable registry (a planted symlink: ERR_IPC_UNSAFE_PATH) fails the open: the
          // connection nobody will close goes now.
          conn.db.close();
          throw err;
        }
        return new SqliteStore(path, what, options, conn);
      } catch (err) {
        // Another process is creating the file or switching it to WAL: wait for it.
        if (!isBusy(err) || Date.now() > deadline) throw sqliteError(err, what);
        await backoff(attempt);
      }
    }
  },
  async remove(name) {
    const path = queuePath(name);
    try {
      const existed = existsSync(path);
      // Everything that can refuse is asked before anything goes, so that a refusal leaves the
      // queue as it was: the bells and the registry check their directories (a planted symlink is
      // ERR_IPC_UNSAFE_PATH), and the runtime directory must let this process unlink (EACCES is
      // ERR_IPC_PERMISSION; EROFS, a read-only file system, ERR_IPC_SYSTEM). The doorbells are this store's: those of consumers killed
      // with SIGKILL go with the queue.
      removeDeadBells();
      checkRegistry();
      if (existed) accessSync(dirname(path), constants.W_OK | constants.X_OK);
      removeQueueFiles(path);
      // Forgotten last: a removal that failed above is still listed by `ipckit ls`, to retry.
      unregister('queue', name);
      return existed;
    } catch (err) {
      throw fromSystemError(err, `message queue '${name}' cannot be removed`);
    }
  },
};
