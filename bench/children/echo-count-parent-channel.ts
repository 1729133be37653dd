// Follows the group protocol (bench/support/group-protocol.ts) over ipckit's parent channel:
// echoes single messages, counts bursts. argv[2]: 'object' (msgpack codec) or 'bytes' (raw codec).
import { parentChannel } from '../../src/index.js';
import { GroupFollower, type PayloadKind } from '../support/group-protocol.js';

const kind = process.argv[2] as PayloadKind;
const channel = parentChannel<unknown>({ codec: kind === 'bytes' ? 'raw' : 'msgpack' });
const follower = new GroupFollower(kind);
for await (const message of channel) {
  const reply = follower.next(message);
  // As the process.send child replies: synchronously, waiting only if the transport is full.
  if (reply !== undefined && !channel.trySend(reply)) await channel.send(reply);
}
await channel.close();
