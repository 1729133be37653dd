import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { locateSuite, scenarioNames } from '../../src/cli/bench.js';
import { isolateRuntimeDir } from '../helpers.js';
import { runCli } from './run-cli.js';

let runtime: ReturnType<typeof isolateRuntimeDir>;
beforeEach(() => {
  runtime = isolateRuntimeDir();
});
afterEach(() => runtime.cleanup());

/** One line on stderr, nothing on stdout; returns the line. */
function oneLineError(run: { stdout: string; stderr: string }): string {
  expect(run.stdout).toBe('');
  const lines = run.stderr.split('\n').filter((line) => line !== '');
  expect(lines).toHaveLength(1);
  return lines[0]!;
}

// Each case runs the binary several times, one after the other: seconds each on a loaded machine.
describe('ipckit bench', { timeout: 240_000 }, () => {
  it('--help describes the flags', async () => {
    const run = await runCli(['bench', '--help']);
    expect(run.code).toBe(0);
    for (const flag of ['--quick', '--only <names>', '--runs <n>', '--json', '--svg <file>']) {
      expect(run.stdout).toContain(flag);
    }
    expect(run.stdout).toContain('npm run bench');
  });

  it('bad flags exit 2 with one line before anything runs', async () => {
    const cases: [string[], RegExp][] = [
      [['bench', '--runs', '0'], /^ipckit bench: option '--runs <n>' argument '0' is invalid/],
      [['bench', '--runs', 'many'], /^ipckit bench: option '--runs <n>' argument 'many' is invalid/],
      [
        ['bench', '--only', 'pipes,nosuch'],
        /^ipckit bench: no scenario named nosuch \(have: memory, mq, pipes, /,
      ],
      [['bench', '--svg'], /^ipckit bench: option '--svg <file>' argument missing/],
      [['bench', '--fast'], /^ipckit bench: unknown option '--fast'/],
    ];
    for (const [args, pattern] of cases) {
      const run = await runCli(args);
      expect(run.code, args.join(' ')).toBe(2);
      expect(oneLineError(run)).toMatch(pattern);
    }
  });

  it('--only shm --quick --runs 1 --json prints result rows as JSON and no progress', async () => {
    // The cheapest scenario, one run: seconds on an idle machine, under a minute on a loaded one.
    const run = await runCli(['bench', '--only', 'shm', '--quick', '--runs', '1', '--json'], { ms: 180_000 });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const rows = JSON.parse(run.stdout) as {
      scenario: string;
      case: string;
      unit: string;
      ours: { subject: string; median: number; min: number; max: number };
      baselines: { subject: string; median: number }[];
      ratios: Record<string, number>;
    }[];
    expect(rows.length).toBeGreaterThan(0);
    for (const row of rows) {
      expect(row.scenario).toBe('shm');
      expect(row.ours.median).toBeGreaterThan(0);
      // One run: the median is that run, and so are the ends of the range.
      expect(row.ours.min).toBe(row.ours.median);
      expect(row.ours.max).toBe(row.ours.median);
      expect(Object.keys(row.ratios)).toEqual(row.baselines.map((b) => b.subject));
      for (const ratio of Object.values(row.ratios)) expect(ratio).toBeGreaterThan(0);
    }
    expect(rows.map((row) => row.case)).toContain('shared counter, 2 processes, Atomics.add on a segment');
  });

  it('finds the suite of this checkout, and says plainly when a package has none', () => {
    const { runner } = locateSuite();
    expect(runner.endsWith(join('bench', 'run.ts'))).toBe(true);
    expect(scenarioNames(runner)).toEqual(expect.arrayContaining(['mq', 'pipes', 'sockets']));

    const bare = mkdtempSync(join(tmpdir(), 'ipckit-no-bench-'));
    try {
      expect(() => locateSuite(bare)).toThrow(
        /^the benchmark suite is not installed here \(.*bench\/run.ts is missing\): it ships with the source/,
      );
    } finally {
      rmSync(bare, { recursive: true, force: true });
    }
  });
});
