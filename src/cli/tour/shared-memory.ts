/**
 * Tour step: a named shared-memory segment and a named Mutex, opened by name in several child
 * processes that each add to one counter in the segment under the mutex; not one increment is lost.
 */
import { Mutex, SharedMemory, spawn } from '../../index.js';
import { formatCount, formatDuration } from '../format.js';
import { elapsedMs } from './stats.js';
import type { Figure, TourContext, TourStep } from './step.js';

/** What the tour and a child (children/mutex-increment.ts) say to each other. */
export type SharedMemoryTourMessage = { kind: 'ready' } | { kind: 'go' } | { kind: 'done'; pid: number };

const CHILDREN = 3;
const INCREMENTS = 10_000;
const WAIT_MS = 15_000;

/** The shared-memory step. */
export const sharedMemoryStep: TourStep = {
  id: 'shared-memory',
  title: 'Shared memory with a Mutex shared by processes',
  async run(ctx: TourContext): Promise<Figure> {
    const { colors: c, signal } = ctx;
    const segmentName = ctx.name('counter');
    const mutexName = ctx.name('lock');
    const segment = SharedMemory.create(segmentName, { size: 4096 });
    ctx.defer(() => segment.unlink());
    ctx.defer(() => segment.close());
    const mutex = Mutex.create(mutexName);
    ctx.defer(() => mutex.unlink());
    ctx.defer(() => mutex.close());
    ctx.say(
      `${c.cyan(`SharedMemory.create('${segmentName}', { size: 4096 })`)} and ` +
        `${c.cyan(`Mutex.create('${mutexName}')`)}: both in /dev/shm, named after the runtime directory`,
    );

    const children = Array.from({ length: CHILDREN }, () => {
      const program = ctx.child('mutex-increment', segmentName, mutexName, String(INCREMENTS));
      const child = spawn<SharedMemoryTourMessage>(program.command, program.args, {
        channel: 'pipe',
        stdio: ['ignore', 'ignore', 'inherit'],
      });
      ctx.defer(() => child.stop({ graceMs: 1000 }));
      ctx.defer(() => child.channel.close());
      return child;
    });
    await ctx.within(
      'the children to open the segment and the mutex',
      WAIT_MS,
      Promise.all(children.map((child) => child.channel.receive({ signal }))),
    );
    ctx.say(
      `${CHILDREN} processes (pids ${children.map((child) => child.pid).join(', ')}) opened both by name; ` +
        `each does ${c.cyan('counter[0] = counter[0] + 1')} ${formatCount(INCREMENTS)} times under ` +
        `${c.cyan('mutex.lockSync()')}`,
    );

    const start = process.hrtime.bigint();
    await Promise.all(children.map((child) => child.channel.send({ kind: 'go' })));
    await ctx.within(
      'the increments',
      WAIT_MS,
      Promise.all(children.map((child) => child.channel.receive({ signal }))),
    );
    const ms = elapsedMs(start);
    const counter = new Int32Array(segment.buffer)[0]!;
    const expected = CHILDREN * INCREMENTS;
    if (counter !== expected)
      throw new Error(`the counter is ${counter}, not ${expected}: increments were lost`);
    ctx.say(
      `the counter reads ${formatCount(counter)}, exactly ${CHILDREN} × ${formatCount(INCREMENTS)}, after ` +
        `${formatDuration(ms)}: a read-then-write that would lose updates without the lock`,
    );
    for (const child of children) await child.channel.close();
    const statuses = await ctx.within(
      'the children to exit',
      WAIT_MS,
      Promise.all(children.map((child) => child.exited)),
    );
    const failed = statuses.find((status) => status.code !== 0);
    if (failed) throw new Error(`a child exited with code ${failed.code ?? failed.signal}`);
    ctx.say(
      `the mutex is ${mutex.locked ? 'still locked' : 'free'}; segment and mutex are unlinked at the end`,
    );
    return {
      label: 'across processes, under one Mutex',
      value: (expected / ms) * 1000,
      unit: 'lock/unlock pairs/s',
    };
  },
};
