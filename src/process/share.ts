/**
 * `spawn(..., { share })`: file descriptors handed to a child beyond its stdio and channel. The
 * parent lists them; the child receives them as consecutive fds after its channel's, and finds the
 * one at index i of the list with {@link inheritedFd}(i) (or, for an anonymous shared-memory
 * segment, `SharedMemory.inherited(i)`: both read the same variable, so the index is the position
 * in `share` whatever the kinds of the other items).
 */
import { fstatSync } from 'node:fs';
import { ErrorCodes, IpcError } from '../core/errors.js';
import { numberError } from '../core/options.js';

/**
 * The environment variable listing the child's shared fds in `share` order, comma-separated.
 * The same name and format as src/shm/shared-memory.ts reads for `SharedMemory.inherited`.
 */
export const SHARE_ENV = 'IPCKIT_SHARE_FDS';

/** An object that owns an fd: a `PipeReader`/`PipeWriter` end, an anonymous `SharedMemory`. */
export interface Shareable {
  readonly fd: number | undefined;
}

/** What `options.share` lists: raw fds or objects that own one. */
export type ShareItem = number | Shareable;

/** The stdio entries and environment that hand `items` to a child whose fds start at `firstFd`. */
export function planShares(
  items: readonly ShareItem[] | undefined,
  firstFd: number,
): { stdio: number[]; env: Record<string, string> } {
  if (items === undefined) return { stdio: [], env: {} };
  if (!Array.isArray(items))
    throw new TypeError('options.share must be an array of fds or objects with an fd');
  const stdio = items.map((item: ShareItem, i) => {
    const fd = typeof item === 'number' ? item : (item as Shareable | null)?.fd;
    if (typeof fd !== 'number' || !Number.isInteger(fd) || fd < 0) {
      throw new TypeError(
        `options.share[${i}] must be an fd (integer >= 0) or an object with an open fd (a pipe end, an anonymous SharedMemory)`,
      );
    }
    try {
      fstatSync(fd);
    } catch {
      throw new RangeError(`options.share[${i}]: fd ${fd} is not open in this process`);
    }
    return fd;
  });
  if (stdio.length === 0) return { stdio, env: {} };
  return { stdio, env: { [SHARE_ENV]: stdio.map((_, i) => firstFd + i).join(',') } };
}

/**
 * In a child: the fd the parent passed at `index` of its `spawn(..., { share })` list.
 * @throws ERR_IPC_NOT_FOUND if the parent shared nothing at that index.
 */
export function inheritedFd(index: number): number {
  if (!Number.isInteger(index) || index < 0)
    throw numberError(index, `index must be an integer >= 0, got ${String(index)}`);
  const list = (process.env[SHARE_ENV] ?? '').split(',').filter((s) => s !== '');
  const fd = Number(list[index]);
  if (list[index] === undefined || !Number.isInteger(fd) || fd < 0) {
    throw new IpcError(
      ErrorCodes.NOT_FOUND,
      `inheritedFd(${index}): the parent shared no fd at index ${index} (spawn(..., { share: [...] }))`,
    );
  }
  return fd;
}
