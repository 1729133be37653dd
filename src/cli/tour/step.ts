/**
 * What a tour step is. Each step shows one mechanism between real processes, narrates what
 * happens, and returns one measured figure. Adding a mechanism to the tour is one new file
 * implementing {@link TourStep} plus one line in `steps.ts`.
 */
import type { Colors } from '../output.js';

/** The one measured figure a step reports, e.g. `{ label: 'echoed', value: 83412, unit: 'messages/s' }`. */
export interface Figure {
  /** What was measured, read after the value: `83,412 messages/s echoed through the child`. */
  label: string;
  value: number;
  unit: string;
}

/** How a program the tour runs is started: always compiled JavaScript run by this Node. */
export interface ChildCommand {
  command: string;
  args: string[];
}

/** What the tour runner gives a step. */
export interface TourContext {
  /** Aborted when the user interrupts the tour (Ctrl-C): pass it to every wait. */
  readonly signal: AbortSignal;
  /** Colors for narration (identity functions when stdout is not a terminal). */
  readonly colors: Colors;
  /** A resource name unique to this tour run, such as `tour-4242-lines`, so runs never collide. */
  name(suffix: string): string;
  /** Prints one line of narration under the step's title (nothing in `--json` mode). */
  say(text: string): void;
  /** Registers a cleanup, run when the step ends however it ends, the last registered first. */
  defer(cleanup: () => unknown): void;
  /** How to run the tour child program `name` (a file in `src/cli/tour/children/`). */
  child(name: string, ...args: string[]): ChildCommand;
  /**
   * Waits for `promise`, but at most `ms` and never past an interrupt, so a step can never hang
   * the tour. A late rejection of `promise` is observed, not left unhandled.
   */
  within<T>(what: string, ms: number, promise: Promise<T>): Promise<T>;
}

/** One step of `ipckit tour`. */
export interface TourStep {
  /** A stable identifier, used in `--json` output: `anonymous-pipe`. */
  id: string;
  /** The title printed above the narration: `Anonymous pipe to a child process`. */
  title: string;
  /** Runs the step; resources it makes are cleaned through {@link TourContext.defer}. */
  run(ctx: TourContext): Promise<Figure>;
}
