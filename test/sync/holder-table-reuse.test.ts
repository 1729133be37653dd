/**
 * The holder table keeps 64 threads' shares (read locks, permits, barrier handles) at once. A
 * thread that holds nothing any more must not keep its slot for as long as it lives: 64 live
 * threads that each took and gave back a share once would fill the table for good, and the next
 * thread would then wait forever for a read lock nobody holds, or hold permits and a barrier
 * membership that its death no longer returns.
 */
import { describe, expect, it } from 'vitest';
import { Barrier, ErrorCodes, isIpcError, RwLock, Semaphore } from '../../src/index.js';
import { HOLDER_SLOTS } from '../../src/sync/holders.js';
import { rejectionOf, watchdog } from '../helpers.js';
import { isolateEachTest, startFixture } from './children.js';

isolateEachTest();

describe('holder slots of threads that hold nothing', () => {
  it('after 64 live threads took and gave back a read lock, a permit and a barrier handle, the next threads are tracked', async () => {
    using lock = RwLock.create('lock');
    using slots = Semaphore.create('slots', { initial: 2 });
    using barrier = Barrier.create('start', { parties: 2 });
    // One process of 64 threads for the three tables: starting threads is what this test costs.
    const threads = startFixture('sync-threads-take-and-release.ts', [String(HOLDER_SLOTS)]);
    await threads.line(`released ${HOLDER_SLOTS}`, 100_000);

    // RwLock: nobody holds it, so a read lock is granted at once.
    expect(lock.readers).toBe(0);
    expect(lock.writing).toBe(false);
    const read = lock.tryReadLock();
    expect(read).toBeDefined();
    read!.release();

    // Semaphore: a holder killed with both permits returns them.
    const holder = startFixture('sync-hold-until-killed.ts', ['semaphore']);
    await holder.line('held');
    holder.child.kill('SIGKILL');
    await holder.exited;
    const permit = await watchdog(slots.acquire(), 10_000, "the killed holder's permits");
    expect(permit.ownerDied).toBe(true);
    permit.release();

    // Barrier: a member killed without closing breaks it for the party that waits.
    const member = startFixture('sync-hold-until-killed.ts', ['barrier-member']);
    await member.line('held');
    member.child.kill('SIGKILL');
    await member.exited;
    const err = await watchdog(rejectionOf(barrier.wait()), 10_000, 'the wait to see the killed member');
    expect(isIpcError(err, ErrorCodes.PEER_GONE)).toBe(true);
  }, 150_000);
});
