// Runs one program from examples/ as a user would, in the current test's IPCKIT_DIR.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { watchdog } from '../helpers.js';

/** What an example printed and how it exited. */
export interface ExampleRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `examples/<dir>/<file>` with tsx; resolves with its exit code and output. The watchdog `ms`
 * covers the example's own timeouts (30 s for a child to start) on a loaded machine; when it fires,
 * its error carries what the example printed, to tell where it stopped.
 */
export function runExample(dir: string, file: string, ms = 50_000): Promise<ExampleRun> {
  const path = fileURLToPath(new URL(`../../examples/${dir}/${file}`, import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', path], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const done = new Promise<ExampleRun>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
  return watchdog(done, ms, `example ${file} to exit`).catch((err: Error) => {
    child.kill('SIGKILL');
    throw new Error(`${err.message}\n--- stdout so far:\n${stdout}\n--- stderr so far:\n${stderr}`, {
      cause: err,
    });
  });
}
