/**
 * What every benchmark file exports, and the statistics they share. One scenario per file,
 * `bench/<area>.bench.ts`, default-exporting a {@link Scenario}; `bench/run.ts` runs them.
 * This machine is shared and noisy: every figure is the median of several runs with its spread,
 * and every scenario measures its baseline in the same run.
 */

/** Options the runner passes to a scenario. */
export interface RunOptions {
  /** Small sizes and fewer runs: the whole suite in under a minute. */
  quick: boolean;
  /** Number of repeated runs to take the median over. */
  runs: number;
  /** Called with short progress notes ("pipes: 64 B round trip, run 2/5"). */
  progress(note: string): void;
}

/** One measured figure of a case, ours or a baseline's. */
export interface Measurement {
  /** What was measured: 'ipckit pipe channel', "process.send 'advanced'", … */
  subject: string;
  /** The median over runs. */
  median: number;
  /** Smallest and largest run. */
  min: number;
  max: number;
  /** Peak resident set size over the runs, in MiB (of the measuring process; children noted in `notes`). */
  peakRssMiB?: number;
}

/** One comparison: our figure and the baselines, measured in the same run. */
export interface CaseResult {
  /** 'round trip, 64 B object', 'one-way throughput, 1 MiB buffer', … */
  case: string;
  /** 'µs', 'msg/s', 'MB/s', 'ns', 'ops/s'. */
  unit: string;
  /** True when larger is better (throughput), false for latencies. */
  higherIsBetter: boolean;
  ours: Measurement;
  baselines: Measurement[];
  /**
   * False when the subjects are not alternatives to one another (the two ends of one transfer):
   * no ratio is computed or shown. Default true.
   */
  compare?: boolean;
  /** Free text, e.g. the target from the issue. */
  notes?: string;
}

/** A benchmark file's default export. */
export interface Scenario {
  /** Short id used by `--only`: 'pipes', 'shm', 'sync', 'mq', 'sockets'. */
  name: string;
  description: string;
  /** Set when its file failed to load: running it fails with this error. */
  loadError?: unknown;
  run(opts: RunOptions): Promise<CaseResult[]>;
}

/** The median of a non-empty list. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Summarizes repeated runs of one subject. */
export function summarize(subject: string, values: readonly number[], peakRssMiB?: number): Measurement {
  const m: Measurement = {
    subject,
    median: median(values),
    min: Math.min(...values),
    max: Math.max(...values),
  };
  if (peakRssMiB !== undefined) m.peakRssMiB = peakRssMiB;
  return m;
}

/** Our median divided by a baseline's, oriented so that > 1 means ipckit is better. */
export function ratio(result: CaseResult, baseline: Measurement): number {
  return result.higherIsBetter ? result.ours.median / baseline.median : baseline.median / result.ours.median;
}

/** Samples this process's RSS every few ms while `work` runs; returns its result and the peak in MiB. */
export async function withPeakRss<T>(work: () => Promise<T>): Promise<{ value: T; peakRssMiB: number }> {
  let peak = process.memoryUsage.rss();
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss());
  }, 5);
  try {
    const value = await work();
    peak = Math.max(peak, process.memoryUsage.rss());
    return { value, peakRssMiB: peak / (1 << 20) };
  } finally {
    clearInterval(timer);
  }
}
