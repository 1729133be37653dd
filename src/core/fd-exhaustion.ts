/**
 * Telling "out of file descriptors" apart when the failing call does not say so: SQLite reports
 * only SQLITE_CANTOPEN, and Node reports a failed spawn asynchronously while ipckit's spawn()
 * answers at once. Opening /dev/null answers the question directly.
 */
import { closeSync, openSync } from 'node:fs';
import { ErrorCodes, IpcError } from './errors.js';

/**
 * The EMFILE/ENFILE error of a probe if fewer than `needed` file descriptors are free (in the
 * process or the system), else undefined. The probe's fds are closed before it returns.
 */
export function fdExhaustion(needed = 1): NodeJS.ErrnoException | undefined {
  const opened: number[] = [];
  try {
    for (let i = 0; i < needed; i++) opened.push(openSync('/dev/null', 'r'));
    return undefined;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'EMFILE' || code === 'ENFILE' ? (err as NodeJS.ErrnoException) : undefined;
  } finally {
    for (const fd of opened) closeSync(fd);
  }
}

/**
 * ERR_IPC_SYSTEM for `what` failing for want of file descriptors (the probe's EMFILE or ENFILE
 * as its cause), if fewer than `needed` are free; else undefined. `detail` ends the message.
 */
export function fdExhaustionError(what: string, needed = 1, detail?: string): IpcError | undefined {
  const exhausted = fdExhaustion(needed);
  if (!exhausted) return undefined;
  const end = detail === undefined ? '' : `: ${detail}`;
  return new IpcError(ErrorCodes.SYSTEM, `${what}: no file descriptor left (${exhausted.code})${end}`, {
    cause: exhausted,
  });
}
