/**
 * Tour step: a request/reply server on a Unix socket in this process, and a client process that
 * connects to it by URL and keeps many requests in flight on one connection.
 */
import { join } from 'node:path';
import { ensureRuntimeDir, listen, spawn } from '../../index.js';
import { formatCount, formatDuration } from '../format.js';
import type { Figure, TourContext, TourStep } from './step.js';

/** What the client (children/socket-client.ts) reports when it is done, with the 'report' method. */
export interface SocketTourReport {
  pid: number;
  requests: number;
  /** Replies that did not match their request (0 unless something is broken). */
  wrong: number;
  elapsedMs: number;
}

const REQUESTS = 4000;
const IN_FLIGHT = 64;
const WAIT_MS = 15_000;

/** The Unix-socket step. */
export const unixSocketStep: TourStep = {
  id: 'unix-socket',
  title: 'Unix-socket request/reply with a client process',
  async run(ctx: TourContext): Promise<Figure> {
    const { colors: c } = ctx;
    // A unix:// path is the caller's choice; the tour puts it in the runtime directory, which the
    // library creates only for the names it manages: create it 0700 and check it as the library
    // does (a symlink or another user's directory is refused, not followed).
    const url = `unix://${join(ensureRuntimeDir(), `${ctx.name('rpc')}.sock`)}`;
    const server = await listen(url);
    ctx.defer(() => server.close());
    let reported: (report: SocketTourReport) => void = () => {};
    const report = new Promise<SocketTourReport>((resolve) => {
      reported = resolve;
    });
    let served = 0;
    server.handle<{ a: number; b: number }, number>('add', ({ a, b }) => {
      served++;
      return a + b;
    });
    server.handle<SocketTourReport, boolean>('report', (result) => {
      reported(result);
      return true;
    });
    ctx.say(`${c.cyan(`listen('${url}')`)} with handlers ${c.cyan("'add'")} and ${c.cyan("'report'")}`);

    const program = ctx.child('socket-client', url, String(REQUESTS), String(IN_FLIGHT));
    const client = spawn(program.command, program.args, { stdio: ['ignore', 'ignore', 'inherit'] });
    ctx.defer(() => client.stop({ graceMs: 1000 }));
    ctx.say(
      `a client process (pid ${client.pid}) calls ${c.cyan('connect(url)')}, then ` +
        `${c.cyan("request('add', { a, b })")} ${formatCount(REQUESTS)} times, ${IN_FLIGHT} in flight at once`,
    );

    const result = await ctx.within('the client', WAIT_MS, report);
    if (result.wrong !== 0) throw new Error(`${result.wrong} replies did not match their requests`);
    ctx.say(
      `the server answered ${formatCount(served)} requests on one connection in ` +
        `${formatDuration(result.elapsedMs)}; replies are matched to requests by id, so order does not matter`,
    );
    const status = await ctx.within('the client to exit', WAIT_MS, client.exited);
    if (status.code !== 0) throw new Error(`the client exited with code ${status.code ?? status.signal}`);
    await server.close();
    ctx.say('the client closed its connection and exited; the server closed and removed its socket file');
    return {
      label: 'answered over one Unix-socket connection',
      value: (result.requests / result.elapsedMs) * 1000,
      unit: 'requests/s',
    };
  },
};
