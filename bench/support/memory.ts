/** Memory readings for the benchmarks: a forced GC, a child's RSS and peak RSS. */
import { readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

let gc: (() => void) | undefined;

/**
 * Runs a full garbage collection, so a reading shows what is still referenced rather than what the
 * collector has not reached yet. The runner is started without --expose-gc; the flag can still be
 * set at run time, and a fresh context then sees `gc`.
 */
export function collectGarbage(): void {
  if (!gc) {
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc') as () => void;
  }
  gc();
}

/** A child's peak RSS (VmHWM) in MiB, or undefined once it is gone. */
export function childPeakRssMiB(pid: number): number | undefined {
  return statusMiB(pid, 'VmHWM');
}

/** A child's current RSS (VmRSS) in MiB, or undefined once it is gone. */
export function childRssMiB(pid: number): number | undefined {
  return statusMiB(pid, 'VmRSS');
}

function statusMiB(pid: number, field: 'VmHWM' | 'VmRSS'): number | undefined {
  try {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(
      readFileSync(`/proc/${pid}/status`, 'utf8'),
    );
    return match ? Number(match[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}
