/**
 * Garbage collection of named resources whose creator died: the function behind `ipckit gc`.
 * It walks the registry (and, on Linux, this runtime directory's objects in /dev/shm that never
 * made it into the registry because their creator died between creating and registering them,
 * and the message-queue doorbell sockets of killed consumers), and removes what belongs to a dead
 * process, unless a live process still maps it: a lock or segment whose creator exited may be in
 * use by others (a creator that exits first is the usual way to set one up). Removing a name never
 * breaks a process that still has the object open; it stops new opens from finding it, so the
 * next opener would make a fresh one, and two processes would no longer share it.
 */
import {
  closeSync,
  constants,
  fstatSync,
  lstatSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  rmSync,
} from 'node:fs';
import { basename } from 'node:path';
import { ErrorCodes, IpcError } from '../core/errors.js';
import { booleanOption } from '../core/options.js';
import { namedPipeAddress } from '../core/platform.js';
import { isAlive } from '../core/process-identity.js';
import {
  listResources,
  RESOURCE_KINDS,
  type ResourceKind,
  type ResourceStatus,
  readEntry,
  SHARED_MEMORY_KINDS,
  unregister,
} from '../core/registry.js';
import { NAME_PATTERN, resourcePath } from '../core/runtime-dir.js';
import { queuePath, removeQueueFiles } from '../mq/queue-files.js';
import { deadBells } from '../mq/socket-doorbell.js';
import { unixSocketRegistryName } from '../socket/address.js';
import { HEADER_BYTES, readHeader } from './header.js';
import { kernelName, kernelPath, kernelPrefix } from './kernel-name.js';
import { creatorAtWork, unlinkNamed } from './mapping.js';

/** Options for {@link gcResources}. */
export interface GcOptions {
  /** Report what would be removed without removing anything. */
  dryRun?: boolean;
  /**
   * Kinds to collect. Default: everything except `'queue'` (a durable queue outlives its creator
   * by design; pass it explicitly to remove dead creators' queue files too).
   */
  kinds?: readonly ResourceKind[];
  /**
   * Resources to leave although their creator is dead: those made to outlive it on purpose (the
   * CLI's `shm create` and `fifo create`, whose creator is the short-lived `ipckit` process).
   */
  keep?: (resource: {
    kind: ResourceKind;
    name: string;
    owner: { pid: number; startTime: number };
  }) => boolean;
}

/** One resource gc removed (or would remove, with `dryRun`). */
export interface GcRemoved {
  kind: ResourceKind;
  name: string;
  path?: string;
  /** The dead creator. */
  owner: { pid: number; startTime: number };
  /**
   * 'registry' for registered resources; 'orphan' for a /dev/shm object with no manifest, or a
   * queue consumer's doorbell socket (kind 'socket', name `.mq-bells/<file>`).
   */
  source: 'registry' | 'orphan';
}

/** What {@link gcResources} did. */
export interface GcResult {
  removed: GcRemoved[];
  /** Resources that could not be removed, with the reason. */
  failed: { kind: ResourceKind; name: string; error: string }[];
  /**
   * Resources of a dead creator left in place because live processes still map them (a lock or a
   * segment that others opened and use), with those processes' pids.
   */
  inUse: { kind: ResourceKind; name: string; pids: number[] }[];
}

const SHM_KINDS: ReadonlySet<string> = new Set(SHARED_MEMORY_KINDS);

// Queues hold data, not just a name: only removed when asked for (`kinds` with 'queue').
const DEFAULT_KINDS: readonly ResourceKind[] = RESOURCE_KINDS.filter((kind) => kind !== 'queue');

/** `options.kinds`: resource kinds, checked (a misspelt kind silently collected nothing). */
function kindsOption(kinds: unknown): ReadonlySet<ResourceKind> {
  if (kinds === undefined) return new Set(DEFAULT_KINDS);
  if (!Array.isArray(kinds)) {
    throw new TypeError(`options.kinds must be an array of resource kinds, got ${typeof kinds}`);
  }
  for (const kind of kinds) {
    if (!(RESOURCE_KINDS as readonly unknown[]).includes(kind)) {
      throw new RangeError(
        `options.kinds: unknown kind ${String(kind)} (known: ${RESOURCE_KINDS.join(', ')})`,
      );
    }
  }
  return new Set(kinds as ResourceKind[]);
}

/**
 * Throws ERR_IPC_INCOMPATIBLE if what is now at a FIFO's or socket's registered path is something
 * else (a file made there since): gc removes what the dead creator made, never anything else.
 */
function checkStillItself(entry: ResourceStatus): void {
  const wanted = FILE_TYPE_OF[entry.kind];
  if (entry.path === undefined || wanted === undefined) return;
  const stat = lstatSync(entry.path, { throwIfNoEntry: false });
  if (stat === undefined || (wanted === 'FIFO' ? stat.isFIFO() : stat.isSocket())) return;
  throw new IpcError(ErrorCodes.INCOMPATIBLE, `${entry.path} is no longer a ${wanted}; left in place`);
}

