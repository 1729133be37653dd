/**
 * Tour step: an anonymous pipe channel between this process and a child it spawns. The child gets
 * two pipes (fds 3 and 4) and takes its end with parentChannel(); messages are msgpack frames.
 */
import { spawn } from '../../index.js';
import { formatCount, formatDuration } from '../format.js';
import { elapsedMs, median } from './stats.js';
import type { Figure, TourContext, TourStep } from './step.js';

const ROUND_TRIPS = 200;
const PIPELINED = 20_000;
const WAIT_MS = 15_000;

/** One small object, about 64 bytes encoded, like a typical job or event. */
function message(seq: number) {
  return { seq, kind: 'job', payload: 'x'.repeat(40) };
}

/** The anonymous-pipe step. */
export const anonymousPipeStep: TourStep = {
  id: 'anonymous-pipe',
  title: 'Anonymous pipe to a child process',
  async run(ctx: TourContext): Promise<Figure> {
    const { colors: c, signal } = ctx;
    const program = ctx.child('echo');
    const child = spawn(program.command, program.args, {
      channel: 'pipe',
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    ctx.defer(() => child.stop({ graceMs: 1000 }));
    const channel = child.channel!;
    ctx.defer(() => channel.close());
    ctx.say(`${c.cyan("spawn(node, ['echo.js'], { channel: 'pipe' })")} started pid ${child.pid}`);
    ctx.say(`the child took its end with ${c.cyan('parentChannel()')} and echoes what it gets`);

    await channel.send({ hello: 'child', from: process.pid });
    const reply = await channel.receive({ signal, timeout: WAIT_MS });
    ctx.say(`sent { hello: 'child' }, got back ${JSON.stringify(reply)}: msgpack frames, one pipe each way`);

    const samples: number[] = [];
    await ctx.within(
      'round trips through the child',
      WAIT_MS,
      (async () => {
        for (let i = 0; i < ROUND_TRIPS; i++) {
          const start = process.hrtime.bigint();
          await channel.send(message(i));
          await channel.receive({ signal });
          samples.push(elapsedMs(start));
        }
      })(),
    );
    ctx.say(`one message there and back: ${formatDuration(median(samples))} (median of ${ROUND_TRIPS})`);

    // Pipelined: the sender does not wait for each echo. Backpressure (send waits while the peer is
    // behind) keeps memory bounded; the receiver counts echoes concurrently.
    const start = process.hrtime.bigint();
    await ctx.within(
      'pipelined messages through the child',
      WAIT_MS,
      Promise.all([
        (async () => {
          for (let i = 0; i < PIPELINED; i++) await channel.send(message(i), { signal });
        })(),
        (async () => {
          for (let i = 0; i < PIPELINED; i++) await channel.receive({ signal });
        })(),
      ]),
    );
    const ms = elapsedMs(start);
    const rate = (PIPELINED / ms) * 1000;
    ctx.say(`${formatCount(PIPELINED)} messages pipelined there and back in ${formatDuration(ms)}`);

    await channel.close();
    const status = await ctx.within('the child to exit', WAIT_MS, child.exited);
    ctx.say(`closed the channel: the child saw the end of its input and exited with code ${status.code}`);
    return { label: 'echoed through the child', value: rate, unit: 'messages/s' };
  },
};
