/**
 * What the CLI can tell about one named resource beyond its registry entry: the size of a segment,
 * the depth of a queue, the state of a lock, the file behind a FIFO or socket. Everything is read
 * through the public API, by opening the resource the way any other process would.
 */
import { existsSync, lstatSync } from 'node:fs';
import {
  Barrier,
  Condition,
  Event,
  MessageQueue,
  Mutex,
  type QueueStats,
  RESOURCE_KINDS,
  type ResourceStatus,
  RwLock,
  Semaphore,
  SharedMemory,
} from '../index.js';
import { LOOKING_ONLY } from './mq.js';

export { RESOURCE_KINDS };

/** The cheap figure `ipckit ls` shows: a segment's size or a queue's ready count. */
export interface ResourceSize {
  /** Segments: the size of their buffer in bytes. */
  sizeBytes?: number;
  /** Queues: messages ready to be delivered now. */
  depth?: number;
}

/** The file behind a resource, as `ipckit inspect` shows it. */
export interface FileDetails {
  path: string;
  exists: boolean;
  /** 'fifo', 'socket', 'file', or 'other'. */
  type?: string;
  /** Permission bits, as octal text: '600'. */
  mode?: string;
  /** Bytes on disk (or in /dev/shm), header included. */
  bytes?: number;
}

/** Kind-specific state, as `ipckit inspect` shows it under `details`. */
export type KindDetails = Record<string, unknown>;

function fileDetails(path: string): FileDetails {
  try {
    const stat = lstatSync(path);
    const type = stat.isFIFO() ? 'fifo' : stat.isSocket() ? 'socket' : stat.isFile() ? 'file' : 'other';
    return { path, exists: true, type, mode: (stat.mode & 0o777).toString(8), bytes: stat.size };
  } catch {
    return { path, exists: false };
  }
}

/** Opens a queue only if its database exists: opening a missing one would create it. */
async function withQueue<R>(
  entry: ResourceStatus,
  read: (queue: MessageQueue) => Promise<R>,
): Promise<R | undefined> {
  if (entry.path === undefined || !existsSync(entry.path)) return undefined;
  // As `ipckit mq stats` opens one: looking never dead-letters a message (LOOKING_ONLY).
  const queue = await MessageQueue.open(entry.name, LOOKING_ONLY);
  try {
    return await read(queue);
  } finally {
    await queue.close();
  }
}

/** Opens the primitive `entry` names, reads it, and closes it. */
function withPrimitive<P extends { close(): void }, R>(
  open: (name: string) => P,
  name: string,
  read: (p: P) => R,
): R {
  const primitive = open(name);
  try {
    return read(primitive);
  } finally {
    primitive.close();
  }
}

/**
 * The size or depth of `entry`, where that is cheap to learn (segments and queues); an empty
 * object for other kinds and for a resource that cannot be opened (gone, or not ours to read).
 */
export async function resourceSize(entry: ResourceStatus): Promise<ResourceSize> {
  try {
    if (entry.kind === 'shm')
      return {
        sizeBytes: withPrimitive(
          (n) => SharedMemory.open(n),
          entry.name,
          (s) => s.size,
        ),
      };
    if (entry.kind === 'queue') {
      const stats = await withQueue(entry, (queue) => queue.stats());
      return stats ? { depth: stats.ready } : {};
    }
  } catch {}
  return {};
}

/** Everything the public API tells about the state of `entry`; `error` if it cannot be opened. */
export async function kindDetails(entry: ResourceStatus): Promise<KindDetails> {
  const { name } = entry;
  try {
    switch (entry.kind) {
      case 'shm':
        return withPrimitive(
          (n) => SharedMemory.open(n),
          name,
          (segment) => ({
            sizeBytes: segment.size,
            // The header in front of the buffer records the creator, independently of the registry.
            headerCreator: segment.creator,
            headerMatchesRegistry:
              segment.creator?.pid === entry.owner.pid &&
              segment.creator?.startTime === entry.owner.startTime,
          }),
        );
      case 'mutex':
        return withPrimitive(
          (n) => Mutex.open(n),
          name,
          (m) => ({ locked: m.locked, recoveries: m.recoveries }),
        );
      case 'semaphore':
        return withPrimitive(
          (n) => Semaphore.open(n),
          name,
          (s) => ({ value: s.value, recovered: s.recovered }),
        );
      case 'rwlock':
        return withPrimitive(
          (n) => RwLock.open(n),
          name,
          (l) => ({ readers: l.readers, writing: l.writing }),
        );
      case 'condition':
        return withPrimitive(
          (n) => Condition.open(n),
          name,
          (c) => ({ waiting: c.waiting }),
        );
      case 'barrier':
        return withPrimitive(
          (n) => Barrier.open(n),
          name,
          (b) => ({ waiting: b.waiting, broken: b.broken }),
        );
      case 'event':
        return withPrimitive(
          (n) => Event.open(n),
          name,
          (e) => ({ set: e.isSet() }),
        );
      case 'queue': {
        const stats: QueueStats | undefined = await withQueue(entry, (queue) => queue.stats());
        return stats ? { ...stats } : { error: 'the queue database is missing' };
      }
      default:
        return {};
    }
  } catch (err) {
    return { error: err instanceof Error ? err.message : String(err) };
  }
}

/** The file behind `entry`, if it has one. */
export function resourceFile(entry: ResourceStatus): FileDetails | undefined {
  return entry.path === undefined ? undefined : fileDetails(entry.path);
}
