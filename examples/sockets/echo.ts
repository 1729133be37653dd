// A TCP echo server and a client in another process. Run without arguments it is the server: it
// listens on a free loopback port, starts itself again as the client with the bound URL, and
// echoes (upper-cased) every message the client sends on its connection.
//
//   node --import tsx examples/sockets/echo.ts
import { fileURLToPath } from 'node:url';
import { connect, listen, spawn } from '../../src/index.js'; // in your project: from 'ipckit'

const [role, url] = process.argv.slice(2);

if (role === 'client' && url) {
  const client = await connect<string>(url, { timeout: 10_000 });
  for (const word of ['hello', 'over', 'tcp']) {
    await client.send(word);
    console.log(`client got: ${await client.receive({ timeout: 10_000 })}`);
  }
  await client.close();
} else {
  const server = await listen<string>('tcp://127.0.0.1:0');
  console.log(`server listening on ${server.url}`);
  const client = spawn(process.execPath, [
    '--import',
    'tsx',
    fileURLToPath(import.meta.url),
    'client',
    server.url,
  ]);
  // Generous: the client has to start Node and compile its TypeScript first, slow on a busy machine.
  const connection = await server.accept({ timeout: 30_000 });
  console.log(`client connected from ${connection.peer.address}`);
  // Iteration ends when the client closes its end.
  for await (const message of connection) await connection.send(message.toUpperCase());
  await server.close();
  console.log(`client exited with code ${(await client.exited).code}`);
}
