// Follows the group protocol (bench/support/group-protocol.ts) over ipckit's parent channel (shm or
// pipe, raw codec), receiving with receiveView(): each message is read in place (in the ring, or in
// memory a released view gave back) and released, never copied out. Echoes single messages (send
// copies them), counts bursts.
import { type MessageView, type PipeChannel, parentChannel, type ShmChannel } from '../../src/index.js';
import { GroupFollower } from '../support/group-protocol.js';

const channel = parentChannel<Uint8Array>({ codec: 'raw' }) as
  | PipeChannel<Uint8Array>
  | ShmChannel<Uint8Array>;
const follower = new GroupFollower('bytes');
for (;;) {
  let view: MessageView;
  try {
    view = await channel.receiveView();
  } catch {
    break; // the parent closed the channel
  }
  const reply = follower.next(view.bytes);
  if (reply !== undefined) await channel.send(reply as Uint8Array);
  view.release();
}
await channel.close();
