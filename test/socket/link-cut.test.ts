// A link cut between two network namespaces: no FIN, no RST, TCP retransmits forever. Only the
// heartbeat can tell. TCP only: Unix sockets have no link to cut. Both ends live in namespaces this
// test creates, on addresses that exist nowhere else.
import { execFileSync, spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../src/index.js';
import { startFixture } from './child.js';

const tag = `${process.pid % 10_000}`;
const server = `ipckit-s${tag}`;
const client = `ipckit-c${tag}`;
const octet = 1 + (process.pid % 250);
const serverAddress = `10.253.${octet}.1`;
const canUseNetns =
  process.getuid?.() === 0 && spawnSync('ip', ['netns', 'list'], { stdio: 'ignore' }).status === 0;

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: 'ignore' });
}

describe.skipIf(!canUseNetns)('a cut link (network namespaces; needs root and ip(8))', () => {
  beforeAll(() => {
    ip('netns', 'add', server);
    ip('netns', 'add', client);
    ip('link', 'add', `vs${tag}`, 'type', 'veth', 'peer', 'name', `vc${tag}`);
    ip('link', 'set', `vs${tag}`, 'netns', server);
    ip('link', 'set', `vc${tag}`, 'netns', client);
    ip('-n', server, 'addr', 'add', `${serverAddress}/30`, 'dev', `vs${tag}`);
    ip('-n', client, 'addr', 'add', `10.253.${octet}.2/30`, 'dev', `vc${tag}`);
    for (const [ns, dev] of [
      [server, `vs${tag}`],
      [client, `vc${tag}`],
    ] as const) {
      ip('-n', ns, 'link', 'set', dev, 'up');
      ip('-n', ns, 'link', 'set', 'lo', 'up');
    }
  });

  afterAll(() => {
    for (const ns of [server, client]) spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  });

  it('is detected by the heartbeat while data waits: the request in flight fails, nothing hangs', async () => {
    const token = 'link-cut-test';
    const serverProcess = startFixture(
      'socket-echo-server.ts',
      [`tcp://${serverAddress}:0`, JSON.stringify({ heartbeatMs: 200, auth: { token } })],
      { command: ['ip', 'netns', 'exec', server] },
    );
    const clientProcess = { current: undefined as ReturnType<typeof startFixture> | undefined };
    try {
      const url = await serverProcess.line('LISTENING');
      clientProcess.current = startFixture('socket-client-until-cut.ts', [url], {
        command: ['ip', 'netns', 'exec', client],
        env: { SOCKET_TOKEN: token },
      });
      await clientProcess.current.line('CONNECTED');
      ip('-n', server, 'link', 'set', `vs${tag}`, 'down');
      const disconnect = await clientProcess.current.line('DISCONNECT', 15_000);
      expect(disconnect).toMatch(new RegExp(`^${ErrorCodes.PEER_GONE} .*no heartbeat`));
      expect(await clientProcess.current.line('REQUEST')).toBe(ErrorCodes.PEER_GONE);
    } finally {
      clientProcess.current?.kill();
      serverProcess.kill();
    }
  }, 60_000);
});
