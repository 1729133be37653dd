// Follows the group protocol (bench/support/group-protocol.ts) over a raw Unix socket with the
// hand-written length-prefix framing. argv[2]: 'object' (msgpack) or 'bytes'; argv[3]: socket path.
import { connect } from 'node:net';
import { Packr } from 'msgpackr';
import { GroupFollower, type PayloadKind } from '../support/group-protocol.js';
import { FrameReader, writeFrame } from '../support/length-prefix.js';

const kind = process.argv[2] as PayloadKind;
// The same msgpack settings as ipckit's default codec, so only the transport differs.
const packr = new Packr({ useRecords: false, mapsAsObjects: true, moreTypes: false, int64AsType: 'number' });
const follower = new GroupFollower(kind);
const socket = connect(process.argv[3]!);
const reader = new FrameReader((payload) => {
  const reply = follower.next(kind === 'object' ? packr.decode(payload) : payload);
  if (reply !== undefined)
    writeFrame(socket, kind === 'object' ? packr.encode(reply) : (reply as Uint8Array));
});
socket.on('data', (chunk: Buffer) => reader.push(chunk));
socket.on('end', () => socket.end());
