/**
 * A process out of file descriptors (`ulimit -n`): the failure is an IpcError that says EMFILE, not
 * a wrong code or a raw Node error, and once fds are free again the same call works.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Mutex, RwLock, Semaphore, spawn } from '../../src/index.js';
import { fixtureArgs, isolateRuntimeDir, watchdog } from '../helpers.js';

let env: ReturnType<typeof isolateRuntimeDir>;
beforeEach(() => {
  env = isolateRuntimeDir();
});
afterEach(() => env.cleanup());

const run = promisify(execFile);

describe('out of file descriptors', () => {
  // '-again': once before the fds run out, so that the addon and the store are loaded already and
  // the operation itself runs out; without it, loading them is what fails first.
  it.each([
    'queue',
    'queue-again',
    'spawn',
    'spawn-again',
    'shm',
    'shm-again',
    'shm-channel-again',
    'mutex',
    'mutex-again',
    'fifo',
    'fifo-again',
    'named-pipe-listen-again',
    'named-pipe-connect-again',
  ])('%s: ERR_IPC_SYSTEM caused by EMFILE, then recovers', async (what) => {
    const node = [process.execPath, ...fixtureArgs('exhaust-fds-then-report.ts', what)]
      .map((arg) => `'${arg}'`)
      .join(' ');
    const { stdout } = await run('bash', ['-c', `ulimit -n 128 && exec ${node}`], {
      env: process.env,
      timeout: 60_000,
    });
    expect(stdout.trim().split('\n')).toEqual(['FAILED ERR_IPC_SYSTEM EMFILE', 'RECOVERED']);
  });

  it('parentChannel(): ERR_IPC_SYSTEM caused by EMFILE, and the channel is still there to take after', async () => {
    const node = [process.execPath, ...fixtureArgs('exhaust-fds-then-report.ts', 'parent-channel')]
      .map((arg) => `'${arg}'`)
      .join(' ');
    // The shell keeps the channel's fds 3 and 4 for the node it becomes.
    const child = spawn<string>('bash', ['-c', `ulimit -n 128 && exec ${node}`], {
      channel: 'pipe',
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let stdout = '';
    child.process.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    expect(await watchdog(child.channel!.receive(), 60_000, 'the message')).toBe('hello from the child');
    // The child's channel keeps it running until this end closes.
    await child.channel!.close();
    expect((await watchdog(child.exited, 60_000, 'exit')).code).toBe(0);
    expect(stdout.trim().split('\n')).toEqual(['FAILED ERR_IPC_SYSTEM EMFILE', 'RECOVERED']);
  });

  it('a live holder stays the holder for a process that cannot read /proc', async () => {
    // This process holds all three; the fixture, out of fds, cannot read this process's /proc
    // entry, and must not take that for a death.
    const mutex = Mutex.create('held');
    const semaphore = Semaphore.create('held', { initial: 1 });
    const rwlock = RwLock.create('held');
    const held = [await mutex.lock(), await semaphore.acquire(), await rwlock.readLock()];
    try {
      const node = [process.execPath, ...fixtureArgs('sync-try-held-while-out-of-fds.ts')]
        .map((arg) => `'${arg}'`)
        .join(' ');
      const { stdout } = await run('bash', ['-c', `ulimit -n 128 && exec ${node}`], {
        env: process.env,
        timeout: 60_000,
      });
      expect(stdout.trim().split('\n')).toEqual(['mutex refused', 'semaphore refused', 'rwlock refused']);
      expect(semaphore.value).toBe(0);
    } finally {
      for (const guard of held) guard.release();
      for (const primitive of [mutex, semaphore, rwlock]) primitive.close();
    }
  });

  it('a release that cannot ring its waiter (no fd for the socket) does not throw, and the waiter still gets the lock', async () => {
    const mutex = Mutex.create('rung');
    const node = [process.execPath, ...fixtureArgs('sync-release-out-of-fds.ts')]
      .map((arg) => `'${arg}'`)
      .join(' ');
    const holder = spawn<never>('bash', ['-c', `ulimit -n 256 && exec ${node}`], {
      channel: false,
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    try {
      // One listener gathers stdout; each wait looks at what it has gathered.
      let stdout = '';
      const looks = new Set<() => void>();
      holder.process.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
        stdout += chunk;
        for (const look of looks) look();
      });
      const printed = (line: string) =>
        new Promise<void>((resolve) => {
          const look = () => {
            if (!stdout.includes(line)) return;
            looks.delete(look);
            resolve();
          };
          looks.add(look);
          look();
        });
      await watchdog(printed('held'), 30_000, 'the holder');
      const locking = mutex.lock();
      holder.process.stdin!.write('go\n');
      const guard = await watchdog(locking, 10_000, 'the lock, handed over');
      expect(guard.ownerDied).toBe(false);
      guard.release();
      await watchdog(printed('released'), 10_000, 'the release');
      expect(stdout.trim().split('\n')).toEqual(['held', 'released ok']);
      expect((await watchdog(holder.exited, 10_000, 'exit')).code).toBe(0);
    } finally {
      holder.kill('SIGKILL');
      mutex.close();
    }
  });
});
