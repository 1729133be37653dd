/** Sends that outlast the socket buffers, for tests of what happens to sends still waiting for room. */
import type { IpcError, SocketClient } from '../../src/index.js';

/**
 * Far more than the socket buffers hold (400 x 64 KiB): with the peer stopped, the first sends are
 * accepted and the last ones wait for room. Each promise settles to 'accepted' or the error's code.
 */
export function sendsBeyondBuffers(client: SocketClient<Uint8Array>): Promise<string>[] {
  const chunk = new Uint8Array(64 * 1024);
  return Array.from({ length: 400 }, () =>
    client.send(chunk).then(
      () => 'accepted',
      (err: IpcError) => err.code,
    ),
  );
}
