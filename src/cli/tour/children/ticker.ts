// Tour child for the process-control step: sends { kind: 'tick', n } every argv[2] ms through its
// parent channel. On SIGTERM it says goodbye with its tick count and exits cleanly.
import { parentChannel } from '../../../index.js';
import type { ProcessTourMessage } from '../process-control.js';

const interval = Number(process.argv[2]);
if (!(interval > 0)) throw new Error('usage: ticker INTERVAL_MS');

const channel = parentChannel<ProcessTourMessage>();
let n = 0;
const timer = setInterval(() => {
  n++;
  channel.send({ kind: 'tick', n }).catch(() => clearInterval(timer));
}, interval);
process.once('SIGTERM', () => {
  clearInterval(timer);
  void (async () => {
    try {
      await channel.send({ kind: 'bye', ticks: n });
      await channel.close();
    } finally {
      // The tour may be gone already (Ctrl-C): exit quietly either way.
      process.exit(0);
    }
  })();
});
