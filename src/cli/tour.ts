/** `ipckit tour`: every mechanism between real processes, explained step by step, with a figure each. */
import { Command } from 'commander';
import { EXIT_INTERRUPTED, InterruptedError } from './errors.js';
import { createOutput } from './output.js';
import { holdStdout, stdoutClosed } from './stdout-closed.js';
import { runTour, tourLeftovers } from './tour/run.js';
import { comingNext, tourSteps } from './tour/steps.js';

/** Builds the `tour` command. */
export function tourCommand(): Command {
  return new Command('tour')
    .description('run each IPC mechanism between real processes, explain what happens, and measure it')
    .option('--json', 'print the measured figures as JSON instead of the narration')
    .addHelpText(
      'after',
      `
The tour uses the runtime directory (IPCKIT_DIR or its default), names everything it makes
tour-<pid>-*, and removes it all before it ends, also when interrupted with Ctrl-C.`,
    )
    .action(async (opts: { json?: boolean }) => {
      const out = createOutput();
      // Ctrl-C aborts the step in progress, which then cleans up; a second Ctrl-C quits at once.
      const controller = new AbortController();
      const onInterrupt = () => {
        controller.abort(new InterruptedError());
        process.once('SIGINT', () => process.exit(EXIT_INTERRUPTED));
      };
      process.once('SIGINT', onInterrupt);
      // `ipckit tour | head`: nobody reads on, so stop as for Ctrl-C, clean up, and end quietly.
      const releaseStdout = holdStdout();
      const onStdoutClosed = () => controller.abort(new InterruptedError('stdout closed'));
      stdoutClosed.addEventListener('abort', onStdoutClosed, { once: true });
      let leftBehind: string[] = [];
      try {
        const result = await runTour({
          steps: tourSteps,
          comingNext,
          out,
          narrate: !opts.json,
          signal: controller.signal,
        });
        leftBehind = result.leftBehind;
        if (opts.json && !stdoutClosed.aborted) out.json(result);
      } catch (err) {
        if (!controller.signal.aborted) throw err;
        // Stopped (Ctrl-C, or nobody reads on): the step in progress cleaned up; check that it did.
        leftBehind = tourLeftovers();
        if (leftBehind.length === 0) {
          // A closed stdout ends quietly; Ctrl-C says so.
          if (stdoutClosed.aborted) return;
          throw new InterruptedError('interrupted; the step in progress cleaned up after itself');
        }
      } finally {
        process.off('SIGINT', onInterrupt);
        stdoutClosed.removeEventListener('abort', onStdoutClosed);
        releaseStdout();
      }
      // Said on stderr (exit 1) however the tour ended, a closed stdout included.
      if (leftBehind.length > 0) {
        throw new Error(`the tour left resources behind: ${leftBehind.join(', ')}`);
      }
    });
}
