// Follows the group protocol (bench/support/group-protocol.ts) for messages that arrive over a
// socket, a named pipe or a FIFO, and answers over its parent channel (so a one-way FIFO can be
// measured like the rest). argv[2]: 'socket' (argv[3] a unix:// or tcp:// URL), 'named-pipe' or
// 'fifo' (argv[3] a name in IPCKIT_DIR; the FIFO exists already). Says { ready } on the parent
// channel once the parent may connect, { url } included for a socket. Ends when the parent closes
// the parent channel.
import { Fifo, listen, NamedPipe, parentChannel } from '../../src/index.js';
import { GroupFollower } from '../support/group-protocol.js';

const [transport, address] = process.argv.slice(2) as [string, string];
const control = parentChannel<unknown>();

async function dataChannel(): Promise<{ data: AsyncIterable<unknown>; stop(): Promise<void> }> {
  if (transport === 'fifo') {
    const rx = await Fifo.receiver<unknown>(address, { format: 'frames' });
    await control.send({ ready: true });
    return { data: rx, stop: () => rx.close() };
  }
  const server =
    transport === 'socket' ? await listen<unknown>(address) : await NamedPipe.listen<unknown>(address);
  await control.send({ ready: true, url: server.url });
  for await (const conn of server) return { data: conn, stop: () => server.close() };
  throw new Error(`bench child: ${transport} closed before a connection came`);
}

const { data, stop } = await dataChannel();
// The parent closing the control channel ends the run (a FIFO reader would otherwise wait forever).
void control.receive().then(stop, stop);
const follower = new GroupFollower('object');
for await (const message of data) {
  const reply = follower.next(message);
  if (reply !== undefined) await control.send(reply);
}
await stop();
await control.close();
