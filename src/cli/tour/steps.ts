/**
 * The tour, in order. Each mechanism's issue adds its step here (and takes it off `comingNext`).
 */
import { anonymousPipeStep } from './anonymous-pipe.js';
import { fifoShellStep } from './fifo-shell.js';
import { namedPipeStep } from './named-pipe.js';
import type { TourStep } from './step.js';

/** The steps `ipckit tour` runs, in order. */
export const tourSteps: readonly TourStep[] = [anonymousPipeStep, fifoShellStep, namedPipeStep];

/** Mechanisms the tour will show once they land, printed at its end. */
export const comingNext: readonly string[] = [
  'Unix-socket request/reply',
  'a message queue with priorities and competing consumers',
  'shared memory with a Mutex shared by processes',
  'a ShmChannel ring buffer',
  'process control (pause, resume, stop)',
];
