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

function readStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return undefined;
  }
  // The command name (field 2) may contain spaces and parentheses; fields resume after the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { state: fields[0] ?? '?', startTime: Number(fields[19] ?? 0) };
}

let self: ProcessIdentity | undefined;

/** The identity of the calling process (read once: a Node process never changes its pid). */
export function selfIdentity(): ProcessIdentity {
  self ??= identityOf(process.pid) ?? { pid: process.pid, startTime: 0 };
  return { ...self };
}

/** The identity of a running process, or undefined if there is none with that pid. */
export function identityOf(pid: number): ProcessIdentity | undefined {
  const stat = readStat(pid);
  return stat ? { pid, startTime: stat.startTime } : undefined;
}

/** True while the identified process runs: same pid, same start time, not a zombie. */
export function isAlive(identity: ProcessIdentity): boolean {
  const stat = readStat(identity.pid);
  if (!stat) {
    // No /proc (not Linux): fall back to signal 0, which cannot see pid reuse or zombies.
    if (process.platform === 'linux') return false;
    try {
      process.kill(identity.pid, 0);
      return true;
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === 'EPERM';
    }
  }
  if (stat.state === 'Z' || stat.state === 'X') return false;
  return identity.startTime === 0 || stat.startTime === identity.startTime;
}
