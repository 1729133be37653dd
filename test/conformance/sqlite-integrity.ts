/** SQLite's own consistency check of a queue file, for the conformance suite's load tests. */
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import { runtimeDirPath } from '../../src/core/runtime-dir.js';

/** `PRAGMA integrity_check` of the queue's file: 'ok', or what SQLite found. */
export async function sqliteIntegrity(queue: string): Promise<string> {
  const Database = createRequire(import.meta.url)('better-sqlite3') as typeof BetterSqlite3;
  const db = new Database(join(runtimeDirPath(), `${queue}.mq.sqlite`), { readonly: true });
  try {
    const rows = db.pragma('integrity_check') as { integrity_check: string }[];
    return rows.map((r) => r.integrity_check).join('; ');
  } finally {
    db.close();
  }
}
