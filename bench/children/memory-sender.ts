// The sending end of the memory scenario (bench/memory.bench.ts). argv[2]: a subject's name from
// bench/support/memory-subjects.ts. Starts that subject's receiving child, sends it two messages
// (so both ends are set up), then says { receiverPid } on its parent channel. Each { send: n } that
// follows is n small objects one way, answered { seconds } once the receiver has counted them all.
// Ends when the parent closes the channel.
import { ErrorCodes, isIpcError, parentChannel } from '../../src/index.js';
import { burst } from '../support/measure.js';
import { startMemorySubject } from '../support/memory-subjects.js';
import { smallObject } from '../support/peer-cases.js';

const control = parentChannel<unknown>();
const peer = await startMemorySubject(process.argv[2]!);
const message = smallObject();
await burst(peer, message, 2);
await control.send({ receiverPid: peer.pid });
for (;;) {
  let command: { send: number };
  try {
    command = (await control.receive()) as { send: number };
  } catch (err) {
    if (isIpcError(err, ErrorCodes.CLOSED)) break;
    throw err;
  }
  await control.send({ seconds: await burst(peer, message, command.send) });
}
await peer.close();
await control.close();
