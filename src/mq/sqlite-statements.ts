/**
 * Every SQL statement the SQLite store runs, prepared once per connection. Each one is written to
 * walk one of the partial indexes of sqlite-schema.ts, so its cost does not grow with the number of
 * messages waiting elsewhere in the queue.
 */
import type BetterSqlite3 from 'better-sqlite3';

type Database = BetterSqlite3.Database;
type Statement<P extends unknown[] | object = unknown[], R = unknown> = BetterSqlite3.Statement<
  P extends unknown[] ? P : [P],
  R
>;

/** A message row as the listing statements return it. */
export interface MessageRow {
  seq: number;
  id: string;
  type: string;
  priority: number;
  attempts: number;
  enqueued: number;
  body: Buffer;
}

/**
 * A claimed row as the claim statements return it: an array, not an object, because the claim
 * runs while this process holds the write lock, and building seven-property objects there (for
 * every message) keeps every other process waiting longer.
 */
export type ClaimedRow = [
  seq: number,
  id: string,
  type: string,
  priority: number,
  attempts: number,
  enqueued: number,
  body: Buffer,
];

const CLAIMED = 'RETURNING seq, id, type, priority, attempts, enqueued, body';
const LISTED = 'seq, id, type, priority, attempts, enqueued, body';

/** Parameters of a multi-row insert: each row's eight, one row after the other. */
export type InsertParams = (string | number | null | Uint8Array)[];

/** The columns an insert sets, in the order of each row's parameters. */
const INSERT_COLUMNS = ['id', 'type', 'priority', 'state', 'due', 'expires', 'enqueued', 'body'] as const;
const INSERT_WIDTH = INSERT_COLUMNS.length;
const INSERT_ROW = `(${Array(INSERT_WIDTH).fill('?').join(', ')})`;
const INSERT_INTO = `INSERT INTO messages (${INSERT_COLUMNS.join(', ')}) VALUES `;

/**
 * Rows per multi-row insert, largest first: a send of n messages runs about n / 32 statements
 * instead of n, which shortens the time the write lock is held (each statement run costs a
 * round trip through the driver and a VDBE program start on top of the B-tree work).
 */
const INSERT_CHUNKS = [32, 8, 1] as const;

/** The prepared statements of one connection. */
export class Statements {
  /** Multi-row inserts by rows per statement (INSERT_CHUNKS); parameters are the rows' flattened. */
  readonly #insert: Map<number, Statement<[InsertParams]>>;
  readonly keyUntil: Statement<[string], number>;
  readonly putKey: Statement<[string, number]>;
  readonly pruneKeys: Statement<[number]>;
  readonly totals: Statement<[], { live: number; bytes: number }>;
  readonly addTotals: Statement<[number, number]>;
  readonly resetTotals: Statement<[]>;

  readonly disarm: Statement<[number, number], string>;
  readonly arm: Statement<[number, string]>;
  readonly addWaiter: Statement<[string, number, number]>;
  readonly removeWaiter: Statement<[string]>;
  readonly waiters: Statement<[], { address: string; pid: number; started: number }>;

  readonly promote: Statement<[number]>;
  readonly requeueExpired: Statement<[number, number]>;
  readonly killExpired: Statement<[number, number, number], number>;
  readonly dropStale: Statement<[number], number>;

  readonly claimAny: Statement<[number, number, number, number], ClaimedRow>;
  readonly claimType: Statement<[number, number, number, string, number], ClaimedRow>;
  readonly readyOfType: Statement<[string, number], { seq: number; priority: number }>;
  readonly claimOne: Statement<[number, number, number, number], ClaimedRow>;
  readonly nextInflight: Statement<[], number>;
  readonly nextDelayed: Statement<[], number>;
  /**
   * The earliest moment room may free up by itself: a ttl or a lease running out (null: neither
   * can happen). Read only by a send that found the queue full.
   */
  readonly nextRoom: Statement<[], number | null>;

