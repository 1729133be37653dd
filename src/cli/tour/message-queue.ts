/**
 * Tour step: a durable message queue (SQLite, in the runtime directory) with prioritized messages
 * and two competing consumer processes. One consumer is killed with SIGKILL while it holds a
 * message; the message is not lost: once its lease runs out the other consumer gets it again.
 */
import { type ChildProcessWithChannel, ErrorCodes, isIpcError, MessageQueue, spawn } from '../../index.js';
import { formatCount, formatDuration } from '../format.js';
import { elapsedMs } from './stats.js';
import type { Figure, TourContext, TourStep } from './step.js';

/** The body of each message of the queue step. */
export interface QueueTourJob {
  seq: number;
  /** The consumer that receives this message for the first time holds it until it is killed. */
  crash?: boolean;
}

/** What a consumer (children/queue-consumer.ts) and the tour say to each other over its channel. */
export type QueueTourReport =
  | { kind: 'ready'; pid: number }
  | { kind: 'go' }
  | { kind: 'acked' | 'holding'; pid: number; seq: number; priority: number; attempts: number };

const PRIORITIES = [1, 9, 5];
const PER_PRIORITY = 150;
/** The priority-9 message, well into the batch, that its first consumer holds until killed. */
const CRASH_SEQ = 3 * 40 + 1;
const VISIBILITY_TIMEOUT_MS = 400;
const WAIT_MS = 15_000;
/** How long the tour waits on the emptied queue to show that nothing more comes. */
const EMPTY_WAIT_MS = 200;

interface Consumer {
  child: ChildProcessWithChannel<QueueTourReport>;
  acked: { seq: number; priority: number; attempts: number }[];
}

/** True if every first delivery in `acked` came no earlier than any delivery of a higher priority. */
function inPriorityOrder(acked: readonly { priority: number; attempts: number }[]): boolean {
  let lowest = Number.POSITIVE_INFINITY;
  for (const message of acked) {
    if (message.attempts > 1) continue;
    if (message.priority > lowest) return false;
    lowest = message.priority;
  }
  return true;
}

