// The wake-up plumbing ShmChannel and the sync primitives share: doorbells and process watches.
import { spawn } from 'node:child_process';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { native } from '../../src/native/binding.js';
import { ringDoorbell, threadDoorbell } from '../../src/shm/doorbell.js';
import { watchProcess } from '../../src/shm/process-watch.js';
import { isolateRuntimeDir, watchdog } from '../helpers.js';
import { killAll, removeShmObjects } from '../sync/children.js';

let env: ReturnType<typeof isolateRuntimeDir>;
beforeEach(() => {
  env = isolateRuntimeDir();
});
afterEach(async () => {
  await killAll();
  removeShmObjects();
  env.cleanup();
});

describe('doorbells', () => {
  it('wakes this thread when rung from another process, and reports a dead address as gone', async () => {
    const doorbell = threadDoorbell();
    const rung = new Promise<void>((resolve) => {
      const off = doorbell.subscribe(() => {
        off();
        resolve();
      });
    });
    doorbell.hold();
    // Another process rings it by its address alone (tid, nonce).
    const script = `
      const b = require(${JSON.stringify(`${process.cwd()}/build/Release/ipckit.node`)});
      const fd = b.doorbellSocket();
      process.exit(b.doorbellRing(fd, 'ipckit.db.${doorbell.tid}.${doorbell.nonce.toString(16)}'));`;
    const child = spawn(process.execPath, ['-e', script], { stdio: 'inherit' });
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(code).toBe(0);
    await watchdog(rung, 2000, 'doorbell ring');
    doorbell.release();
    expect(ringDoorbell({ tid: doorbell.tid, nonce: doorbell.nonce ^ 1 })).toBe(false);
  });
});

describe('eventfd doorbells (for fds handed to children or threads)', () => {
  it('wakes the event loop watcher once per drain, however many signals came before', async () => {
    const n = native();
    const fd = n.eventfd();
    const reads: number[] = [];
    const woke = new Promise<void>((resolve) => {
      const watcher = new n.FdWatcher(
        fd,
        true,
        (count) => {
          reads.push(count);
          watcher.close();
          resolve();
        },
        true,
      );
      watcher.start();
    });
    n.eventfdSignal(fd);
    n.eventfdSignal(fd);
    await watchdog(woke, 2000, 'eventfd watcher');
    expect(reads).toEqual([1]);
  });
});

describe('watchProcess', () => {
  it('fires when a watched process is killed, and at once for one already gone', async () => {
    const child = spawn('sleep', ['60'], { stdio: 'ignore' });
    const fired = new Promise<void>((resolve) => watchProcess(child.pid!, resolve));
    child.kill('SIGKILL');
    await watchdog(fired, 1000, 'pidfd fired');
    await new Promise((resolve) => child.once('exit', resolve));
    const again = new Promise<void>((resolve) => watchProcess(child.pid!, resolve));
    await watchdog(again, 1000, 'watch of a reaped pid');
  });
});
