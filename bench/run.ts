/**
 * `npm run bench` and `ipckit bench`: runs every bench/*.bench.ts and prints a table per scenario
 * and a summary against `process.send` (or, with --json, only a JSON array of result rows on
 * stdout). Progress goes to stderr: a bar on a terminal, plain lines otherwise, nothing with --json.
 *
 *   --quick          small sizes and 1 run: a smoke test of the whole suite, not for comparing
 *   --only a,b       only these scenarios (by Scenario.name, the file name without .bench.ts)
 *   --runs N         runs to take the median over (default 5, quick 1)
 *   --json           machine-readable output
 *   --svg FILE       also write a bar chart of round trip and throughput to FILE
 */
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { createProgress, progressMode } from './progress.js';
import { discoverScenarios, runSuite } from './suite.js';
import { renderSvg } from './svg.js';
import { renderHeader, renderProcessSendSummary, renderTables } from './table.js';

// `ipckit bench` runs this file in a child and sets the name its errors should carry.
const prog = process.env.IPCKIT_BENCH_PROG || 'bench';
const usage = `usage: ${prog === 'bench' ? 'npm run bench --' : prog} [--quick] [--only name[,name]] [--runs N] [--json] [--svg FILE]`;

function fail(message: string, code: number): never {
  process.stderr.write(`${prog}: ${message}\n`);
  process.exit(code);
}

let values: { quick: boolean; only?: string; runs?: string; json: boolean; svg?: string; help: boolean };
try {
  ({ values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      only: { type: 'string' },
      runs: { type: 'string' },
      json: { type: 'boolean', default: false },
      svg: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  }));
} catch (err) {
  fail(`${(err as Error).message} (${usage})`, 2);
}

if (values.help) {
  console.log(usage);
  process.exit(0);
}

const runs = values.runs === undefined ? (values.quick ? 1 : 5) : Number(values.runs);
if (!Number.isInteger(runs) || runs < 1) fail(`--runs must be a positive integer, got ${values.runs}`, 2);
if (values.svg === '') fail('--svg needs a file name', 2);

let scenarios = await discoverScenarios();
// Said whatever --only picks: a file that no longer loads is a broken suite, not a skipped case.
for (const broken of scenarios.filter((s) => s.loadError !== undefined)) {
  process.stderr.write(`${prog}: warning: ${broken.description}: ${(broken.loadError as Error).message}\n`);
}
if (values.only !== undefined) {
  const wanted = values.only.split(',').map((name) => name.trim());
  const unknown = wanted.filter((name) => !scenarios.some((s) => s.name === name));
  if (unknown.length > 0) {
    fail(`no scenario named ${unknown.join(', ')} (have: ${scenarios.map((s) => s.name).join(', ')})`, 2);
  }
  scenarios = scenarios.filter((s) => wanted.includes(s.name));
}

const progress = createProgress(progressMode(values.json));
const started = performance.now();
let suite: Awaited<ReturnType<typeof runSuite>>;
try {
  suite = await runSuite(scenarios, {
    quick: values.quick,
    runs,
    progress: (note) => progress.note(note),
    scenarioStarted: (name, index, total) => progress.scenario(name, index, total),
  });
} finally {
  progress.stop();
}
if (!values.json) {
  const took = Object.entries(suite.seconds)
    .map(([name, s]) => `${name} ${s.toFixed(1)} s`)
    .join(', ');
  process.stderr.write(
    `${prog}: done in ${((performance.now() - started) / 1000).toFixed(1)} s${took ? ` (${took})` : ''}\n`,
  );
}

if (values.json) {
  process.stdout.write(`${JSON.stringify(suite.rows, null, 2)}\n`);
} else {
  const descriptions = new Map(scenarios.map((s) => [s.name, s.description]));
  process.stdout.write(
    `${renderHeader(suite.environment)}\n${renderTables(suite.rows, descriptions)}\n${renderProcessSendSummary(suite.rows)}\n`,
  );
}
if (values.svg !== undefined) {
  const file = resolve(values.svg);
  try {
    writeFileSync(file, renderSvg(suite.rows, suite.environment));
  } catch (err) {
    fail(`cannot write the chart to ${file}: ${(err as Error).message}`, 1);
  }
  if (!values.json) process.stderr.write(`${prog}: chart written to ${file}\n`);
}
for (const failure of suite.failures) {
  const error = failure.error;
  const text = error instanceof Error ? (error.stack ?? error.message) : String(error);
  process.stderr.write(`${prog}: scenario ${failure.scenario} failed: ${text}\n`);
}
if (suite.failures.length > 0) process.exitCode = 1;
