/**
 * `npm run bench`: runs every bench/*.bench.ts and prints a table per scenario (or, with --json,
 * only a JSON array of result rows on stdout). Progress notes go to stderr.
 *
 *   --quick          small sizes, 3 runs: the whole suite in under a minute
 *   --only a,b       only these scenarios (by Scenario.name)
 *   --runs N         runs to take the median over (default 5, quick 3)
 *   --json           machine-readable output
 */
import { parseArgs } from 'node:util';
import { discoverScenarios, runSuite } from './suite.js';
import { renderHeader, renderTables } from './table.js';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    runs: { type: 'string' },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

if (values.help) {
  console.log('usage: npm run bench -- [--quick] [--only name[,name]] [--runs N] [--json]');
  process.exit(0);
}

const runs = values.runs === undefined ? (values.quick ? 3 : 5) : Number(values.runs);
if (!Number.isInteger(runs) || runs < 1) {
  console.error(`bench: --runs must be a positive integer, got ${values.runs}`);
  process.exit(2);
}

let scenarios = await discoverScenarios();
if (values.only !== undefined) {
  const wanted = values.only.split(',').map((name) => name.trim());
  const unknown = wanted.filter((name) => !scenarios.some((s) => s.name === name));
  if (unknown.length > 0) {
    console.error(
      `bench: no scenario named ${unknown.join(', ')} (have: ${scenarios.map((s) => s.name).join(', ')})`,
    );
    process.exit(2);
  }
  scenarios = scenarios.filter((s) => wanted.includes(s.name));
}

const started = performance.now();
const suite = await runSuite(scenarios, {
  quick: values.quick,
  runs,
  progress: (note) => process.stderr.write(`${note}\n`),
});
process.stderr.write(`bench: done in ${((performance.now() - started) / 1000).toFixed(1)} s\n`);

if (values.json) {
  process.stderr.write(`${renderHeader(suite.environment)}\n`);
  process.stdout.write(`${JSON.stringify(suite.rows, null, 2)}\n`);
} else {
  const descriptions = new Map(scenarios.map((s) => [s.name, s.description]));
  process.stdout.write(`${renderHeader(suite.environment)}\n${renderTables(suite.rows, descriptions)}\n`);
}
for (const failure of suite.failures) {
  console.error(`bench: scenario ${failure.scenario} failed:`, failure.error);
}
if (suite.failures.length > 0) process.exitCode = 1;
