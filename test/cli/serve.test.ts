import { spawn } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { connect, listResources } from '../../src/index.js';
import { isolateRuntimeDir, watchdog } from '../helpers.js';
import { killAll, startFixture } from '../sync/children.js';
import { BIN, runCli, runCliJson } from './run-cli.js';

let runtime: ReturnType<typeof isolateRuntimeDir>;
beforeEach(() => {
  runtime = isolateRuntimeDir();
  // The sockets of these tests live in the runtime directory, which nothing has created yet.
  mkdirSync(runtime.dir, { recursive: true, mode: 0o700 });
});
afterEach(async () => {
  await killAll();
  runtime.cleanup();
});

/** Starts `ipckit serve ...args` and resolves once it prints its ready line. */
async function startServe(args: string[]) {
  const server = startFixture('ipckit serve', [], {
    command: process.execPath,
    argv: [BIN, 'serve', ...args],
  });
  const ready = await server.line('listening on ', 30_000);
  return { server, ready };
}

/** One line on stderr, nothing on stdout; returns the line. */
function oneLineError(run: { stdout: string; stderr: string }): string {
  expect(run.stdout).toBe('');
  const lines = run.stderr.split('\n').filter((line) => line !== '');
  expect(lines).toHaveLength(1);
  return lines[0]!;
}

