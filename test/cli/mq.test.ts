import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, existsSync, openSync, rmSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MessageQueue } from '../../src/index.js';
import { isolateRuntimeDir, watchdog } from '../helpers.js';
import { BIN, runCli, runCliJson } from './run-cli.js';

let runtime: ReturnType<typeof isolateRuntimeDir>;
beforeEach(() => {
  runtime = isolateRuntimeDir();
});
afterEach(() => runtime.cleanup());

interface MessageJson {
  id: string;
  type: string;
  priority: number;
  attempts: number;
  enqueuedAt: string;
  body: unknown;
}

interface StatsJson {
  ready: number;
  delayed: number;
  inflight: number;
  dead: number;
  byPriority: Record<string, number>;
  byType: Record<string, number>;
}

/** One line on stderr, nothing on stdout; returns the line. */
function oneLineError(run: { stdout: string; stderr: string }): string {
  expect(run.stdout).toBe('');
  const lines = run.stderr.split('\n').filter((line) => line !== '');
  expect(lines).toHaveLength(1);
  return lines[0]!;
}

// Each case runs the binary several times, one after the other: seconds each on a loaded machine.
describe('ipckit mq', { timeout: 240_000 }, () => {
  it('send then receive round-trips a JSON body with its type and priority; the id printed is the id received', async () => {
    const low = await runCli(['mq', 'send', 'jobs', '{"n":1}']);
    expect(low.code).toBe(0);
    const lowId = low.stdout.trim();
    expect(lowId).toMatch(/^\S+$/);
    const high = await runCliJson<{ id: string }>([
      'mq',
      'send',
      'jobs',
      '{"to":"ada@example.com","tags":["a",2,null]}',
      '--type',
      'email',
      '--priority',
      '7',
      '--json',
    ]);

    const first = await runCliJson<MessageJson>(['mq', 'receive', 'jobs', '--timeout', '10000', '--json']);
    expect(first).toMatchObject({
      id: high.id,
      type: 'email',
      priority: 7,
      attempts: 1,
      body: { to: 'ada@example.com', tags: ['a', 2, null] },
    });
    expect(Number.isNaN(Date.parse(first.enqueuedAt))).toBe(false);

    const second = await runCli(['mq', 'receive', 'jobs', '--timeout', '10000']);
    expect(second.code).toBe(0);
    expect(second.stdout).toMatch(new RegExp(`^id\\s+${lowId}$`, 'm'));
    expect(second.stdout).toMatch(/^body\s+\{"n":1\}$/m);

    // Both were acknowledged: nothing is left, nothing is in flight.
    expect(await runCliJson<StatsJson>(['mq', 'stats', 'jobs', '--json'])).toEqual({
      ready: 0,
      delayed: 0,
      inflight: 0,
      dead: 0,
      byPriority: {},
      byType: {},
    });
  });

  it('a program and the CLI share the queue: the CLI receives what a program sent, selectively by type', async () => {
    const q = await MessageQueue.open<unknown>('shared');
    try {
      await q.send({ kind: 'report' }, { type: 'report' });
      await q.send({ kind: 'email' }, { type: 'email', priority: 3 });
      await q.send('later', { delayMs: 600_000 });
    } finally {
      await q.close();
    }
    const stats = await runCliJson<StatsJson>(['mq', 'stats', 'shared', '--json']);
    expect(stats).toEqual({
      ready: 2,
      delayed: 1,
      inflight: 0,
      dead: 0,
      byPriority: { '0': 1, '3': 1 },
      byType: { email: 1, report: 1 },
    });
    const report = await runCliJson<MessageJson>([
      'mq',
      'receive',
      'shared',
      '--type',
      'report',
      '--json',
      '--timeout',
      '10000',
    ]);
    expect(report.body).toEqual({ kind: 'report' });
  });

  it('receive --no-ack leaves the message leased: it comes back after its lease with attempts 2', async () => {
    expect((await runCli(['mq', 'send', 'lease', '"again"'])).code).toBe(0);
    const first = await runCliJson<MessageJson>([
      'mq',
      'receive',
      'lease',
      '--no-ack',
      '--lease',
      '300',
      '--json',
    ]);
    expect(first.attempts).toBe(1);
    // Waits for the lease to run out by receiving, not by sleeping: the receive blocks until then.
    const again = await runCliJson<MessageJson>(['mq', 'receive', 'lease', '--timeout', '15000', '--json']);
    expect(again).toMatchObject({ id: first.id, body: 'again', attempts: 2 });
  });

  it('receive on an empty queue times out with ERR_IPC_TIMEOUT, exit code 1', async () => {
    expect((await runCli(['mq', 'send', 'empty', '1'])).code).toBe(0);
    expect((await runCli(['mq', 'purge', 'empty'])).code).toBe(0);
    const run = await runCli(['mq', 'receive', 'empty', '--timeout', '200']);
    expect(run.code).toBe(1);
    expect(oneLineError(run)).toMatch(/^ipckit mq receive: .*timed out.*\(ERR_IPC_TIMEOUT\)$/);
  });

  it('purge deletes every message and prints how many', async () => {
    for (const body of ['1', '2', '3']) expect((await runCli(['mq', 'send', 'bulk', body])).code).toBe(0);
    expect(await runCliJson(['mq', 'purge', 'bulk', '--json'])).toEqual({ purged: 3 });
    expect((await runCliJson<StatsJson>(['mq', 'stats', 'bulk', '--json'])).ready).toBe(0);
    const text = await runCli(['mq', 'purge', 'bulk']);
    expect(text.stdout).toBe("purged 0 messages from 'bulk'\n");
  });

  it('dead lists a message that reached maxAttempts; replay puts it back with its body', async () => {
    const q = await MessageQueue.open<unknown>('fragile', { maxAttempts: 1 });
    try {
      await q.send({ job: 'doomed' }, { type: 'task', id: 'job-1' });
      const m = await q.receive({ timeout: 10_000 });
      await m.nack();
    } finally {
      await q.close();
    }
    const dead = await runCliJson<MessageJson[]>(['mq', 'dead', 'fragile', '--json']);
    expect(dead).toHaveLength(1);
    expect(dead[0]).toMatchObject({ id: 'job-1', type: 'task', attempts: 1, body: { job: 'doomed' } });
    const table = await runCli(['mq', 'dead', 'fragile']);
    expect(table.stdout).toMatch(/^ID\s+TYPE\s+PRIORITY\s+ATTEMPTS\s+AGE\s+BODY$/m);
    expect(table.stdout).toMatch(/^job-1\s+task\s+0\s+1\s+\S+\s+\{"job":"doomed"\}$/m);
    expect((await runCliJson<StatsJson>(['mq', 'stats', 'fragile', '--json'])).dead).toBe(1);

    expect(await runCliJson(['mq', 'replay', 'fragile', '--json'])).toEqual({ replayed: 1 });
    expect(await runCliJson(['mq', 'dead', 'fragile', '--json'])).toEqual([]);
    const back = await runCliJson<MessageJson>(['mq', 'receive', 'fragile', '--timeout', '10000', '--json']);
    expect(back).toMatchObject({ id: 'job-1', body: { job: 'doomed' } });
  });

  it("stats, dead and send leave the application's maxAttempts alone: a lease that ran out is not dead-lettered by them", async () => {
    // The application allows 10 attempts; the CLI's default is 5.
    const q = await MessageQueue.open<string>('patient', { maxAttempts: 10, visibilityTimeoutMs: 100 });
    await q.send('slow job');
    let last = await q.receive({ timeout: 10_000 });
    // Each lease running out is what lets the next receive return: attempts 2 … 6.
    for (let i = 0; i < 5; i++) last = await q.receive({ timeout: 10_000 });
    expect(last.attempts).toBe(6);
    // The condition is the clock itself: the sixth lease has ended.
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, last.leaseUntil! - Date.now()) + 20));
    for (const args of [
      ['mq', 'stats', 'patient'],
      ['mq', 'dead', 'patient'],
      ['mq', 'send', 'patient', '1'],
    ]) {
      expect((await runCli(args)).code, args.join(' ')).toBe(0);
    }
    const again = await q.receive({ timeout: 10_000, types: ['default'] });
    expect([again.body, again.attempts]).toEqual(['slow job', 7]);
    await again.ack();
    expect((await q.stats()).dead).toBe(0);
    await q.close();
  });

  it('bad arguments exit 2 with one line; a queue that does not exist is ERR_IPC_NOT_FOUND and is not created', async () => {
    const cases: [string[], RegExp][] = [
      [['mq', 'send', 'q', '{oops}'], /^ipckit mq send: the message is not valid JSON .*quote it/],
      [['mq', 'send', 'q', '{"n":1e400}'], /^ipckit mq send: the message has a number too large for JSON/],
      [['mq', 'dead', 'q', '--limit', 'x'], /^ipckit mq dead: option .*--limit.* is invalid.*>= 1/],
      [['mq', 'dead', 'q', '--limit', '0'], /^ipckit mq dead: option .*--limit.* is invalid.*>= 1/],
      [['mq', 'send', 'q'], /^ipckit mq send: missing required argument 'json'/],
      [['mq', 'send', 'q', '1', '--priority', 'high'], /^ipckit mq send: option .*--priority.* is invalid/],
      [['mq', 'send', 'q', '1', '--delay', '-5'], /^ipckit mq send: option .*--delay.* is invalid/],
      // Values the queue itself refuses: refused before the queue is opened (and so created).
      [
        ['mq', 'send', 'q', '1', '--priority', '99999999999'],
        /^ipckit mq send: option .*--priority.* is invalid/,
      ],
      [
        ['mq', 'send', 'q', '1', '--type='],
        /^ipckit mq send: option .*--type.* is invalid.*1 to 256 characters/,
      ],
      [
        ['mq', 'send', 'q', '1', '--id='],
        /^ipckit mq send: option .*--id.* is invalid.*1 to 1024 characters/,
      ],
      [['mq', 'receive', 'q', '-t', ''], /^ipckit mq receive: option .*--type.* is invalid/],
      [['mq', 'send', 'q', '1', '--ttl', '2147483648'], /^ipckit mq send: option .*--ttl.* is invalid/],
      [['mq', 'receive', 'q', '--lease', '2147483648'], /^ipckit mq receive: option .*--lease.* is invalid/],
      [['mq', 'dead', 'q', '--limit', '100001'], /^ipckit mq dead: option .*--limit.* is invalid.*100000/],
      [['mq', 'send', '../q', '1'], /^ipckit mq send: .*ERR_IPC_INVALID_NAME/],
      [['mq', 'receive', 'q', '--timeout', 'soon'], /^ipckit mq receive: option .*--timeout.* is invalid/],
      [
        ['mq', 'receive', 'q', '--store', 'postgres://x'],
        /^ipckit mq receive: --store must be 'sqlite' or a redis:\/\/ URL/,
      ],
      [
        ['mq', 'stats', 'q', '--codec', 'yaml'],
        /^ipckit mq stats: option .*--codec.* argument 'yaml' is invalid/,
      ],
    ];
    for (const [args, pattern] of cases) {
      const run = await runCli(args);
      expect(run.code, args.join(' ')).toBe(2);
      expect(oneLineError(run)).toMatch(pattern);
    }
    for (const command of ['stats', 'dead', 'replay', 'purge']) {
      const run = await runCli(['mq', command, 'nosuch']);
      expect(run.code, command).toBe(1);
      expect(oneLineError(run)).toMatch(
        new RegExp(`^ipckit mq ${command}: message queue 'nosuch' does not exist \\(ERR_IPC_NOT_FOUND\\)$`),
      );
    }
    expect(await runCliJson(['ls', '--json'])).toEqual([]);
  });

  it.skipIf(!existsSync('/dev/full'))(
    'receive acknowledges only what it could print: output to a full disk leaves the message to come back',
    async () => {
      expect((await runCli(['mq', 'send', 'jobs', '{"n":1}'])).code).toBe(0);
      const full = openSync('/dev/full', 'w');
      try {
        const child = spawn(
          process.execPath,
          [BIN, 'mq', 'receive', 'jobs', '--lease', '200', '--timeout', '10000'],
          {
            stdio: ['ignore', full, 'pipe'],
          },
        );
        let stderr = '';
        child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
          stderr += chunk;
        });
        const [code] = await watchdog(once(child, 'close'), 30_000, 'mq receive to exit');
        expect(code).toBe(1);
        expect(stderr).toMatch(/ENOSPC/);
      } finally {
        closeSync(full);
      }
      const again = await runCliJson<MessageJson>(['mq', 'receive', 'jobs', '--json', '--timeout', '10000']);
      // Delivered before (a lease this short may also run out once before the hand-over).
      expect(again.body).toEqual({ n: 1 });
      expect(again.attempts).toBeGreaterThan(1);
    },
  );

  it('a queue whose file was removed by hand is ERR_IPC_NOT_FOUND, not made again empty', async () => {
    expect((await runCli(['mq', 'send', 'gone', '1'])).code).toBe(0);
    const [entry] = await runCliJson<{ kind: string; path: string }[]>(['ls', '--json']);
    expect(entry!.kind).toBe('queue');
    rmSync(entry!.path);
    for (const command of ['stats', 'dead', 'replay', 'purge']) {
      const run = await runCli(['mq', command, 'gone']);
      expect(run.code, command).toBe(1);
      expect(oneLineError(run)).toMatch(
        new RegExp(
          `^ipckit mq ${command}: message queue 'gone' does not exist: its file .* is gone \\(ERR_IPC_NOT_FOUND\\)$`,
        ),
      );
    }
    expect(existsSync(entry!.path)).toBe(false);
  });
});