/** What is at the path of the kinds that have one. */
const FILE_TYPE_OF: Partial<Record<ResourceKind, 'FIFO' | 'socket'>> = {
  fifo: 'FIFO',
  'named-pipe': 'socket',
  socket: 'socket',
};

/**
 * Where a registered resource must be, from its kind and name alone; for a unix:// socket (any path
 * of the user's), the path its name was derived from. A manifest naming another path is not acted
 * on: gc removes what ipckit made, never a file a manifest points at.
 */
function pathMatches(entry: ResourceStatus): boolean {
  switch (entry.kind) {
    case 'fifo':
      return entry.path === resourcePath(entry.name, '.fifo', 'fifo');
    case 'queue':
      return entry.path === queuePath(entry.name);
    case 'named-pipe':
      return entry.path === namedPipeAddress(entry.name);
    case 'socket':
      return entry.path !== undefined && unixSocketRegistryName(entry.path) === entry.name;
    default:
      return entry.path === kernelPath(kernelName(entry.kind, entry.name, entry.kind));
  }
}

function removeEntry(entry: ResourceStatus): void {
  if (SHM_KINDS.has(entry.kind)) {
    unlinkNamed(`${kernelPrefix()}${entry.kind}.${entry.name}`, `${entry.kind} '${entry.name}'`);
  } else if (entry.kind === 'queue') {
    removeQueueFiles(entry.path!);
  } else if (entry.path !== undefined) {
    rmSync(entry.path, { force: true });
  }
  unregister(entry.kind, entry.name);
}

/**
 * True if the resource is still the one gc judged: the same manifest (its creator and creation
 * time), and for a shared-memory object, no other creator in its header. Checked again right
 * before removing, as a live process may have removed the name and made it anew meanwhile.
 */
function stillTheSame(entry: ResourceStatus): boolean {
  const now = readEntry(entry.kind, entry.name);
  if (
    now === undefined ||
    now.createdAt !== entry.createdAt ||
    now.owner.pid !== entry.owner.pid ||
    now.owner.startTime !== entry.owner.startTime
  ) {
    return false;
  }
  if (!SHM_KINDS.has(entry.kind) || entry.path === undefined) return true;
  const creator = headerCreator(entry.path);
  // No header yet may be a live process creating the name anew: only an object abandoned
  // mid-creation, or none at all, is still the dead creator's to remove.
  if (creator === 'missing' || creator === 'abandoned') return true;
  return (
    creator !== undefined && creator.pid === entry.owner.pid && creator.startTime === entry.owner.startTime
  );
}

/**
 * The live processes that map each of this runtime directory's /dev/shm objects, by path (read
 * from /proc/<pid>/maps; processes of other users are not readable and not counted, unless gc
 * runs as root).
 */
function shmMappers(): Map<string, number[]> {
  const mappers = new Map<string, number[]>();
  if (process.platform !== 'linux') return mappers;
  const prefix = kernelPath(kernelPrefix());
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((entry) => /^\d+$/.test(entry));
  } catch {
    return mappers;
  }
  for (const pid of pids) {
    let maps: string;
    try {
      maps = readFileSync(`/proc/${pid}/maps`, 'latin1');
    } catch {
      continue;
    }
    for (let at = maps.indexOf(prefix); at !== -1; at = maps.indexOf(prefix, at + 1)) {
      const end = maps.indexOf('\n', at);
      const path = maps.slice(at, end === -1 ? undefined : end);
      if (path.endsWith(' (deleted)')) continue;
      const list = mappers.get(path) ?? [];
      if (!list.includes(Number(pid))) list.push(Number(pid));
      mappers.set(path, list);
    }
  }
  return mappers;
}

/** What a /dev/shm object's header says of its creator. */
type HeaderCreator =
  | { pid: number; startTime: number }
  /** No header, and nobody at work on it for ABANDONED_AFTER_MS: its creator died making it. */
  | 'abandoned'
  /** No such object (any more). */
  | 'missing'
  | undefined;

/**
 * An object whose header is still unwritten this long after its last change, whose creation lock
 * nobody holds, is taken for abandoned: its creator died between shm_open and the header.
 */
const ABANDONED_AFTER_MS = 60_000;

/**
 * The creator recorded in a /dev/shm object's header; 'abandoned' for an object left headerless
 * by a creator that died making it; 'missing' if there is no such object; undefined if it has no
 * readable header otherwise. Only a regular file of this user's is read: another user can plant a
 * FIFO (opening it would block gc forever), a symlink or a file of their own under a name of this
 * runtime directory.
 */