// Each case runs the binary several times, one after the other: seconds each on a loaded machine.
describe('ipckit serve and call', { timeout: 240_000 }, () => {
  it('call gets replies from serve over unix://; SIGTERM closes it gracefully, exit 0, socket file gone', async () => {
    const path = join(runtime.dir, 'demo.sock');
    const url = `unix://${path}`;
    const { server, ready } = await startServe([url]);
    expect(ready).toBe(`listening on ${url} (methods: echo, ping; echoing messages)`);
    expect(existsSync(path)).toBe(true);

    const echo = await runCli(['call', url, 'echo', '{"hello":["world",1]}']);
    expect(echo.code).toBe(0);
    expect(echo.stdout).toBe('{"hello":["world",1]}\n');
    expect(await runCliJson(['call', url, 'echo', '"text"', '--json'])).toBe('text');
    const text = await runCli(['call', url, 'echo', '"plain text"']);
    expect(text.stdout).toBe('plain text\n');
    const ping = await runCliJson<{ pong: boolean; pid: number }>(['call', url, 'ping', '--json']);
    expect(ping).toMatchObject({ pong: true, pid: server.pid });

    // A remote failure: the server's code and message, exit code 1.
    const missing = await runCli(['call', url, 'nosuch', '{}']);
    expect(missing.code).toBe(1);
    expect(oneLineError(missing)).toMatch(
      /^ipckit call: the server failed 'nosuch': .*no handler.*\(ERR_IPC_NOT_FOUND\)$/,
    );

    // Messages on a connection are echoed back; a program is a client like any other.
    const client = await connect<unknown>(url, { timeout: 15_000 });
    try {
      await client.send({ seq: 1 });
      expect(await client.receive({ timeout: 15_000 })).toEqual({ seq: 1 });
    } finally {
      await client.close();
    }
    await server.line('- connection 6 ended', 15_000);
    const log = server.output();
    expect(log).toMatch(/^\+ connection 1 \(unix, pid \d+/m);
    expect(log).toMatch(/^ {2}request 1 on connection 1: echo \{"hello":\["world",1\]\}$/m);
    expect(log).toMatch(/^ {2}message on connection 6: \{"seq":1\}$/m);

    server.child.kill('SIGTERM');
    const exit = await watchdog(server.exited, 30_000, 'serve to stop after SIGTERM');
    expect(exit).toEqual({ code: 0, signal: null });
    expect(server.output()).toMatch(/^SIGTERM: closing .*\nclosed$/m);
    expect(existsSync(path)).toBe(false);
  });

  it('--upper upper-cases the strings of replies and echoed messages', async () => {
    const url = `unix://${join(runtime.dir, 'upper.sock')}`;
    const { server } = await startServe([url, '--upper']);
    const run = await runCli(['call', url, 'echo', '{"greeting":"hello","n":1}']);
    expect(run.stdout).toBe('{"greeting":"HELLO","n":1}\n');
    server.child.kill('SIGINT');
    expect(await watchdog(server.exited, 30_000, 'serve to stop after SIGINT')).toEqual({
      code: 0,
      signal: null,
    });
  });

  it('bad command lines exit 2 with one line; an unreachable server exits 1', async () => {
    const cases: [string[], RegExp][] = [
      [['serve', 'http://example.com'], /^ipckit serve: url: unknown scheme 'http:\/\/'/],
      [
        ['serve', 'unix:///tmp/x.sock', '--echo', '--upper'],
        /^ipckit serve: option '--echo' cannot be used with option '--upper'/,
      ],
      [['call', 'tcp://localhost', 'echo'], /^ipckit call: url: tcp:\/\/ needs host:port/],
      [['call', 'unix:///tmp/x.sock'], /^ipckit call: missing required argument 'method'/],
      // Checked before connecting (nobody listens there): a usage error, not a failed call.
      [['call', 'unix:///tmp/x.sock', ''], /^ipckit call: method must be 1\.\.255 bytes of UTF-8, got 0/],
      [['call', 'unix:///tmp/x.sock', 'm'.repeat(256)], /^ipckit call: method must be 1\.\.255 bytes/],
      [
        ['call', 'unix:///tmp/x.sock', 'echo', '{nope'],
        /^ipckit call: the params argument is not valid JSON/,
      ],
      [
        ['call', 'unix:///tmp/x.sock', 'echo', '--timeout', 'x'],
        /^ipckit call: option .*--timeout.* is invalid/,
      ],
    ];
    for (const [args, pattern] of cases) {
      const run = await runCli(args);
      expect(run.code, args.join(' ')).toBe(2);
      expect(oneLineError(run)).toMatch(pattern);
    }
    const nobody = await runCli(['call', `unix://${join(runtime.dir, 'nobody.sock')}`, 'ping']);
    expect(nobody.code).toBe(1);
    expect(oneLineError(nobody)).toMatch(/^ipckit call: .*\(ERR_IPC_NOT_FOUND\)$/);
  });

  it('a reader that stops early (`| head -1`) closes the server as a signal does: socket file and entry gone, exit 0', async () => {
    const path = join(runtime.dir, 'early.sock');
    const url = `unix://${path}`;
    const child = spawn(process.execPath, [BIN, 'serve', url], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      const exited = new Promise<[number | null, string | null]>((resolve) =>
        child.once('exit', (code, signal) => resolve([code, signal])),
      );
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
        stderr += chunk;
      });
      // The first line, as `head -1` reads it; then the reader goes away.
      let stdout = '';
      const first = new Promise<string>((resolve) => {
        child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
          stdout += chunk;
          if (stdout.includes('\n')) resolve(stdout.slice(0, stdout.indexOf('\n')));
        });
      });
      expect(await watchdog(first, 30_000, 'serve to print its first line')).toMatch(/^listening on /);
      child.stdout.destroy();
      // The server's next line, for this connection, finds no reader.
      await runCli(['call', url, 'ping', '--timeout', '5000']);
      expect(await watchdog(exited, 30_000, 'serve to end once its reader is gone')).toEqual([0, null]);
      expect(stderr).toBe('');
      expect(existsSync(path)).toBe(false);
      expect(listResources()).toEqual([]);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('serve refuses a non-loopback TCP address without a token, as the library does', async () => {
    const run = await runCli(['serve', 'tcp://0.0.0.0:0'], { env: { IPCKIT_TOKEN: '' } });
    expect(run.code).toBe(1);
    expect(oneLineError(run)).toMatch(
      /^ipckit serve: .*refusing to listen on a non-loopback address.*\(ERR_IPC_AUTH\)$/,
    );
  });
});
