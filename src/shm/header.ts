/**
 * The versioned header in front of every segment ipckit creates (named or anonymous). It occupies
 * the first page of the object so the user's bytes start page-aligned and `buffer` is exactly the
 * requested size. `open` checks it before mapping the data, so a wrong or truncated object is
 * ERR_IPC_INCOMPATIBLE, never a SIGBUS or a garbage read.
 *
 * Layout (little-endian, byte offsets):
 *   0 u32 magic 'IPCK' (written last: 0 means "still being created")
 *   4 u32 layout version
 *   8 u32 header bytes (4096)
 *  12 u32 content kind (0 plain segment; sync primitives use their own codes)
 *  16 f64 data size in bytes
 *  24 i32 creator pid
 *  32 f64 creator start time (clock ticks since boot, /proc/<pid>/stat field 22)
 *  40 f64 creation time (ms since the epoch)
 */
import { constants } from 'node:buffer';
import { ErrorCodes, IpcError } from '../core/errors.js';
import type { ProcessIdentity } from '../core/process-identity.js';

/** 'IPCK' read as a little-endian u32. */
export const SEGMENT_MAGIC = 0x4b435049;
/** Bumped whenever the header or any layout behind it changes incompatibly. */
export const SEGMENT_LAYOUT_VERSION = 1;
/** One page: the data mapping starts at this file offset, which mmap requires to be page-aligned. */
export const HEADER_BYTES = 4096;
/**
 * The most data bytes one segment maps: the largest ArrayBuffer this Node makes (4 GiB on Node 20).
 * Past it, the addon could not hand the mapping to JavaScript at all.
 */
export const MAX_SEGMENT_BYTES: number = constants.MAX_LENGTH;
/** Content kind of a plain SharedMemory segment. */
export const CONTENT_PLAIN = 0;

/** What the header says about a segment. */
export interface SegmentInfo {
  kind: number;
  size: number;
  creator: ProcessIdentity;
  createdAt: number;
}

/** Fills the header; the magic goes last (with a release store) so readers never see half a header. */
export function writeHeader(header: ArrayBuffer, kind: number, size: number, creator: ProcessIdentity): void {
  const u32 = new Int32Array(header, 0, 12);
  const f64 = new Float64Array(header, 0, 6);
  u32[1] = SEGMENT_LAYOUT_VERSION;
  u32[2] = HEADER_BYTES;
  u32[3] = kind;
  f64[2] = size;
  u32[6] = creator.pid;
  f64[4] = creator.startTime;
  f64[5] = Date.now();
  Atomics.store(u32, 0, SEGMENT_MAGIC);
}

/** Result of reading a header: ready, still being created by someone, or not ours at all. */
export type HeaderState =
  | { state: 'ready'; info: SegmentInfo }
  | { state: 'initializing' }
  | { state: 'bad'; reason: string };

/** Reads and validates a header against the object's size in bytes. */
export function readHeader(header: ArrayBuffer, objectBytes: number): HeaderState {
  const u32 = new Int32Array(header, 0, 12);
  const f64 = new Float64Array(header, 0, 6);
  const magic = Atomics.load(u32, 0);
  if (magic === 0) return { state: 'initializing' };
  if (magic !== SEGMENT_MAGIC) return { state: 'bad', reason: `bad magic 0x${(magic >>> 0).toString(16)}` };
  if (u32[1] !== SEGMENT_LAYOUT_VERSION) {
    return { state: 'bad', reason: `layout version ${u32[1]}, this ipckit reads ${SEGMENT_LAYOUT_VERSION}` };
  }
  if (u32[2] !== HEADER_BYTES) return { state: 'bad', reason: `header size ${u32[2]}` };
  const size = f64[2]!;
  if (size > MAX_SEGMENT_BYTES && Number.isSafeInteger(size)) {
    return { state: 'bad', reason: `header says ${size} data bytes, more than an ArrayBuffer holds` };
  }
  if (!Number.isSafeInteger(size) || size < 1 || HEADER_BYTES + size > objectBytes) {
    return {
      state: 'bad',
      reason: `header says ${size} data bytes but the object has ${objectBytes - HEADER_BYTES}`,
    };
  }
  return {
    state: 'ready',
    info: {
      kind: u32[3]!,
      size,
      creator: { pid: u32[6]!, startTime: f64[4]! },
      createdAt: f64[5]!,
    },
  };
}

/** The ERR_IPC_INCOMPATIBLE error for a segment whose header is wrong. */
export function incompatible(what: string, reason: string): IpcError {
  return new IpcError(ErrorCodes.INCOMPATIBLE, `${what}: not a compatible ipckit segment (${reason})`);
}
