/**
 * The SQLite queue file: its schema, its version stamp, and opening it safely. The file is stamped
 * with an application id and a schema version; a file without the stamp, with another
 * application's, with a newer version, or that is not a database at all is refused with
 * ERR_IPC_INCOMPATIBLE before anything is written to it.
 *
 * One table holds every message; its `state` says where the message is, and partial indexes keep
 * each question the queue asks (what is ready, by priority or by type; which lease or delay runs
 * out next; what is dead) a short index walk, however many messages wait elsewhere.
 */
import { closeSync, constants, lstatSync, openSync } from 'node:fs';
import { createRequire } from 'node:module';
import type BetterSqlite3 from 'better-sqlite3';
import { ErrorCodes, IpcError } from '../core/errors.js';
import { refuseSymlink } from '../core/runtime-dir.js';
import { sqliteError } from './sqlite-errors.js';

/** `PRAGMA application_id`: 'ipMQ'. */
export const APPLICATION_ID = 0x69704d51;
/** `PRAGMA user_version`: bump it, with a migration, whenever the schema changes. */
export const SCHEMA_VERSION = 2;

/** Where a message is. */
export const State = {
  /** Deliverable now. */
  READY: 0,
  /** Leased to a consumer until `due`. */
  INFLIGHT: 1,
  /** In the dead-letter list since `due`. */
  DEAD: 2,
  /** Deliverable from `due` on. */
  DELAYED: 3,
} as const;

const DDL = `
CREATE TABLE messages (
  seq       INTEGER PRIMARY KEY,   -- commit order: FIFO within a priority
  id        TEXT    NOT NULL,      -- public id
  type      TEXT    NOT NULL,
  priority  INTEGER NOT NULL,
  state     INTEGER NOT NULL,      -- State above
  due       INTEGER,               -- DELAYED: ready at; INFLIGHT: lease end; DEAD: died at (ms)
  expires   INTEGER,               -- dropped if still undelivered at this time (ttlMs); NULL: never
  attempts  INTEGER NOT NULL DEFAULT 0,
  enqueued  INTEGER NOT NULL,
  lease     INTEGER,               -- token of the current delivery: stale settles do not match it
  body      BLOB    NOT NULL,
  max_attempts INTEGER             -- maxAttempts of the consumer that claimed it last (NULL: not yet)
);
CREATE INDEX messages_ready      ON messages (priority DESC, seq)       WHERE state = 0;
CREATE INDEX messages_ready_type ON messages (type, priority DESC, seq) WHERE state = 0;
CREATE INDEX messages_inflight   ON messages (due)                      WHERE state = 1;
CREATE INDEX messages_dead       ON messages (due, seq)                 WHERE state = 2;
CREATE INDEX messages_delayed    ON messages (due)                      WHERE state = 3;
CREATE INDEX messages_expiring   ON messages (expires)                  WHERE expires IS NOT NULL;
-- Caller-chosen ids seen within the dedupe window.
CREATE TABLE keys (id TEXT PRIMARY KEY, until INTEGER NOT NULL) WITHOUT ROWID;
CREATE INDEX keys_until ON keys (until);
-- Live messages (not dead) and their body bytes, for maxMessages / maxBytes without a count(*).
CREATE TABLE totals (one INTEGER PRIMARY KEY CHECK (one = 1), live INTEGER NOT NULL, bytes INTEGER NOT NULL);
INSERT INTO totals VALUES (1, 0, 0);
-- Processes listening for wake-ups: their doorbell address and what they wait for (RING_* bits).
CREATE TABLE waiters (
  address TEXT PRIMARY KEY,
  pid     INTEGER NOT NULL,
  started INTEGER NOT NULL,
  armed   INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
`;

type Database = BetterSqlite3.Database;
type DatabaseConstructor = typeof BetterSqlite3;

let DatabaseClass: DatabaseConstructor | undefined;

/** better-sqlite3, loaded on first use so that the rest of ipckit works where it failed to build. */
function loadDriver(what: string): DatabaseConstructor {
  if (DatabaseClass) return DatabaseClass;
  try {
    DatabaseClass = createRequire(import.meta.url)('better-sqlite3') as DatabaseConstructor;
    return DatabaseClass;
  } catch (err) {
    throw new IpcError(ErrorCodes.NATIVE_UNAVAILABLE, `${what}: better-sqlite3 is not available`, {
      cause: err,
    });
  }
}

