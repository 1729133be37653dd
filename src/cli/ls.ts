/** `ipckit ls`: the named resources in the runtime directory, who created them, and whether they live. */
import { Command } from 'commander';
import { listResources, type ResourceStatus, runtimeDir } from '../index.js';
import { formatAge, renderTable } from './format.js';
import { createOutput } from './output.js';

/** One resource as `ipckit ls --json` prints it: the registry entry plus its age. */
export interface LsEntry extends ResourceStatus {
  /** Milliseconds since the resource was created. */
  ageMs: number;
}

/** The registered resources (by kind, then name), with their ages at `now`. */
export function lsEntries(now = Date.now()): LsEntry[] {
  return listResources().map((entry) => ({
    ...entry,
    ageMs: Math.max(0, now - Date.parse(entry.createdAt)),
  }));
}

/** Builds the `ls` command. */
export function lsCommand(): Command {
  return new Command('ls')
    .description('list the named resources in the runtime directory: kind, name, owner, alive or dead, age')
    .option('--json', 'print a JSON array of { kind, name, path, owner, ownerAlive, createdAt, ageMs }')
    .addHelpText(
      'after',
      `
A resource is "dead" when the process that created it has exited (pids are compared with their
start time, so a reused pid is not mistaken for the creator).

Examples:
  $ ipckit ls
  $ IPCKIT_DIR=/tmp/demo ipckit ls --json`,
    )
    .action((opts: { json?: boolean }) => {
      const out = createOutput();
      const entries = lsEntries();
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
        String(e.owner.pid),
        e.ownerAlive ? 'alive' : 'dead',
        formatAge(e.ageMs),
        e.path ?? '',
      ]);
      const lines = renderTable(
        ['KIND', 'NAME', 'OWNER', 'STATE', 'AGE', 'PATH'],
        rows,
        (column, text, row) => {
          if (row < 0) return colors.bold(text);
          if (column === 3) return entries[row]?.ownerAlive ? colors.green(text) : colors.yellow(text);
          if (column === 5) return colors.dim(text);
          return text;
        },
      );
      for (const line of lines) out.line(line);
    });
}
