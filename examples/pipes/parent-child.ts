// A parent and a child process talking over an anonymous pipe channel: the parent spawns child.ts
// with { channel: 'pipe' }, sends it jobs, and prints the results it sends back.
//
//   node --import tsx examples/pipes/parent-child.ts
import { fileURLToPath } from 'node:url';
import { spawn } from '../../src/index.js'; // in your project: from 'ipckit'
import type { Job, Result } from './child.js';

const childFile = fileURLToPath(new URL('./child.ts', import.meta.url));
// The child is TypeScript, so it runs with the same loader; a compiled child is just ['child.js'].
const child = spawn<Job | Result>(process.execPath, ['--import', 'tsx', childFile], { channel: 'pipe' });
const channel = child.channel!;
console.log(`parent ${process.pid} spawned child ${child.pid}`);

const jobs = [3, 7, 12];
for (const [id, n] of jobs.entries()) await channel.send({ id, n });
for (let i = 0; i < jobs.length; i++) {
  // Generous: the first reply waits for the child to start Node and compile its TypeScript.
  const result = await channel.receive({ timeout: 30_000 });
  if (!('square' in result)) throw new Error('expected a result');
  console.log(`job ${result.id}: ${result.n}² = ${result.square} (computed by pid ${result.pid})`);
}

// Closing our end ends the child's `for await` loop; it closes its end and exits.
await channel.close();
const { code } = await child.exited;
console.log(`child exited with code ${code}`);
