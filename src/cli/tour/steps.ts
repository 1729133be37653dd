/**
 * The tour, in order. Each mechanism's issue adds its step here (and takes it off `comingNext`).
 */
import { anonymousPipeStep } from './anonymous-pipe.js';
import { fifoShellStep } from './fifo-shell.js';
import { messageQueueStep } from './message-queue.js';
import { namedPipeStep } from './named-pipe.js';
import { processControlStep } from './process-control.js';
import { sharedMemoryStep } from './shared-memory.js';
import { shmChannelStep } from './shm-channel.js';
import type { TourStep } from './step.js';
import { unixSocketStep } from './unix-socket.js';

/** The steps `ipckit tour` runs, in order. */
export const tourSteps: readonly TourStep[] = [
  anonymousPipeStep,
  fifoShellStep,
  namedPipeStep,
  unixSocketStep,
  messageQueueStep,
  sharedMemoryStep,
  shmChannelStep,
  processControlStep,
];

/** Mechanisms the tour will show once they land, printed at its end (nothing is pending now). */
export const comingNext: readonly string[] = [];
