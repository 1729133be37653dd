/**
 * `ipckit mq send|receive|stats|dead|replay|purge`: message queues from a shell. Bodies are JSON on
 * the command line and in the output; on the queue they use the codec of the programs (msgpack by
 * default, `--codec` otherwise), so the CLI and a program talk to the same queue.
 */
import { existsSync } from 'node:fs';
import { Command, InvalidArgumentError, Option } from 'commander';
import {
  type CodecName,
  ErrorCodes,
  IpcError,
  listResources,
  type Message,
  MessageQueue,
  type MessageQueueOptions,
  NAME_PATTERN,
  type StoreSpec,
} from '../index.js';
import { parseMs, parsePositiveInt, parsePositiveMs, parsePriority, textOf } from './arguments.js';
import { InterruptedError, UsageError } from './errors.js';
import { formatAge, renderTable } from './format.js';
import { jsonText, jsonValue, parseJsonArgument } from './json-text.js';
import { createOutput, type Output } from './output.js';

/** Options every `mq` subcommand takes. */
interface QueueFlags {
  store: string;
  codec: CodecName;
}

/** A message as the CLI prints it with `--json`. */
export interface MessageJson {
  id: string;
  type: string;
  priority: number;
  attempts: number;
  enqueuedAt: string;
  body: unknown;
}

function messageJson(message: Message<unknown>): MessageJson {
  return {
    id: message.id,
    type: message.type,
    priority: message.priority,
    attempts: message.attempts,
    enqueuedAt: new Date(message.enqueuedAt).toISOString(),
    body: jsonValue(message.body),
  };
}

function storeSpec(store: string): StoreSpec {
  if (store === 'sqlite' || /^rediss?:\/\/./.test(store)) return store as StoreSpec;
  throw new UsageError(`--store must be 'sqlite' or a redis:// URL, got '${store}'`);
}

/** Opens the queue `name` with the common flags. */
function openQueue(
  name: string,
  flags: QueueFlags,
  extra?: MessageQueueOptions<unknown>,
): Promise<MessageQueue<unknown>> {
  let store: StoreSpec;
  try {
    store = storeSpec(flags.store);
  } catch (err) {
    return Promise.reject(err);
  }
  return MessageQueue.open<unknown>(name, { store, codec: flags.codec, ...extra });
}

/**
 * For the commands that receive nothing. A claimed message carries its consumer's `maxAttempts`,
 * which every opener's sweep applies; only messages claimed by an ipckit older than that (none
 * stamped) are judged by the sweeping opener's own bound. The largest bound leaves those to the
 * application's own consumers too, so looking never dead-letters anything.
 */
export const LOOKING_ONLY: MessageQueueOptions<unknown> = { maxAttempts: 1_000_000 };

/**
 * Opens an existing queue for the commands that only look at or clean one: they must not create
 * an empty queue because of a typo. Only the SQLite store records its queues in the registry, so
 * other stores are opened as they are.
 */
async function openExisting(name: string, flags: QueueFlags): Promise<MessageQueue<unknown>> {
  // An invalid name goes on to `open`, which refuses it with ERR_IPC_INVALID_NAME before touching
  // anything: that is the better message than "does not exist".
  if (NAME_PATTERN.test(name) && flags.store === 'sqlite') {
    const entry = listResources().find((e) => e.kind === 'queue' && e.name === name);
    if (!entry) throw new IpcError(ErrorCodes.NOT_FOUND, `message queue '${name}' does not exist`);
    // Its file removed by hand: opening would make an empty queue in its place, and report that.
    if (entry.path !== undefined && !existsSync(entry.path)) {
      throw new IpcError(
        ErrorCodes.NOT_FOUND,
        `message queue '${name}' does not exist: its file ${entry.path} is gone`,
      );
    }
  }
  return openQueue(name, flags, LOOKING_ONLY);
}

/** Runs `work` on the queue and closes it whatever happens. */
async function withQueue<R>(queue: MessageQueue<unknown>, work: (q: MessageQueue<unknown>) => Promise<R>) {
  try {
    return await work(queue);
  } finally {
    await queue.close();
  }
}

function addQueueFlags(command: Command): Command {
  return command
    .option(
      '--store <url>',
      "where the queue lives: 'sqlite' (in the runtime directory) or redis://host:port",
      'sqlite',
    )
    .addOption(
      new Option('--codec <name>', 'codec of the bodies on the queue, as the programs use it')
        .choices(['msgpack', 'json', 'v8'])
        .default('msgpack'),
    );
}

// The queue's own limits, checked here so a bad value is a usage error before the queue is opened.
const MAX_TYPE_LENGTH = 256;
const MAX_ID_LENGTH = 1024;
const typeText = textOf(MAX_TYPE_LENGTH);
/** The most messages one `deadLetters(limit)` lists. */
const MAX_LIST = 100_000;