  readonly ack: Statement<[number, number, number]>;
  /** Acks of one lease in one statement: the seqs as a JSON array; returns the seqs it deleted. */
  readonly ackMany: Statement<[string, number, number], number>;
  readonly nack: Statement<
    { max: number; delay: number; now: number; seq: number; lease: number },
    { state: number; size: number }
  >;
  readonly extend: Statement<[number, number, number, number]>;
  /** The end of a live lease (undefined if lost): an extend that shortens it must be announced. */
  readonly leaseEnd: Statement<[number, number, number], number>;
  readonly release: Statement<[number, number]>;

  /** count(*) per state, indexed by state: a literal state lets SQLite count the partial index. */
  readonly countState: Statement<[], number>[];
  readonly byPriority: Statement<[], { priority: number; n: number }>;
  readonly byType: Statement<[], { type: string; n: number }>;
  readonly peek: Statement<[number], MessageRow>;
  readonly dead: Statement<[number], MessageRow>;
  readonly replay: Statement<[], number>;
  readonly purge: Statement<[]>;

  constructor(db: Database) {
    // The statement types are declared on the fields above; `pluck` returns the first column only.
    const p = <S>(sql: string, pluck: boolean | 'raw' = false): S => {
      const statement = db.prepare(sql);
      return (pluck === 'raw' ? statement.raw() : pluck ? statement.pluck() : statement) as unknown as S;
    };
    this.#insert = new Map(
      INSERT_CHUNKS.map((rows) => [rows, p(INSERT_INTO + Array(rows).fill(INSERT_ROW).join(', '))]),
    );
    this.keyUntil = p('SELECT until FROM keys WHERE id = ?', true);
    this.putKey = p(
      'INSERT INTO keys (id, until) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET until = excluded.until',
    );
    this.pruneKeys = p('DELETE FROM keys WHERE until <= ?');
    this.totals = p('SELECT live, bytes FROM totals WHERE one = 1');
    this.addTotals = p('UPDATE totals SET live = live + ?, bytes = bytes + ? WHERE one = 1');
    this.resetTotals = p('UPDATE totals SET live = 0, bytes = 0 WHERE one = 1');

    this.disarm = p('UPDATE waiters SET armed = armed & ~? WHERE armed & ? RETURNING address', true);
    this.arm = p('UPDATE waiters SET armed = armed | ? WHERE address = ?');
    this.addWaiter = p('INSERT OR REPLACE INTO waiters (address, pid, started, armed) VALUES (?, ?, ?, 0)');
    this.removeWaiter = p('DELETE FROM waiters WHERE address = ?');
    this.waiters = p('SELECT address, pid, started FROM waiters');

    this.promote = p('UPDATE messages SET state = 0, due = NULL WHERE state = 3 AND due <= ?');
    // A delivered message no longer expires (see dropStale): its ttl is cleared as it comes back,
    // or it would stay in the expiring index, walked by every sweep and never dropped.
    this.requeueExpired = p(
      'UPDATE messages SET state = 0, due = NULL, lease = NULL, expires = NULL ' +
        'WHERE state = 1 AND due <= ? AND attempts < coalesce(max_attempts, ?)',
    );
    this.killExpired = p(
      'UPDATE messages SET state = 2, due = ?, lease = NULL, expires = NULL ' +
        'WHERE state = 1 AND due <= ? AND attempts >= coalesce(max_attempts, ?) RETURNING length(body)',
      true,
    );
    // Only never-delivered messages (attempts = 0; a prefetched one given back counts as such): a
    // message already delivered is not cut off by its ttl when its lease ends or it is nacked (and
    // has its ttl cleared then, so the index holds only messages that may still expire).
    this.dropStale = p(
      'DELETE FROM messages WHERE expires IS NOT NULL AND expires <= ? AND state IN (0, 3) AND attempts = 0 ' +
        'RETURNING length(body)',
      true,
    );

