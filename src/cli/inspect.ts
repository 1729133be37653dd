/** `ipckit inspect NAME`: everything known about one named resource. */
import { Command, Option } from 'commander';
import { ErrorCodes, IpcError, listResources, type ResourceKind, type ResourceStatus } from '../index.js';
import { UsageError } from './errors.js';
import { formatAge } from './format.js';
import { stateOf } from './ls.js';
import { createOutput } from './output.js';
import { isKept } from './persistent.js';
import {
  type FileDetails,
  type KindDetails,
  kindDetails,
  RESOURCE_KINDS,
  resourceFile,
} from './resource-details.js';

/** What `ipckit inspect --json` prints. */
export interface InspectResult extends ResourceStatus {
  ageMs: number;
  kept: boolean;
  /** The file behind the resource (FIFO, socket, queue database, /dev/shm object). */
  file?: FileDetails;
  /** Kind-specific state: a segment's size and header, a lock's state, a queue's stats. */
  details: KindDetails;
}

/** The naming rule of every resource (docs/runtime-directory.md). */
const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

/** The one registered resource named `name` (of `kind`, if given). */
export function findResource(name: string, kind?: ResourceKind): ResourceStatus {
  if (!NAME_PATTERN.test(name)) {
    throw new IpcError(
      ErrorCodes.INVALID_NAME,
      `invalid name ${JSON.stringify(name)}: names are 1-100 characters of A-Z a-z 0-9 . _ - starting with a letter or digit`,
    );
  }
  const matches = listResources().filter((entry) => entry.name === name && (!kind || entry.kind === kind));
  const [only] = matches;
  if (!only) {
    const of = kind ? ` of kind ${kind}` : '';
    throw new IpcError(ErrorCodes.NOT_FOUND, `no resource named '${name}'${of}`);
  }
  if (matches.length > 1) {
    const kinds = matches.map((entry) => entry.kind).join(', ');
    throw new UsageError(`'${name}' names ${matches.length} resources (${kinds}): choose one with --kind`);
  }
  return only;
}

/** Gathers everything about `entry`. */
export async function inspectResource(entry: ResourceStatus, now = Date.now()): Promise<InspectResult> {
  const result: InspectResult = {
    ...entry,
    ageMs: Math.max(0, now - Date.parse(entry.createdAt)),
    kept: isKept(entry),
    details: await kindDetails(entry),
  };
  const file = resourceFile(entry);
  if (file) result.file = file;
  return result;
}

/** `headerCreator` and friends, as `key: value` text. */
function detailText(value: unknown): string {
  if (value !== null && typeof value === 'object') {
    return Object.entries(value)
      .map(([key, inner]) => `${key} ${typeof inner === 'object' ? JSON.stringify(inner) : String(inner)}`)
      .join(', ');
  }
  return String(value);
}

/** Builds the `inspect` command. */
export function inspectCommand(): Command {
  return new Command('inspect')
    .description(
      'show everything known about one named resource: owner, state, age, file, and its kind’s details',
    )
    .argument('<name>', 'the resource name, as `ipckit ls` shows it')
    .addOption(
      new Option('-k, --kind <kind>', 'the kind, when several resources share the name').choices(
        RESOURCE_KINDS,
      ),
    )
    .option('--json', 'print { kind, name, path, owner, ownerAlive, kept, createdAt, ageMs, file, details }')
    .addHelpText(
      'after',
      `
Details by kind: shm, its size and the creator recorded in its header; mutex, semaphore, rwlock,
condition, barrier, event, their current state (locked, value, readers, waiting…); queue, its
stats (ready, delayed, inflight, dead, by priority, by type); fifo, socket and named-pipe, the file.

Examples:
  $ ipckit inspect frames
  $ ipckit inspect jobs --kind queue --json`,
    )
    .action(async (name: string, opts: { kind?: ResourceKind; json?: boolean }) => {
      const out = createOutput();
      const result = await inspectResource(findResource(name, opts.kind));
      if (opts.json) {
        out.json(result);
        return;
      }
      const { colors } = out;
      const rows: [string, string][] = [
        ['kind', result.kind],
        ['name', result.name],
        ['owner', `pid ${result.owner.pid} (started at tick ${result.owner.startTime})`],
        ['state', stateOf(result)],
        ['created', `${result.createdAt} (${formatAge(result.ageMs)} ago)`],
      ];
      if (result.file) {
        const f = result.file;
        rows.push(['path', f.path]);
        const bytes = f.type === 'file' ? `, ${f.bytes} bytes` : '';
        rows.push(['file', f.exists ? `${f.type}, mode ${f.mode}${bytes}` : 'missing']);
      }
      for (const [key, value] of Object.entries(result.details)) rows.push([key, detailText(value)]);
      const width = Math.max(...rows.map(([key]) => key.length));
      for (const [key, value] of rows) {
        const text =
          key === 'state' ? (result.ownerAlive ? colors.green(value) : colors.yellow(value)) : value;
        out.line(`${colors.bold(key.padEnd(width))}  ${text}`);
      }
    });
}
