/**
 * The hand-written framing of the raw `node:net` baseline: a 4-byte big-endian length, then the
 * payload. Deliberately the plain version a developer would write without a library, so the
 * baseline shows what a socket costs, not what a framing library adds.
 */
import type { Socket } from 'node:net';

/** Writes one frame; returns false when the socket asks the writer to wait for 'drain'. */
export function writeFrame(socket: Socket, payload: Uint8Array): boolean {
  if (payload.byteLength < 16 * 1024) {
    const frame = Buffer.allocUnsafe(4 + payload.byteLength);
    frame.writeUInt32BE(payload.byteLength, 0);
    frame.set(payload, 4);
    return socket.write(frame);
  }
  // Large payloads are not copied: header and payload leave together in one writev.
  const header = Buffer.allocUnsafe(4);
  header.writeUInt32BE(payload.byteLength, 0);
  socket.cork();
  socket.write(header);
  const ok = socket.write(payload);
  socket.uncork();
  return ok;
}

/** Splits incoming chunks into payloads; a payload split across chunks is joined once it is whole. */
export class FrameReader {
  #chunks: Buffer[] = [];
  #buffered = 0;

  readonly #onFrame: (payload: Buffer) => void;

  constructor(onFrame: (payload: Buffer) => void) {
    this.#onFrame = onFrame;
  }

  push(chunk: Buffer): void {
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
    while (this.#buffered >= 4) {
      let head = this.#chunks[0]!;
      if (head.length < 4) head = this.#join();
      const length = head.readUInt32BE(0);
      if (this.#buffered < 4 + length) return;
      if (head.length < 4 + length) head = this.#join();
      this.#onFrame(head.subarray(4, 4 + length));
      const rest = head.subarray(4 + length);
      this.#buffered -= 4 + length;
      if (rest.length > 0) this.#chunks[0] = rest;
      else this.#chunks.shift();
    }
  }

  #join(): Buffer {
    const whole = Buffer.concat(this.#chunks, this.#buffered);
    this.#chunks = [whole];
    return whole;
  }
}
