/**
 * A benchmark peer: a child process at the other end of one transport, speaking the group protocol.
 * The measuring code sees only this interface, so every transport is driven by the same loop.
 */
import { fileURLToPath } from 'node:url';
import type { PayloadKind } from './group-protocol.js';

export interface Peer {
  /** What is measured, as shown in the table: 'ipckit pipe channel', "process.send 'advanced'", … */
  readonly subject: string;
  readonly kind: PayloadKind;
  /** The child's pid, to read its peak RSS. */
  readonly pid: number;
  /**
   * Sends one message. A returned promise means the transport is behind: await it before the next
   * send. Every peer applies its transport's backpressure, as a well-behaved program would.
   */
  send(message: unknown): Promise<void> | undefined;
  receive(): Promise<unknown>;
  /** Ends the transport and waits for the child to exit. */
  close(): Promise<void>;
}

/**
 * The children's stdio: no stdin, and anything they print goes to our stderr, so that stdout carries
 * only the results (`--json`).
 */
export const CHILD_STDIO: ['ignore', 2, 2] = ['ignore', 2, 2];

/** True when the bench runs from its TypeScript sources (a standalone `node --import tsx bench/….ts`). */
const fromSources = import.meta.url.endsWith('.ts');

/** The extension of the bench's (and src/'s) modules as they run: `.ts` from sources, else `.js`. */
export const moduleExtension = fromSources ? '.ts' : '.js';

/**
 * The Node flags a child of bench/children/ needs: the tsx loader when the bench runs from its
 * sources, none when it runs transpiled (bench/launch.mjs, which `npm run bench` uses).
 */
export const CHILD_LOADER: readonly string[] = fromSources ? ['--import', import.meta.resolve('tsx')] : [];

/** Node arguments that run a child from bench/children/ with `args` after it. */
export function childArgs(file: string, ...args: string[]): string[] {
  return [...CHILD_LOADER, childPath(file), ...args];
}

/** Absolute path of a child program in bench/children/, named by its source file (`x.ts`). */
export function childPath(file: string): string {
  const runnable = file.replace(/\.ts$/, moduleExtension);
  return fileURLToPath(new URL(`../children/${runnable}`, import.meta.url));
}
