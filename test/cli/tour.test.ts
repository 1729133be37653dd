import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { kernelPrefix } from '../../src/shm/kernel-name.js';
import { isolateRuntimeDir, watchdog } from '../helpers.js';
import { BIN, runCli, runCliJson } from './run-cli.js';

let runtime: ReturnType<typeof isolateRuntimeDir>;
beforeEach(() => {
  runtime = isolateRuntimeDir();
});
afterEach(() => runtime.cleanup());

interface TourJson {
  runtimeDir: string;
  steps: { id: string; title: string; figure: { label: string; value: number; unit: string } }[];
  comingNext: string[];
  leftBehind: string[];
}

/** Every mechanism, in the order the tour shows them. */
const STEPS: [id: string, title: string][] = [
  ['anonymous-pipe', 'Anonymous pipe to a child process'],
  ['fifo-shell', 'FIFO written by a shell command'],
  ['named-pipe', 'Named-pipe server with client processes'],
  ['unix-socket', 'Unix-socket request/reply with a client process'],
  ['message-queue', 'Message queue with priorities and competing consumers'],
  ['shared-memory', 'Shared memory with a Mutex shared by processes'],
  ['shm-channel', 'ShmChannel: ring buffers in shared memory'],
  ['process-control', 'Process control: pause, resume, stop'],
];

/** Every file (not directory) under `dir`, and the /dev/shm objects of this runtime directory. */
function leftovers(dir: string): string[] {
  const files = readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => !entry.isDirectory())
    .map((entry) => join(entry.parentPath, entry.name));
  const prefix = kernelPrefix().slice(1);
  return [...files, ...readdirSync('/dev/shm').filter((name) => name.startsWith(prefix))];
}

// The whole tour runs real processes on a shared 2-core machine: a generous watchdog, no timing.
const TOUR_MS = 150_000;

describe('ipckit tour', () => {
  it('runs every step with a figure, exits 0, and leaves nothing for `ipckit ls` to show', {
    timeout: TOUR_MS + 30_000,
  }, async () => {
    const run = await runCli(['tour'], { ms: TOUR_MS });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    // Each title, followed (before the next title) by its figure line.
    const sections = run.stdout.split(/^\d+\/\d+ {2}/m).slice(1);
    expect(sections.map((section) => section.split('\n')[0])).toEqual(STEPS.map(([, title]) => title));
    for (const section of sections) expect(section).toMatch(/^ {3}→ [\d,.]+ \S+/m);
    expect(run.stdout).toContain('received the line "hello from sh, pid');
    // The queue step: the message held by the killed consumer reached the other one.
    expect(run.stdout).toMatch(/was killed with SIGKILL before acking it/);
    expect(run.stdout).toMatch(/received #\d+ again with attempts 2/);
    // The shared-memory step: no increment lost.
    expect(run.stdout).toMatch(/the counter reads 30,000, exactly 3 × 10,000/);
    expect(run.stdout).toMatch(/child\.stop\(.*\) took .*: it (caught SIGTERM|ignored SIGTERM)/);
    expect(run.stdout).not.toContain('Coming next');
    expect(run.stdout).toContain('Nothing left behind');
    expect(await runCliJson(['ls', '--json'])).toEqual([]);
    // Not even the files ipckit keeps for itself (doorbell sockets, kept marks), nor a segment.
    expect(leftovers(runtime.dir)).toEqual([]);
  });

  it('a reader that stops early (`ipckit tour | head`) ends it quietly, after it cleaned up', {
    timeout: TOUR_MS + 30_000,
  }, async () => {
    const child = spawn(process.execPath, [BIN, 'tour'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
    // Read until a step that holds resources (a named-pipe server and its clients) has begun, then
    // hang up: its next write fails with EPIPE.
    let stdout = '';
    await watchdog(
      new Promise<void>((resolve) => {
        child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
          stdout += chunk;
          if (/^3\/\d+ {2}/m.test(stdout)) resolve();
        });
      }),
      TOUR_MS,
      'the third step',
    );
    child.stdout.destroy();
    expect(await watchdog(exited, TOUR_MS, 'the tour to end')).toBe(0);
    expect(stderr).toBe('');
    expect(await runCliJson(['ls', '--json'])).toEqual([]);
    expect(leftovers(runtime.dir)).toEqual([]);
  });

  it('--json reports one figure per step', { timeout: TOUR_MS + 30_000 }, async () => {
    const run = await runCli(['tour', '--json'], { ms: TOUR_MS });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const result = JSON.parse(run.stdout) as TourJson;
    expect(result.runtimeDir).toBe(runtime.dir);
    expect(result.steps.map((step) => step.id)).toEqual(STEPS.map(([id]) => id));
    for (const step of result.steps) {
      expect(step.figure.value, step.id).toBeGreaterThan(0);
      expect(Number.isFinite(step.figure.value), step.id).toBe(true);
      expect(step.figure.unit, step.id).not.toBe('');
    }
    expect(result.comingNext).toEqual([]);
    expect(result.leftBehind).toEqual([]);
    expect(await runCliJson(['ls', '--json'])).toEqual([]);
  });
});
