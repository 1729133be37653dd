/**
 * Resources the CLI makes for the user (`ipckit shm create`, `ipckit fifo create`) are meant to
 * outlive the `ipckit` process that made them, yet the registry records that process as their
 * creator, so they look dead the moment the command returns. The CLI therefore marks them "kept":
 * a small file `<runtime dir>/.kept/<kind>.<name>.json` naming the creator the registry recorded.
 * `ipckit gc` passes {@link isKept} as `gcResources`' `keep` option and leaves them alone unless
 * asked to collect them too; `rm` removes the mark with the resource.
 *
 * The mark names the creator (pid and start time) so that a stale one cannot protect a different
 * resource: if a program removes the segment and another process later creates one with the same
 * name, the creators differ and gc judges the new one on its own creator's liveness.
 */
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import {
  listResources,
  NAME_PATTERN,
  RESOURCE_KINDS,
  type ResourceKind,
  readPrivateJson,
  runtimeSubdir,
  writePrivateFileAtomic,
} from '../index.js';

/** A kept resource's mark. */
export interface KeptMark {
  kind: ResourceKind;
  name: string;
  /** The creator the registry recorded when the CLI made the resource. */
  owner: { pid: number; startTime: number };
  /** ISO time the mark was made. */
  keptAt: string;
}

const KEPT_DIR = '.kept';

/**
 * `.kept` if it exists, checked (a symlink planted for it is ERR_IPC_UNSAFE_PATH, never followed,
 * so no mark is read or removed outside the runtime directory).
 */
function keptDir(): string | undefined {
  return runtimeSubdir(KEPT_DIR, { create: false });
}

/**
 * The file name of the mark of `kind`/`name`, or undefined for a kind or name no resource can
 * have. Callers pass names straight from the command line (`ipckit shm rm NAME` releases the mark
 * even of a name it refused), and a name such as `x/../../../y` would lead out of `.kept`.
 */
function markFile(kind: ResourceKind, name: string): string | undefined {
  if (!(RESOURCE_KINDS as readonly unknown[]).includes(kind) || !NAME_PATTERN.test(name)) return undefined;
  return `${kind}.${name}.json`;
}

/**
 * Marks the resource `kind`/`name`, just created by this process, as kept. Does nothing if the
 * registry has no entry of this process for it (the resource kind is not registered).
 */
export function keepResource(kind: ResourceKind, name: string): void {
  const entry = listResources().find(
    (e) => e.kind === kind && e.name === name && e.owner.pid === process.pid,
  );
  if (!entry) return;
  const mark: KeptMark = { kind, name, owner: entry.owner, keptAt: new Date().toISOString() };
  const file = markFile(kind, name);
  if (file === undefined) return;
  // Written then renamed, as the registry does: a reader never sees half a mark.
  writePrivateFileAtomic(join(runtimeSubdir(KEPT_DIR), file), JSON.stringify(mark));
}

/** Removes the kept mark of `kind`/`name`, if any. */
export function releaseResource(kind: ResourceKind, name: string): void {
  const dir = keptDir();
  const file = markFile(kind, name);
  if (dir !== undefined && file !== undefined) rmSync(join(dir, file), { force: true });
}

/** A mark is some 100 bytes: a larger file is not one, and is not read. */
const MAX_MARK_BYTES = 64 * 1024;

/**
 * The mark read from `file` in `dir` if it is one {@link keepResource} writes (see
 * {@link isWellFormed}), else undefined: `ls`, `inspect` and `gc` read marks, and what else is in
 * `.kept` (`null`, a FIFO, a huge file) must neither stop nor crash them.
 */
function readMark(dir: string, file: string): KeptMark | undefined {
  const mark = readPrivateJson(join(dir, file), MAX_MARK_BYTES) as KeptMark | undefined;
  return mark !== undefined && isWellFormed(mark, file) ? mark : undefined;
}

/**
 * True if the resource was made by the CLI and is still the one it made (same recorded creator).
 * Has the shape of `gcResources`' `keep` option.
 */
export function isKept(resource: {
  kind: ResourceKind;
  name: string;
  owner: { pid: number; startTime: number };
}): boolean {
  const dir = keptDir();
  const file = markFile(resource.kind, resource.name);
  const mark = dir === undefined || file === undefined ? undefined : readMark(dir, file);
  return (
    mark !== undefined &&
    mark.owner.pid === resource.owner.pid &&
    mark.owner.startTime === resource.owner.startTime
  );
}

/**
 * True if `mark`, read from `file`, is one {@link keepResource} writes: a known kind, and the file
 * named after its kind and name (so neither holds a path: `ipckit gc` removes marks by them).
 */
function isWellFormed(mark: KeptMark, file: string): boolean {
  return (
    typeof mark === 'object' &&
    mark !== null &&
    (RESOURCE_KINDS as readonly unknown[]).includes(mark.kind) &&
    typeof mark.name === 'string' &&
    NAME_PATTERN.test(mark.name) &&
    file === `${mark.kind}.${mark.name}.json` &&
    typeof mark.owner?.pid === 'number' &&
    typeof mark.owner.startTime === 'number'
  );
}

/** Every kept mark in the runtime directory (unreadable and ill-formed ones skipped). */
export function keptMarks(): KeptMark[] {
  const dir = keptDir();
  if (dir === undefined) return [];
  let files: string[];
  try {
    files = readdirSync(dir);
  } catch {
    return [];
  }
  return files
    .filter((file) => file.endsWith('.json'))
    .sort()
    .flatMap((file) => {
      const mark = readMark(dir, file);
      return mark === undefined ? [] : [mark];
    });
}
