/**
 * Tour step: a ShmChannel between this process and a child: spawn(..., { channel: 'shm' }) maps one
 * anonymous shared-memory segment holding two ring buffers, one each way; the child's
 * parentChannel() is the same code as for pipes.
 */
import { spawn } from '../../index.js';
import { formatCount, formatDuration } from '../format.js';
import { elapsedMs, median } from './stats.js';
import type { Figure, TourContext, TourStep } from './step.js';

const ROUND_TRIPS = 200;
const PIPELINED = 20_000;
const WAIT_MS = 15_000;

/** The same small message as the anonymous-pipe step, so the two figures compare. */
function message(seq: number) {
  return { seq, kind: 'job', payload: 'x'.repeat(40) };
}

/** The ShmChannel step. */
export const shmChannelStep: TourStep = {
  id: 'shm-channel',
  title: 'ShmChannel: ring buffers in shared memory',
  async run(ctx: TourContext): Promise<Figure> {
    const { colors: c, signal } = ctx;
    const program = ctx.child('echo');
    const child = spawn(program.command, program.args, {
      channel: 'shm',
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    ctx.defer(() => child.stop({ graceMs: 1000 }));
    const channel = child.channel;
    ctx.defer(() => channel.close());
    ctx.say(`${c.cyan("spawn(node, ['echo.js'], { channel: 'shm' })")} started pid ${child.pid}`);
    ctx.say('the same echo child as before: its parentChannel() found a shared-memory segment, not pipes');

    const samples: number[] = [];
    await ctx.within(
      'round trips through the child',
      WAIT_MS,
      (async () => {
        for (let i = 0; i < ROUND_TRIPS; i++) {
          const started = process.hrtime.bigint();
          await channel.send(message(i));
          await channel.receive({ signal });
          samples.push(elapsedMs(started));
        }
      })(),
    );
    ctx.say(
      `one message there and back: ${formatDuration(median(samples))} (median of ${ROUND_TRIPS}); ` +
        'the bytes are copied into a ring, no system call per message; an idle reader is woken by a doorbell',
    );

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
    ctx.say(`${formatCount(PIPELINED)} messages pipelined there and back in ${formatDuration(ms)}`);

    await channel.close();
    const status = await ctx.within('the child to exit', WAIT_MS, child.exited);
    ctx.say(`closed the channel: the child saw the end and exited with code ${status.code}`);
    return { label: 'echoed through shared memory', value: (PIPELINED / ms) * 1000, unit: 'messages/s' };
  },
};
