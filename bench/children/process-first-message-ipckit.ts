// Sends one message on its parent channel as soon as it runs: spawn-to-first-message latency.
// Imports the public entry, as a program using ipckit would.
import { parentChannel } from '../../src/index.js';

const channel = parentChannel<string>();
await channel.send('hello');
await channel.close();
