// Request/reply over a named pipe (pipe://: a Unix socket in the runtime directory, same user
// only). The server registers handlers; a client process sends many requests at once and gets each
// reply matched to its request, and a failing handler's error arrives as an IpcError (a
// RemoteError) with the server's code and message, never its stack.
//
//   node --import tsx examples/sockets/rpc.ts
import { fileURLToPath } from 'node:url';
import { connect, ErrorCodes, IpcError, listen, RemoteError, spawn } from '../../src/index.js'; // from 'ipckit'

const [role, url] = process.argv.slice(2);

if (role === 'client' && url) {
  const calc = await connect(url, { timeout: 10_000 });
  // Ten requests in flight on one connection.
  const sums = await Promise.all(Array.from({ length: 10 }, (_, i) => calc.request('add', { a: i, b: i })));
  console.log(`sums: ${sums.join(' ')}`);
  console.log(`7 / 2 = ${await calc.request('divide', { a: 7, b: 2 }, { timeout: 5000 })}`);
  try {
    await calc.request('divide', { a: 1, b: 0 });
  } catch (err) {
    if (err instanceof RemoteError)
      console.log(`1 / 0 failed remotely: ${err.code} (${err.remoteName}): ${err.message}`);
  }
  try {
    await calc.request('sqrt', 2);
  } catch (err) {
    if (err instanceof IpcError && err.code === ErrorCodes.NOT_FOUND) console.log(`sqrt: ${err.message}`);
  }
  await calc.close();
} else {
  const server = await listen(`pipe://example-rpc-${process.pid}`);
  server.handle('add', ({ a, b }: { a: number; b: number }) => a + b);
  server.handle('divide', async ({ a, b }: { a: number; b: number }) => {
    if (b === 0) throw new RangeError('divide: the divisor must not be 0');
    return a / b;
  });
  console.log(`server listening on ${server.url} (${server.path})`);
  const client = spawn(process.execPath, [
    '--import',
    'tsx',
    fileURLToPath(import.meta.url),
    'client',
    server.url,
  ]);
  const { code } = await client.exited;
  await server.close();
  console.log(`client exited with code ${code}`);
}
