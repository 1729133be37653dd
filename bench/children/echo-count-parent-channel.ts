// Follows the group protocol (bench/support/group-protocol.ts) over ipckit's parent channel:
// echoes single messages, counts bursts. argv[2]: 'object' (msgpack codec) or 'bytes' (raw codec).
import { ErrorCodes, isIpcError, parentChannel } from '../../src/index.js';
import { GroupFollower, type PayloadKind } from '../support/group-protocol.js';

const kind = process.argv[2] as PayloadKind;
const channel = parentChannel<unknown>({ codec: kind === 'bytes' ? 'raw' : 'msgpack' });
const follower = new GroupFollower(kind);
for (;;) {
  let message: unknown;
  try {
    // As the process.send child takes 'message' events: what has arrived is taken synchronously;
    // only when nothing has does the loop wait, with a promise, for the next message.
    const next = channel.tryReceive();
    message = next ? next.message : await channel.receive();
  } catch (err) {
    if (isIpcError(err, ErrorCodes.CLOSED)) break;
    throw err;
  }
  const reply = follower.next(message);
  // As the process.send child replies: synchronously, waiting only if the transport is full.
  if (reply !== undefined && !channel.trySend(reply)) await channel.send(reply);
}
await channel.close();
