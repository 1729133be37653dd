// Peer credentials exist only for Unix sockets (unix:// and pipe://), so this suite runs on those
// two instead of tcp and unix.
import {
  chmodSync,
  chownSync,
  mkdtempSync,
  rmSync,
  statSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { connect, ErrorCodes, listen, NamedPipe } from '../../src/index.js';
import { chmodBoundSocket } from '../../src/socket/transport.js';
import { isolateRuntimeDir, rejectionOf, watchdog } from '../helpers.js';
import { AS_NOBODY, canRunAsNobody, NOBODY } from '../support/other-user.js';
import { startFixture } from './child.js';

let env: ReturnType<typeof isolateRuntimeDir>;
beforeEach(() => {
  env = isolateRuntimeDir();
});
afterEach(() => env.cleanup());

const canSwitchUser = canRunAsNobody;

/** A directory other users may enter, for a socket they are allowed to reach at the file level. */
function openDir(): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'ipckit-peercred-'));
  chmodSync(dir, 0o755);
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

function asNobody(url: string) {
  return startFixture('socket-connect-and-wait.ts', [url], {
    command: [...AS_NOBODY],
    env: { SOCKET_EXIT: '1' },
  });
}

describe.each(['unix', 'pipe'] as const)('peer credentials over %s', (transport) => {
  const listenOn = async (opts: Parameters<typeof listen>[1] = {}) => {
    if (transport === 'pipe') return NamedPipe.listen('creds', opts);
    const open = openDir();
    const server = await listen(`unix://${join(open.dir, 's.sock')}`, opts);
    return Object.assign(server, { cleanupDir: open.cleanup });
  };

  it('the server sees the pid and uid of each client; the socket file is 0600 by default', async () => {
    const server = await listenOn();
    try {
      const client = await connect(server.url);
      const conn = await watchdog(server.accept(), 5000, 'accept');
      expect(conn.peer).toMatchObject({
        transport,
        pid: process.pid,
        uid: process.getuid!(),
        gid: process.getgid!(),
      });
      expect(statSync(server.path!).mode & 0o777).toBe(0o600);
      await client.close();
    } finally {
      await server.close();
      (server as { cleanupDir?: () => void }).cleanupDir?.();
    }
  });

  // A named pipe lives in the 0700 runtime directory: another user cannot even reach the file, so
  // the credential check is exercised through unix:// with a permissive file mode.
  it.skipIf(!canSwitchUser || transport === 'pipe')(
    'another user is refused with ERR_IPC_AUTH even when the file lets it in',
    async () => {
      const server = await listenOn({ mode: 0o666 });
      try {
        const refused = new Promise<string>((resolve) =>
          server.once('refused', (reason) => resolve(reason.code)),
        );
        const child = asNobody(server.url);
        expect(await child.line('ERROR')).toBe(ErrorCodes.AUTH);
        expect(await watchdog(refused, 5000, 'server refusal')).toBe(ErrorCodes.AUTH);
      } finally {
        await server.close();
        (server as { cleanupDir?: () => void }).cleanupDir?.();
      }
    },
  );

  it.skipIf(!canSwitchUser || transport === 'pipe')('auth.uid admits exactly the listed users', async () => {
    const server = await listenOn({ mode: 0o666, auth: { uid: [NOBODY] } });
    try {
      const accepted = server.accept();
      const child = asNobody(server.url);
      expect(Number(await child.line('CONNECTED'))).toBe(child.process.pid);
      expect((await watchdog(accepted, 5000, 'accept')).peer.uid).toBe(NOBODY);
      // The owner itself is not listed, so it is refused.
      expect((await rejectionOf(connect(server.url))).code).toBe(ErrorCodes.AUTH);
    } finally {
      await server.close();
      (server as { cleanupDir?: () => void }).cleanupDir?.();
    }
  });

  it('a client can require the server to run as given uids', async () => {
    const server = await listenOn();
    try {
      const client = await connect(server.url, { auth: { uid: process.getuid!() } });
      await client.close();
      const wrong = await rejectionOf(connect(server.url, { auth: { uid: process.getuid!() + 1 } }));
      expect(wrong.code).toBe(ErrorCodes.AUTH);
      expect(wrong.message).toContain(`uid ${process.getuid!()}`);
    } finally {
      await server.close();
      (server as { cleanupDir?: () => void }).cleanupDir?.();
    }
  });
});

// A client expects its own user (or root) on the server's end by default: whoever binds a unix://
// path in a shared directory first would otherwise get the client's token and requests.
describe.skipIf(!canSwitchUser)('a server run by another user', () => {
  it('is refused by a client unless auth.uid names that user', async () => {
    const open = openDir();
    chownSync(open.dir, NOBODY, NOBODY);
    const server = startFixture(
      'socket-echo-server.ts',
      [`unix://${join(open.dir, 's.sock')}`, JSON.stringify({ mode: 0o666, auth: { uid: [NOBODY, 0] } })],
      { command: [...AS_NOBODY], env: { IPCKIT_DIR: join(open.dir, 'runtime') } },
    );
    try {
      const url = await server.line('LISTENING');
      const refused = await rejectionOf(connect(url));
      expect(refused.code).toBe(ErrorCodes.AUTH);
      expect(refused.message).toContain(`the server runs as uid ${NOBODY}`);
      const client = await connect(url, { auth: { uid: NOBODY } });
      expect(await client.request('pid', null)).toBe(server.process.pid);
      await client.close();
    } finally {
      server.kill();
      await server.exited;
      open.cleanup();
    }
  });
});

describe('without setpriv', () => {
  it.runIf(!canSwitchUser)(
    'skips the other-user tests: they need root and setpriv(1) to run a client as uid 65534',
    () => {
      expect(canSwitchUser).toBe(false);
    },
  );
});

describe('the socket file mode is set on the socket itself', () => {
  // In a directory others may write to, the socket file can be swapped between bind and chmod; a
  // chmod by path would then follow a symlink to whatever it points at.
  it('a symlink or another file in the socket path meanwhile is refused, and what it points at keeps its mode', () => {
    const open = openDir();
    try {
      const target = join(open.dir, 'secret');
      writeFileSync(target, 'x', { mode: 0o600 });
      const path = join(open.dir, 's.sock');
      symlinkSync(target, path);
      const err = catchError(() => chmodBoundSocket(path, 0o666, 'listen'));
      expect(err).toMatchObject({ code: ErrorCodes.UNSAFE_PATH });
      expect(statSync(target).mode & 0o777).toBe(0o600);
      unlinkSync(path);
      writeFileSync(path, 'not a socket', { mode: 0o600 });
      expect(catchError(() => chmodBoundSocket(path, 0o666, 'listen'))).toMatchObject({
        code: ErrorCodes.UNSAFE_PATH,
      });
      expect(statSync(path).mode & 0o777).toBe(0o600);
    } finally {
      open.cleanup();
    }
  });

  it('a unix:// server still gets the mode it asked for', async () => {
    const open = openDir();
    const server = await listen(`unix://${join(open.dir, 's.sock')}`, { mode: 0o660 });
    try {
      expect(statSync(server.path!).mode & 0o777).toBe(0o660);
    } finally {
      await server.close();
      open.cleanup();
    }
  });
});

function catchError(fn: () => void): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected an error');
}
