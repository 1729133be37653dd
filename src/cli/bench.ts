/**
 * `ipckit bench`: the benchmark suite of bench/. The suite is TypeScript that measures against
 * devDependencies (zeromq, BullMQ), so it is not compiled into dist/: this command finds bench/
 * next to the package root (a git checkout after `npm install`) and runs its launcher,
 * bench/launch.mjs (which transpiles the suite with esbuild and runs it), in a child, handing it
 * the terminal so its progress bar works. An installed package without its benchmarks gets one
 * line saying so.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { parsePositiveInt } from './arguments.js';
import { InterruptedError, UsageError } from './errors.js';

/** The package root: two levels up from both src/cli and dist/cli. */
function packageRoot(): string {
  return fileURLToPath(new URL('../../', import.meta.url));
}

/** Where the suite is and how to run it, or why it cannot run here. */
export function locateSuite(root = packageRoot()): { runner: string; launcher: string } {
  const runner = join(root, 'bench', 'run.ts');
  const launcher = join(root, 'bench', 'launch.mjs');
  if (!existsSync(runner)) {
    throw new Error(
      `the benchmark suite is not installed here (${runner} is missing): it ships with the source, so run 'npm install && npx ipckit bench' in a clone of ipckit`,
    );
  }
  try {
    createRequire(join(root, 'package.json')).resolve('esbuild');
  } catch {
    throw new Error(
      `the benchmark suite needs the devDependencies (esbuild, zeromq, bullmq): run 'npm install' in ${root}`,
    );
  }
  return { runner, launcher };
}

/** The scenario names of the suite: its `*.bench.ts` file names. */
export function scenarioNames(runner: string): string[] {
  return readdirSync(join(runner, '..'))
    .filter((file) => file.endsWith('.bench.ts'))
    .map((file) => file.slice(0, -'.bench.ts'.length))
    .sort();
}

interface BenchFlags {
  quick?: boolean;
  only?: string;
  runs?: number;
  json?: boolean;
  svg?: string;
}

/** Runs the suite in a child with the terminal attached; resolves with its exit code. */
function runSuite(launcher: string, args: string[]): Promise<number> {
  const child = spawn(process.execPath, [launcher, ...args], {
    cwd: join(launcher, '..', '..'),
    stdio: 'inherit',
    env: { ...process.env, IPCKIT_BENCH_PROG: 'ipckit bench' },
  });
  // Ctrl-C reaches the child through the terminal's process group; this process only waits for it
  // (a second signal is not needed to stop the parent).
  const ignore = () => {};
  // A SIGTERM is meant for the whole command: pass it on, so the suite can stop its children.
  const forward = () => child.kill('SIGTERM');
  process.on('SIGINT', ignore);
  process.on('SIGTERM', forward);
  return new Promise<number>((done, reject) => {
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      process.off('SIGINT', ignore);
      process.off('SIGTERM', forward);
      if (signal === 'SIGINT') reject(new InterruptedError('interrupted; the suite stopped its children'));
      else done(code ?? 1);
    });
  });
}

/** Builds the `bench` command. */
export function benchCommand(): Command {
  return new Command('bench')
    .description('run the benchmark suite: every mechanism against Node baselines, measured in the same run')
    .option('-q, --quick', 'small sizes and 1 run: a smoke test of the whole suite, not for comparing')
    .option(
      '--only <names>',
      'only these scenarios, comma-separated (mq, pipes, process, shm, shm-channel, sockets, sync)',
    )
    .option('--runs <n>', 'runs to take the median over (default 5, quick 3)', parsePositiveInt)
    .option('--json', 'print only a JSON array of result rows on stdout, and no progress')
    .option('--svg <file>', 'also write a bar chart of round trip and throughput per mechanism to FILE')
    .addHelpText(
      'after',
      `
Every figure is the median of several runs with its range, beside baselines measured in the same
run (process.send, node:net, worker threads, zeromq, BullMQ), with the ratio (> 1: ipckit is
better). Progress goes to stderr: a bar on a terminal, plain lines otherwise.

The suite is the TypeScript in bench/ of a source checkout, transpiled with esbuild from the
devDependencies and run; an installed package without bench/ cannot run it. 'npm run bench' runs the same suite.

Examples:
  $ ipckit bench --quick
  $ ipckit bench --only pipes,sockets --runs 3
  $ ipckit bench --json --svg docs/benchmarks.svg > results.json`,
    )
    .action(async (opts: BenchFlags) => {
      const { runner, launcher } = locateSuite();
      const args: string[] = [];
      if (opts.quick) args.push('--quick');
      if (opts.only !== undefined) {
        const names = scenarioNames(runner);
        const wanted = opts.only.split(',').map((name) => name.trim());
        const unknown = wanted.filter((name) => !names.includes(name));
        if (unknown.length > 0 || wanted.length === 0) {
          throw new UsageError(`no scenario named ${unknown.join(', ') || "''"} (have: ${names.join(', ')})`);
        }
        args.push('--only', wanted.join(','));
      }
      if (opts.runs !== undefined) args.push('--runs', String(opts.runs));
      if (opts.json) args.push('--json');
      if (opts.svg !== undefined) {
        if (opts.svg === '') throw new UsageError('--svg needs a file name');
        // Resolved here: the suite runs with the package root as its working directory.
        args.push('--svg', resolve(opts.svg));
      }
      const code = await runSuite(launcher, args);
      if (code === 2) throw new UsageError('the suite refused its arguments (see above)');
      if (code !== 0)
        throw new Error(`the suite exited with code ${code}; the scenarios that failed are listed above`);
    });
}
