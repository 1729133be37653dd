/**
 * The benchmark suite as data: find the scenarios, run them in sequence, return their results.
 * Rendering (the table, later a progress bar and SVG) is separate and works from these results.
 */

import { readdirSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { CaseResult, Scenario } from './scenario.js';
import { ratio } from './scenario.js';
import { moduleExtension } from './support/peer.js';

/** One case of one scenario, with each baseline's ratio (> 1 means ipckit is better). */
export interface ResultRow extends CaseResult {
  scenario: string;
  ratios: Record<string, number>;
}

/** Where and how the suite ran, for the header and the docs. */
export interface Environment {
  date: string;
  node: string;
  cpus: number;
  platform: string;
  quick: boolean;
  runs: number;
  /** The 1-minute load average when the suite started and when it ended: how busy the machine was. */
  load: { start: number; end: number };
}

export interface SuiteOptions {
  quick: boolean;
  runs: number;
  progress(note: string): void;
  /** Told before each scenario starts, for a progress bar. */
  scenarioStarted?(name: string, index: number, total: number): void;
}

export interface SuiteResult {
  environment: Environment;
  rows: ResultRow[];
  /** Scenarios that threw: the rest of the suite still ran. */
  failures: { scenario: string; error: unknown }[];
  /** Wall-clock seconds each scenario took, by name. */
  seconds: Record<string, number>;
}

const benchDir = fileURLToPath(new URL('.', import.meta.url));
/** `.bench.ts` from the sources, `.bench.js` in the tree bench/launch.mjs transpiles. */
const suffix = `.bench${moduleExtension}`;

/**
 * Every `bench/*.bench.ts`, imported, in file-name order. A file that fails to load does not stop
 * the others: it becomes a scenario named after the file whose run fails with the load error.
 */
export async function discoverScenarios(): Promise<Scenario[]> {
  const files = readdirSync(benchDir)
    .filter((file) => file.endsWith(suffix))
    .sort();
  const scenarios: Scenario[] = [];
  for (const file of files) {
    scenarios.push(await loadScenario(file));
  }
  return scenarios;
}

async function loadScenario(file: string): Promise<Scenario> {
  try {
    const module = (await import(pathToFileURL(`${benchDir}${file}`).href)) as { default?: Scenario };
    if (module.default && typeof module.default.run === 'function') return module.default;
    throw new Error(`bench/${file} does not default-export a Scenario`);
  } catch (error) {
    return {
      name: file.slice(0, -suffix.length),
      description: `bench/${file} failed to load`,
      loadError: error,
      run: () => Promise.reject(error),
    };
  }
}

/** Runs the scenarios one after the other; a scenario that throws is recorded, not fatal. */
export async function runSuite(scenarios: readonly Scenario[], opts: SuiteOptions): Promise<SuiteResult> {
  const environment: Environment = {
    date: new Date().toISOString(),
    node: process.version,
    cpus: availableParallelism(),
    platform: `${process.platform}-${process.arch}`,
    quick: opts.quick,
    runs: opts.runs,
    load: { start: loadavg()[0]!, end: Number.NaN },
  };
  const rows: ResultRow[] = [];
  const failures: SuiteResult['failures'] = [];
  const seconds: Record<string, number> = {};
  for (const [index, scenario] of scenarios.entries()) {
    opts.scenarioStarted?.(scenario.name, index, scenarios.length);
    const started = performance.now();
    try {
      const results = await scenario.run({ quick: opts.quick, runs: opts.runs, progress: opts.progress });
      for (const result of results) rows.push(toRow(scenario.name, result));
    } catch (error) {
      failures.push({ scenario: scenario.name, error });
    }
    seconds[scenario.name] = (performance.now() - started) / 1000;
  }
  environment.load.end = loadavg()[0]!;
  return { environment, rows, failures, seconds };
}

function toRow(scenario: string, result: CaseResult): ResultRow {
  const ratios: Record<string, number> = {};
  if (result.compare !== false) {
    for (const baseline of result.baselines) ratios[baseline.subject] = ratio(result, baseline);
  }
  return { scenario, ...result, ratios };
}
