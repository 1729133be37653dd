/**
 * The registry of named resources: one small JSON manifest per resource in
 * `<runtime dir>/.registry/`, recording its kind, name, path and creator (pid + start time), so that
 * `ipckit ls` can show who owns what and `ipckit gc` can find what dead processes left behind.
 */
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { isAlive, type ProcessIdentity, selfIdentity } from './process-identity.js';
import { NAME_PATTERN, readPrivateJson, runtimeSubdir, writePrivateFileAtomic } from './runtime-dir.js';

/** The kinds of named resource that are POSIX shared-memory objects (a segment, or a primitive's). */
export const SHARED_MEMORY_KINDS = [
  'shm',
  'mutex',
  'semaphore',
  'rwlock',
  'condition',
  'barrier',
  'event',
] as const;

/** The kinds of named resource ipckit creates, in the order `ipckit` lists them. */
export const RESOURCE_KINDS = ['fifo', 'named-pipe', 'socket', 'queue', ...SHARED_MEMORY_KINDS] as const;

/** A kind of named resource ipckit creates. */
export type ResourceKind = (typeof RESOURCE_KINDS)[number];

/** One registered resource, as `ipckit ls --json` prints it. */
export interface ResourceEntry {
  kind: ResourceKind;
  name: string;
  /** The file behind the resource, when it has one. */
  path?: string;
  /** The creator. */
  owner: ProcessIdentity;
  /** ISO time of creation. */
  createdAt: string;
}

/** A registered resource with its creator's liveness. */
export interface ResourceStatus extends ResourceEntry {
  ownerAlive: boolean;
}

const REGISTRY_DIR = '.registry';

function manifestPath(dir: string, kind: ResourceKind, name: string): string {
  return join(dir, `${kind}.${name}.json`);
}

/**
 * A manifest is a few hundred bytes (a name of at most 100 characters, a path within PATH_MAX):
 * anything much larger is not one, and is not read.
 */
const MAX_MANIFEST_BYTES = 64 * 1024;

/** The parsed manifest at `path`; undefined if it is not a small regular file of valid JSON. */
function readManifest(path: string): ResourceEntry | undefined {
  return readPrivateJson(path, MAX_MANIFEST_BYTES) as ResourceEntry | undefined;
}

/**
 * Records that this process created a resource. Written atomically, 0600.
 * @throws ERR_IPC_UNSAFE_PATH if `.registry` is a symlink or not a directory (a planted link is
 *   never followed); ERR_IPC_PERMISSION if another user owns it.
 */
export function register(kind: ResourceKind, name: string, path?: string): void {
  const entry: ResourceEntry = { kind, name, owner: selfIdentity(), createdAt: new Date().toISOString() };
  if (path !== undefined) entry.path = path;
  writePrivateFileAtomic(manifestPath(runtimeSubdir(REGISTRY_DIR), kind, name), JSON.stringify(entry));
}

/**
 * Throws like {@link register} if `.registry` is unsafe: what a removal asks before it removes
 * anything, so that its {@link unregister} at the end cannot be the step that refuses.
 */
export function checkRegistry(): void {
  runtimeSubdir(REGISTRY_DIR, { create: false });
}

/** Forgets a resource (it was removed). Throws like {@link register} for an unsafe `.registry`. */
export function unregister(kind: ResourceKind, name: string): void {
  const dir = runtimeSubdir(REGISTRY_DIR, { create: false });
  if (dir) rmSync(manifestPath(dir, kind, name), { force: true });
}

/** The manifest of one resource as it is now, or undefined if there is none (or it is not well formed). */
export function readEntry(kind: ResourceKind, name: string): ResourceEntry | undefined {
  const dir = runtimeSubdir(REGISTRY_DIR, { create: false });
  if (!dir) return undefined;
  const entry = readManifest(manifestPath(dir, kind, name));
  return entry !== undefined && isWellFormed(entry, `${kind}.${name}.json`) ? entry : undefined;
}

/**
 * Every registered resource, with whether its creator still runs. Unreadable manifests are skipped
 * (and so are files that are not small regular files: a FIFO, a symlink, a huge file), and so are
 * manifests that are not what {@link register} writes (an unknown kind, an invalid name, a file
 * name that is not the entry's own, no creator): gc acts on what this returns.
 * Throws like {@link register} for an unsafe `.registry`.
 */
export function listResources(): ResourceStatus[] {
  const dir = runtimeSubdir(REGISTRY_DIR, { create: false });
  if (!dir) return [];
  const entries: ResourceStatus[] = [];
  for (const file of readdirSync(dir).sort()) {
    if (!file.endsWith('.json')) continue;
    const entry = readManifest(join(dir, file));
    if (entry === undefined || !isWellFormed(entry, file)) continue;
    entries.push({ ...entry, ownerAlive: isAlive(entry.owner) });
  }
  return entries;
}

function isWellFormed(entry: ResourceEntry, file: string): boolean {
  return (
    typeof entry === 'object' &&
    entry !== null &&
    (RESOURCE_KINDS as readonly unknown[]).includes(entry.kind) &&
    typeof entry.name === 'string' &&
    NAME_PATTERN.test(entry.name) &&
    file === `${entry.kind}.${entry.name}.json` &&
    (entry.path === undefined || typeof entry.path === 'string') &&
    Number.isSafeInteger(entry.owner?.pid) &&
    entry.owner.pid > 0 &&
    typeof entry.owner.startTime === 'number' &&
    typeof entry.createdAt === 'string'
  );
}
