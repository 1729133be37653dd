/**
 * Tour step: process control. A child counts ticks out loud through its channel; the tour pauses it
 * (SIGSTOP), watches the count stand still, resumes it (SIGCONT), and stops it (SIGTERM, with
 * SIGKILL only if it outlives the grace period).
 */
import { spawn } from '../../index.js';
import { formatDuration } from '../format.js';
import { elapsedMs } from './stats.js';
import type { Figure, TourContext, TourStep } from './step.js';

/** What the ticker child (children/ticker.ts) sends. */
export type ProcessTourMessage = { kind: 'tick'; n: number } | { kind: 'bye'; ticks: number };

const TICK_MS = 10;
const TICKS_BEFORE_PAUSE = 10;
/** How long the tour watches the paused child: for the reader to see, not to synchronize anything. */
const PAUSED_MS = 300;
const GRACE_MS = 2000;
const WAIT_MS = 15_000;

/** The process-control step. */
export const processControlStep: TourStep = {
  id: 'process-control',
  title: 'Process control: pause, resume, stop',
  async run(ctx: TourContext): Promise<Figure> {
    const { colors: c, signal } = ctx;
    const program = ctx.child('ticker', String(TICK_MS));
    const child = spawn<ProcessTourMessage>(program.command, program.args, {
      channel: 'pipe',
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    ctx.defer(() => child.stop({ graceMs: 1000 }));
    ctx.defer(() => child.channel.close());
    const channel = child.channel;
    ctx.say(`started pid ${child.pid}: it sends { tick: n } every ${TICK_MS} ms through its channel`);

    let last = 0;
    const receiveTick = async () => {
      const message = await channel.receive({ signal, timeout: WAIT_MS });
      if (message.kind !== 'tick') throw new Error(`expected a tick, got ${JSON.stringify(message)}`);
      last = message.n;
      return message.n;
    };
    await ctx.within(
      'the first ticks',
      WAIT_MS,
      (async () => {
        while ((await receiveTick()) < TICKS_BEFORE_PAUSE);
      })(),
    );

    child.pause();
    const pausedAt = last;
    // Whatever the child wrote before SIGSTOP still arrives; nothing new can be written.
    const watching = new AbortController();
    const timer = setTimeout(() => watching.abort(), PAUSED_MS);
    try {
      for (;;) {
        const message = await channel.receive({ signal: AbortSignal.any([signal, watching.signal]) });
        if (message.kind === 'tick') last = message.n;
      }
    } catch (err) {
      if (!watching.signal.aborted) throw err;
    } finally {
      clearTimeout(timer);
    }
    ctx.say(
      `${c.cyan('child.pause()')} (SIGSTOP) at tick ${pausedAt}: state '${child.state}', and after ` +
        `${PAUSED_MS} ms the last tick is still ${last}`,
    );

    child.resume();
    const next = await ctx.within('a tick after resuming', WAIT_MS, receiveTick());
    ctx.say(
      `${c.cyan('child.resume()')} (SIGCONT): state '${child.state}', the next tick is ${next}: ` +
        'a stopped process does not run at all, its timers included',
    );

    const start = process.hrtime.bigint();
    const status = await ctx.within('the child to stop', WAIT_MS, child.stop({ graceMs: GRACE_MS }));
    const ms = elapsedMs(start);
    // What the child sent before it exited is still readable: its goodbye, if it got to say it.
    let bye: ProcessTourMessage | undefined;
    try {
      for await (const message of channel) if (message.kind === 'bye') bye = message;
    } catch {}
    const how =
      status.signal === 'SIGKILL'
        ? `it ignored SIGTERM and was killed after the ${GRACE_MS} ms grace`
        : `it caught SIGTERM, said goodbye${bye?.kind === 'bye' ? ` after ${bye.ticks} ticks` : ''} ` +
          `and exited with code ${status.code ?? status.signal}`;
    ctx.say(`${c.cyan(`child.stop({ graceMs: ${GRACE_MS} })`)} took ${formatDuration(ms)}: ${how}`);
    return { label: 'to stop the child gracefully', value: ms, unit: 'ms' };
  },
};
