// Tour child for the anonymous-pipe step: echoes every message from its parent channel back, and
// exits when the parent closes the channel.
import { parentChannel } from '../../../index.js';

const channel = parentChannel();
for await (const message of channel) await channel.send(message);
await channel.close();
