/**
 * Kernel names of POSIX shared-memory objects. The shm namespace is global to the machine, so every
 * name carries a tag of the runtime directory: two processes with different IPCKIT_DIR never see
 * each other's segments or locks (tests rely on this for isolation).
 */
import { identityOf, type ProcessIdentity } from '../core/process-identity.js';
import type { SHARED_MEMORY_KINDS } from '../core/registry.js';
import { checkName, runtimeDirPath, runtimeDirTag } from '../core/runtime-dir.js';

/** What a named object holds; part of its kernel name so a Mutex and a segment may share a name. */
export type ShmObjectKind = (typeof SHARED_MEMORY_KINDS)[number];

// The tag is a hash of the directory path: computed (and the directory checked) once per path.
const tags = new Map<string, string>();

/** The common prefix of every object of this runtime directory: `/ipckit.<tag>.` */
export function kernelPrefix(): string {
  const dir = runtimeDirPath();
  let tag = tags.get(dir);
  if (tag === undefined) {
    tag = runtimeDirTag();
    tags.set(dir, tag);
  }
  return `/ipckit.${tag}.`;
}

let creator: ProcessIdentity | undefined;

/** This process's identity for segment headers, read from /proc once (it never changes). */
export function creatorIdentity(): ProcessIdentity {
  if (creator?.pid !== process.pid) creator = identityOf(process.pid) ?? { pid: process.pid, startTime: 0 };
  return creator;
}

/** `/ipckit.<tag>.<kind>.<name>`; throws ERR_IPC_INVALID_NAME for a bad name. */
export function kernelName(kind: ShmObjectKind, name: string, what: string): string {
  checkName(name, what);
  return `${kernelPrefix()}${kind}.${name}`;
}

/** Where Linux shows a POSIX shm object in the file system (for `ipckit ls` and diagnostics). */
export function kernelPath(kernel: string): string {
  return `/dev/shm${kernel}`;
}
