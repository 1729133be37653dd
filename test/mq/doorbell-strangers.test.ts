/**
 * A waiting consumer's doorbell where the runtime directory is too deep for a socket path: a socket
 * in the Linux abstract namespace, which has no file mode and no directory to keep other users out
 * (its name is listed in /proc/net/unix for all to see). Another user's connections are closed at
 * once, unread, so a stranger can neither ring it nor hold its file descriptors. Needs root and
 * setpriv(1) to be another user, and the native addon to read peer credentials.
 */
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { socketDoorbells } from '../../src/mq/socket-doorbell.js';
import { nativeAvailable } from '../../src/native/binding.js';
import { isolateRuntimeDir, watchdog } from '../helpers.js';
import { AS_NOBODY, canRunAsNobody } from '../support/other-user.js';

const canSwitchUser = canRunAsNobody && nativeAvailable();

/**
 * Connects to `address` as uid NOBODY, writes one ring (kind 2) and prints 'closed' when the
 * listener closes the connection, or 'open' if it is still open after 5 s.
 */
function strangerConnects(address: string): Promise<string> {
  const script = `
    const socket = require('node:net').connect(Buffer.from(process.argv[1], 'hex').toString('latin1'));
    socket.on('connect', () => socket.write(Buffer.of(2)));
    socket.on('error', () => {});
    socket.on('close', () => { console.log('closed'); process.exit(0); });
    setTimeout(() => { console.log('open'); process.exit(0); }, 5000);`;
  const [setpriv, ...asNobody] = AS_NOBODY;
  const child = spawn(
    setpriv!,
    [...asNobody, process.execPath, '-e', script, Buffer.from(address, 'latin1').toString('hex')],
    { cwd: '/', stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => {
    out += chunk.toString();
  });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', () => resolve(out.trim()));
  });
}

describe('a doorbell in the abstract namespace', () => {
  let env: ReturnType<typeof isolateRuntimeDir>;
  beforeEach(() => {
    env = isolateRuntimeDir();
    // Too deep for a socket path: the bell goes to the abstract namespace.
    process.env.IPCKIT_DIR = join(dirname(env.dir), 'd'.repeat(100));
  });
  afterEach(() => env.cleanup());

  it.skipIf(!canSwitchUser)(
    `closes another user's connections at once, ringing nothing${canSwitchUser ? '' : ' (skipped: needs root and the addon)'}`,
    async () => {
      const rings: number[] = [];
      let rung: (() => void) | undefined;
      const bell = await socketDoorbells.listen((kinds) => {
        rings.push(kinds);
        rung?.();
      });
      const ringer = socketDoorbells.ringer(() => {});
      try {
        expect(bell.address.startsWith('\0')).toBe(true);
        expect(await watchdog(strangerConnects(bell.address), 20_000, 'the stranger')).toBe('closed');
        // This user still rings it.
        const ringed = new Promise<void>((resolve) => {
          rung = resolve;
        });
        ringer.ring(bell.address, 1);
        await watchdog(ringed, 10_000, 'a ring of this user');
        expect(rings).toEqual([1]);
      } finally {
        await ringer.close();
        bell.close();
      }
    },
    30_000,
  );
});
