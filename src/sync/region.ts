/**
 * Where a primitive's shared state lives: a run of bytes in a mapping (its own named segment, or an
 * offset inside a segment or SharedArrayBuffer the user owns), seen through Int32 and Float64 views.
 * Every primitive starts with a 16-byte header (magic, kind, layout version, one parameter) that
 * `openAt` checks, so pointing a Mutex at the wrong bytes is ERR_IPC_INCOMPATIBLE, not corruption.
 *
 * Memory ordering: every word other threads read while it changes is accessed with Atomics
 * (sequentially consistent); plain accesses are only used for fields guarded by a seqlock or by
 * a claim protocol documented where they are used.
 */
import { ErrorCodes, IpcError } from '../core/errors.js';
import { numberError } from '../core/options.js';

/** 'SYNC' as a little-endian i32. */
export const SYNC_MAGIC = 0x434e5953;
/** Layout version of all primitives; bump on any incompatible change. */
export const SYNC_LAYOUT_VERSION = 3;
/** Header words: magic, kind << 8 | version, parameter, reserved. */
export const HEADER_WORDS = 4;

/** Kind codes, stored in the primitive header and in the segment header of named primitives. */
export const Kind = {
  mutex: 1,
  semaphore: 2,
  rwlock: 3,
  condition: 4,
  barrier: 5,
  event: 6,
} as const;
export type KindName = keyof typeof Kind;

/** A primitive's bytes, with word-indexed views relative to its start. */
export class Region {
  readonly i32: Int32Array;
  readonly f64: Float64Array;

  constructor(buffer: ArrayBufferLike, byteOffset: number, byteLength: number) {
    this.i32 = new Int32Array(buffer, byteOffset, byteLength >> 2);
    this.f64 = new Float64Array(buffer, byteOffset, byteLength >> 3);
  }

  /** True once the underlying mapping was unmapped (the views are then empty). */
  get detached(): boolean {
    return this.i32.length === 0;
  }
}

/**
 * Anything a primitive can be placed in: a buffer, a SharedMemory (its `buffer`), or a typed array
 * or DataView (its own bytes: the offset counts from the view's start).
 */
export type PlacementTarget = ArrayBuffer | SharedArrayBuffer | ArrayBufferView | { buffer: ArrayBuffer };

/** Resolves a placement target and checks offset, alignment and room; returns the region. */
export function placeRegion(
  target: PlacementTarget,
  offset: number,
  byteLength: number,
  what: string,
): Region {
  // A typed array or DataView places relative to its own start, within its own length: its
  // `buffer` alone would put the primitive at the start of the whole buffer, over other bytes.
  const view = ArrayBuffer.isView(target) ? target : undefined;
  const buffer =
    target instanceof ArrayBuffer || target instanceof SharedArrayBuffer
      ? target
      : (target as { buffer?: unknown })?.buffer;
  if (!(buffer instanceof ArrayBuffer) && !(buffer instanceof SharedArrayBuffer)) {
    throw new TypeError(`${what}: target must be an ArrayBuffer, a SharedArrayBuffer or a SharedMemory`);
  }
  if (!Number.isSafeInteger(offset) || offset < 0 || offset % 8 !== 0) {
    throw numberError(offset, `offset must be a non-negative multiple of 8, got ${String(offset)}`);
  }
  const start = view ? view.byteOffset : 0;
  const room = view ? view.byteLength : buffer.byteLength;
  if (start % 8 !== 0) {
    throw new RangeError(`${what}: the view starts at byte ${start} of its buffer, not at a multiple of 8`);
  }
  if (offset + byteLength > room) {
    throw new RangeError(`${what} needs ${byteLength} bytes at offset ${offset}, but the target has ${room}`);
  }
  return new Region(buffer, start + offset, byteLength);
}

/** Zeroes the region and writes its header; the magic goes last so openers never see a half-made one. */
export function initHeader(region: Region, kind: number, param: number): void {
  region.i32.fill(0);
  region.i32[1] = (kind << 8) | SYNC_LAYOUT_VERSION;
  region.i32[2] = param;
  Atomics.store(region.i32, 0, SYNC_MAGIC);
}

/** Checks the header and returns its parameter; ERR_IPC_INCOMPATIBLE if it is not a `kind`. */
export function checkHeader(region: Region, kind: number, what: string): number {
  const magic = Atomics.load(region.i32, 0);
  const kindVersion = region.i32[1]!;
  if (magic !== SYNC_MAGIC) {
    throw new IpcError(
      ErrorCodes.INCOMPATIBLE,
      `${what}: no ipckit primitive at this place (magic 0x${(magic >>> 0).toString(16)})`,
    );
  }
  if (kindVersion >> 8 !== kind) {
    throw new IpcError(
      ErrorCodes.INCOMPATIBLE,
      `${what}: the primitive here is of kind ${kindVersion >> 8}, not ${kind}`,
    );
  }
  if ((kindVersion & 0xff) !== SYNC_LAYOUT_VERSION) {
    throw new IpcError(
      ErrorCodes.INCOMPATIBLE,
      `${what}: layout version ${kindVersion & 0xff}, this ipckit reads ${SYNC_LAYOUT_VERSION}`,
    );
  }
  return region.i32[2]!;
}
