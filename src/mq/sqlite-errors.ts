/**
 * SQLite's result codes as ipckit errors. A failed commit is reported as unknown, not as "not
 * written": an fsync that fails can still leave the transaction on disk (see docs/message-queues.md),
 * which is why a send should be retried with the same `id`, and the dedupe makes the retry safe.
 */
import { ErrorCodes, fromSystemError, IpcError } from '../core/errors.js';
import { fdExhaustionError } from '../core/fd-exhaustion.js';

interface SqliteLikeError {
  code?: string;
  message?: string;
}

function codeOf(err: unknown): string {
  return typeof (err as SqliteLikeError)?.code === 'string' ? (err as SqliteLikeError).code! : '';
}

/** True for SQLITE_BUSY and SQLITE_LOCKED (another connection holds the lock: try again). */
export function isBusy(err: unknown): boolean {
  const code = codeOf(err);
  return code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED');
}

/** True for errors after which the connection should be reopened before it is used again. */
export function needsReopen(err: unknown): boolean {
  const code = codeOf(err);
  return code.startsWith('SQLITE_IOERR') || code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB';
}

/** Turns an error from better-sqlite3 (or the file system) into an IpcError naming `what`. */
export function sqliteError(err: unknown, what: string): IpcError {
  if (err instanceof IpcError) return err;
  const code = codeOf(err);
  if (!code.startsWith('SQLITE_')) return fromSystemError(err, what);
  const detail = `${(err as SqliteLikeError).message ?? 'error'} (${code})`;
  if (code === 'SQLITE_FULL') {
    return new IpcError(ErrorCodes.SYSTEM, `${what}: the disk is full: ${detail}`, { cause: err });
  }
  if (code.startsWith('SQLITE_IOERR')) {
    return new IpcError(ErrorCodes.SYSTEM, `${what}: I/O error, the outcome is unknown: ${detail}`, {
      cause: err,
    });
  }
  if (code === 'SQLITE_NOTADB' || code.startsWith('SQLITE_CORRUPT')) {
    return new IpcError(ErrorCodes.INCOMPATIBLE, `${what}: not a valid queue file: ${detail}`, {
      cause: err,
    });
  }
  if (code.startsWith('SQLITE_CANTOPEN')) {
    const exhausted = fdExhaustionError(what, 1, detail);
    if (exhausted) {
      return exhausted;
    }
  }
  if (
    code.startsWith('SQLITE_READONLY') ||
    code.startsWith('SQLITE_CANTOPEN') ||
    code === 'SQLITE_PERM' ||
    code === 'SQLITE_AUTH'
  ) {
    return new IpcError(ErrorCodes.PERMISSION, `${what}: cannot write the queue file: ${detail}`, {
      cause: err,
    });
  }
  return new IpcError(ErrorCodes.SYSTEM, `${what}: ${detail}`, { cause: err });
}
