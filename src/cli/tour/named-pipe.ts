/**
 * Tour step: a named-pipe server in this process and client processes that connect to it by name.
 * Each connection is its own duplex Channel (a Unix socket in the runtime directory on Linux).
 */
import { type Channel, NamedPipe, spawn } from '../../index.js';
import { formatDuration } from '../format.js';
import { median } from './stats.js';
import type { Figure, TourContext, TourStep } from './step.js';

/** The messages of the named-pipe step, both ways (the client is children/named-pipe-client.ts). */
export type NamedPipeTourMessage =
  | { kind: 'hello'; pid: number }
  | { kind: 'ping'; seq: number }
  | { kind: 'result'; pid: number; samplesMicros: number[] };

const CLIENTS = 2;
const ROUND_TRIPS = 1000;
const WAIT_MS = 15_000;

/** Echoes everything but the client's final result, which it returns. */
async function serve(connection: Channel<NamedPipeTourMessage>): Promise<{ pid: number; samples: number[] }> {
  let hello = 0;
  for await (const message of connection) {
    if (message.kind === 'result') return { pid: message.pid, samples: message.samplesMicros };
    if (message.kind === 'hello') hello = message.pid;
    await connection.send(message);
  }
  throw new Error(`client ${hello} disconnected before sending its result`);
}

/** The named-pipe step. */
export const namedPipeStep: TourStep = {
  id: 'named-pipe',
  title: 'Named-pipe server with client processes',
  async run(ctx: TourContext): Promise<Figure> {
    const { colors: c, signal } = ctx;
    const name = ctx.name('echo');
    const server = await NamedPipe.listen<NamedPipeTourMessage>(name);
    ctx.defer(() => server.close());
    ctx.say(`${c.cyan(`NamedPipe.listen('${name}')`)} listens on ${server.path}`);

    const clients = Array.from({ length: CLIENTS }, () => {
      const program = ctx.child('named-pipe-client', name, String(ROUND_TRIPS));
      const client = spawn(program.command, program.args, { stdio: ['ignore', 'ignore', 'inherit'] });
      ctx.defer(() => client.stop({ graceMs: 1000 }));
      return client;
    });
    ctx.say(
      `started ${CLIENTS} client processes (pids ${clients.map((p) => p.pid).join(', ')}), each calling ` +
        `${c.cyan(`NamedPipe.connect('${name}')`)}`,
    );

    const results = await ctx.within(
      'the clients',
      WAIT_MS,
      Promise.all(
        clients.map(async () => {
          const connection = await server.accept({ signal, timeout: WAIT_MS });
          return serve(connection);
        }),
      ),
    );
    for (const result of results) {
      ctx.say(
        `client ${result.pid}: its own connection, ${result.samples.length} round trips, ` +
          `median ${formatDuration(median(result.samples) / 1000)}`,
      );
    }
    const statuses = await ctx.within(
      'the clients to exit',
      WAIT_MS,
      Promise.all(clients.map((p) => p.exited)),
    );
    const failed = statuses.find((status) => status.code !== 0);
    if (failed) throw new Error(`a client exited with code ${failed.code ?? failed.signal}`);
    await server.close();
    ctx.say('both clients disconnected and exited; the server closed and removed its socket file');
    const all = results.flatMap((result) => result.samples);
    return { label: 'median round trip, client to server and back', value: median(all), unit: 'µs' };
  },
};
