/**
 * The tour runner: runs each step with its own cleanup scope, prints the narration and figures,
 * and checks at the end that no resource the tour named is left in the runtime directory.
 */
import { listResources, runtimeDir } from '../../index.js';
import { describeError } from '../errors.js';
import { formatCount, formatDuration } from '../format.js';
import type { Output } from '../output.js';
import { childProgram } from './child-program.js';
import { elapsedMs } from './stats.js';
import type { Figure, TourContext, TourStep } from './step.js';

/** What one step measured, as `ipckit tour --json` prints it. */
export interface TourStepResult {
  id: string;
  title: string;
  figure: Figure;
  elapsedMs: number;
}

/** The whole tour, as `ipckit tour --json` prints it. */
export interface TourResult {
  runtimeDir: string;
  /** Every resource the tour made is named with this prefix. */
  namePrefix: string;
  steps: TourStepResult[];
  comingNext: string[];
  /** Names of resources the tour failed to remove (empty unless something went wrong). */
  leftBehind: string[];
  elapsedMs: number;
}

/** Options of {@link runTour}. */
export interface RunTourOptions {
  steps: readonly TourStep[];
  comingNext: readonly string[];
  out: Output;
  /** Narrate as it goes (false for `--json`). */
  narrate: boolean;
  signal: AbortSignal;
}

/** A figure as people read it: `83,412 messages/s echoed through the child`. */
export function formatFigure(figure: Figure): string {
  const value = figure.value < 10 ? figure.value.toFixed(1) : formatCount(figure.value);
  return `${value} ${figure.unit} ${figure.label}`;
}

/** Bounds `promise` by `ms` and by `signal`; observes its late rejection. */
function within<T>(what: string, ms: number, promise: Promise<T>, signal: AbortSignal): Promise<T> {
  promise.catch(() => {});
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
    onAbort = () => reject(new Error(`${what}: interrupted`));
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
  return Promise.race([promise, guard]).finally(() => {
    clearTimeout(timer);
    signal.removeEventListener('abort', onAbort!);
  });
}

/** Runs a step's cleanups, last first; a failing cleanup does not stop the others. */
async function cleanUp(cleanups: (() => unknown)[]): Promise<unknown[]> {
  const failures: unknown[] = [];
  for (const cleanup of cleanups.reverse()) {
    try {
      await cleanup();
    } catch (err) {
      failures.push(err);
    }
  }
  return failures;
}

/**
 * Runs the tour. Rejects with the first step's failure (after cleaning up that step); a step that
 * succeeded but whose cleanup failed shows up in `leftBehind`.
 */
export async function runTour(opts: RunTourOptions): Promise<TourResult> {
  const { out, narrate, signal } = opts;
  const c = out.colors;
  const started = process.hrtime.bigint();
  const prefix = `tour-${process.pid}`;
  const dir = runtimeDir();
  const print = (text = '') => {
    if (narrate) out.line(text);
  };

  print(`${c.bold('ipckit tour')}: inter-process communication between real processes, one mechanism a step`);
  print(c.dim(`runtime directory ${dir}; everything the tour makes is named ${prefix}-* and removed`));

  const results: TourStepResult[] = [];
  for (const [index, step] of opts.steps.entries()) {
    print();
    print(c.bold(`${index + 1}/${opts.steps.length}  ${step.title}`));
    const cleanups: (() => unknown)[] = [];
    const ctx: TourContext = {
      signal,
      colors: c,
      name: (suffix) => `${prefix}-${suffix}`,
      say: (text) => print(`      ${text}`),
      defer: (cleanup) => {
        cleanups.push(cleanup);
      },
      child: (name, ...args) => childProgram(name, args),
      within: (what, ms, promise) => within(what, ms, promise, signal),
    };
    const stepStart = process.hrtime.bigint();
    let figure: Figure;
    try {
      figure = await step.run(ctx);
    } catch (err) {
      await cleanUp(cleanups);
      throw new Error(`tour step '${step.title}' failed: ${describeError(err)}`, { cause: err });
    }
    const failures = await cleanUp(cleanups);
    for (const failure of failures) print(c.yellow(`      cleanup failed: ${describeError(failure)}`));
    results.push({ id: step.id, title: step.title, figure, elapsedMs: elapsedMs(stepStart) });
    print(`   ${c.green('→')} ${c.green(c.bold(formatFigure(figure)))}`);
  }

  const leftBehind = tourLeftovers();
  print();
  if (opts.comingNext.length > 0) print(`${c.bold('Coming next')}: ${opts.comingNext.join('; ')}.`);
  if (leftBehind.length === 0)
    print(c.dim(`Nothing left behind: no ${prefix}-* resource remains (see ipckit ls).`));
  else print(c.yellow(`Left behind (a bug, please report it): ${leftBehind.join(', ')}`));
  const total = elapsedMs(started);
  print(c.dim(`Tour done in ${formatDuration(total)}.`));
  return {
    runtimeDir: dir,
    namePrefix: prefix,
    steps: results,
    comingNext: [...opts.comingNext],
    leftBehind,
    elapsedMs: total,
  };
}

/** The named resources of this process's tour (`tour-<pid>-*`) that still exist. */
export function tourLeftovers(): string[] {
  const prefix = `tour-${process.pid}-`;
  return listResources()
    .filter((entry) => entry.name.startsWith(prefix))
    .map((entry) => `${entry.kind} ${entry.name}`);
}
