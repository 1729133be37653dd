// The wake-up plumbing ShmChannel and the sync primitives share: doorbells and process watches.
import { spawn } from 'node:child_process';
import { closeSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DrainMode, native } from '../../src/native/binding.js';
import { doorbellName, ringDoorbell, threadDoorbell } from '../../src/shm/doorbell.js';
import { watchProcess } from '../../src/shm/process-watch.js';
import { watchdog } from '../helpers.js';
import { startFixture } from '../socket/child.js';
import { AS_NOBODY, canRunAsNobody } from '../support/other-user.js';
import { isolateEachTest } from '../sync/children.js';

isolateEachTest();

describe('doorbells', () => {
  it('delivers a ring even when unread rings to stalled doorbells have filled the sending socket', () => {
    const n = native();
    const name = (kind: string, i: number) => `ipckit.db.test.${process.pid}.${kind}${i}`;
    const fds: number[] = [];
    /** Binds a doorbell nobody reads (its owner is stopped, say) and rings it until it is full. */
    const fillStalled = (kind: string, i: number, sender: number): number => {
      fds.push(n.doorbellBind(name(kind, i)));
      let accepted = 0;
      while (accepted < 100 && n.doorbellRing(sender, name(kind, i)) === 0) accepted++;
      return accepted;
    };
    try {
      // Every unread ring is charged to the socket that sent it: with one sending socket, rings to
      // a fresh, empty doorbell start failing once enough are parked at stalled ones.
      const own = n.doorbellSocket();
      fds.push(own);
      let refusedFresh = false;
      for (let i = 0; i < 200 && !refusedFresh; i++) refusedFresh = fillStalled('own', i, own) === 0;
      expect(refusedFresh).toBe(true);
      // The process-wide sender (-1) fills up the same way, yet a ring to a live doorbell arrives.
      for (let i = 0; i < 200; i++) fillStalled('shared', i, -1);
      const target = n.doorbellBind(name('target', 0));
      fds.push(target);
      expect(n.doorbellRing(-1, name('target', 0))).toBe(0);
      expect(n.drain(target)).toBe(1);
    } finally {
      for (const fd of fds) closeSync(fd);
    }
  });

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

// A doorbell's abstract name is listed in /proc/net/unix for every user to see. Another user's rings
// are read and dropped: they must not make this thread re-check shared memory on their behalf.
describe.skipIf(!canRunAsNobody)('rings from another user', () => {
  it("are dropped unseen, while this user's rings still wake the listeners", async () => {
    const doorbell = threadDoorbell();
    const name = doorbellName(doorbell.tid, doorbell.nonce);
    let dispatches = 0;
    let onDispatch: (() => void) | undefined;
    const unsubscribe = doorbell.subscribe(() => {
      dispatches++;
      onDispatch?.();
    });
    try {
      // 200 rings through a queue of /proc/sys/net/unix/max_dgram_qlen (10 here): this thread has
      // read them in many wake-ups by the time the stranger says it is done.
      const stranger = startFixture('doorbell-ring-many.ts', [name, '200'], { command: [...AS_NOBODY] });
      expect(await stranger.line('RANG', 30_000)).toBe('200');
      await stranger.exited;
      expect(dispatches).toBe(0);
      const woke = new Promise<void>((resolve) => {
        onDispatch = resolve;
      });
      // Through the socket, as another process of this user would (ringDoorbell would ring locally).
      expect(native().doorbellRing(-1, name)).toBe(0);
      await watchdog(woke, 10_000, 'a ring of this user');
      expect(dispatches).toBe(1);
    } finally {
      unsubscribe();
    }
  }, 40_000);
});

describe('eventfd doorbells (for fds handed to children or threads)', () => {
  it('wakes the event loop watcher once per drain, however many signals came before', async () => {
    const n = native();
    const fd = n.eventfd();
    const reads: number[] = [];
    const woke = new Promise<void>((resolve) => {
      const watcher = new n.FdWatcher(
        fd,
        DrainMode.READ,
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
    await watchdog(fired, 10_000, 'pidfd fired');
    await new Promise((resolve) => child.once('exit', resolve));
    const again = new Promise<void>((resolve) => watchProcess(child.pid!, resolve));
    await watchdog(again, 10_000, 'watch of a reaped pid');
  });
});
