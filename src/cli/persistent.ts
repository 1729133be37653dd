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
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { listResources, type ResourceKind, runtimeDir } from '../index.js';

/** A kept resource's mark. */
export interface KeptMark {
  kind: ResourceKind;
  name: string;
  /** The creator the registry recorded when the CLI made the resource. */
  owner: { pid: number; startTime: number };
  /** ISO time the mark was made. */
  keptAt: string;
}

function keptDir(): string {
  // The runtime directory is created 0700 by the library; this only adds a subdirectory in it.
  return join(runtimeDir(), '.kept');
}

function markPath(kind: ResourceKind, name: string): string {
  return join(keptDir(), `${kind}.${name}.json`);
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
  mkdirSync(keptDir(), { recursive: true, mode: 0o700 });
  const target = markPath(kind, name);
  // Written then renamed, as the registry does, so a reader never sees half a mark.
  const temporary = `${target}.${process.pid}.tmp`;
  writeFileSync(temporary, JSON.stringify(mark), { mode: 0o600 });
  renameSync(temporary, target);
}

/** Removes the kept mark of `kind`/`name`, if any. */
export function releaseResource(kind: ResourceKind, name: string): void {
  rmSync(markPath(kind, name), { force: true });
}

function readMark(path: string): KeptMark | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as KeptMark;
  } catch {
    return undefined;
  }
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
  const mark = readMark(markPath(resource.kind, resource.name));
  return (
    mark !== undefined &&
    mark.owner.pid === resource.owner.pid &&
    mark.owner.startTime === resource.owner.startTime
  );
}

/** Every kept mark in the runtime directory (unreadable ones skipped). */
export function keptMarks(): KeptMark[] {
  let files: string[];
  try {
    files = readdirSync(keptDir());
  } catch {
    return [];
  }
  return files
    .filter((file) => file.endsWith('.json'))
    .sort()
    .flatMap((file) => readMark(join(keptDir(), file)) ?? []);
}
