/**
 * Tour step: a ShmChannel between this process and a child: spawn(..., { channel: 'shm' }) maps one
 * anonymous shared-memory segment holding two ring buffers, one each way; the child's
 * parentChannel() is the same code as for pipes.
 */
import { measureEcho, startEchoChild } from './echo-child.js';
import type { Figure, TourContext, TourStep } from './step.js';

/** The ShmChannel step. */
export const shmChannelStep: TourStep = {
  id: 'shm-channel',
  title: 'ShmChannel: ring buffers in shared memory',
  async run(ctx: TourContext): Promise<Figure> {
    const child = startEchoChild(ctx, 'shm');
    ctx.say('the same echo child as before: its parentChannel() found a shared-memory segment, not pipes');
    const rate = await measureEcho(
      ctx,
      child,
      'the bytes are copied into a ring, no system call per message; an idle reader is woken by a doorbell',
    );
    return { label: 'echoed through shared memory', value: rate, unit: 'messages/s' };
  },
};
