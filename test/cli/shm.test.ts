import { existsSync, mkdtempSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCodes, ensureRuntimeDir, isIpcError, SharedMemory } from '../../src/index.js';
import { isolateRuntimeDir } from '../helpers.js';
import { runCli, runCliJson } from './run-cli.js';

let runtime: ReturnType<typeof isolateRuntimeDir>;
beforeEach(() => {
  runtime = isolateRuntimeDir();
});
afterEach(() => {
  for (const name of ['frames', 'kept']) {
    try {
      SharedMemory.unlink(name);
    } catch {}
  }
  runtime.cleanup();
});

/** One line on stderr, nothing on stdout; returns the line. */
function oneLineError(run: { stdout: string; stderr: string }): string {
  expect(run.stdout).toBe('');
  const lines = run.stderr.split('\n').filter((line) => line !== '');
  expect(lines).toHaveLength(1);
  return lines[0]!;
}

interface DumpJson {
  kind: string;
  name: string;
  size: number;
  offset: number;
  length: number;
  encoding: string;
  data: string;
}

// Each case runs the binary several times, one after the other: seconds each on a loaded machine.
describe('ipckit shm', { timeout: 240_000 }, () => {
  it('create makes a segment that outlives the command; dump shows what a program wrote; rm removes it', async () => {
    const created = await runCliJson<{ kind: string; name: string; size: number }>([
      'shm',
      'create',
      'frames',
      '--size',
      '4k',
      '--json',
    ]);
    expect(created).toMatchObject({ kind: 'shm', name: 'frames', size: 4096 });

    // The CLI process has exited; the segment is still there, and this process writes into it.
    const segment = SharedMemory.open('frames');
    expect(segment.size).toBe(4096);
    new Uint8Array(segment.buffer).set(new TextEncoder().encode('Hello, shm!'), 0x20);
    new Uint8Array(segment.buffer)[4095] = 0xff;
    segment.close();

    const text = await runCli(['shm', 'dump', 'frames', '--offset', '0x20', '--length', '16']);
    expect(text.code).toBe(0);
    expect(text.stdout).toBe('00000020: 4865 6c6c 6f2c 2073 686d 2100 0000 0000  Hello, shm!.....\n');

    const hex = await runCliJson<DumpJson>([
      'shm',
      'dump',
      'frames',
      '--offset',
      '32',
      '--length',
      '11',
      '--json',
      '--encoding',
      'hex',
    ]);
    expect(hex).toEqual({
      kind: 'shm',
      name: 'frames',
      size: 4096,
      offset: 32,
      length: 11,
      encoding: 'hex',
      data: Buffer.from('Hello, shm!').toString('hex'),
    });
    const whole = await runCliJson<DumpJson>(['shm', 'dump', 'frames', '--json']);
    const bytes = Buffer.from(whole.data, 'base64');
    expect(whole.length).toBe(4096);
    expect(bytes.length).toBe(4096);
    expect(bytes.subarray(0x20, 0x2b).toString()).toBe('Hello, shm!');
    expect(bytes[4095]).toBe(0xff);

    // Zero lines between the text and the last byte are folded into one '*', as xxd -a does.
    const folded = await runCli(['shm', 'dump', 'frames']);
    expect(folded.stdout.split('\n').filter(Boolean)).toEqual([
      '00000000: 0000 0000 0000 0000 0000 0000 0000 0000  ................',
      '*',
      '00000020: 4865 6c6c 6f2c 2073 686d 2100 0000 0000  Hello, shm!.....',
      '00000030: 0000 0000 0000 0000 0000 0000 0000 0000  ................',
      '*',
      '00000ff0: 0000 0000 0000 0000 0000 0000 0000 00ff  ................',
    ]);

    const rm = await runCli(['shm', 'rm', 'frames']);
    expect(rm.code).toBe(0);
    let openError: unknown;
    try {
      SharedMemory.open('frames');
    } catch (err) {
      openError = err;
    }
    expect(isIpcError(openError, ErrorCodes.NOT_FOUND)).toBe(true);
    expect(await runCliJson(['ls', '--json'])).toEqual([]);
  });

  it('a segment made by the CLI is kept by gc although its creator exited, unless gc is given --kept', async () => {
    expect((await runCli(['shm', 'create', 'kept', '--size', '64'])).code).toBe(0);
    const gc = await runCliJson<{ removed: unknown[] }>(['gc', '--json']);
    expect(gc.removed).toEqual([]);
    SharedMemory.open('kept').close();

    const forced = await runCliJson<{ removed: { kind: string; name: string }[] }>([
      'gc',
      '--kept',
      '--json',
    ]);
    expect(forced.removed.map((r) => `${r.kind} ${r.name}`)).toEqual(['shm kept']);
  });

  it('create respects --mode; missing segments and bad arguments fail with one line', async () => {
    expect((await runCli(['shm', 'create', 'frames', '--size', '1', '--mode', '640'])).code).toBe(0);

    const exists = await runCli(['shm', 'create', 'frames', '--size', '1']);
    expect(exists.code).toBe(1);
    expect(oneLineError(exists)).toMatch(/^ipckit shm create: .*ERR_IPC_EXISTS/);

    const missing = await runCli(['shm', 'dump', 'nothing']);
    expect(missing.code).toBe(1);
    expect(oneLineError(missing)).toMatch(/^ipckit shm dump: .*ERR_IPC_NOT_FOUND/);
    expect((await runCli(['shm', 'rm', '--force', 'nothing'])).code).toBe(0);

    const cases: [string[], RegExp][] = [
      [['shm', 'create', 'x'], /^ipckit shm create: required option '-s, --size <bytes>' not specified/],
      [['shm', 'create', 'x', '--size', '0'], /^ipckit shm create: option .*--size.* is invalid/],
      [['shm', 'create', 'x', '--size', '12q'], /^ipckit shm create: option .*--size.* is invalid/],
      [
        ['shm', 'create', 'x', '--size', '99999G'],
        /^ipckit shm create: option .*--size.* is invalid.*at most/,
      ],
      [['shm', 'create', '../x', '--size', '8'], /^ipckit shm create: .*ERR_IPC_INVALID_NAME/],
      [['shm', 'dump', 'frames', '--offset', '-1'], /^ipckit shm dump: option .*--offset.* is invalid/],
      [
        ['shm', 'dump', 'frames', '--offset', '2'],
        /^ipckit shm dump: --offset 2 is past the end of 'frames' \(1 bytes\)/,
      ],
      [
        ['shm', 'dump', 'frames', '--json', '--encoding', 'utf8'],
        /^ipckit shm dump: option .*--encoding.* argument 'utf8' is invalid/,
      ],
    ];
    for (const [args, pattern] of cases) {
      const run = await runCli(args);
      expect(run.code, args.join(' ')).toBe(2);
      expect(oneLineError(run)).toMatch(pattern);
    }
  });

  it('a create that fails (an unsafe .kept) leaves no segment behind', async () => {
    const outside = mkdtempSync(join(dirname(runtime.dir), 'kept-'));
    ensureRuntimeDir();
    symlinkSync(outside, join(runtime.dir, '.kept'));
    const created = await runCli(['shm', 'create', 'kept', '--size', '1']);
    expect(created.code).toBe(1);
    expect(oneLineError(created)).toMatch(/^ipckit shm create: .*ERR_IPC_UNSAFE_PATH/);
    // Not kept, it would have been collected by gc as its creator exited, under a name taken meanwhile.
    let error: unknown;
    try {
      SharedMemory.open('kept').close();
    } catch (err) {
      error = err;
    }
    expect(isIpcError(error, ErrorCodes.NOT_FOUND)).toBe(true);
    expect(readdirSync(outside)).toEqual([]);
  });

  it('rm of an invalid name removes nothing, not even a file its kept-mark path would lead to', async () => {
    // `.kept` exists once a segment has been made and kept.
    expect((await runCli(['shm', 'create', 'kept', '--size', '1'])).code).toBe(0);
    // `.kept/shm.<name>.json` for this name leads out of the runtime directory, to victim.json
    // beside it (the runtime directory is <base>/rt).
    const victim = join(dirname(runtime.dir), 'victim.json');
    writeFileSync(victim, '{}');
    const run = await runCli(['shm', 'rm', 'x/../../../victim']);
    expect(run.code).toBe(2);
    expect(oneLineError(run)).toMatch(/^ipckit shm rm: .*ERR_IPC_INVALID_NAME/);
    expect(existsSync(victim)).toBe(true);
    // The kept segment is untouched too.
    expect(
      (await runCliJson<{ kind: string; kept: boolean }[]>(['ls', '--json'])).map((e) => e.kept),
    ).toEqual([true]);
  });
});
