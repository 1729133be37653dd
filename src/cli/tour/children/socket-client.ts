// Tour child for the unix-socket step: connects to the server at argv[2], makes argv[3] 'add'
// requests with argv[4] in flight at once, checks every reply, and reports with a 'report' request.
import { connect } from '../../../index.js';
import type { SocketTourReport } from '../unix-socket.js';

const [url, countText, inFlightText] = process.argv.slice(2);
if (!url || !countText || !inFlightText) throw new Error('usage: socket-client URL REQUESTS IN_FLIGHT');
const count = Number(countText);
const WAIT = { timeout: 10_000 };

const client = await connect(url, WAIT);
let next = 0;
let wrong = 0;
const start = process.hrtime.bigint();
// Each lane sends its next request as soon as its previous reply arrives: `inFlight` at all times.
await Promise.all(
  Array.from({ length: Number(inFlightText) }, async () => {
    for (let i = next++; i < count; i = next++) {
      const sum = await client.request<number>('add', { a: i, b: 1 }, WAIT);
      if (sum !== i + 1) wrong++;
    }
  }),
);
const elapsedMs = Number(process.hrtime.bigint() - start) / 1e6;
const report: SocketTourReport = { pid: process.pid, requests: count, wrong, elapsedMs };
await client.request('report', report, WAIT);
await client.close();
