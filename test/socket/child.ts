/**
 * Runs a fixture program and follows its stdout line by line, so a test waits on what the child
 * says ("LISTENING url", "READY") instead of sleeping. Every wait is bounded by a watchdog.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fixtureArgs, watchdog } from '../helpers.js';

/** A running fixture. */
export interface Fixture {
  readonly process: ChildProcess;
  /** Resolves with the first stdout line (past or future) starting with `prefix`, minus the prefix. */
  line(prefix: string, ms?: number): Promise<string>;
  /** Resolves when the child exits. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGKILLs the child if it still runs (and a stopped one: SIGCONT is not needed for SIGKILL). */
  kill(): void;
}

/** Starts `test/fixtures/<name>` with tsx; stderr is passed through for diagnosis. */
export function startFixture(
  name: string,
  args: string[] = [],
  opts: { env?: NodeJS.ProcessEnv; command?: string[] } = {},
): Fixture {
  const argv = [...(opts.command ?? []), process.execPath, ...fixtureArgs(name, ...args)];
  const child = spawn(argv[0]!, argv.slice(1), {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, ...opts.env },
  });
  const lines: string[] = [];
  const listeners = new Set<() => void>();
  let rest = '';
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (chunk: string) => {
    rest += chunk;
    let newline = rest.indexOf('\n');
    while (newline >= 0) {
      lines.push(rest.slice(0, newline));
      rest = rest.slice(newline + 1);
      newline = rest.indexOf('\n');
    }
    for (const listener of listeners) listener();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      for (const listener of listeners) listener();
      resolve({ code, signal });
    });
  });
  return {
    process: child,
    exited,
    line(prefix, ms = 20_000) {
      const found = new Promise<string>((resolve, reject) => {
        const check = () => {
          const hit = lines.find((l) => l.startsWith(prefix));
          if (hit !== undefined) {
            listeners.delete(check);
            resolve(hit.slice(prefix.length).trim());
          } else if (child.exitCode !== null || child.signalCode !== null) {
            listeners.delete(check);
            reject(
              new Error(`fixture ${name} exited before printing '${prefix}' (got: ${lines.join(' | ')})`),
            );
          }
        };
        listeners.add(check);
        check();
      });
      return watchdog(found, ms, `fixture ${name}: line '${prefix}'`);
    },
    kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}
