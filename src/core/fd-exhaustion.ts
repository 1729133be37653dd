/**
 * Telling "out of file descriptors" apart when the failing call does not say so: SQLite reports
 * only SQLITE_CANTOPEN, and Node reports a failed spawn asynchronously while ipckit's spawn()
 * answers at once. Opening /dev/null answers the question directly.
 */
import { closeSync, openSync } from 'node:fs';

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
