/** `ipckit ls`: the named resources in the runtime directory, who created them, and whether they live. */
import { Command } from 'commander';
import { listResources, type ResourceStatus, runtimeDir } from '../index.js';
import { formatAge, formatBytes, formatCount, renderTable } from './format.js';
import { createOutput } from './output.js';
import { isKept } from './persistent.js';
import { type ResourceSize, resourceSize } from './resource-details.js';

/** One resource as `ipckit ls --json` prints it: the registry entry plus its age, size or depth. */
export interface LsEntry extends ResourceStatus, ResourceSize {
  /** Milliseconds since the resource was created. */
  ageMs: number;
  /** Made by `ipckit shm create` or `ipckit fifo create` to outlive the CLI: `ipckit gc` leaves it. */
  kept: boolean;
}

/** The registered resources (by kind, then name), with their ages at `now`, sizes and depths. */
export async function lsEntries(now = Date.now()): Promise<LsEntry[]> {
  return Promise.all(
    listResources().map(async (entry) => ({
      ...entry,
      ageMs: Math.max(0, now - Date.parse(entry.createdAt)),
      kept: isKept(entry),
      ...(await resourceSize(entry)),
    })),
  );
}

/** The STATE column: alive, dead, or kept (dead creator, but made to outlive it). */
export function stateOf(entry: { ownerAlive: boolean; kept: boolean }): string {
  if (entry.ownerAlive) return 'alive';
  return entry.kept ? 'kept' : 'dead';
}

/** The SIZE column: a segment's size, a queue's ready messages, or nothing. */
function sizeText(entry: ResourceSize): string {
  if (entry.sizeBytes !== undefined) return formatBytes(entry.sizeBytes);
  if (entry.depth !== undefined) return `${formatCount(entry.depth)} ready`;
  return '';
}

/** Builds the `ls` command. */
export function lsCommand(): Command {
  return new Command('ls')
    .description(
      'list the named resources in the runtime directory: kind, name, size or depth, owner, alive or dead, age',
    )
    .option(
      '--json',
      'print a JSON array of { kind, name, path, owner, ownerAlive, kept, createdAt, ageMs, sizeBytes?, depth? }',
    )
    .addHelpText(
      'after',
      `
A resource is "dead" when the process that created it has exited (pids are compared with their
start time, so a reused pid is not mistaken for the creator), and "kept" when it was made by
'ipckit shm create' or 'ipckit fifo create' to outlive that command ('ipckit gc' leaves it).
SIZE is a segment's size or a queue's ready messages. Details of one: 'ipckit inspect NAME'.

Examples:
  $ ipckit ls
  $ IPCKIT_DIR=/tmp/demo ipckit ls --json`,
    )
    .action(async (opts: { json?: boolean }) => {
      const out = createOutput();
      const entries = await lsEntries();
      if (opts.json) {
        out.json(entries);
        return;
      }
      const { colors } = out;
      if (entries.length === 0) {
        out.line(colors.dim(`no named resources in ${runtimeDir()}`));
        return;
      }
      const rows = entries.map((e) => [
        e.kind,
        e.name,
        sizeText(e),
        String(e.owner.pid),
        stateOf(e),
        formatAge(e.ageMs),
        e.path ?? '',
      ]);
      const lines = renderTable(
        ['KIND', 'NAME', 'SIZE', 'OWNER', 'STATE', 'AGE', 'PATH'],
        rows,
        (column, text, row) => {
          if (row < 0) return colors.bold(text);
          if (column === 4) return entries[row]?.ownerAlive ? colors.green(text) : colors.yellow(text);
          if (column === 6) return colors.dim(text);
          return text;
        },
      );
      for (const line of lines) out.line(line);
    });
}
