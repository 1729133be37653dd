/**
 * Runs the built `ipckit` binary (bin/ipckit.js, which loads dist/ built by test/setup/build.ts)
 * as a real process, in the current IPCKIT_DIR, and collects its output and exit code.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { watchdog } from '../helpers.js';

/** The binary under test. */
export const BIN = fileURLToPath(new URL('../../bin/ipckit.js', import.meta.url));

/** What a run of the binary produced. */
export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `ipckit ...args` to completion (bounded by a watchdog of `ms`). */
export function runCli(
  args: readonly string[],
  opts?: { ms?: number; env?: NodeJS.ProcessEnv },
): Promise<CliRun> {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { ...process.env, ...opts?.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const done = new Promise<CliRun>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return watchdog(done, opts?.ms ?? 20_000, `ipckit ${args.join(' ')} to exit`).catch((err) => {
    child.kill('SIGKILL');
    throw err;
  });
}

/** Runs `ipckit ...args --json`-style commands and parses stdout, failing with stderr if it did not exit 0. */
export async function runCliJson<T>(args: readonly string[]): Promise<T> {
  const run = await runCli(args);
  if (run.code !== 0) throw new Error(`ipckit ${args.join(' ')} exited ${run.code}: ${run.stderr}`);
  return JSON.parse(run.stdout) as T;
}
