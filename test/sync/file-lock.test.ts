import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCodes, FileLock, isIpcError } from '../../src/index.js';
import { isolateRuntimeDir, openFdCount, rejectionOf, watchdog } from '../helpers.js';
import { killAll, removeShmObjects, startFixture } from './children.js';

let env: ReturnType<typeof isolateRuntimeDir>;
let path: string;
beforeEach(() => {
  env = isolateRuntimeDir();
  path = join(env.dir, '..', 'data.lock');
});
afterEach(async () => {
  await killAll();
  removeShmObjects();
  env.cleanup();
});

/** flock(1) trying without waiting: exit 0 if it got the lock, 1 if not. */
function flockCli(...args: string[]): number | null {
  return spawnSync('flock', [...args, path, 'true']).status;
}

describe('FileLock', () => {
  it('waits for a flock(1) holder and gets the lock when the holder is killed', async () => {
    // -o: flock(1) alone holds the lock (its command does not inherit the locked fd).
    const holder = startFixture('flock', [], {
      command: 'flock',
      argv: ['-o', '-x', path, 'sh', '-c', 'echo held $$; exec sleep 60'],
    });
    const sleeper = Number((await holder.line('held')).split(' ')[1]);
    expect(FileLock.tryLock(path)).toBeUndefined();
    const timedOut = await FileLock.lock(path, { timeout: 20 }).catch((e: unknown) => e);
    expect(isIpcError(timedOut, ErrorCodes.TIMEOUT)).toBe(true);
    const waiting = FileLock.lock(path);
    holder.child.kill('SIGKILL');
    process.kill(sleeper, 'SIGKILL');
    const lock = await watchdog(waiting, 10_000, 'lock after the holder died');
    expect(lock.shared).toBe(false);
    lock.release();
  });

  it('is seen by flock(1): exclusive blocks it, shared admits shared', () => {
    const lock = FileLock.lockSync(path);
    expect(flockCli('-n', '-x')).toBe(1);
    expect(flockCli('-n', '-s')).toBe(1);
    lock.release();
    lock.release();
    expect(flockCli('-n', '-x')).toBe(0);
    const shared = FileLock.tryLock(path, { shared: true })!;
    expect(shared).toBeDefined();
    expect(flockCli('-n', '-s')).toBe(0);
    expect(flockCli('-n', '-x')).toBe(1);
    const second = FileLock.tryLock(path, { shared: true });
    expect(second).toBeDefined();
    expect(FileLock.tryLock(path)).toBeUndefined();
    second!.release();
    shared.release();
  });

  it('conflicts between two locks of one process, like between processes', async () => {
    const first = await FileLock.lock(path);
    expect(FileLock.tryLock(path)).toBeUndefined();
    expect(() => FileLock.lockSync(path, { timeout: 5 })).toThrow(
      expect.objectContaining({ code: ErrorCodes.TIMEOUT }),
    );
    const waiting = FileLock.lock(path);
    first.release();
    (await watchdog(waiting, 2000, 'second lock')).release();
  });

  it('an already-aborted signal fails lock() and lockSync() with ERR_IPC_ABORTED and keeps no fd open', async () => {
    const path = join(env.dir, '..', 'aborted.lock');
    const before = openFdCount();
    for (let i = 0; i < 20; i++) {
      const err = await rejectionOf(FileLock.lock(path, { signal: AbortSignal.abort(new Error('no')) }));
      expect(err.code).toBe(ErrorCodes.ABORTED);
      // lockSync too, although the lock is free: nothing is taken.
      expect(() => FileLock.lockSync(path, { signal: AbortSignal.abort(new Error('no')) })).toThrow(
        expect.objectContaining({ code: ErrorCodes.ABORTED }),
      );
    }
    expect(openFdCount()).toBe(before);
  });

  it('locks a FIFO without waiting for a writer to open it', async () => {
    const path = join(env.dir, '..', 'lock.fifo');
    expect(spawnSync('mkfifo', [path]).status).toBe(0);
    const lock = FileLock.tryLock(path);
    expect(lock).toBeDefined();
    lock!.release();
    (await watchdog(FileLock.lock(path, { timeout: 1000 }), 5000, 'lock a FIFO')).release();
  });

  it('rejects bad arguments', async () => {
    await expect(FileLock.lock('')).rejects.toThrow(TypeError);
    await expect(FileLock.lock(path, { timeout: -5 })).rejects.toThrow(RangeError);
  });

  it('refuses a non-boolean shared and a non-number timeout with TypeErrors, as rejections from lock()', async () => {
    let locking: Promise<FileLock> | undefined;
    expect(() => {
      locking = FileLock.lock(path, { shared: 'y' as never });
    }).not.toThrow();
    await expect(locking).rejects.toThrow(TypeError);
    await expect(FileLock.lock(path, { shared: 'y' as never })).rejects.toThrow(/options\.shared/);
    await expect(FileLock.lock(path, { timeout: 'x' as never })).rejects.toThrow(TypeError);
    expect(() => FileLock.tryLock(path, { shared: 1 as never })).toThrow(TypeError);
    expect(() => FileLock.lockSync(path, { shared: 'y' as never })).toThrow(TypeError);
    // Nothing was left holding the file.
    const lock = FileLock.tryLock(path, { shared: false });
    expect(lock).toBeDefined();
    lock?.release();
  });
});
