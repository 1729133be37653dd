/**
 * Checkpoints of a queue file's WAL, run by the store itself instead of SQLite's automatic ones.
 *
 * SQLite's automatic checkpoint runs in whichever connection commits while the WAL holds more than
 * `wal_autocheckpoint` pages, after that commit has released the write lock. The WAL only starts
 * over once a checkpoint has copied every frame back and no commit came in meanwhile; with several
 * processes committing all the time, other commits nearly always come in during the checkpoint's
 * fsyncs, so the WAL stays over the limit and then every commit of every process checkpoints
 * again: two fsyncs each, for a few frames, a quarter of a busy consumer's transactions.
 *
 * Here the automatic checkpoint is off, and a process that commits:
 * - when the WAL has grown past CHECKPOINT_WAL_BYTES, copies it back with a PASSIVE checkpoint
 *   (the bulk of the work and of the fsync, without the write lock, so other processes go on
 *   committing);
 * - after its next commits, until the WAL is short again, tries a TRUNCATE checkpoint: it takes
 *   the write lock only if nobody holds it (right after our own commit it is usually free), copies
 *   the few frames committed since, and empties the WAL, so that every process sees its length
 *   start over.
 * Checkpoints never change what is committed: durability is the same either way.
 */
import { statSync } from 'node:fs';
import type BetterSqlite3 from 'better-sqlite3';

/** WAL length after which a process checkpoints: 4000 pages, as `wal_autocheckpoint = 4000` did. */
export const CHECKPOINT_WAL_BYTES = 4000 * 4096;

/** Checkpoints the WAL of one connection's database after its commits. */
export class Checkpointer {
  readonly #walPath: string;
  readonly #passive: BetterSqlite3.Statement;
  readonly #truncate: BetterSqlite3.Statement;
  /** A PASSIVE checkpoint ran; the WAL has not been emptied since. */
  #pending = false;

  constructor(db: BetterSqlite3.Database, path: string) {
    this.#walPath = `${path}-wal`;
    this.#passive = db.prepare('PRAGMA wal_checkpoint(PASSIVE)');
    this.#truncate = db.prepare('PRAGMA wal_checkpoint(TRUNCATE)');
  }

  /** Called after each commit of this connection, outside any transaction. */
  afterCommit(): void {
    try {
      const size = statSync(this.#walPath, { throwIfNoEntry: false })?.size ?? 0;
      if (this.#pending) {
        // Another process emptied it meanwhile.
        if (size < CHECKPOINT_WAL_BYTES / 4) this.#pending = false;
        // busy: another process held the write lock, or was reading the WAL; try again after
        // the next commit.
        else if ((this.#truncate.get() as { busy: number }).busy === 0) this.#pending = false;
        return;
      }
      if (size < CHECKPOINT_WAL_BYTES) return;
      this.#passive.get();
      this.#pending = true;
    } catch {
      // Housekeeping only: the commit stands, and a checkpoint that failed leaves the WAL longer
      // until the next one. A real I/O problem surfaces in the next transaction.
    }
  }
}
