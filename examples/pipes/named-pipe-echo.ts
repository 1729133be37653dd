// A named-pipe echo server and a client in another process. Run without arguments it is the
// server: it listens, starts itself again as the client, and echoes what the client sends.
//
//   node --import tsx examples/pipes/named-pipe-echo.ts
import { fileURLToPath } from 'node:url';
import { NamedPipe, spawn } from '../../src/index.js'; // in your project: from 'ipckit'

const [role, serverName] = process.argv.slice(2);

if (role === 'client' && serverName) {
  const connection = await NamedPipe.connect<string>(serverName, { timeout: 10_000 });
  for (const word of ['hello', 'named', 'pipe']) {
    await connection.send(word);
    console.log(`client got: ${await connection.receive({ timeout: 10_000 })}`);
  }
  await connection.close();
} else {
  const name = `example-echo-${process.pid}`;
  const server = await NamedPipe.listen<string>(name);
  console.log(`server listening as '${name}' at ${server.path}`);
  const client = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), 'client', name]);
  // Generous: the client has to start Node and compile its TypeScript first, slow on a busy machine.
  const connection = await server.accept({ timeout: 30_000 });
  // Iteration ends when the client closes its end.
  for await (const message of connection) {
    console.log(`server echoes: ${message}`);
    await connection.send(message.toUpperCase());
  }
  await server.close();
  const { code } = await client.exited;
  console.log(`client exited with code ${code}`);
}
