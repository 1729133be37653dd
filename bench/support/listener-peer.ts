/**
 * Subjects whose child listens: an ipckit socket server (unix:// or tcp://), a NamedPipe server, or
 * a FIFO reader. The parent connects (or opens the FIFO) and sends; the child counts with the group
 * protocol and answers over its parent channel (bench/children/count-listener.ts).
 */
import { connect, Fifo, NamedPipe, type Sender, spawn } from '../../src/index.js';
import { channelSend } from './ipckit-peer.js';
import { CHILD_STDIO, childArgs, type Peer } from './peer.js';

export type ListenerTransport = 'socket' | 'named-pipe' | 'fifo';

/**
 * Starts the child and connects to it. `address`: a unix:// or tcp:// URL for 'socket', a name in
 * the runtime directory for the others (the FIFO is created here). Objects, default codec.
 */
export async function startListenerPeer(
  subject: string,
  transport: ListenerTransport,
  address: string,
): Promise<Peer> {
  if (transport === 'fifo') await Fifo.create(address);
  const child = spawn<unknown>(process.execPath, childArgs('count-listener.ts', transport, address), {
    channel: 'pipe',
    stdio: CHILD_STDIO,
  });
  const control = child.channel!;
  let sender: Sender<unknown>;
  try {
    const { url } = (await control.receive({ timeout: 30_000 })) as { ready: true; url?: string };
    if (transport === 'fifo') sender = await Fifo.sender<unknown>(address, { format: 'frames' });
    else if (transport === 'named-pipe') sender = await NamedPipe.connect<unknown>(address);
    else sender = await connect<unknown>(url!);
  } catch (err) {
    child.kill('SIGKILL');
    await child.exited;
    throw err;
  }
  return {
    subject,
    kind: 'object',
    pid: child.pid,
    send: channelSend(sender),
    receive: () => control.receive(),
    close: async () => {
      await sender.close();
      await control.close();
      await child.exited;
      if (transport === 'fifo') await Fifo.unlink(address);
    },
  };
}
