/**
 * Child processes for the queue tests: start a fixture from test/fixtures/ on the store under test,
 * read its stdout line by line, wait for a line, talk to it on stdin, signal it. Every wait is
 * bounded by a watchdog that names what was awaited.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fixture, fixtureArgs, watchdog } from '../helpers.js';

/** A running fixture. */
export class Fixture {
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly lines: string[] = [];
  #waiters: { prefix: string; from: number; resolve(line: string): void }[] = [];
  #stderr = '';
  readonly #name: string;

  constructor(name: string, args: string[], env: NodeJS.ProcessEnv = {}) {
    this.#name = name;
    // A .mjs fixture runs on the compiled dist/ without the TypeScript loader (cheaper to start).
    const argv = name.endsWith('.mjs') ? [fixture(name), ...args] : fixtureArgs(name, ...args);
    this.child = spawn(process.execPath, argv, {
      env: { ...process.env, ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.child.stderr!.on('data', (chunk: Buffer) => {
      this.#stderr += chunk.toString();
    });
    createInterface({ input: this.child.stdout! }).on('line', (line) => this.#line(line));
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => resolve({ code, signal }));
    });
  }

  get stderr(): string {
    return this.#stderr;
  }

  #line(line: string): void {
    this.lines.push(line);
    const index = this.lines.length - 1;
    this.#waiters = this.#waiters.filter((w) => {
      if (index < w.from || !line.startsWith(w.prefix)) return true;
      w.resolve(line);
      return false;
    });
  }

  /** The first line (from the `from`-th on) that starts with `prefix`. */
  waitFor(prefix: string, ms = 20_000, from = 0): Promise<string> {
    const seen = this.lines.slice(from).find((line) => line.startsWith(prefix));
    if (seen !== undefined) return Promise.resolve(seen);
    const line = new Promise<string>((resolve, reject) => {
      this.#waiters.push({ prefix, from, resolve });
      this.exited.then(({ code, signal }) =>
        reject(
          new Error(`${this.#name} exited (${code ?? signal}) before printing '${prefix}':\n${this.#stderr}`),
        ),
      );
    });
    return watchdog(line, ms, `${this.#name} to print '${prefix}'`);
  }

  /** Writes a line to the fixture's stdin. */
  tell(line: string): void {
    this.child.stdin!.write(`${line}\n`);
  }

  kill(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }

  /** Waits for the exit, bounded by a watchdog. */
  exit(ms = 20_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    return watchdog(this.exited, ms, `${this.#name} to exit`);
  }
}

/** Starts a fixture with the store under test in its environment. */
export function startFixture(
  name: string,
  args: string[],
  storeSpec: string,
  env: NodeJS.ProcessEnv = {},
): Fixture {
  return new Fixture(name, args, { IPCKIT_TEST_STORE: storeSpec, ...env });
}

/** Parses the JSON after `got ` in a line. */
export function gotJson<T = { id: string; attempts: number; body: unknown; type: string }>(line: string): T {
  return JSON.parse(line.slice('got '.length)) as T;
}
