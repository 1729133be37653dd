/**
 * Test helpers: a private IPCKIT_DIR per test, fixture paths, and watchdogs. Nothing here sleeps to
 * synchronize: waits are on signals, bounded by a watchdog that fails the test with a reason.
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync, watch } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Gives the current test its own runtime directory; returns it and a cleanup function. `umask`:
 * the process's umask until cleanup (0 to check that modes do not depend on it).
 */
export function isolateRuntimeDir(opts?: { umask?: number }): { dir: string; cleanup(): void } {
  const previous = process.env.IPCKIT_DIR;
  const base = mkdtempSync(join(tmpdir(), 'ipckit-test-'));
  const dir = join(base, 'rt');
  process.env.IPCKIT_DIR = dir;
  const previousUmask = opts?.umask === undefined ? undefined : process.umask(opts.umask);
  return {
    dir,
    cleanup() {
      if (previousUmask !== undefined) process.umask(previousUmask);
      if (previous === undefined) delete process.env.IPCKIT_DIR;
      else process.env.IPCKIT_DIR = previous;
      rmSync(base, { recursive: true, force: true });
    },
  };
}

/** Absolute path of a fixture program in test/fixtures/. */
export function fixture(name: string): string {
  return fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));
}

/** Node arguments to run a TypeScript fixture. */
export function fixtureArgs(name: string, ...args: string[]): string[] {
  return ['--import', 'tsx', fixture(name), ...args];
}

/** Rejects with `reason` if `promise` has not settled within `ms`: a watchdog, not a timing assertion. */
export function watchdog<T>(promise: Promise<T>, ms: number, reason: string): Promise<T> {
  let timer: NodeJS.Timeout;
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`watchdog: ${reason} (not within ${ms} ms)`)), ms);
  });
  return Promise.race([promise, guard]).finally(() => clearTimeout(timer));
}

/** The number of open file descriptors of this process. */
export function openFdCount(): number {
  return readdirCount('/proc/self/fd');
}

function readdirCount(path: string): number {
  return readdirSync(path).length;
}

/** The error a promise rejects with (fails the test if it resolves). */
export async function rejectionOf(
  promise: Promise<unknown>,
): Promise<Error & { code?: string; cause?: Error }> {
  try {
    await promise;
  } catch (err) {
    return err as Error & { code?: string; cause?: Error };
  }
  throw new Error('expected the promise to reject, but it resolved');
}

/** Resolves once the file names in `dir` (created if missing) satisfy `done`: inotify, not polling. */
export function directoryReaches(dir: string, done: (files: string[]) => boolean): Promise<void> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  return new Promise((resolve) => {
    const check = () => {
      if (!done(readdirSync(dir))) return;
      watcher.close();
      resolve();
    };
    const watcher = watch(dir, check);
    check();
  });
}

/** True if `promise` is still pending after everything already queued has run. */
export async function isPending(promise: Promise<unknown>): Promise<boolean> {
  const marker = Symbol('pending');
  const settled = await Promise.race([
    promise.then(
      () => 'settled',
      () => 'settled',
    ),
    new Promise((r) => setImmediate(() => r(marker))),
  ]);
  return settled === marker;
}

/**
 * Blocks this thread, event loop included, until `condition()` holds, checking every 2 ms; throws
 * after `ms`. For tests that need the loop to find a timer due before it reads what another
 * process did meanwhile.
 */
export function blockUntil(condition: () => boolean, ms: number): void {
  const pause = new Int32Array(new SharedArrayBuffer(4));
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`blockUntil: not within ${ms} ms`);
    Atomics.wait(pause, 0, 0, 2);
  }
}