/** `mq dead --limit`: 1 to the queue's bound, which it would refuse only once opened (exit code 1). */
function parseLimit(value: string): number {
  const n = parsePositiveInt(value);
  if (n > MAX_LIST) throw new InvalidArgumentError(`expected a whole number from 1 to ${MAX_LIST}`);
  return n;
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), typeText(value)];
}

function sendCommand(): Command {
  return addQueueFlags(
    new Command('send')
      .description('send one message, given as JSON, to QUEUE (created if needed) and print its id')
      .argument('<queue>', 'the queue name')
      .argument('<json>', 'the message body as JSON, e.g. \'{"to":"ada@example.com"}\'')
      .option('-t, --type <type>', 'the message type, for selective receive (default: default)', typeText)
      .option('-p, --priority <n>', 'higher is delivered first (default 0)', parsePriority)
      .option('-d, --delay <ms>', 'deliverable only after this many milliseconds', parseMs)
      .option('--ttl <ms>', 'dropped if not delivered within this many milliseconds', parsePositiveMs)
      .option(
        '--id <id>',
        'your id for the message: a second send with it within 5 minutes adds nothing',
        textOf(MAX_ID_LENGTH),
      )
      .option('--json', 'print { id }'),
  )
    .addHelpText(
      'after',
      `
Examples:
  $ ipckit mq send jobs '{"url":"https://example.com"}' --type fetch --priority 5
  $ ipckit mq send jobs '"a string body"' --delay 60000`,
    )
    .action(
      async (
        name: string,
        text: string,
        opts: QueueFlags & {
          type?: string;
          priority?: number;
          delay?: number;
          ttl?: number;
          id?: string;
          json?: boolean;
        },
      ) => {
        const body = parseJsonArgument(text);
        const out = createOutput();
        const id = await withQueue(await openQueue(name, opts, LOOKING_ONLY), (q) =>
          q.send(body, {
            ...(opts.type === undefined ? {} : { type: opts.type }),
            ...(opts.priority === undefined ? {} : { priority: opts.priority }),
            ...(opts.delay === undefined ? {} : { delayMs: opts.delay }),
            ...(opts.ttl === undefined ? {} : { ttlMs: opts.ttl }),
            ...(opts.id === undefined ? {} : { id: opts.id }),
          }),
        );
        if (opts.json) out.json({ id });
        else out.line(id);
      },
    );
}

