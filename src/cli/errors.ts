/**
 * How the CLI fails: one line on stderr, no stack, and an exit code that tells scripts whose fault
 * it was: 2 for a bad command line (usage), 1 for a failure while running.
 */
import { CommanderError } from 'commander';
import { ErrorCodes, isIpcError } from '../index.js';

/** Exit code of a bad command line: unknown command or option, missing or invalid argument. */
export const EXIT_USAGE = 2;
/** Exit code of a failure while running. */
export const EXIT_FAILURE = 1;

/** A bad command line found by a command itself (beyond what commander checks). */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Exit code after Ctrl-C, as shells report a process ended by SIGINT (128 + 2). */
export const EXIT_INTERRUPTED = 130;

/** The user interrupted a command (Ctrl-C) and it stopped cleanly. */
export class InterruptedError extends Error {
  constructor(message = 'interrupted') {
    super(message);
    this.name = 'InterruptedError';
  }
}

/** The exit code for an error thrown while parsing or running a command. */
export function exitCodeFor(err: unknown): number {
  if (err instanceof CommanderError) {
    // Help and version end with a CommanderError too; only a help shown *because* of an error
    // (a command group run without its subcommand) counts as usage.
    if (err.exitCode === 0) return 0;
    return EXIT_USAGE;
  }
  if (err instanceof UsageError) return EXIT_USAGE;
  if (err instanceof InterruptedError) return EXIT_INTERRUPTED;
  // A resource name is an argument: an invalid one is the command line's fault.
  if (isIpcError(err, ErrorCodes.INVALID_NAME)) return EXIT_USAGE;
  return EXIT_FAILURE;
}

/** Squeezes a message onto one line: the CLI's contract is one line per error. */
export function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}

/** The one-line description of `err`, with the stable code of an IpcError so it can be looked up. */
export function describeError(err: unknown): string {
  if (isIpcError(err)) return `${oneLine(err.message)} (${err.code})`;
  if (err instanceof Error) return oneLine(err.message || err.name);
  return oneLine(String(err));
}
