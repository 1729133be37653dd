import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { connect, ErrorCodes } from '../../src/index.js';
import { isolateRuntimeDir, watchdog } from '../helpers.js';
import { startFixture } from './child.js';
import { sendsBeyondBuffers } from './flood.js';
import { listenUrl, transports } from './transports.js';

let env: ReturnType<typeof isolateRuntimeDir>;
beforeEach(() => {
  env = isolateRuntimeDir();
});
afterEach(() => env.cleanup());

describe.each(transports)('client close over %s', (transport) => {
  it.each([
    ['without reconnect', false],
    ['with reconnect', true],
  ] as const)(
    'close() with sends waiting for room settles when the server dies meanwhile (%s)',
    async (_, reconnect) => {
      const server = startFixture('socket-echo-server.ts', [
        listenUrl(transport, env.dir),
        '{"heartbeatMs":0}',
      ]);
      try {
        const url = await server.line('LISTENING');
        const client = await connect<Uint8Array>(url, { reconnect });
        expect(await client.request('pid')).toBe(server.process.pid);
        server.process.kill('SIGSTOP');
        // Far more than the socket buffers hold: the last ones wait for room when close() is called.
        const sends = sendsBeyondBuffers(client);
        const closing = client.close();
        server.kill();
        await watchdog(closing, 10_000, 'close() settles once the server is gone');
        const outcomes = await watchdog(Promise.all(sends), 5000, 'waiting sends settle');
        expect(outcomes[0]).toBe('accepted');
        expect(outcomes.at(-1)).toBe(ErrorCodes.PEER_GONE);
        expect(client.closed).toBe(true);
      } finally {
        server.kill();
      }
    },
  );
});
