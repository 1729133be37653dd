/** `ipckit gc`: removes the named resources whose creator is dead; never a live creator's. */
import { Command } from 'commander';
import { type GcResult, gcResources, listResources, type ResourceKind } from '../index.js';
import { createOutput } from './output.js';
import { isKept, keptMarks, releaseResource } from './persistent.js';
import { RESOURCE_KINDS } from './resource-details.js';

/** What `ipckit gc --json` prints. */
export interface GcReport extends GcResult {
  dryRun: boolean;
}

/** Builds the `gc` command. */
export function gcCommand(): Command {
  return new Command('gc')
    .description('remove the named resources whose creator has exited (segments, locks, FIFOs, sockets)')
    .option('-n, --dry-run', 'print what would be removed, and remove nothing')
    .option(
      '--queues',
      'also remove message queues whose creator has exited (durable by design: off by default)',
    )
    .option('--kept', "also remove what 'ipckit shm create' and 'ipckit fifo create' made (kept by default)")
    .option(
      '--json',
      'print { dryRun, removed: [{ kind, name, path, owner, source }], failed: [{ kind, name, error }], inUse: [{ kind, name, pids }] }',
    )
    .addHelpText(
      'after',
      `
A creator is a pid plus its start time, so a reused pid does not keep a dead creator's resources
alive, and nothing whose creator still runs is ever removed. A segment or lock that live processes
still map is left in place too, and listed: they may be using it (a lock whose creator exited
first, say). Removing a name does not stop a process that has the object open, but the next
process to open the name makes a new one, which the others do not share. Exit code 1 if a
resource could not be removed (each failure is listed).

Examples:
  $ ipckit gc --dry-run
  $ ipckit gc --queues --json`,
    )
    .action((opts: { dryRun?: boolean; queues?: boolean; kept?: boolean; json?: boolean }) => {
      const out = createOutput();
      const dryRun = opts.dryRun === true;
      const kinds: ResourceKind[] = RESOURCE_KINDS.filter((kind) => opts.queues || kind !== 'queue');
      const result = gcResources({ dryRun, kinds, ...(opts.kept ? {} : { keep: isKept }) });
      if (!dryRun) {
        // A kept mark outlives its resource when a program removed the resource itself: drop those.
        const registered = new Set(listResources().map((entry) => `${entry.kind}.${entry.name}`));
        for (const mark of keptMarks()) {
          if (!registered.has(`${mark.kind}.${mark.name}`)) releaseResource(mark.kind, mark.name);
        }
      }
      if (opts.json) out.json({ dryRun, ...result } satisfies GcReport);
      else {
        const { colors } = out;
        const verb = dryRun ? 'would remove' : 'removed';
        for (const r of result.removed) {
          // Orphans are /dev/shm objects, or a queue consumer's doorbell socket in the runtime directory.
          const where = r.kind === 'socket' ? '' : ' in /dev/shm';
          const orphan = r.source === 'orphan' ? `, found${where} without a registry entry` : '';
          // pid 0: an object whose creator died making it, before it could write its header.
          const why = r.owner.pid === 0 ? 'abandoned mid-creation' : `creator pid ${r.owner.pid} exited`;
          out.line(`${verb} ${r.kind} ${r.name} ${colors.dim(`(${why}${orphan})`)}`);
        }
        for (const f of result.failed)
          out.line(colors.red(`could not remove ${f.kind} ${f.name}: ${f.error}`));
        for (const u of result.inUse) {
          out.line(
            `left ${u.kind} ${u.name} ${colors.dim(`(creator exited, still mapped by pid ${u.pids.join(', ')})`)}`,
          );
        }
        if (result.removed.length === 0 && result.failed.length === 0 && result.inUse.length === 0)
          out.line(colors.dim('nothing to remove: no resource of a dead creator'));
      }
      if (result.failed.length > 0) {
        throw new Error(
          `${result.failed.length} of ${result.removed.length + result.failed.length} could not be removed`,
        );
      }
    });
}
