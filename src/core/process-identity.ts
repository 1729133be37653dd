/**
 * Who a process is: its pid plus its start time (field 22 of /proc/<pid>/stat), because pids are
 * reused. A zombie counts as dead: it holds nothing and will never release anything.
 */
import { readFileSync } from 'node:fs';

/** A process, identified so that a reused pid is not mistaken for it. */
export interface ProcessIdentity {
  pid: number;
  /** Clock ticks since boot at which the process started; 0 where /proc is unavailable. */
  startTime: number;
}

interface ProcStat {
  state: string;
  startTime: number;
}

/**
 * The process's /proc/<pid>/stat; 'gone' when there is no such process; 'unknown' when the file
 * could not be read for another reason (no /proc, or the caller is out of file descriptors), which
 * must never be taken for a death: a live lock holder would lose its lock.
 */
function readStat(pid: number): ProcStat | 'gone' | 'unknown' {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return (code === 'ENOENT' || code === 'ESRCH') && process.platform === 'linux' ? 'gone' : 'unknown';
  }
  // The command name (field 2) may contain spaces and parentheses; fields resume after the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { state: fields[0] ?? '?', startTime: Number(fields[19] ?? 0) };
}

let self: ProcessIdentity | undefined;

/**
 * The identity of the calling process (read once: a Node process never changes its pid; read again
 * while its start time is unknown, as when the first read found no file descriptor free).
 */
export function selfIdentity(): ProcessIdentity {
  if (!self?.startTime) self = identityOf(process.pid) ?? { pid: process.pid, startTime: 0 };
  return { ...self };
}

/** The identity of a running process, or undefined if there is none with that pid. */
export function identityOf(pid: number): ProcessIdentity | undefined {
  const stat = readStat(pid);
  if (stat === 'gone') return undefined;
  // Unreadable: the pid alone, which isAlive then checks with signal 0.
  return stat === 'unknown'
    ? signalReaches(pid)
      ? { pid, startTime: 0 }
      : undefined
    : { pid, startTime: stat.startTime };
}

/** Signal 0: whether a process with this pid exists. It cannot see pid reuse or zombies. */
function signalReaches(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** True while the identified process runs: same pid, same start time, not a zombie. */
export function isAlive(identity: ProcessIdentity): boolean {
  const stat = readStat(identity.pid);
  if (stat === 'gone') return false;
  if (stat === 'unknown') return signalReaches(identity.pid);
  if (stat.state === 'Z' || stat.state === 'X') return false;
  return identity.startTime === 0 || stat.startTime === identity.startTime;
}