/** What opening found. */
export interface OpenedDatabase {
  db: Database;
  /** True when this call created the file. */
  created: boolean;
}

/**
 * Opens (creating 0600 if missing) the queue database at `path`, checks its stamp, creates the
 * schema if the file is new, and applies the connection settings. Throws SQLITE_BUSY (untranslated)
 * while another process initializes the file: the caller retries.
 */
export function openDatabase(path: string, durability: 'normal' | 'fsync', what: string): OpenedDatabase {
  const Database = loadDriver(what);
  refuseSymlink(path, what);
  let created = false;
  try {
    // Created here, not by SQLite, so the mode is exactly 0600 (SQLite gives -wal/-shm the same).
    const fd = openSync(
      path,
      constants.O_RDWR | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
      0o600,
    );
    closeSync(fd);
    created = true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw sqliteError(err, what);
    // A directory, FIFO or socket there is not a queue, and SQLite would only say "cannot open".
    let isFile: boolean;
    try {
      isFile = lstatSync(path).isFile();
    } catch (statErr) {
      throw sqliteError(statErr, what); // removed meanwhile
    }
    if (!isFile) {
      throw new IpcError(ErrorCodes.UNSAFE_PATH, `${what}: ${path} is not a regular file`);
    }
  }
  let db: Database;
  try {
    // timeout 0: a busy database is retried asynchronously by the store, never by blocking here.
    db = new Database(path, { timeout: 0 });
  } catch (err) {
    throw sqliteError(err, what);
  }
  try {
    // One read transaction: the three reads must see one snapshot, not another process's
    // initialization half-way through them.
    db.transaction(() => checkStamp(db, what)).deferred();
    db.pragma('journal_mode = WAL');
    initialize(db, what);
    db.pragma(`synchronous = ${durability === 'fsync' ? 'FULL' : 'NORMAL'}`);
    // A bounded page cache: a queue holding a million messages costs a process no more memory
    // than an empty one.
    db.pragma('cache_size = -2048');
    db.pragma('temp_store = MEMORY');
    // The store checkpoints the WAL itself (sqlite-checkpoint.ts): SQLite's automatic checkpoint
    // never gets the WAL to start over while several processes commit, and then runs, with its
    // two fsyncs, after nearly every commit.
    db.pragma('wal_autocheckpoint = 0');
    // After a checkpoint, give a WAL that grew under a burst back to the file system.
    db.pragma('journal_size_limit = 67108864');
    return { db, created };
  } catch (err) {
    db.close();
    throw err;
  }
}

/** The file's schema version, 0 for an empty file; throws unless it is one of ours we can read. */
function checkStamp(db: Database, what: string): number {
  const appId = db.pragma('application_id', { simple: true }) as number;
  const version = db.pragma('user_version', { simple: true }) as number;
  if (appId === APPLICATION_ID) {
    // Older versions are migrated by initialize(); a newer one is not ours to read.
    if (version < 1 || version > SCHEMA_VERSION) {
      throw new IpcError(
        ErrorCodes.INCOMPATIBLE,
        `${what}: the queue file has schema version ${version}; this ipckit reads version ${SCHEMA_VERSION}`,
      );
    }
    return version;
  }
  const tables = db
    .prepare("SELECT count(*) FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%'")
    .pluck()
    .get();
  if (appId !== 0 || version !== 0 || tables !== 0) {
    throw new IpcError(
      ErrorCodes.INCOMPATIBLE,
      `${what}: ${db.name} is an SQLite database of another application (application_id ${appId}); refusing it`,
    );
  }
  return 0;
}

/**
 * Schema changes from each version to the next; applied in order, each in the transaction that
 * opens the file, so every process sees the file before or after one, never half-way.
 */
const MIGRATIONS: Record<number, string> = {
  // 1 -> 2: a message's delivery limit is its last claimer's maxAttempts, not each opener's own.
  1: 'ALTER TABLE messages ADD COLUMN max_attempts INTEGER',
};

function initialize(db: Database, what: string): void {
  db.transaction(() => {
    // Another process may have initialized (or migrated) the file since our check.
    const version = checkStamp(db, what);
    if (version > 0) {
      for (let v = version; v < SCHEMA_VERSION; v++) {
        db.exec(MIGRATIONS[v]!);
        db.pragma(`user_version = ${v + 1}`);
      }
      return;
    }
    db.exec(DDL);
    db.pragma(`application_id = ${APPLICATION_ID}`);
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  }).immediate();
}
