// A FIFO that a shell command writes lines into, and this program reads: FIFOs need no ipckit on
// the writing side, any program that can write a file will do.
//
//   node --import tsx examples/pipes/fifo-shell-writer.ts
import { Fifo, spawn } from '../../src/index.js'; // in your project: from 'ipckit'

const name = `example-lines-${process.pid}`;
const path = await Fifo.create(name);
console.log(`created FIFO ${path}`);
try {
  // The receiver keeps the FIFO open, so writers may come and go: the stream does not end when one
  // writer closes. That is why the writer sends an explicit last line.
  const lines = await Fifo.receiver<string>(name, { format: 'lines' });
  const script = 'for word in alpha beta gamma; do echo "$word"; done > "$1"; echo END > "$1"';
  const shell = spawn('sh', ['-c', script, 'sh', path]);
  for (;;) {
    const line = await lines.receive({ timeout: 10_000 });
    if (line === 'END') break;
    console.log(`received line: ${line}`);
  }
  await lines.close();
  const { code } = await shell.exited;
  console.log(`shell exited with code ${code}`);
} finally {
  await Fifo.unlink(name);
}
