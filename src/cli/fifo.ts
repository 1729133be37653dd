/** `ipckit fifo create|rm|path`: FIFOs in the runtime directory, for shell scripts and other programs. */
import { Command, InvalidArgumentError } from 'commander';
import { ErrorCodes, Fifo, isIpcError } from '../index.js';
import { createOutput } from './output.js';
import { keepResource, releaseResource } from './persistent.js';

/** Parses `--mode` as octal (`600`, `0600` or `0o600`), the way chmod reads it. */
export function parseMode(value: string): number {
  const digits = value.replace(/^0o/i, '');
  if (!/^[0-7]{1,4}$/.test(digits)) throw new InvalidArgumentError('expected octal permissions such as 600');
  const mode = Number.parseInt(digits, 8);
  if (mode > 0o777) throw new InvalidArgumentError('expected permission bits only (at most 777)');
  return mode;
}

function createCommand(): Command {
  return new Command('create')
    .description('make a FIFO named NAME in the runtime directory and print its path')
    .argument('<name>', 'the FIFO name: 1-100 characters of A-Z a-z 0-9 . _ -')
    .option('-m, --mode <octal>', 'permissions, as for chmod (default 600: this user only)', parseMode)
    .option('--json', 'print { kind, name, path }')
    .addHelpText(
      'after',
      `
Examples:
  $ ipckit fifo create logs
  $ echo hello > "$(ipckit fifo path logs)"   # while a program reads it`,
    )
    .action(async (name: string, opts: { mode?: number; json?: boolean }) => {
      const out = createOutput();
      const path = await Fifo.create(name, opts.mode === undefined ? undefined : { mode: opts.mode });
      // Made for shell scripts to outlive this command: `ipckit gc` leaves it unless given --kept.
      try {
        keepResource('fifo', name);
      } catch (err) {
        // Not kept, it would be collected as its creator (this command) exits: a failed command
        // leaves nothing behind instead.
        await Fifo.unlink(name).catch(() => {});
        throw err;
      }
      if (opts.json) out.json({ kind: 'fifo', name, path });
      else out.line(path);
    });
}

function rmCommand(): Command {
  return new Command('rm')
    .description('remove FIFOs by name')
    .argument('<names...>', 'the FIFO names')
    .option('-f, --force', 'ignore FIFOs that do not exist')
    .action(async (names: string[], opts: { force?: boolean }) => {
      for (const name of names) {
        try {
          await Fifo.unlink(name);
        } catch (err) {
          if (!(opts.force && isIpcError(err, ErrorCodes.NOT_FOUND))) throw err;
        }
        // Only once it is gone: a FIFO that could not be removed stays kept from gc.
        releaseResource('fifo', name);
      }
    });
}

function pathCommand(): Command {
  return new Command('path')
    .description('print the path of the FIFO named NAME (whether or not it exists)')
    .argument('<name>', 'the FIFO name')
    .option('--json', 'print { kind, name, path }')
    .action((name: string, opts: { json?: boolean }) => {
      const out = createOutput();
      const path = Fifo.path(name);
      if (opts.json) out.json({ kind: 'fifo', name, path });
      else out.line(path);
    });
}

/** Builds the `fifo` command group. */
export function fifoCommand(): Command {
  return new Command('fifo')
    .description('create, remove and locate FIFOs (POSIX named pipes)')
    .addCommand(createCommand())
    .addCommand(rmCommand())
    .addCommand(pathCommand());
}