/** The message-queue step. */
export const messageQueueStep: TourStep = {
  id: 'message-queue',
  title: 'Message queue with priorities and competing consumers',
  async run(ctx: TourContext): Promise<Figure> {
    const { colors: c, signal } = ctx;
    const name = ctx.name('jobs');
    const queue = await MessageQueue.open<QueueTourJob>(name, { visibilityTimeoutMs: VISIBILITY_TIMEOUT_MS });
    ctx.defer(() => MessageQueue.remove(name));
    ctx.defer(() => queue.close());
    ctx.say(
      `${c.cyan(`MessageQueue.open('${name}', { visibilityTimeoutMs: ${VISIBILITY_TIMEOUT_MS} })`)}: ` +
        'an SQLite database in the runtime directory',
    );

    const total = PRIORITIES.length * PER_PRIORITY;
    const batch = Array.from({ length: total }, (_, seq) => {
      const priority = PRIORITIES[seq % PRIORITIES.length]!;
      return { body: seq === CRASH_SEQ ? { seq, crash: true } : { seq }, priority };
    });
    await queue.sendBatch(batch, { signal });
    ctx.say(
      `${c.cyan('q.sendBatch(…)')}: ${formatCount(total)} messages, priorities ${PRIORITIES.join(', ')} ` +
        `interleaved, durable in one commit; #${CRASH_SEQ} is marked to crash whoever receives it first`,
    );

    const consumers = [0, 1].map(() => {
      const program = ctx.child('queue-consumer', name, String(VISIBILITY_TIMEOUT_MS));
      const child = spawn<QueueTourReport>(program.command, program.args, {
        channel: 'pipe',
        stdio: ['ignore', 'ignore', 'inherit'],
      });
      ctx.defer(() => child.stop({ graceMs: 1000 }));
      ctx.defer(() => child.channel.close());
      const consumer: Consumer = { child, acked: [] };
      return consumer;
    });
    const byPid = new Map(consumers.map((consumer) => [consumer.child.pid, consumer]));
    await ctx.within(
      'the consumers to open the queue',
      WAIT_MS,
      Promise.all(consumers.map((consumer) => consumer.child.channel.receive({ signal }))),
    );
    const start = process.hrtime.bigint();
    await Promise.all(consumers.map((consumer) => consumer.child.channel.send({ kind: 'go' })));
    ctx.say(
      `two consumer processes (pids ${consumers.map((x) => x.child.pid).join(', ')}) opened it and ` +
        `compete: each loops on ${c.cyan('q.receive()')} and ${c.cyan('msg.ack()')}`,
    );

    // Every report from either consumer, until each message has been acked once.
    let holding: { pid: number; seq: number } | undefined;
    let firstDoneMs = 0;
    const acked = new Set<number>();
    const reports = consumers.map(async (consumer) => {
      for await (const report of consumer.child.channel) {
        if (report.kind === 'holding') {
          holding = { pid: report.pid, seq: report.seq };
          // SIGKILL: no chance to ack, nack or close; the lease on the message simply runs out.
          consumer.child.kill('SIGKILL');
          return;
        }
        if (report.kind !== 'acked') continue;
        if (acked.has(report.seq)) throw new Error(`message ${report.seq} was acked twice`);
        acked.add(report.seq);
        byPid.get(report.pid)?.acked.push(report);
        if (acked.size === total - 1 && !acked.has(CRASH_SEQ)) firstDoneMs = elapsedMs(start);
        if (acked.size === total) return;
      }
    });
    await ctx.within('the consumers', WAIT_MS, Promise.all(reports));
    if (acked.size !== total) throw new Error(`only ${acked.size} of ${total} messages were acked`);
    const ms = firstDoneMs || elapsedMs(start);

    const killed = consumers.find((x) => x.child.pid === holding?.pid);
    const survivor = consumers.find((x) => x !== killed);
    const redelivered = survivor?.acked.find((message) => message.seq === CRASH_SEQ);
    if (!killed || !survivor || !redelivered) throw new Error('no consumer was killed holding the message');
    const status = await ctx.within('the killed consumer to exit', WAIT_MS, killed.child.exited);
    ctx.say(
      `consumer ${killed.child.pid} received message #${CRASH_SEQ} (priority 9, attempts 1) and was killed ` +
        `with ${status.signal ?? status.code} before acking it`,
    );
    ctx.say(
      `after its ${VISIBILITY_TIMEOUT_MS} ms lease ran out, consumer ${survivor.child.pid} received ` +
        `#${CRASH_SEQ} again with attempts ${redelivered.attempts} and acked it: at-least-once, nothing lost`,
    );
    for (const consumer of consumers) {
      if (!inPriorityOrder(consumer.acked))
        throw new Error(`consumer ${consumer.child.pid} received a lower priority before a higher one`);
    }
    const counts = consumers.map((x) => `${x.child.pid}: ${formatCount(x.acked.length)}`).join(', ');
    ctx.say(`the consumers shared the work (${counts}), each taking priority 9, then 5, then 1`);

    await survivor.child.channel.close();
    const end = await ctx.within('the other consumer to exit', WAIT_MS, survivor.child.exited);
    if (end.code !== 0) throw new Error(`the consumer exited with code ${end.code ?? end.signal}`);
    const stats = await queue.stats();
    // Nothing is left to deliver twice. (MessageQueue.remove below also removes the doorbell socket
    // the killed consumer left in the runtime directory.)
    const empty = await queue.receive({ signal, timeout: EMPTY_WAIT_MS }).then(
      () => false,
      (err: unknown) => isIpcError(err, ErrorCodes.TIMEOUT),
    );
    if (!empty) throw new Error('the queue delivered a message after every message was acked');
    await queue.close();
    await MessageQueue.remove(name);
    ctx.say(
      `${formatCount(total)} messages acked in ${formatDuration(ms)} (not counting the lease wait); ` +
        `${stats.ready} ready, ${stats.inflight} in flight, and ${c.cyan(`q.receive({ timeout: ${EMPTY_WAIT_MS} })`)} ` +
        `times out: nothing is left to deliver; ${c.cyan(`MessageQueue.remove('${name}')`)}`,
    );
    return {
      label: 'delivered and acked by two competing consumers',
      value: ((total - 1) / ms) * 1000,
      unit: 'messages/s',
    };
  },
};