/** An AbortSignal fired by Ctrl-C (or SIGTERM) while `work` runs. */
async function interruptible<R>(work: (signal: AbortSignal) => Promise<R>): Promise<R> {
  const controller = new AbortController();
  const onSignal = () => controller.abort(new InterruptedError());
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    return await work(controller.signal);
  } catch (err) {
    if (controller.signal.aborted) throw controller.signal.reason;
    throw err;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

function receiveCommand(): Command {
  return addQueueFlags(
    new Command('receive')
      .description(
        'receive one message from QUEUE (created if needed, as a worker may start first), print it and acknowledge it',
      )
      .argument('<queue>', 'the queue name')
      .option('-t, --type <type>', 'only messages of this type (repeat for several)', collect)
      .option(
        '--timeout <ms>',
        'give up after this many milliseconds (default: wait until one comes)',
        parseMs,
      )
      .option('--no-ack', 'leave the message unacknowledged: it comes back after its lease runs out')
      .option(
        '--lease <ms>',
        'how long the message stays invisible to others before it comes back (default 30000)',
        parsePositiveMs,
      )
      .option('--json', 'print { id, type, priority, attempts, enqueuedAt, body }'),
  )
    .addHelpText(
      'after',
      `
Without --timeout it waits until a message comes (Ctrl-C stops it, exit code 130). A timeout that
runs out fails with ERR_IPC_TIMEOUT (exit code 1).

With --no-ack the message is only leased: no other consumer gets it until the lease runs out, then
it is delivered again with attempts + 1 (after maxAttempts deliveries it goes to the dead letters).

Examples:
  $ ipckit mq receive jobs --timeout 5000
  $ ipckit mq receive jobs --type fetch --json | jq .body`,
    )
    .action(
      async (
        name: string,
        opts: QueueFlags & {
          type?: string[];
          timeout?: number;
          ack: boolean;
          lease?: number;
          json?: boolean;
        },
      ) => {
        const out = createOutput();
        const queue = await openQueue(
          name,
          opts,
          opts.lease === undefined ? undefined : { visibilityTimeoutMs: opts.lease },
        );
        await withQueue(queue, (q) =>
          interruptible(async (signal) => {
            const m = await q.receive({
              signal,
              ...(opts.type === undefined ? {} : { types: opts.type }),
              ...(opts.timeout === undefined ? {} : { timeout: opts.timeout }),
            });
            printMessage(out, m, opts.json === true);
            // Acknowledged only once printed: output that cannot be written (its reader gone, a
            // full disk) leaves the message leased, and it comes back when the lease runs out.
            await out.written();
            if (opts.ack) await m.ack();
          }),
        );
      },
    );
}

function printMessage(out: Output, message: Message<unknown>, json: boolean): void {
  if (json) {
    out.json(messageJson(message));
    return;
  }
  const { colors } = out;
  const rows = [
    ['id', message.id],
    ['type', message.type],
    ['priority', String(message.priority)],
    ['attempts', String(message.attempts)],
    ['enqueued', new Date(message.enqueuedAt).toISOString()],
    ['body', jsonText(message.body)],
  ];
  for (const [key, value] of rows) out.line(`${colors.dim(key!.padEnd(9))}${value}`);
}

function statsCommand(): Command {
  return addQueueFlags(
    new Command('stats')
      .description(
        'print how many messages QUEUE holds: ready, delayed, in flight, dead; by priority and type',
      )
      .argument('<queue>', 'the queue name')
      .option('--json', 'print { ready, delayed, inflight, dead, byPriority, byType }'),
  ).action(async (name: string, opts: QueueFlags & { json?: boolean }) => {
    const out = createOutput();
    const stats = await withQueue(await openExisting(name, opts), (q) => q.stats());
    if (opts.json) {
      out.json(stats);
      return;
    }
    out.line(
      `ready ${stats.ready}  delayed ${stats.delayed}  inflight ${stats.inflight}  dead ${stats.dead}`,
    );
    const byPriority = Object.entries(stats.byPriority).sort(([a], [b]) => Number(b) - Number(a));
    if (byPriority.length > 0)
      out.line(`ready by priority: ${byPriority.map(([p, n]) => `${p}: ${n}`).join(', ')}`);
    const byType = Object.entries(stats.byType).sort(([a], [b]) => a.localeCompare(b));
    if (byType.length > 0) out.line(`ready by type: ${byType.map(([t, n]) => `${t}: ${n}`).join(', ')}`);
  });
}

function deadCommand(): Command {
  return addQueueFlags(
    new Command('dead')
      .description("list QUEUE's dead letters, oldest first: messages that failed maxAttempts deliveries")
      .argument('<queue>', 'the queue name')
      .option('-n, --limit <n>', 'at most this many, up to 100000 (default 1000)', parseLimit, 1000)
      .option('--json', 'print an array of { id, type, priority, attempts, enqueuedAt, body }'),
  ).action(async (name: string, opts: QueueFlags & { limit: number; json?: boolean }) => {
    const out = createOutput();
    const dead = await withQueue(await openExisting(name, opts), (q) => q.deadLetters(opts.limit));
    if (opts.json) {
      out.json(dead.map(messageJson));
      return;
    }
    const { colors } = out;
    if (dead.length === 0) {
      out.line(colors.dim(`no dead letters in '${name}'`));
      return;
    }
    const now = Date.now();
    const rows = dead.map((m) => {
      const body = jsonText(m.body);
      return [
        m.id,
        m.type,
        String(m.priority),
        String(m.attempts),
        formatAge(now - m.enqueuedAt),
        body.length > 60 ? `${body.slice(0, 59)}…` : body,
      ];
    });
    const lines = renderTable(['ID', 'TYPE', 'PRIORITY', 'ATTEMPTS', 'AGE', 'BODY'], rows, (_c, text, row) =>
      row < 0 ? colors.bold(text) : text,
    );
    for (const line of lines) out.line(line);
  });
}

function replayCommand(): Command {
  return addQueueFlags(
    new Command('replay')
      .description('move every dead letter of QUEUE back to ready, attempts reset, and print how many')
      .argument('<queue>', 'the queue name')
      .option('--json', 'print { replayed }'),
  ).action(async (name: string, opts: QueueFlags & { json?: boolean }) => {
    const out = createOutput();
    const replayed = await withQueue(await openExisting(name, opts), (q) => q.replayDead());
    if (opts.json) out.json({ replayed });
    else out.line(`replayed ${replayed} dead letter${replayed === 1 ? '' : 's'} of '${name}'`);
  });
}

function purgeCommand(): Command {
  return addQueueFlags(
    new Command('purge')
      .description('delete every message of QUEUE (ready, delayed, in flight and dead) and print how many')
      .argument('<queue>', 'the queue name')
      .option('--json', 'print { purged }'),
  ).action(async (name: string, opts: QueueFlags & { json?: boolean }) => {
    const out = createOutput();
    const purged = await withQueue(await openExisting(name, opts), (q) => q.purge());
    if (opts.json) out.json({ purged });
    else out.line(`purged ${purged} message${purged === 1 ? '' : 's'} from '${name}'`);
  });
}

/** Builds the `mq` command group. */
export function mqCommand(): Command {
  return new Command('mq')
    .description('send to, receive from and manage message queues')
    .addCommand(sendCommand())
    .addCommand(receiveCommand())
    .addCommand(statsCommand())
    .addCommand(deadCommand())
    .addCommand(replayCommand())
    .addCommand(purgeCommand());
}
