/**
 * CPU time and memory of a process, read from /proc. The process is named by its identity (pid and
 * start time), so a pid reused by another process after ours exited is reported as gone, not read.
 */
import { readFile } from 'node:fs/promises';
import { ErrorCodes, IpcError } from '../core/errors.js';
import type { ProcessIdentity } from '../core/process-identity.js';

/** What {@link ChildProcess.stats} reports. */
export interface ProcessStats {
  /** CPU time spent in user mode, in ms (10 ms resolution: the kernel counts clock ticks). */
  cpuUserMs: number;
  /** CPU time spent in the kernel on the process's behalf, in ms. */
  cpuSystemMs: number;
  /** Resident set size now, in bytes. */
  rssBytes: number;
  /** Largest resident set size so far (VmHWM), in bytes. */
  peakRssBytes: number;
}

// USER_HZ: the unit of /proc times. It is 100 on every Linux architecture Node runs on; it is part
// of the kernel's user ABI and does not follow the kernel's internal HZ.
const TICK_MS = 10;

/** The error for stats of a process that has exited. */
export function processGone(what: string): IpcError {
  return new IpcError(ErrorCodes.NOT_FOUND, `${what}: the process has exited`);
}

/** Reads the stats of `identity`; ERR_IPC_NOT_FOUND once it has exited (or is a zombie). */
export async function readProcessStats(identity: ProcessIdentity, what: string): Promise<ProcessStats> {
  if (process.platform !== 'linux') {
    throw new IpcError(ErrorCodes.NATIVE_UNAVAILABLE, `${what}: stats() reads /proc, which only Linux has`);
  }
  let stat: string;
  let status: string;
  try {
    [stat, status] = await Promise.all([
      readFile(`/proc/${identity.pid}/stat`, 'latin1'),
      readFile(`/proc/${identity.pid}/status`, 'latin1'),
    ]);
  } catch {
    throw processGone(what);
  }
  // The command name (field 2) may hold spaces and parentheses: fields resume after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const state = fields[0];
  const startTime = Number(fields[19]);
  if (state === 'Z' || state === 'X' || (identity.startTime !== 0 && startTime !== identity.startTime)) {
    throw processGone(what);
  }
  const kib = (key: string) => {
    const match = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status);
    return match ? Number(match[1]) * 1024 : 0;
  };
  return {
    cpuUserMs: Number(fields[11]) * TICK_MS,
    cpuSystemMs: Number(fields[12]) * TICK_MS,
    rssBytes: kib('VmRSS'),
    peakRssBytes: kib('VmHWM'),
  };
}
