/**
 * What the anonymous-pipe and ShmChannel steps share: the same echo child, the same small message,
 * the same two measurements (round trips, then pipelined), so their figures compare directly.
 */
import { type ChannelKind, type ChildProcessWithChannel, spawn } from '../../index.js';
import { formatCount, formatDuration } from '../format.js';
import { elapsedMs, median } from './stats.js';
import type { TourContext } from './step.js';

const ROUND_TRIPS = 200;
const PIPELINED = 20_000;
/** How long each phase may take before the step fails instead of hanging the tour. */
export const ECHO_WAIT_MS = 15_000;

/** One small object, about 64 bytes encoded, like a typical job or event. */
function message(seq: number) {
  return { seq, kind: 'job', payload: 'x'.repeat(40) };
}

/** Starts the tour's echo child on a `kind` channel; stopping and closing are deferred. */
export function startEchoChild(ctx: TourContext, kind: ChannelKind): ChildProcessWithChannel<unknown> {
  const program = ctx.child('echo');
  const child = spawn(program.command, program.args, {
    channel: kind,
    stdio: ['ignore', 'ignore', 'inherit'],
  }) as ChildProcessWithChannel<unknown>;
  ctx.defer(() => child.stop({ graceMs: 1000 }));
  ctx.defer(() => child.channel.close());
  ctx.say(`${ctx.colors.cyan(`spawn(node, ['echo.js'], { channel: '${kind}' })`)} started pid ${child.pid}`);
  return child;
}

/**
 * Measures the echo child: the median round trip (narrated, with `howItTravels` after it), then
 * messages/s with sends pipelined (backpressure keeps memory bounded while a concurrent receiver
 * counts the echoes). Closes the channel and waits for the child to exit. Returns messages/s.
 */
export async function measureEcho(
  ctx: TourContext,
  child: ChildProcessWithChannel<unknown>,
  howItTravels: string,
): Promise<number> {
  const { signal } = ctx;
  const channel = child.channel;
  const samples: number[] = [];
  await ctx.within(
    'round trips through the child',
    ECHO_WAIT_MS,
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
    `one message there and back: ${formatDuration(median(samples))} (median of ${ROUND_TRIPS}); ${howItTravels}`,
  );

  const start = process.hrtime.bigint();
  await ctx.within(
    'pipelined messages through the child',
    ECHO_WAIT_MS,
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
  const status = await ctx.within('the child to exit', ECHO_WAIT_MS, child.exited);
  ctx.say(`closed the channel: the child saw the end of its input and exited with code ${status.code}`);
  return (PIPELINED / ms) * 1000;
}
