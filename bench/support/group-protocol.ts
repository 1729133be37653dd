/**
 * The protocol every benchmark child speaks, whatever carries it: the parent announces a group
 * ("the next `size` messages, `repeat` times"), then sends its messages; after each group the child
 * replies once. A group of one is a ping-pong (the reply is the message itself, so both directions
 * carry the payload); a larger group is a one-way burst answered by a small count. One child per
 * transport then serves every case, so a case pays no process start-up.
 */

/** What the messages are: small objects, or byte buffers. */
export type PayloadKind = 'object' | 'bytes';

/** The announcement of a group, in the form the payload kind's codec carries. */
export function groupHeader(kind: PayloadKind, size: number, repeat: number): unknown {
  if (kind === 'object') return { size, repeat };
  const bytes = new Uint8Array(8);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, size);
  view.setUint32(4, repeat);
  return bytes;
}

/** The reply that ends a burst: how many messages the child counted. */
export function countReply(kind: PayloadKind, count: number): unknown {
  if (kind === 'object') return { count };
  const bytes = new Uint8Array(4);
  new DataView(bytes.buffer).setUint32(0, count);
  return bytes;
}

/** Reads the count back from {@link countReply}'s message. */
export function readCount(message: unknown): number {
  if (message instanceof Uint8Array) {
    return new DataView(message.buffer, message.byteOffset, message.byteLength).getUint32(0);
  }
  return (message as { count: number }).count;
}

/** The child's side: feed it every message; it says what to send back, if anything. */
export class GroupFollower {
  readonly #kind: PayloadKind;
  #size = 0;
  #repeat = 0;
  #seen = 0;

  constructor(kind: PayloadKind) {
    this.#kind = kind;
  }

  /** The reply owed after this message, or undefined. */
  next(message: unknown): unknown {
    if (this.#repeat === 0) {
      this.#readHeader(message);
      return undefined;
    }
    if (++this.#seen < this.#size) return undefined;
    this.#seen = 0;
    this.#repeat--;
    return this.#size === 1 ? message : countReply(this.#kind, this.#size);
  }

  #readHeader(message: unknown): void {
    if (message instanceof Uint8Array) {
      const view = new DataView(message.buffer, message.byteOffset, message.byteLength);
      this.#size = view.getUint32(0);
      this.#repeat = view.getUint32(4);
    } else {
      ({ size: this.#size, repeat: this.#repeat } = message as { size: number; repeat: number });
    }
    if (!(this.#size >= 1 && this.#repeat >= 1)) throw new Error('bench child: bad group header');
  }
}
