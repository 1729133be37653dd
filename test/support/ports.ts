/**
 * TCP ports for servers a test restarts on the same port. A port the kernel handed out for
 * `listen(0)` comes from the ephemeral range, which every outgoing connection of every test file
 * running meanwhile draws its local port from: while the server is down, one of them can take it,
 * and the restart fails with EADDRINUSE. Ports below that range are never handed out on their own.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

function ephemeralRangeStart(): number {
  try {
    const low = Number(
      readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'latin1').trim().split(/\s+/)[0],
    );
    return Number.isInteger(low) && low > 1024 ? low : 32768;
  } catch {
    return 32768;
  }
}

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** A free loopback port outside the kernel's ephemeral range, safe to listen on again after a restart. */
export async function stablePort(): Promise<number> {
  const high = ephemeralRangeStart() - 1;
  const low = Math.max(1025, high - 20_000);
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = low + Math.floor(Math.random() * (high - low + 1));
    if (await isFree(port)) return port;
  }
  throw new Error(`no free port found in ${low}-${high}`);
}
