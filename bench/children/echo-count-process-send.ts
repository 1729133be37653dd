// Follows the group protocol (bench/support/group-protocol.ts) over Node's IPC channel (fork).
// argv[2]: 'object' or 'bytes'; argv[3]: the serialization the parent chose, 'json' or 'advanced'.
// With 'json', bytes travel as base64 strings, decoded here as a real receiver would.
import { GroupFollower, type PayloadKind } from '../support/group-protocol.js';

const kind = process.argv[2] as PayloadKind;
const base64 = kind === 'bytes' && process.argv[3] === 'json';
const follower = new GroupFollower(kind);
process.on('message', (message) => {
  const received = base64 ? Buffer.from(message as string, 'base64') : message;
  const reply = follower.next(received);
  if (reply === undefined) return;
  process.send!(base64 ? Buffer.from(reply as Uint8Array).toString('base64') : reply);
});
// The IPC channel keeps this process alive; it ends when the parent disconnects.
