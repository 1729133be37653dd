/**
 * Where the CLI writes: plain text or JSON on stdout, with color only when stdout is a terminal
 * (never in pipes, files or CI logs, so output stays greppable and JSON stays parseable).
 */
import pc from 'picocolors';

/** The color functions of picocolors; each is the identity when color is off. */
export type Colors = ReturnType<typeof pc.createColors>;

/** The CLI's standard output. */
export interface Output {
  /** Colors, enabled only when stdout is a TTY and NO_COLOR is unset. */
  readonly colors: Colors;
  /** Writes one line. */
  line(text?: string): void;
  /** Writes `value` as pretty JSON, the whole output of a `--json` command. */
  json(value: unknown): void;
  /**
   * Resolves once everything written so far has been handed to the kernel; rejects with the write
   * error (EPIPE, ENOSPC) if it could not be. For a command whose output must be out before it
   * commits anything (`mq receive` acknowledges a message only once it is printed).
   */
  written(): Promise<void>;
}

/** True when color makes sense: stdout is a terminal and the user did not opt out (no-color.org). */
export function colorEnabled(stream: NodeJS.WriteStream = process.stdout): boolean {
  return stream.isTTY === true && !process.env.NO_COLOR && process.env.TERM !== 'dumb';
}

/** The output of one command run. */
export function createOutput(stream: NodeJS.WriteStream = process.stdout): Output {
  const colors = pc.createColors(colorEnabled(stream));
  return {
    colors,
    line(text = '') {
      stream.write(`${text}\n`);
    },
    json(value) {
      stream.write(`${JSON.stringify(value, null, 2)}\n`);
    },
    written() {
      // Writes complete in order: the callback of an empty one comes after all the earlier ones.
      return new Promise((resolve, reject) => {
        stream.write('', (err) => (err ? reject(err) : resolve()));
      });
    },
  };
}
