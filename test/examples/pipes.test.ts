// Runs each program in examples/pipes/ as a user would, and checks what it prints.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { listResources } from '../../src/index.js';
import { isolateRuntimeDir, watchdog } from '../helpers.js';

let runtime: ReturnType<typeof isolateRuntimeDir>;
beforeEach(() => {
  runtime = isolateRuntimeDir();
});
afterEach(() => runtime.cleanup());

/** Runs `examples/pipes/<file>` with tsx in the test's IPCKIT_DIR; resolves with its exit code and output. */
function runExample(file: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const path = fileURLToPath(new URL(`../../examples/pipes/${file}`, import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', path], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
  return watchdog(done, 25_000, `example ${file} to exit`).catch((err) => {
    child.kill('SIGKILL');
    throw err;
  });
}

describe('examples/pipes', () => {
  it('parent-child.ts: the child squares the jobs it is sent and exits when the parent closes', async () => {
    const run = await runExample('parent-child.ts');
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('job 0: 3² = 9');
    expect(run.stdout).toContain('job 1: 7² = 49');
    expect(run.stdout).toContain('job 2: 12² = 144');
    const childPid = /spawned child (\d+)/.exec(run.stdout)?.[1];
    expect(childPid).toBeDefined();
    expect(run.stdout).toContain(`(computed by pid ${childPid})`);
    expect(run.stdout).toContain('child exited with code 0');
  });

  it('fifo-shell-writer.ts: lines a shell writes arrive in order, and the FIFO is removed', async () => {
    const run = await runExample('fifo-shell-writer.ts');
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const received = run.stdout
      .split('\n')
      .filter((line) => line.startsWith('received line: '))
      .map((line) => line.slice('received line: '.length));
    expect(received).toEqual(['alpha', 'beta', 'gamma']);
    expect(run.stdout).toContain('shell exited with code 0');
    expect(listResources()).toEqual([]);
  });

  it('named-pipe-echo.ts: a client process gets each word echoed back, and the server cleans up', async () => {
    const run = await runExample('named-pipe-echo.ts');
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    for (const word of ['hello', 'named', 'pipe']) {
      expect(run.stdout).toContain(`server echoes: ${word}`);
      expect(run.stdout).toContain(`client got: ${word.toUpperCase()}`);
    }
    expect(run.stdout).toContain('client exited with code 0');
    expect(listResources()).toEqual([]);
  });
});
