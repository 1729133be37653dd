/**
 * Secure by default, seen from another user: everything ipckit makes under umask 000 (segments,
 * locks, channels, FIFOs, named pipes, queues) is 0600 in a 0700 directory, and a process running
 * as uid 65534 (setpriv) reaches none of it, by path or through ipckit. Needs root and setpriv(1).
 */
import { spawnSync } from 'node:child_process';
import { lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  ErrorCodes,
  Fifo,
  MessageQueue,
  Mutex,
  NamedPipe,
  SharedMemory,
  ShmChannel,
} from '../../src/index.js';
import { kernelPrefix } from '../../src/shm/kernel-name.js';
import { fixtureArgs, isolateRuntimeDir } from '../helpers.js';
import { AS_NOBODY, canRunAsNobody, NOBODY } from '../support/other-user.js';
import { removeShmObjects } from '../sync/children.js';

const canSwitchUser = canRunAsNobody;

/** Every path under `dir`, the directory itself included. */
function walk(dir: string): string[] {
  const paths = [dir];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) paths.push(...walk(path));
    else paths.push(path);
  }
  return paths;
}

describe('what ipckit makes, seen by another user', () => {
  let env: ReturnType<typeof isolateRuntimeDir>;
  beforeEach(() => {
    env = isolateRuntimeDir({ umask: 0 });
  });
  afterEach(() => {
    removeShmObjects();
    env.cleanup();
  });

  it.skipIf(!canSwitchUser)(
    `is 0600 in 0700 directories, and uid ${NOBODY} reaches none of it${canSwitchUser ? '' : ' (skipped: needs root and setpriv)'}`,
    async () => {
      const segment = SharedMemory.create('seg', { size: 4096 });
      const mutex = Mutex.create('lock');
      const channel = ShmChannel.create('chan');
      await Fifo.create('fifo');
      const pipe = await NamedPipe.listen('np');
      const queue = await MessageQueue.open<string>('q');
      await queue.send('kept');
      try {
        const prefix = `ipckit${kernelPrefix().slice('/ipckit'.length)}`;
        const shmPaths = readdirSync('/dev/shm')
          .filter((name) => name.startsWith(prefix))
          .map((name) => join('/dev/shm', name));
        expect(shmPaths.length).toBeGreaterThanOrEqual(3); // the segment, the mutex, the channel
        const ownPaths = walk(env.dir);
        expect(ownPaths.some((path) => path.endsWith('.sock'))).toBe(true);
        for (const path of [...shmPaths, ...ownPaths]) {
          const stat = lstatSync(path);
          expect({ path, mode: stat.mode & 0o777 }).toEqual({
            path,
            mode: stat.isDirectory() ? 0o700 : 0o600,
          });
        }

        const probe = spawnSync(
          AS_NOBODY[0]!,
          [
            ...AS_NOBODY.slice(1),
            process.execPath,
            ...fixtureArgs('probe-resources-as-other-user.ts', JSON.stringify([...shmPaths, ...ownPaths])),
          ],
          { env: { ...process.env, IPCKIT_DIR: env.dir }, timeout: 60_000 },
        );
        expect(probe.status, probe.stderr.toString()).toBe(0);
        const { byPath, byApi } = JSON.parse(probe.stdout.toString()) as {
          byPath: Record<string, string>;
          byApi: Record<string, string>;
        };
        for (const path of [...shmPaths, ...ownPaths])
          expect({ path, got: byPath[path] }).toEqual({ path, got: 'EACCES' });
        for (const [api, got] of Object.entries(byApi)) {
          expect({ api, got }).toEqual({ api, got: ErrorCodes.PERMISSION });
        }
      } finally {
        await queue.close();
        await pipe.close();
        channel.destroy();
        mutex.close();
        segment.close();
      }
    },
    90_000,
  );
});
