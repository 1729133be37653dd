/**
 * The `ipckit` command: builds the program from one file per subcommand and runs it. Every command
 * shares the same conventions, applied here once: `--help`, one-line errors on stderr naming the
 * command, exit code 2 for a bad command line and 1 for a failure while running.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { benchCommand } from './bench.js';
import { callCommand } from './call.js';
import { describeError, exitCodeFor, oneLine } from './errors.js';
import { fifoCommand } from './fifo.js';
import { gcCommand } from './gc.js';
import { inspectCommand } from './inspect.js';
import { lsCommand } from './ls.js';
import { mqCommand } from './mq.js';
import { serveCommand } from './serve.js';
import { shmCommand } from './shm.js';
import { tourCommand } from './tour.js';

/** The package version, read from package.json (two levels up from both src/cli and dist/cli). */
export function packageVersion(): string {
  const url = new URL('../../package.json', import.meta.url);
  return (JSON.parse(readFileSync(url, 'utf8')) as { version: string }).version;
}

/** `ipckit fifo create` for the fifo group's create command. */
function commandPath(command: Command): string {
  const names: string[] = [];
  for (let c: Command | null = command; c; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/**
 * Gives `command` and its subcommands the shared conventions. Subcommands built with `new Command`
 * and `addCommand` inherit nothing from their parent in commander, hence the walk.
 */
function applyConventions(command: Command): void {
  const path = commandPath(command);
  command
    .exitOverride()
    .showSuggestionAfterError(true)
    .configureOutput({
      // Commander's messages start with "error: " and put suggestions on a second line.
      outputError: (message, write) =>
        write(`${path}: ${oneLine(message.replace(/^error: /, ''))} (see '${path} --help')\n`),
    });
  for (const sub of command.commands) applyConventions(sub);
}

/** Builds the whole `ipckit` program, ready to parse. */
export function createProgram(): Command {
  const program = new Command('ipckit')
    .description('inter-process communication toolkit for Node.js: try, inspect and clean up IPC resources')
    .version(packageVersion(), '-v, --version', 'print the version')
    .helpCommand(true)
    .addCommand(tourCommand())
    .addCommand(benchCommand())
    .addCommand(lsCommand())
    .addCommand(inspectCommand())
    .addCommand(gcCommand())
    .addCommand(fifoCommand())
    .addCommand(mqCommand())
    .addCommand(shmCommand())
    .addCommand(serveCommand())
    .addCommand(callCommand())
    .addHelpText(
      'after',
      `
Named resources live in the runtime directory: $IPCKIT_DIR, else $XDG_RUNTIME_DIR/ipckit, else
<tmpdir>/ipckit-<uid>. Exit codes: 0 success, 1 failure, 2 bad command line, 130 interrupted.
Documentation: docs/cli.md`,
    );
  applyConventions(program);
  return program;
}

export { stdoutWentAway } from './stdout-closed.js';

/**
 * Runs the CLI on `args` (the arguments after the program name) and resolves with the exit code.
 * Never rejects: every failure is reported as one line on stderr.
 */
export async function main(args: readonly string[]): Promise<number> {
  const program = createProgram();
  if (args.length === 0) {
    // Bare `ipckit` is how a newcomer asks what it does: the help, on stdout, is not an error.
    program.outputHelp();
    return 0;
  }
  let active: Command = program;
  program.hook('preAction', (_program, actionCommand) => {
    active = actionCommand;
  });
  try {
    await program.parseAsync([...args], { from: 'user' });
    return 0;
  } catch (err) {
    // Commander has already printed its own errors (and help/version) through outputError.
    if (!(err instanceof CommanderError)) {
      process.stderr.write(`${commandPath(active)}: ${describeError(err)}\n`);
      if (process.env.IPCKIT_DEBUG && err instanceof Error && err.stack)
        process.stderr.write(`${err.stack}\n`);
    }
    return exitCodeFor(err);
  }
}
