// Tour child for the named-pipe step: connects to the server named in argv[2], says hello, times
// argv[3] round trips, sends the samples back as its last message, and disconnects.
import { NamedPipe } from '../../../index.js';
import type { NamedPipeTourMessage } from '../named-pipe.js';

const [name, countText] = process.argv.slice(2);
if (!name || !countText) throw new Error('usage: named-pipe-client NAME ROUND_TRIPS');
const count = Number(countText);
const WAIT = { timeout: 10_000 };

const connection = await NamedPipe.connect<NamedPipeTourMessage>(name, WAIT);
await connection.send({ kind: 'hello', pid: process.pid });
await connection.receive(WAIT);
const samplesMicros: number[] = [];
for (let seq = 0; seq < count; seq++) {
  const start = process.hrtime.bigint();
  await connection.send({ kind: 'ping', seq });
  await connection.receive(WAIT);
  samplesMicros.push(Number(process.hrtime.bigint() - start) / 1000);
}
await connection.send({ kind: 'result', pid: process.pid, samplesMicros });
await connection.close();
