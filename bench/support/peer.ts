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

/** Node arguments that run a TypeScript child from bench/children/ with `args` after it. */
export function childArgs(file: string, ...args: string[]): string[] {
  return ['--import', import.meta.resolve('tsx'), childPath(file), ...args];
}

/** Absolute path of a child program in bench/children/. */
export function childPath(file: string): string {
  return fileURLToPath(new URL(`../children/${file}`, import.meta.url));
}
