/**
 * Tour step: a FIFO in the runtime directory, written by a shell command that knows nothing about
 * ipckit, and received here as lines.
 */
import { Fifo, spawn } from '../../index.js';
import { formatCount, formatDuration } from '../format.js';
import { elapsedMs } from './stats.js';
import type { Figure, TourContext, TourStep } from './step.js';

const LINES = 20_000;
const WAIT_MS = 15_000;
// The path and count are positional parameters, so no quoting of the path is ever needed.
const SCRIPT = 'echo "hello from sh, pid $$" > "$1"; seq 1 "$2" > "$1"';

/** The FIFO step. */
export const fifoShellStep: TourStep = {
  id: 'fifo-shell',
  title: 'FIFO written by a shell command',
  async run(ctx: TourContext): Promise<Figure> {
    const { colors: c, signal } = ctx;
    const name = ctx.name('lines');
    const path = await Fifo.create(name);
    ctx.defer(() => Fifo.unlink(name));
    ctx.say(`${c.cyan(`Fifo.create('${name}')`)} made ${path} (mode 0600)`);

    // The receiver holds the FIFO open, so writers may come and go without ending it.
    const lines = await Fifo.receiver<string>(name, { format: 'lines' });
    ctx.defer(() => lines.close());
    const sh = spawn('sh', ['-c', SCRIPT, 'sh', path, String(LINES)], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    ctx.defer(() => sh.stop({ graceMs: 1000 }));
    ctx.say(`a shell writes into it: ${c.cyan(`sh -c '${SCRIPT.replace('"$2"', String(LINES))}'`)}`);

    const first = await lines.receive({ signal, timeout: WAIT_MS });
    ctx.say(`received the line ${JSON.stringify(first)}: each line is one message, as a string`);

    const start = process.hrtime.bigint();
    const last = await ctx.within(
      'lines from seq',
      WAIT_MS,
      (async () => {
        let line = '';
        for (let i = 0; i < LINES; i++) line = await lines.receive({ signal });
        return line;
      })(),
    );
    const ms = elapsedMs(start);
    if (last !== String(LINES))
      throw new Error(`expected the last line to be ${LINES}, got ${JSON.stringify(last)}`);
    ctx.say(`then ${formatCount(LINES)} lines from seq, 1 to ${last}, in order, in ${formatDuration(ms)}`);
    const status = await ctx.within('the shell to exit', WAIT_MS, sh.exited);
    if (status.code !== 0) throw new Error(`the shell exited with code ${status.code}`);
    ctx.say(`from any shell, while a program reads it: ${c.cyan(`echo hi > "$(ipckit fifo path ${name})"`)}`);
    return { label: 'from a shell pipeline through the FIFO', value: (LINES / ms) * 1000, unit: 'lines/s' };
  },
};
