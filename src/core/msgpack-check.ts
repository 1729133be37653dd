/**
 * The gate in front of msgpackr on the receiving side. ipckit's own decoder (msgpack-plain.ts)
 * reads plain data and checks every length as it goes; a frame it leaves to msgpackr is checked
 * here first, whole, because msgpackr trusts its input more than bytes from another process
 * deserve: it allocates an array of whatever length a header claims, its extensions can build
 * graphs (structured-clone references) or move its read position backwards (bundled strings, which
 * then read past the frame into memory that held other messages), and records compile readers.
 */

/** The deepest msgpack nesting ipckit sends or receives (the json codec's bound too). */
export const MAX_MSGPACK_NESTING = 1000;

/**
 * The extension types a frame may hold: the timestamp (-1: 4, 8 or 12 bytes, and msgpackr's 1-byte
 * invalid Date) and msgpackr's `undefined` (type 0, 1 byte). These are all ipckit's encoder writes.
 */
function extensionAllowed(type: number, length: number): boolean {
  if (type === -1) return length === 4 || length === 8 || length === 12 || length === 1;
  return type === 0 && length === 1;
}

/**
 * Throws a TypeError saying what is wrong unless `data` from `start` to `stop` is exactly one
 * msgpack value that msgpackr can be given: every length inside the range, no array or map claiming
 * more items than bytes remain, only the extensions of {@link extensionAllowed}, never the unused
 * byte 0xc1, at most MAX_MSGPACK_NESTING levels deep, and no string ending inside a UTF-8 sequence
 * (msgpackr's JavaScript string reader would read on past the string's end).
 */
export function checkMsgpack(data: Uint8Array, start: number, stop: number): void {
  // Items still to read in each open array or map (a map's entry is two items), innermost last.
  const open: number[] = [];
  let items = 1;
  let at = start;
  const need = (bytes: number, what: string): void => {
    if (bytes > stop - at) throw new TypeError(`${what} runs past the end of the message`);
  };
  const uint = (bytes: 1 | 2 | 4): number => {
    need(bytes, 'a header');
    const value =
      bytes === 1
        ? data[at]!
        : bytes === 2
          ? (data[at]! << 8) | data[at + 1]!
          : data[at]! * 0x1000000 + ((data[at + 1]! << 16) | (data[at + 2]! << 8) | data[at + 3]!);
    at += bytes;
    return value;
  };
  for (;;) {
    if (items === 0) {
      const outer = open.pop();
      if (outer === undefined) break;
      items = outer;
      continue;
    }
    items--;
    need(1, 'a value');
    const byte = data[at++]!;
    let children = 0;
    if (byte <= 0x7f || byte >= 0xe0) continue; // fixint
    if (byte <= 0x8f) children = (byte & 0x0f) * 2;
    else if (byte <= 0x9f) children = byte & 0x0f;
    else if (byte <= 0xbf) {
      skipString(byte & 0x1f);
      continue;
    } else {
      switch (byte) {
        case 0xc0:
        case 0xc2:
        case 0xc3:
          continue;
        case 0xc1:
          throw new TypeError('the message holds the never-used msgpack byte 0xc1');
        case 0xc4:
        case 0xc5:
        case 0xc6:
          skip(uint(byte === 0xc4 ? 1 : byte === 0xc5 ? 2 : 4), 'a bin');
          continue;
        case 0xc7:
        case 0xc8:
        case 0xc9:
          extension(uint(byte === 0xc7 ? 1 : byte === 0xc8 ? 2 : 4));
          continue;
        case 0xca:
        case 0xce:
        case 0xd2:
          skip(4, 'a number');
          continue;
        case 0xcb:
        case 0xcf:
        case 0xd3:
          skip(8, 'a number');
          continue;
        case 0xcc:
        case 0xd0:
          skip(1, 'a number');
          continue;
        case 0xcd:
        case 0xd1:
          skip(2, 'a number');
          continue;
        case 0xd4:
        case 0xd5:
        case 0xd6:
        case 0xd7:
        case 0xd8:
          extension(1 << (byte - 0xd4));
          continue;
        case 0xd9:
        case 0xda:
        case 0xdb:
          skipString(uint(byte === 0xd9 ? 1 : byte === 0xda ? 2 : 4));
          continue;
        case 0xdc:
        case 0xdd:
          children = uint(byte === 0xdc ? 2 : 4);
          break;
        default: // 0xde, 0xdf
          children = uint(byte === 0xde ? 2 : 4) * 2;
      }
    }
    if (children === 0) continue;
    // Every item takes a byte at least: a header claiming more is a lie, refused before msgpackr
    // allocates an array of that length.
    if (children > stop - at) throw new TypeError('an array or map claims more items than the message holds');
    if (open.length >= MAX_MSGPACK_NESTING) {
      throw new TypeError(`the message is nested deeper than ${MAX_MSGPACK_NESTING} levels`);
    }
    open.push(items);
    items = children;
  }
  if (at !== stop) throw new TypeError('bytes follow the message');

  function skip(bytes: number, what: string): void {
    need(bytes, what);
    at += bytes;
  }

  function skipString(bytes: number): void {
    need(bytes, 'a string');
    const end = at + bytes;
    // No lead byte may start a sequence longer than what is left of the string (in valid UTF-8
    // none does; msgpackr's reader would take the bytes after the string as the rest).
    for (let i = Math.max(at, end - 3); i < end; i++) {
      const lead = data[i]!;
      if (lead >= 0xc0 && i + (lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : 2) > end) {
        throw new TypeError('a string ends inside a UTF-8 sequence');
      }
    }
    at = end;
  }

  function extension(length: number): void {
    need(1, 'an extension');
    const type = (data[at++]! << 24) >> 24;
    if (!extensionAllowed(type, length)) {
      throw new TypeError(`msgpack extension type ${type} (${length} bytes) is not accepted`);
    }
    skip(length, 'an extension');
  }
}