    this.claimAny = p(
      'UPDATE messages SET state = 1, due = ?, attempts = attempts + 1, lease = ?, max_attempts = ? WHERE seq IN ' +
        `(SELECT seq FROM messages WHERE state = 0 ORDER BY priority DESC, seq LIMIT ?) ${CLAIMED}`,
      'raw',
    );
    this.claimType = p(
      'UPDATE messages SET state = 1, due = ?, attempts = attempts + 1, lease = ?, max_attempts = ? WHERE seq IN ' +
        `(SELECT seq FROM messages WHERE state = 0 AND type = ? ORDER BY priority DESC, seq LIMIT ?) ${CLAIMED}`,
      'raw',
    );
    this.readyOfType = p(
      'SELECT seq, priority FROM messages WHERE state = 0 AND type = ? ORDER BY priority DESC, seq LIMIT ?',
    );
    this.claimOne = p(
      `UPDATE messages SET state = 1, due = ?, attempts = attempts + 1, lease = ?, max_attempts = ? WHERE seq = ? AND state = 0 ${CLAIMED}`,
      'raw',
    );
    this.nextInflight = p('SELECT due FROM messages WHERE state = 1 ORDER BY due LIMIT 1', true);
    this.nextDelayed = p('SELECT due FROM messages WHERE state = 3 ORDER BY due LIMIT 1', true);
    this.nextRoom = p(
      'SELECT min(at) FROM (SELECT min(expires) AS at FROM messages WHERE expires IS NOT NULL ' +
        'UNION ALL SELECT min(due) FROM messages WHERE state = 1)',
      true,
    );

    // A settle matches only the delivery it belongs to (its lease token) while that lease lasts.
    this.ack = p('DELETE FROM messages WHERE seq = ? AND lease = ? AND state = 1 AND due > ?');
    this.ackMany = p(
      'DELETE FROM messages WHERE seq IN (SELECT value FROM json_each(?)) AND lease = ? AND state = 1 AND due > ? ' +
        'RETURNING seq',
      true,
    );
    this.nack = p(
      'UPDATE messages SET ' +
        'state = CASE WHEN attempts >= @max THEN 2 WHEN @delay > 0 THEN 3 ELSE 0 END, ' +
        'due = CASE WHEN attempts >= @max THEN @now WHEN @delay > 0 THEN @now + @delay ELSE NULL END, ' +
        'expires = NULL, lease = NULL ' +
        'WHERE seq = @seq AND lease = @lease AND state = 1 AND due > @now RETURNING state, length(body) AS size',
    );
    this.extend = p('UPDATE messages SET due = ? WHERE seq = ? AND lease = ? AND state = 1 AND due > ?');
    this.leaseEnd = p('SELECT due FROM messages WHERE seq = ? AND lease = ? AND state = 1 AND due > ?', true);
    // Given back unread: a first delivery that never happened keeps its ttl; a re-delivery does not.
    this.release = p(
      'UPDATE messages SET state = 0, due = NULL, lease = NULL, attempts = attempts - 1, ' +
        'expires = CASE WHEN attempts = 1 THEN expires ELSE NULL END ' +
        'WHERE seq = ? AND lease = ? AND state = 1',
    );

    this.countState = [0, 1, 2, 3].map((state) =>
      p(`SELECT count(*) FROM messages WHERE state = ${state}`, true),
    );
    this.byPriority = p('SELECT priority, count(*) AS n FROM messages WHERE state = 0 GROUP BY priority');
    this.byType = p('SELECT type, count(*) AS n FROM messages WHERE state = 0 GROUP BY type');
    this.peek = p(`SELECT ${LISTED} FROM messages WHERE state = 0 ORDER BY priority DESC, seq LIMIT ?`);
    this.dead = p(`SELECT ${LISTED} FROM messages WHERE state = 2 ORDER BY due, seq LIMIT ?`);
    this.replay = p(
      'UPDATE messages SET state = 0, due = NULL, attempts = 0 WHERE state = 2 RETURNING length(body)',
      true,
    );
    this.purge = p('DELETE FROM messages');
  }

  /**
   * Inserts the rows whose parameters `params` holds (rows flattened, in INSERT_COLUMNS order): as
   * many of the largest multi-row statement as fit, then smaller ones, so rows keep their order
   * (their seq).
   */
  insertRows(params: InsertParams): void {
    let at = 0;
    for (const rows of INSERT_CHUNKS) {
      const width = rows * INSERT_WIDTH;
      if (params.length - at < width) continue;
      const statement = this.#insert.get(rows)!;
      for (; params.length - at >= width; at += width) {
        statement.run(at === 0 && width === params.length ? params : params.slice(at, at + width));
      }
    }
  }
}
