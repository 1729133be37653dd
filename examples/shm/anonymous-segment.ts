// An anonymous segment (memfd) handed to a child with spawn(..., { share }): no name, nothing left
// behind, gone when both close it. The parent fills it, the child squares every number in place.
//
//   node --import tsx examples/shm/anonymous-segment.ts
import { fileURLToPath } from 'node:url';
import { SharedMemory, spawn } from '../../src/index.js'; // in your project: from 'ipckit'

if (process.argv[2] === 'child') {
  const numbers = new Float64Array(SharedMemory.inherited(0).buffer);
  for (let i = 0; i < numbers.length; i++) numbers[i] = numbers[i]! ** 2;
} else {
  const segment = SharedMemory.anonymous(8 * 8);
  const numbers = new Float64Array(segment.buffer);
  numbers.set([1, 2, 3, 4, 5, 6, 7, 8]);
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), 'child'], {
    share: [segment],
  });
  const { code } = await child.exited;
  console.log(`child exited with code ${code}`);
  console.log(`squared by the child: ${[...numbers].join(' ')}`);
  segment.close();
}
