/** Where a SQLite queue lives, and how its files go: shared by the store and by `ipckit gc`. */
import { rmSync } from 'node:fs';
import { resourcePath } from '../core/runtime-dir.js';

/** The file suffix of a queue database in the runtime directory. */
export const SQLITE_SUFFIX = '.mq.sqlite';

/** The database file of queue `name`. @throws ERR_IPC_INVALID_NAME */
export function queuePath(name: string): string {
  return resourcePath(name, SQLITE_SUFFIX, 'message queue');
}

/**
 * Removes a queue's files. The WAL goes before the database: a WAL left behind would be replayed
 * into a new queue of the same name, whereas a database left without its WAL is merely behind.
 */
export function removeQueueFiles(path: string): void {
  for (const suffix of ['-journal', '-wal', '-shm', '']) rmSync(path + suffix, { force: true });
}
