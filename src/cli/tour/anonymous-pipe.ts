/**
 * Tour step: an anonymous pipe channel between this process and a child it spawns. The child gets
 * two pipes (fds 3 and 4) and takes its end with parentChannel(); messages are msgpack frames.
 */
import { ECHO_WAIT_MS, measureEcho, startEchoChild } from './echo-child.js';
import type { Figure, TourContext, TourStep } from './step.js';

/** The anonymous-pipe step. */
export const anonymousPipeStep: TourStep = {
  id: 'anonymous-pipe',
  title: 'Anonymous pipe to a child process',
  async run(ctx: TourContext): Promise<Figure> {
    const child = startEchoChild(ctx, 'pipe');
    ctx.say(`the child took its end with ${ctx.colors.cyan('parentChannel()')} and echoes what it gets`);
    await child.channel.send({ hello: 'child', from: process.pid });
    const reply = await child.channel.receive({ signal: ctx.signal, timeout: ECHO_WAIT_MS });
    ctx.say(`sent { hello: 'child' }, got back ${JSON.stringify(reply)}: msgpack frames, one pipe each way`);
    const rate = await measureEcho(ctx, child, 'a write and a read system call each way');
    return { label: 'echoed through the child', value: rate, unit: 'messages/s' };
  },
};