function headerCreator(path: string): HeaderCreator {
  let fd: number | undefined;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    const stat = fstatSync(fd);
    if (!stat.isFile() || stat.uid !== process.geteuid?.()) return undefined;
    const page = new ArrayBuffer(HEADER_BYTES);
    const got = readSync(fd, new Uint8Array(page), 0, HEADER_BYTES, 0);
    const state = got < 48 ? undefined : readHeader(page, Number.MAX_SAFE_INTEGER);
    if (state?.state === 'ready') return state.info.creator;
    if (state?.state === 'bad' || Date.now() - stat.mtimeMs < ABANDONED_AFTER_MS) return undefined;
    return creatorAtWork(fd) ? undefined : 'abandoned';
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing' : undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * Removes named resources of this runtime directory whose creator is dead (pid + start time; a
 * zombie is dead). Returns what was removed; with `dryRun`, what would be.
 */
export function gcResources(opts?: GcOptions): GcResult {
  const dryRun = booleanOption(opts?.dryRun, 'options.dryRun', false);
  const kinds = kindsOption(opts?.kinds);
  if (opts?.keep !== undefined && typeof opts.keep !== 'function') {
    throw new TypeError('options.keep must be a function');
  }
  const result: GcResult = { removed: [], failed: [], inUse: [] };
  const registered = new Set<string>();
  let mappers: Map<string, number[]> | undefined;
  /** True (and noted in `inUse`) if live processes map the object at `path`. */
  const mapped = (kind: ResourceKind, name: string, path: string): boolean => {
    mappers ??= shmMappers();
    const pids = mappers.get(path);
    if (pids) result.inUse.push({ kind, name, pids });
    return pids !== undefined;
  };
  for (const entry of listResources()) {
    registered.add(`${entry.kind}.${entry.name}`);
    if (entry.ownerAlive || !kinds.has(entry.kind) || opts?.keep?.(entry)) continue;
    const removed: GcRemoved = { kind: entry.kind, name: entry.name, owner: entry.owner, source: 'registry' };
    if (entry.path !== undefined) removed.path = entry.path;
    try {
      if (!pathMatches(entry)) {
        throw new IpcError(
          ErrorCodes.INCOMPATIBLE,
          `its manifest names another path (${entry.path}); left in place`,
        );
      }
      if (SHM_KINDS.has(entry.kind) && mapped(entry.kind, entry.name, entry.path!)) continue;
      checkStillItself(entry);
      if (!dryRun) {
        if (!stillTheSame(entry)) continue;
        removeEntry(entry);
      }
      result.removed.push(removed);
    } catch (err) {
      result.failed.push({
        kind: entry.kind,
        name: entry.name,
        error: String((err as Error).message ?? err),
      });
    }
  }
  // Message-queue doorbell sockets of consumers that died without removing them.
  if (kinds.has('socket')) {
    for (const bell of deadBells()) {
      const name = `.mq-bells/${basename(bell.path)}`;
      try {
        if (!dryRun) rmSync(bell.path, { force: true });
        result.removed.push({
          kind: 'socket',
          name,
          path: bell.path,
          owner: { pid: bell.pid, startTime: 0 },
          source: 'orphan',
        });
      } catch (err) {
        result.failed.push({ kind: 'socket', name, error: String((err as Error).message ?? err) });
      }
    }
  }
  // Objects whose creator died before registering them: only visible in /dev/shm (Linux).
  if (process.platform !== 'linux') return result;
  const prefix = kernelPrefix().slice(1);
  let files: string[] = [];
  try {
    files = readdirSync('/dev/shm');
  } catch {
    return result;
  }
  for (const file of files) {
    if (!file.startsWith(prefix)) continue;
    const rest = file.slice(prefix.length);
    const dot = rest.indexOf('.');
    const kind = rest.slice(0, dot) as ResourceKind;
    const name = rest.slice(dot + 1);
    if (dot < 0 || !SHM_KINDS.has(kind) || !kinds.has(kind) || registered.has(`${kind}.${name}`)) continue;
    // Names ipckit would never make (another user's file, say) are not ours to judge, or to print.
    if (!NAME_PATTERN.test(name)) continue;
    const path = kernelPath(`/${file}`);
    const found = headerCreator(path);
    // No readable header: being created right now, or another kind of file. Left alone unless the
    // header names a dead creator, or the object was abandoned mid-creation (pid 0 then): racing a
    // live creator would be worse.
    if (found === undefined || found === 'missing') continue;
    const creator = found === 'abandoned' ? { pid: 0, startTime: 0 } : found;
    if ((found !== 'abandoned' && isAlive(creator)) || opts?.keep?.({ kind, name, owner: creator })) continue;
    if (mapped(kind, name, path)) continue;
    try {
      if (!dryRun) {
        const again = headerCreator(path);
        const same =
          found === 'abandoned'
            ? again === 'abandoned'
            : typeof again === 'object' && again.pid === creator.pid && again.startTime === creator.startTime;
        if (!same) continue;
        unlinkNamed(`/${file}`, `${kind} '${name}'`);
      }
      result.removed.push({ kind, name, path, owner: creator, source: 'orphan' });
    } catch (err) {
      result.failed.push({ kind, name, error: String((err as Error).message ?? err) });
    }
  }
  return result;
}
