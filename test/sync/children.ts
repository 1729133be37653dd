/**
 * Child processes for the shm and sync tests: start a fixture, wait for a line it prints, collect
 * its exit. Every test kills what it started in afterEach via `killAll`.
 */
import { type ChildProcess, type StdioOptions, spawn } from 'node:child_process';
import { readdirSync, rmSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { afterEach, beforeEach } from 'vitest';
import { kernelPrefix } from '../../src/shm/kernel-name.js';
import { directoryReaches, fixture, fixtureArgs, isolateRuntimeDir, watchdog } from '../helpers.js';

/** A running fixture with line-level access to its stdout. */
export interface Fixture {
  child: ChildProcess;
  pid: number;
  /** Resolves with the first stdout line that starts with `prefix` (a line already seen counts). */
  line(prefix: string, ms?: number): Promise<string>;
  /** Everything printed so far. */
  output(): string;
  /** Resolves with the exit code and signal. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const running = new Set<ChildProcess>();

/** Starts `test/fixtures/<name>` under tsx with `args`; stderr is inherited for diagnostics. */
export function startFixture(
  name: string,
  args: string[] = [],
  opts: { env?: NodeJS.ProcessEnv; stdio?: StdioOptions; command?: string; argv?: string[] } = {},
): Fixture {
  const child = spawn(opts.command ?? process.execPath, opts.argv ?? fixtureArgs(name, ...args), {
    env: opts.env ?? process.env,
    stdio: opts.stdio ?? ['ignore', 'pipe', 'inherit'],
  });
  running.add(child);
  let text = '';
  const waiters: { prefix: string; resolve: (line: string) => void }[] = [];
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      running.delete(child);
      resolve({ code, signal });
    });
  });
  child.stdout?.on('data', (chunk: Buffer) => {
    text += chunk.toString();
    for (const waiter of [...waiters]) {
      const found = text.split('\n').find((l) => l.startsWith(waiter.prefix));
      if (found !== undefined) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(found);
      }
    }
  });
  return {
    child,
    pid: child.pid!,
    output: () => text,
    exited,
    line(prefix, ms = 20_000) {
      const found = text.split('\n').find((l) => l.startsWith(prefix));
      if (found !== undefined) return Promise.resolve(found);
      const seen = new Promise<string>((resolve, reject) => {
        waiters.push({ prefix, resolve });
        void exited.then(({ code, signal }) => {
          reject(
            new Error(`${name} exited (${code ?? signal}) before printing "${prefix}"; it printed: ${text}`),
          );
        });
      });
      return watchdog(seen, ms, `${name} to print "${prefix}"`);
    },
  };
}

/** Kills every fixture still running and waits for them. */
export async function killAll(): Promise<void> {
  const exits = [...running].map(
    (child) =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGKILL');
      }),
  );
  await Promise.all(exits);
}

/** Waits for a fixture to exit with code 0, failing with its output otherwise. */
export async function succeeded(fixture: Fixture, ms: number, what: string): Promise<string> {
  const status = await watchdog(fixture.exited, ms, what);
  if (status.code !== 0) {
    throw new Error(`${what}: exited with ${status.code ?? status.signal}; output: ${fixture.output()}`);
  }
  return fixture.output();
}

/**
 * Runs a fixture in a worker thread of this process instead of a child process: same arguments
 * (`process.argv`), same environment, stdout captured the same way. `terminate()` ends it.
 */
export function startWorkerFixture(
  name: string,
  args: string[] = [],
): Fixture & { terminate(): Promise<void> } {
  // --import in a worker's execArgv does not install tsx there (Node 20): register it by hand.
  const url = pathToFileURL(fixture(name)).href;
  const bootstrap = `(async () => {
    const { register } = await import('tsx/esm/api');
    register();
    await import(${JSON.stringify(url)});
  })().catch((err) => { console.error(err); process.exit(1); });`;
  const worker = new Worker(bootstrap, { eval: true, argv: args, env: { ...process.env }, stdout: true });
  workers.add(worker);
  let text = '';
  const waiters: { prefix: string; resolve: (line: string) => void }[] = [];
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    worker.once('error', (err) => {
      text += `\nworker error: ${String(err)}\n`;
    });
    worker.once('exit', (code) => {
      workers.delete(worker);
      resolve({ code, signal: null });
    });
  });
  worker.stdout.on('data', (chunk: Buffer) => {
    text += chunk.toString();
    for (const waiter of [...waiters]) {
      const found = text.split('\n').find((l) => l.startsWith(waiter.prefix));
      if (found !== undefined) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(found);
      }
    }
  });
  return {
    child: undefined as never,
    pid: process.pid,
    output: () => text,
    exited,
    terminate: async () => {
      await worker.terminate();
    },
    line(prefix, ms = 20_000) {
      const found = text.split('\n').find((l) => l.startsWith(prefix));
      if (found !== undefined) return Promise.resolve(found);
      const seen = new Promise<string>((resolve, reject) => {
        waiters.push({ prefix, resolve });
        void exited.then(({ code }) => {
          reject(
            new Error(`worker ${name} exited (${code}) before printing "${prefix}"; it printed: ${text}`),
          );
        });
      });
      return watchdog(seen, ms, `worker ${name} to print "${prefix}"`);
    },
  };
}

const workers = new Set<Worker>();

/** Terminates every worker fixture still running. */
export async function terminateWorkers(): Promise<void> {
  await Promise.all([...workers].map((worker) => worker.terminate()));
}

/**
 * Removes every shared-memory object of the current runtime directory from /dev/shm (segments and
 * named primitives a test left behind): call it before the test's runtime directory goes away.
 */
export function removeShmObjects(): void {
  const prefix = kernelPrefix().slice(1);
  for (const file of readdirSync('/dev/shm')) {
    if (file.startsWith(prefix)) rmSync(`/dev/shm/${file}`, { force: true });
  }
}

/**
 * Starts a consumer of queue `queue` that waits to receive (its doorbell socket then sits in
 * `bells`, which holds `bellsThen` files in all), and kills it with SIGKILL, so that its doorbell
 * is left behind for the test to find. Returns the consumer's pid.
 */
export async function killWaitingConsumer(queue: string, bells: string, bellsThen: number): Promise<number> {
  const consumer = startFixture('mq-wait-receive.ts', [queue]);
  await consumer.line('waiting');
  await watchdog(
    directoryReaches(bells, (files) => files.length === bellsThen),
    20_000,
    `${bellsThen} doorbell(s) in ${bells}`,
  );
  consumer.child.kill('SIGKILL');
  await consumer.exited;
  return consumer.pid;
}

/**
 * Gives each test of the calling file a runtime directory of its own, and after each test kills
 * the fixtures it started and removes the /dev/shm objects it left. `dir` is the current test's.
 */
export function isolateEachTest(): { readonly dir: string } {
  let env: ReturnType<typeof isolateRuntimeDir> | undefined;
  beforeEach(() => {
    env = isolateRuntimeDir();
  });
  afterEach(async () => {
    await killAll();
    removeShmObjects();
    env?.cleanup();
  });
  return {
    get dir() {
      return env!.dir;
    },
  };
}
