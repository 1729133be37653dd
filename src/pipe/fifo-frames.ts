/**
 * The 'frames' wire format of a FIFO, writer side: chunks of at most PIPE_BUF bytes, each written
 * by one write(2), so the kernel never interleaves a chunk with another writer's bytes.
 *
 * A 'frames' chunk, all integers big-endian:
 *
 *   offset  size  field
 *   0       2     magic 0xc7 0xf2 (the first 'frames' layout used 0xc7 0x1f: refused as BAD_FRAME)
 *   2       1     flags: 0x01 first chunk, 0x02 last chunk (a small message is both, 0x03; a middle
 *                 chunk neither), or alone 0x04 mark (a receiver's own barrier, see fifo-frame-assembler.ts) or
 *                 0x08 abort (the writer gives up its message in progress); other values are invalid
 *   3       2     length of this chunk's payload; header + payload is at most PIPE_BUF
 *   5       4     writer pid
 *   9       4     writer nonce, random per sender
 *   -- first chunks only --
 *   13      4     total payload length of the message (at most maxMessageBytes)
 *   17      4     CRC-32 of the message's whole payload
 *   13|21   n     payload
 *
 * A message's chunks are laid out back to back, every one but the last exactly PIPE_BUF bytes.
 */
import { lazyModule } from '../core/lazy-module.js';

/** node:zlib for its crc32, loaded by the first 'frames' FIFO rather than by every process. */
const zlib = lazyModule<typeof import('node:zlib')>('node:zlib');

let crcOf: ((bytes: Uint8Array) => number) | undefined;

/** CRC-32 (zlib's): zlib.crc32 where Node has it (20.15 and later), else {@link tableCrc32}. */
export function crc32(bytes: Uint8Array): number {
  crcOf ??= typeof zlib().crc32 === 'function' ? zlib().crc32 : tableCrc32;
  return crcOf(bytes);
}

let crcTable: Int32Array | undefined;

/** CRC-32 as zlib computes it (reflected polynomial 0xedb88320), one byte at a time from a table. */
export function tableCrc32(bytes: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Int32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c;
    }
  }
  const table = crcTable;
  let crc = -1;
  for (let i = 0; i < bytes.length; i++) crc = table[(crc ^ bytes[i]!) & 0xff]! ^ (crc >>> 8);
  return (crc ^ -1) >>> 0;
}

/** Writes up to this size are atomic on a pipe (POSIX PIPE_BUF on Linux). */
export const PIPE_BUF = 4096;

/** The two bytes every chunk starts with. */
export const MAGIC_0 = 0xc7;
export const MAGIC_1 = 0xf2;
/** Chunk flags (byte 2): see the layout above. */
export const FIRST = 0x01;
export const LAST = 0x02;
export const MARK = 0x04;
export const ABORT = 0x08;
/** Header of a chunk that is not the first of its message. */
export const CHUNK_HEADER = 13;
/** Header of a message's first chunk: the chunk header plus total length and CRC. */
export const FIRST_HEADER = 21;
/** The most payload a first chunk carries: a message up to this size is one chunk. */
export const SINGLE_CHUNK_PAYLOAD = PIPE_BUF - FIRST_HEADER;
export const NEXT_CHUNK_PAYLOAD = PIPE_BUF - CHUNK_HEADER;

/** Who wrote a 'frames' chunk: a process and one of its senders (a process may open several). */
export interface FrameWriter {
  readonly pid: number;
  /** Random per sender, 32 bits. */
  readonly nonce: number;
}

/** A fresh identity for one sender of this process. */
export function newFrameWriter(): FrameWriter {
  // Not a secret, only distinct among this process's senders: Math.random spares loading node:crypto.
  return { pid: process.pid, nonce: Math.floor(Math.random() * 0x1_0000_0000) >>> 0 };
}

/**
 * Writes a message of at most SINGLE_CHUNK_PAYLOAD bytes as one chunk into `out` at `offset`;
 * returns the bytes written. The sender's hot path: no allocation.
 */
export function writeSingleChunk(
  out: Buffer,
  offset: number,
  payload: Uint8Array,
  writer: FrameWriter,
): number {
  const length = payload.length;
  writeHeader(out, offset, FIRST | LAST, length, writer);
  out.writeUInt32BE(length, offset + 13);
  out.writeUInt32BE(crc32(payload), offset + 17);
  out.set(payload, offset + FIRST_HEADER);
  return FIRST_HEADER + length;
}

/** A message larger than one chunk, cut into chunks laid out back to back. */
export function chunkedWire(payload: Uint8Array, writer: FrameWriter): Buffer {
  const total = payload.length;
  const later = Math.ceil(Math.max(0, total - SINGLE_CHUNK_PAYLOAD) / NEXT_CHUNK_PAYLOAD);
  const wire = Buffer.allocUnsafe(FIRST_HEADER + total + later * CHUNK_HEADER);
  const first = Math.min(total, SINGLE_CHUNK_PAYLOAD);
  writeHeader(wire, 0, first === total ? FIRST | LAST : FIRST, first, writer);
  wire.writeUInt32BE(total, 13);
  wire.writeUInt32BE(crc32(payload), 17);
  wire.set(payload.subarray(0, first), FIRST_HEADER);
  let at = FIRST_HEADER + first;
  for (let from = first; from < total; ) {
    const length = Math.min(total - from, NEXT_CHUNK_PAYLOAD);
    writeHeader(wire, at, from + length === total ? LAST : 0, length, writer);
    wire.set(payload.subarray(from, from + length), at + CHUNK_HEADER);
    at += CHUNK_HEADER + length;
    from += length;
  }
  return wire;
}

/** The chunk by which `writer` gives up its message in progress (a sender destroyed mid-message). */
export function abortChunk(writer: FrameWriter): Buffer {
  const chunk = Buffer.allocUnsafe(CHUNK_HEADER);
  writeHeader(chunk, 0, ABORT, 0, writer);
  return chunk;
}

/** The receiver's barrier: a mark chunk carrying `seq` (see fifo-frame-assembler.ts). */
export function markChunk(writer: FrameWriter, seq: number): Buffer {
  const chunk = Buffer.allocUnsafe(CHUNK_HEADER + 4);
  writeHeader(chunk, 0, MARK, 4, writer);
  chunk.writeUInt32BE(seq >>> 0, CHUNK_HEADER);
  return chunk;
}

export function writeHeader(
  out: Buffer,
  at: number,
  flags: number,
  length: number,
  writer: FrameWriter,
): void {
  out[at] = MAGIC_0;
  out[at + 1] = MAGIC_1;
  out[at + 2] = flags;
  out.writeUInt16BE(length, at + 3);
  out.writeUInt32BE(writer.pid, at + 5);
  out.writeUInt32BE(writer.nonce, at + 9);
}
