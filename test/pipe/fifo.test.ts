import { execFile, spawn as nodeSpawn, spawnSync } from 'node:child_process';
import {
  closeSync,
  constants,
  existsSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { crc32 } from 'node:zlib';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ErrorCodes, Fifo, type FifoOptions, listResources } from '../../src/index.js';
import { native } from '../../src/native/binding.js';
import { createSplitter, PIPE_BUF, wireBytes } from '../../src/pipe/fifo-format.js';
import { FrameAssembler } from '../../src/pipe/fifo-frame-assembler.js';
import {
  chunkedWire,
  FIRST,
  type FrameWriter,
  crc32 as frameCrc32,
  SINGLE_CHUNK_PAYLOAD,
  tableCrc32,
  writeHeader,
} from '../../src/pipe/fifo-frames.js';
import { fixtureArgs, isolateRuntimeDir, isPending, openFdCount, rejectionOf, watchdog } from '../helpers.js';

const run = promisify(execFile);
let env: ReturnType<typeof isolateRuntimeDir>;
beforeEach(() => {
  env = isolateRuntimeDir();
});
afterEach(() => env.cleanup());

function whyNoStrace(): string | undefined {
  const probe = spawnSync('strace', ['-f', '-qq', '-o', '/dev/null', 'true']);
  if (probe.error) return 'strace is not installed (apt-get install strace)';
  if (probe.status !== 0) return `strace cannot trace here: ${probe.stderr?.toString().trim()}`;
  return undefined;
}
const noStrace = whyNoStrace();

/** The first chunk (PIPE_BUF bytes) of a message that declares `total` bytes, from `writer`. */
function firstChunkOf(total: number, writer: FrameWriter): Buffer {
  const chunk = Buffer.alloc(PIPE_BUF);
  writeHeader(chunk, 0, FIRST, SINGLE_CHUNK_PAYLOAD, writer);
  chunk.writeUInt32BE(total, 13);
  return chunk;
}

/** A FrameAssembler that records what it delivers and reports; `writeBack` says where barriers go. */
function assembler(max: number, writeBack: (chunk: Buffer) => boolean) {
  const frames: Buffer[] = [];
  const errors: { code: string; message: string }[] = [];
  let onError: (() => void) | undefined;
  const asm = new FrameAssembler('t', max, {
    frame: (payload) => frames.push(Buffer.from(payload)),
    error: (err) => {
      errors.push(err as unknown as { code: string; message: string });
      onError?.();
    },
    writeBack,
  });
  const reported = () =>
    errors.length > 0 ? Promise.resolve() : new Promise<void>((resolve) => (onError = resolve));
  return { asm, frames, errors, reported };
}

/**
 * Starts test/fixtures/fifo-write-partial-then-wait.ts: it writes a whole message, then `chunks`
 * chunks of one declaring `total` bytes, and waits to be killed. `partial` resolves once it has.
 */
function startPartialWriter(fifo: string, total: number, chunks: number) {
  const child = nodeSpawn(
    process.execPath,
    fixtureArgs('fifo-write-partial-then-wait.ts', fifo, String(total), String(chunks)),
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const partial = new Promise<void>((resolve) =>
    child.stdout.on('data', (data) => String(data).includes('partial') && resolve()),
  );
  return { child, exited, partial };
}

/** A pid no process can have: above Linux's highest pid_max (2^22). */
const NO_SUCH_PID = 0x40_0001;

/** Checks a frame written by fifo-frames-writer.ts; returns "writer:seq" or throws if torn. */
function checkFrame(frame: Uint8Array, size: number): string {
  const bytes = Buffer.from(frame);
  expect(bytes.length).toBe(size);
  const writer = bytes[0]!;
  const seq = bytes.readUInt32BE(1);
  for (let i = 5; i < size; i++) {
    if (bytes[i] !== ((writer * 31 + seq + i) & 0xff))
      throw new Error(`torn frame ${writer}:${seq} at byte ${i}`);
  }
  return `${writer}:${seq}`;
}

describe('Fifo', () => {
  it('reassembles a stream of chunks however the reads cut it (seeded property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 3 * PIPE_BUF }), { minLength: 1, maxLength: 12 }),
        fc.array(fc.integer({ min: 1, max: 2 * PIPE_BUF + 100 }), { minLength: 1, maxLength: 40 }),
        (sizes, cuts) => {
          const messages = sizes.map((size, i) => Buffer.alloc(size, i + 1));
          const wire = Buffer.concat(messages.map((m) => wireBytes('frames', m)));
          const { asm, frames, errors } = assembler(1 << 20, () => false);
          for (let at = 0, i = 0; at < wire.length; i++) {
            const length = cuts[i % cuts.length]!;
            asm.push(wire.subarray(at, at + length));
            at += length;
          }
          asm.close();
          expect(errors).toEqual([]);
          // Lengths, then bytes with Buffer.equals: toEqual walked every byte of every run's 150 KB
          // generically, and took 16–64 s of this test in CI (over the 60 s timeout once).
          expect(frames.map((frame) => frame.length)).toEqual(messages.map((m) => m.length));
          expect(frames.every((frame, i) => frame.equals(messages[i]!))).toBe(true);
        },
      ),
      { seed: 20261127, numRuns: 200 },
    );
  });

  it('creates a FIFO 0600 in the runtime dir, registered with its creator, and refuses a duplicate', async () => {
    const path = await Fifo.create('logs');
    expect(path).toBe(Fifo.path('logs'));
    expect(path.startsWith(env.dir)).toBe(true);
    expect(lstatSync(path).isFIFO()).toBe(true);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const entry = listResources().find((r) => r.kind === 'fifo' && r.name === 'logs');
    expect(entry?.owner.pid).toBe(process.pid);
    expect(entry?.ownerAlive).toBe(true);
    await expect(Fifo.create('logs')).rejects.toMatchObject({ code: ErrorCodes.EXISTS });
    await Fifo.unlink('logs');
    expect(listResources().some((r) => r.name === 'logs')).toBe(false);
    await expect(Fifo.unlink('logs')).rejects.toMatchObject({ code: ErrorCodes.NOT_FOUND });
  });

  it('refuses a mode that is not a number with a TypeError, one out of range with a RangeError', async () => {
    let created: Promise<string> | undefined;
    expect(() => {
      created = Fifo.create('typed', { mode: 'x' as never });
    }).not.toThrow();
    await expect(created).rejects.toThrow(TypeError);
    await expect(Fifo.create('typed', { mode: 'x' as never })).rejects.toThrow(/options\.mode/);
    await expect(Fifo.create('typed', { mode: 0o1000 })).rejects.toThrow(RangeError);
    await expect(Fifo.create('typed', { mode: 1.5 })).rejects.toThrow(RangeError);
    expect(listResources().filter((r) => r.name === 'typed')).toEqual([]);
  });

  it('refuses a path with a NUL in it, which the kernel would cut short and make elsewhere', async () => {
    const target = join(env.dir, 'target');
    await expect(Fifo.create({ path: `${target}\0.ignored` })).rejects.toThrow(/NUL/);
    await expect(Fifo.create({ path: `${env.dir}/sub\0/../../escaped` })).rejects.toThrow(TypeError);
    expect(existsSync(target)).toBe(false);
    expect(existsSync(join(env.dir, '..', 'escaped'))).toBe(false);
  });

  it('applies an explicit mode exactly, whatever the umask', async () => {
    const old = process.umask(0o077);
    try {
      const path = await Fifo.create('shared', { mode: 0o640 });
      expect(statSync(path).mode & 0o777).toBe(0o640);
    } finally {
      process.umask(old);
    }
  });

  it("'lines' receives what shell tools write, one message per line", async () => {
    await Fifo.create('shell');
    const receiver = await Fifo.receiver<string>('shell', { format: 'lines' });
    await run('sh', ['-c', `echo hello > "$0"; printf 'two\\nthree\\n' > "$0"`, Fifo.path('shell')]);
    const lines = [];
    for (let i = 0; i < 3; i++) lines.push(await watchdog(receiver.receive(), 5000, `line ${i}`));
    expect(lines).toEqual(['hello', 'two', 'three']);
    await receiver.close();
  });

  it("'lines' ends a line at \\r\\n as at \\n, and refuses to send a line ending in \\r", async () => {
    await Fifo.create('crlf');
    const receiver = await Fifo.receiver<string>('crlf', { format: 'lines' });
    await run('sh', ['-c', `printf 'dos\\r\\nunix\\n\\r\\nin\\rside\\n' > "$0"`, Fifo.path('crlf')]);
    const lines = [];
    for (let i = 0; i < 4; i++) lines.push(await watchdog(receiver.receive(), 5000, `line ${i}`));
    expect(lines).toEqual(['dos', 'unix', '', 'in\rside']);
    const sender = await Fifo.sender<string>('crlf', { format: 'lines', timeout: 5000 });
    await expect(sender.send('trailing\r')).rejects.toMatchObject({ code: ErrorCodes.INVALID_MESSAGE });
    await sender.close();
    await receiver.close();
  });

  it("'lines' sender output is readable by cat, and a line containing a newline is refused", async () => {
    await Fifo.create('out');
    const reader = run('sh', ['-c', 'head -n 2 "$0"', Fifo.path('out')]);
    const sender = await Fifo.sender<string>('out', { format: 'lines', timeout: 5000 });
    await expect(sender.send('a\nb')).rejects.toMatchObject({ code: ErrorCodes.INVALID_MESSAGE });
    await sender.send('first');
    await sender.send('second');
    await sender.close();
    expect((await watchdog(reader, 5000, 'head')).stdout).toBe('first\nsecond\n');
  });

  it("'lines' delivers every line as sent, one that starts with U+FEFF too", async () => {
    await Fifo.create('exact');
    const receiver = await Fifo.receiver<string>('exact', { format: 'lines' });
    const sender = await Fifo.sender<string>('exact', { format: 'lines', timeout: 5000 });
    const sent = ['\ufeffmarked', '', 'é 😀'];
    for (const line of sent) await sender.send(line);
    const lines = [];
    for (let i = 0; i < sent.length; i++) lines.push(await watchdog(receiver.receive(), 5000, `line ${i}`));
    expect(lines).toEqual(sent);
    await sender.close();
    await receiver.close();
  });

  it("'lines' reports a line over maxMessageBytes and resumes at the next line", async () => {
    await Fifo.create('long');
    const receiver = await Fifo.receiver<string>('long', { format: 'lines', maxMessageBytes: 10 });
    await run('sh', ['-c', `printf 'ok\\n%s\\nafter\\n' "$1" > "$0"`, Fifo.path('long'), 'z'.repeat(5000)]);
    expect(await watchdog(receiver.receive(), 5000, 'ok')).toBe('ok');
    await expect(receiver.receive()).rejects.toMatchObject({ code: ErrorCodes.FRAME_TOO_LARGE });
    expect(await watchdog(receiver.receive(), 5000, 'after')).toBe('after');
    await receiver.close();
  });

  it("'lines' joins a line that took many reads, from a read buffer reused for each", () => {
    const lines: string[] = [];
    const splitter = createSplitter('lines', 'test', 1 << 20, {
      frame: (payload) => lines.push(Buffer.from(payload).toString()),
      error: (err) => {
        throw err;
      },
    });
    const reads = Buffer.alloc(4);
    for (const piece of ['abcd', 'efgh', 'ij\nk', 'lmno', 'p\n']) {
      reads.write(piece);
      splitter.push(reads.subarray(0, piece.length));
    }
    expect(lines).toEqual(['abcdefghij', 'klmnop']);
  });

  it("'bytes' passes raw chunks through", async () => {
    await Fifo.create('raw');
    const receiver = await Fifo.receiver<Uint8Array>('raw', { format: 'bytes' });
    await run('sh', ['-c', `printf 'abc' > "$0"`, Fifo.path('raw')]);
    const chunk = await watchdog(receiver.receive(), 5000, 'chunk');
    expect(Buffer.from(chunk).toString()).toBe('abc');
    await receiver.close();
    await expect(Fifo.receiver('raw', { format: 'bytes', codec: 'json' })).rejects.toThrow(/options.codec/);
  });

  it("'bytes' receives no chunk larger than maxMessageBytes: a longer read arrives in pieces", async () => {
    await Fifo.create('bounded');
    const receiver = await Fifo.receiver<Uint8Array>('bounded', { format: 'bytes', maxMessageBytes: 16 });
    const text = 'abcdefghijklmnopqrstuvwxyz0123456789'.repeat(3);
    await run('sh', ['-c', 'printf %s "$1" > "$0"', Fifo.path('bounded'), text]);
    const pieces: Uint8Array[] = [];
    let bytes = 0;
    while (bytes < text.length) {
      const piece = await watchdog(receiver.receive(), 5000, 'piece');
      pieces.push(piece);
      bytes += piece.byteLength;
    }
    expect(Math.max(...pieces.map((piece) => piece.byteLength))).toBeLessThanOrEqual(16);
    expect(Buffer.concat(pieces).toString()).toBe(text);
    await receiver.close();
  });

  it("'bytes': a sender may refill its Buffer as soon as send resolves", async () => {
    await Fifo.create('reuse');
    const receiver = await Fifo.receiver<Uint8Array>('reuse', { format: 'bytes' });
    const sender = await Fifo.sender<Uint8Array>('reuse', { format: 'bytes' });
    // Larger than PIPE_BUF, so a write is queued as it is rather than copied into a small group;
    // the pipe (64 KiB) is full after the first, so the later ones wait in the sender's queue.
    const buffer = Buffer.alloc(64 * 1024);
    const rounds = 4;
    for (let round = 1; round <= rounds; round++) {
      buffer.fill(round);
      await sender.send(buffer);
    }
    const closed = sender.close();
    const chunks: Buffer[] = [];
    let bytes = 0;
    while (bytes < rounds * buffer.byteLength) {
      const chunk = await watchdog(receiver.receive(), 5000, 'chunk');
      chunks.push(Buffer.from(chunk));
      bytes += chunk.byteLength;
    }
    await closed;
    const all = Buffer.concat(chunks);
    expect(all.byteLength).toBe(rounds * buffer.byteLength);
    for (let round = 1; round <= rounds; round++) {
      const part = all.subarray((round - 1) * buffer.byteLength, round * buffer.byteLength);
      expect(part.every((byte) => byte === round)).toBe(true);
    }
    await receiver.close();
  });

  it('frames up to PIPE_BUF from 4 concurrent writer processes never interleave and none is lost', async () => {
    await Fifo.create('many');
    const receiver = await Fifo.receiver<Uint8Array>('many', { codec: 'raw' });
    const writers = [1, 2, 3, 4].map((id) =>
      run(process.execPath, fixtureArgs('fifo-frames-writer.ts', 'many', String(id), '500', '1000'), {
        env: process.env,
      }),
    );
    const seen = new Set<string>();
    for (let i = 0; i < 2000; i++)
      seen.add(checkFrame(await watchdog(receiver.receive(), 30_000, `frame ${i}`), 1000));
    await Promise.all(writers);
    expect(seen.size).toBe(2000);
    await receiver.close();
  });

  it('large messages from concurrent writer processes all arrive whole, exactly once', async () => {
    await Fifo.create('big');
    const size = 150_000; // 37 chunks each
    const perWriter = 10;
    const receiver = await Fifo.receiver<Uint8Array>('big', { codec: 'raw', maxMessageBytes: 1 << 24 });
    const writers = [1, 2, 3].map((id) =>
      run(
        process.execPath,
        fixtureArgs('fifo-frames-writer.ts', 'big', String(id), String(perWriter), String(size)),
        { env: process.env },
      ),
    );
    const seen: string[] = [];
    // Any error (a torn or reported message) rejects the receive and fails the test.
    for (let i = 0; i < 3 * perWriter; i++)
      seen.push(checkFrame(await watchdog(receiver.receive(), 30_000, `message ${i}`), size));
    await Promise.all(writers);
    expect(new Set(seen).size).toBe(3 * perWriter);
    await expect(receiver.receive({ timeout: 50 })).rejects.toMatchObject({ code: ErrorCodes.TIMEOUT });
    await receiver.close();
  });

  it('a writer killed in the middle of a large message: later writers get through, the cut message is reported', async () => {
    await Fifo.create('killed');
    const receiver = await Fifo.receiver<Uint8Array>('killed', { codec: 'raw', maxMessageBytes: 1 << 24 });
    // The writer's message declares 16 MiB; it writes 8 chunks (32 KiB) of it, then waits.
    const { child, exited, partial } = startPartialWriter('killed', 16 << 20, 8);
    try {
      await watchdog(partial, 20_000, 'the writer wrote part of its message');
      const first = await watchdog(receiver.receive(), 5000, 'the complete message before the cut');
      expect([...first]).toEqual([7]);
      child.kill('SIGKILL');
      await watchdog(exited, 5000, 'the writer exits when killed');
      const sender = await Fifo.sender<Uint8Array>('killed', { codec: 'raw', timeout: 5000 });
      await sender.send(new Uint8Array([1, 2, 3]));
      await sender.close();
      // The next writer's message and the report of the cut one, in either order.
      const results: string[] = [];
      while (results.length < 2) {
        try {
          const message = await watchdog(receiver.receive(), 10_000, 'message and truncation report');
          results.push(`message ${[...message].join(',')}`);
        } catch (err) {
          if ((err as { code?: string }).code !== ErrorCodes.BAD_FRAME) throw err;
          expect((err as Error).message).toMatch(
            new RegExp(
              `of ${16 << 20} bytes from process ${child.pid} was cut off after \\d+ bytes \\(its writer died\\)`,
            ),
          );
          results.push('cut off');
        }
      }
      expect(results.sort()).toEqual(['cut off', 'message 1,2,3']);
      await expect(receiver.receive({ timeout: 50 })).rejects.toMatchObject({ code: ErrorCodes.TIMEOUT });
    } finally {
      child.kill('SIGKILL');
      await receiver.close();
    }
  });

  it('a large message sent right before process.exit() arrives whole, and so does the next', async () => {
    await Fifo.create('exiting');
    const receiver = await Fifo.receiver<Uint8Array>('exiting', { codec: 'raw', maxMessageBytes: 1 << 24 });
    const writer = run(process.execPath, fixtureArgs('fifo-send-large-then-exit.ts', 'exiting', '3000000'), {
      env: process.env,
    });
    const large = await watchdog(receiver.receive(), 30_000, 'the large message');
    expect(large.byteLength).toBe(3_000_000);
    expect(large.every((x) => x === 0x33)).toBe(true);
    expect([...(await watchdog(receiver.receive(), 5000, 'the next message'))]).toEqual([1]);
    await writer;
    await receiver.close();
  });

  it.skipIf(noStrace !== undefined)(
    `a write refused once, then retried by libuv, is not written again at process.exit()${noStrace ? ` (skipped: ${noStrace})` : ''}`,
    async () => {
      await Fifo.create('retried');
      const path = Fifo.path('retried');
      const receiver = await Fifo.receiver<Uint8Array>('retried', { codec: 'raw' });
      const trace = join(env.dir, 'strace.txt');
      // -P: only the FIFO's syscalls are traced and counted, so its second write(2) is M2's.
      const writer = run(
        'strace',
        [
          '-qq',
          '-o',
          trace,
          '-P',
          path,
          '-e',
          'trace=write',
          '-e',
          'inject=write:error=EAGAIN:when=2',
          '-e',
          'signal=none',
          process.execPath,
          ...fixtureArgs('fifo-send-then-exit-mid-write.ts', 'retried'),
        ],
        { env: process.env },
      );
      await watchdog(writer, 30_000, 'the writer exits');
      expect(readFileSync(trace, 'utf8')).toMatch(/EAGAIN.*INJECTED/);
      // Every byte of the writer is in the FIFO now: a duplicate would arrive before 'end'.
      const sender = await Fifo.sender<Uint8Array>('retried', { codec: 'raw' });
      await sender.send(Buffer.from('end'));
      await sender.close();
      const received: string[] = [];
      while (received.at(-1) !== 'end') {
        received.push(Buffer.from(await watchdog(receiver.receive(), 5000, 'messages')).toString());
      }
      expect(received).toEqual(['M1', 'M2', 'end']);
      await receiver.close();
    },
  );

  it('a sender destroyed in the middle of a large message: the receiver reports it at once', async () => {
    await Fifo.create('destroyed');
    const receiver = await Fifo.receiver<Uint8Array>('destroyed', { codec: 'raw' });
    const quitter = await Fifo.sender<Uint8Array>('destroyed', { codec: 'raw' });
    await quitter.send(new Uint8Array(100_000).fill(1)); // accepted; its first chunk is written now
    quitter.destroy();
    await expect(watchdog(receiver.receive(), 5000, 'report')).rejects.toMatchObject({
      code: ErrorCodes.BAD_FRAME,
      message: expect.stringMatching(/of 100000 bytes from process \d+ was cut off .*sender was destroyed/),
    });
    const sender = await Fifo.sender<Uint8Array>('destroyed', { codec: 'raw' });
    await sender.send(new Uint8Array([9]));
    expect([...(await watchdog(receiver.receive(), 5000, 'next message'))]).toEqual([9]);
    await sender.close();
    await receiver.close();
  });

  it('a sender destroyed while its close() waits for a full pipe: that close() settles', async () => {
    await Fifo.create('stuck');
    // Reads one message and then stops reading: the pipe fills.
    const receiver = await Fifo.receiver<Uint8Array>('stuck', { codec: 'raw', receiveHighWaterMark: 1 });
    const sender = await Fifo.sender<Uint8Array>('stuck', { codec: 'raw' });
    // Accepted, not yet written: close() has no send to wait for, only the queued bytes.
    let accepted = 0;
    while (sender.trySend(new Uint8Array(64 * 1024))) accepted++;
    expect(accepted).toBeGreaterThan(1);
    const closing = sender.close();
    expect(await isPending(closing)).toBe(true);
    sender.destroy();
    await watchdog(closing, 5000, 'close() settles after destroy()');
    await receiver.close();
  });

  it('a sender whose reader went away before its last write: close() settles', async () => {
    await Fifo.create('left');
    const receiver = await Fifo.receiver<string>('left');
    const sender = await Fifo.sender<string>('left');
    await sender.send('a');
    expect(await watchdog(receiver.receive(), 5000, 'the first message')).toBe('a');
    await receiver.close();
    // Accepted into the group before the write meets EPIPE; close() waits for that write.
    const late = sender.send('b');
    await watchdog(sender.close(), 5000, 'close() settles');
    await late;
    expect((await rejectionOf(sender.send('c'))).code).toBe(ErrorCodes.CLOSED);
  });

  it('reassembles the interleaved chunks of several writers, each message whole', async () => {
    await Fifo.create('mixed');
    const receiver = await Fifo.receiver<Uint8Array>('mixed', { codec: 'raw' });
    const writerA = { pid: 1234, nonce: 1 };
    const writerB = { pid: 1234, nonce: 2 }; // same process, another sender
    const writerC = { pid: 4321, nonce: 1 };
    const a = Buffer.from(wireBytes('frames', new Uint8Array(30_000).fill(0xaa), writerA));
    const b = Buffer.from(wireBytes('frames', new Uint8Array(100).fill(0xbb), writerC));
    const c = Buffer.from(wireBytes('frames', new Uint8Array(10_000).fill(0xcc), writerB));
    expect(a.byteLength % PIPE_BUF).not.toBe(0);
    // Any order of whole chunks the kernel may produce from two writers' atomic writes.
    const fd = openSync(Fifo.path('mixed'), constants.O_WRONLY | constants.O_NONBLOCK);
    writeSync(fd, Buffer.concat([a.subarray(0, 4096), c.subarray(0, 4096), b, a.subarray(4096, 8192)]));
    writeSync(fd, Buffer.concat([c.subarray(4096), a.subarray(8192)]));
    closeSync(fd);
    const results: string[] = [];
    for (let i = 0; i < 3; i++) {
      const frame = Buffer.from(await watchdog(receiver.receive(), 5000, `message ${i}`));
      expect(frame.every((x) => x === frame[0])).toBe(true);
      results.push(`${frame[0]!.toString(16)}x${frame.length}`);
    }
    expect(results).toEqual(['bbx100', 'ccx10000', 'aax30000']);
    await receiver.close();
  });

  it('reports garbage, old-layout frames, a bad checksum, orphan chunks and abandoned messages, and goes on', async () => {
    await Fifo.create('cut');
    const receiver = await Fifo.receiver<Uint8Array>('cut', { codec: 'raw' });
    const writerA = { pid: 1234, nonce: 1 };
    const writerB = { pid: 5678, nonce: 1 };
    const small = (fill: number, writer = writerB) =>
      Buffer.from(wireBytes('frames', new Uint8Array(50).fill(fill), writer));
    const large = Buffer.from(wireBytes('frames', new Uint8Array(30_000).fill(0xaa), writerA));
    // The first 'frames' layout: magic c7 1f, length, CRC-32, payload.
    const oldPayload = Buffer.alloc(50, 0x11);
    const oldFrame = Buffer.alloc(10 + 50);
    oldFrame.set([0xc7, 0x1f]);
    oldFrame.writeUInt32BE(50, 2);
    oldFrame.writeUInt32BE(crc32(oldPayload), 6);
    oldPayload.copy(oldFrame, 10);
    const corrupt = small(0x99);
    corrupt[corrupt.length - 1] = 0x98;
    const fd = openSync(Fifo.path('cut'), constants.O_WRONLY | constants.O_NONBLOCK);
    writeSync(
      fd,
      Buffer.concat([
        Buffer.from('not an ipckit frame at all'),
        small(0xee),
        oldFrame,
        small(0xe1),
        corrupt,
        large.subarray(4096, 8192), // the middle of a message whose start never came
        large.subarray(0, 4096), // writer A begins a message ...
        small(0xdd, writerA), // ... and starts another before finishing it
      ]),
    );
    closeSync(fd);
    const results: string[] = [];
    while (results.length < 8) {
      try {
        const frame = Buffer.from(await watchdog(receiver.receive(), 5000, 'frames'));
        expect(frame.every((x) => x === frame[0])).toBe(true);
        results.push(`${frame[0]!.toString(16)}x${frame.length}`);
      } catch (err) {
        const { code, message } = err as { code: string; message: string };
        results.push(code === ErrorCodes.BAD_FRAME ? `bad: ${message.replace(/^fifo 'cut': /, '')}` : code);
      }
    }
    expect(results).toEqual([
      'bad: skipped bytes that are not an ipckit frame',
      'eex50',
      'bad: skipped bytes that are not an ipckit frame',
      'e1x50',
      'bad: skipped a message whose checksum does not match (corruption)',
      'bad: skipped part of a message from process 1234 whose beginning never arrived',
      'bad: a message of 30000 bytes from process 1234 was cut off after 4075 bytes (its writer started another message)',
      'ddx50',
    ]);
    await receiver.close();
  });

  it('messages in progress hold memory for the bytes received, not for the sizes they declare', () => {
    const { asm, errors } = assembler(1 << 24, () => true);
    const chunks = Array.from({ length: 64 }, (_, i) =>
      firstChunkOf(1 << 24, { pid: process.pid, nonce: i }),
    );
    const before = process.memoryUsage().arrayBuffers;
    for (const chunk of chunks) asm.push(chunk);
    const grown = process.memoryUsage().arrayBuffers - before;
    asm.close();
    expect(errors).toEqual([]);
    // 64 messages declaring 16 MiB each (1 GiB); each holds one 64 KiB buffer so far.
    expect(grown).toBeLessThan(16 << 20);
  });

  it('a message with no memory to hold it is reported, its other chunks skipped, and the next arrives', () => {
    const { asm, frames, errors } = assembler(1 << 24, () => true);
    const writer = { pid: process.pid, nonce: 7 };
    const large = chunkedWire(new Uint8Array(1 << 20).fill(1), writer);
    const next = Buffer.from(wireBytes('frames', new Uint8Array([2]), writer));
    const allocUnsafe = Buffer.allocUnsafe;
    const spy = vi.spyOn(Buffer, 'allocUnsafe').mockImplementation((size: number) => {
      if (size > 256 * 1024) throw new RangeError('Array buffer allocation failed');
      return allocUnsafe(size);
    });
    try {
      for (let at = 0; at < large.length; at += PIPE_BUF) asm.push(large.subarray(at, at + PIPE_BUF));
      asm.push(next);
    } finally {
      spy.mockRestore();
      asm.close();
    }
    expect(errors.map((e) => [e.code, e.message])).toEqual([
      [
        ErrorCodes.FRAME_TOO_LARGE,
        `t: skipped a message of ${1 << 20} bytes from process ${process.pid}: no memory to hold it`,
      ],
    ]);
    expect(frames.map((f) => [...f])).toEqual([[2]]);
  });

  it('skips a chunk header whose size no writer produces: the messages after it arrive', () => {
    const { asm, frames, errors } = assembler(1 << 24, () => true);
    const writer = { pid: process.pid, nonce: 1 };
    const small = (fill: number) => Buffer.from(wireBytes('frames', new Uint8Array(10).fill(fill), writer));
    // A middle chunk of 4093 bytes (not PIPE_BUF), a mark of 0 bytes, an abort of 2 bytes.
    const middle = Buffer.from([0xc7, 0xf2, 0x00, 0x0f, 0xf0, 1, 2, 3, 4, 5, 6, 7, 8]);
    const mark = Buffer.from([0xc7, 0xf2, 0x04, 0x00, 0x00, 1, 2, 3, 4, 5, 6, 7, 8]);
    const abort = Buffer.from([0xc7, 0xf2, 0x08, 0x00, 0x02, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0]);
    asm.push(Buffer.concat([middle, small(1), mark, small(2), abort, small(3)]));
    asm.close();
    expect(frames.map((f) => f[0])).toEqual([1, 2, 3]);
    expect(errors.map((e) => e.message)).toEqual(
      Array(3).fill('t: skipped bytes that are not an ipckit frame'),
    );
  });

  it("a receiver that stops reading (its queue full) does not take a dead writer's unread chunks for lost", () => {
    vi.useFakeTimers();
    try {
      // Barriers go into the pipe, behind the writer's last chunks, and cannot come back unread.
      const { asm, frames, errors } = assembler(1 << 24, () => true);
      const wire = chunkedWire(new Uint8Array(100_000).fill(3), { pid: NO_SUCH_PID, nonce: 1 });
      asm.push(wire.subarray(0, PIPE_BUF));
      asm.paused(true);
      vi.advanceTimersByTime(20_000);
      expect(errors).toEqual([]);
      asm.paused(false);
      for (let at = PIPE_BUF; at < wire.length; at += PIPE_BUF) asm.push(wire.subarray(at, at + PIPE_BUF));
      asm.close();
      expect(errors).toEqual([]);
      expect(frames.map((frame) => frame.length)).toEqual([100_000]);
    } finally {
      vi.useRealTimers();
    }
  });

  it('a dead writer is reported even when every barrier is read by another receiver', async () => {
    // Barriers are written (true) but never come back: another receiver of the FIFO takes them.
    const { asm, errors, reported } = assembler(1 << 24, () => true);
    asm.push(firstChunkOf(100_000, { pid: NO_SUCH_PID, nonce: 1 }));
    try {
      await watchdog(reported(), 15_000, 'the cut message is reported');
    } finally {
      asm.close();
    }
    expect(errors.map((e) => [e.code, e.message])).toEqual([
      [
        ErrorCodes.BAD_FRAME,
        `t: a message of 100000 bytes from process ${NO_SUCH_PID} was cut off after ${SINGLE_CHUNK_PAYLOAD} bytes (its writer died)`,
      ],
    ]);
  });

  it('two receivers on one FIFO: a writer killed after its first chunk is reported by the one holding it', async () => {
    await Fifo.create('two');
    const first = await Fifo.receiver<Uint8Array>('two', { codec: 'raw', maxMessageBytes: 1 << 24 });
    const second = await Fifo.receiver<Uint8Array>('two', { codec: 'raw', maxMessageBytes: 1 << 24 });
    const { child, exited, partial } = startPartialWriter('two', 1 << 20, 1);
    try {
      await watchdog(partial, 20_000, 'the writer wrote its first chunk');
      child.kill('SIGKILL');
      await watchdog(exited, 5000, 'the writer exits when killed');
      // The whole message [7] reaches one receiver, the cut one is reported by one (either).
      const outcome = (receiver: typeof first) =>
        receiver.receive().then(
          (m) => `message ${[...m].join(',')}`,
          (err: { code?: string; message: string }) => `${err.code} ${err.message.replace(/^[^:]*: /, '')}`,
        );
      const results: string[] = [];
      const pending = new Map([
        [first, outcome(first)],
        [second, outcome(second)],
      ]);
      while (results.length < 2) {
        const [receiver, result] = await watchdog(
          Promise.race([...pending].map(([r, p]) => p.then((x) => [r, x] as const))),
          15_000,
          'the message and the report',
        );
        results.push(result);
        pending.set(receiver, outcome(receiver));
      }
      expect(results.sort()).toEqual([
        `${ErrorCodes.BAD_FRAME} a message of ${1 << 20} bytes from process ${child.pid} was cut off after ${SINGLE_CHUNK_PAYLOAD} bytes (its writer died)`,
        'message 7',
      ]);
    } finally {
      child.kill('SIGKILL');
      await first.close();
      await second.close();
    }
  });

  it.skipIf(process.platform !== 'linux')(
    "a writer's pid reused after its message began is not taken for the writer",
    async (ctx) => {
      // In a pid namespace of its own: the fixture rewinds the pid counter to reuse a chosen pid.
      const child = nodeSpawn(
        'unshare',
        ['--pid', '--fork', '--mount-proc', process.execPath, ...fixtureArgs('fifo-reused-writer-pid.ts')],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let out = '';
      let err = '';
      child.stdout.on('data', (chunk: Buffer) => (out += chunk));
      child.stderr.on('data', (chunk: Buffer) => (err += chunk));
      const code = await watchdog(
        new Promise<number | null>((resolve) => child.once('close', resolve)),
        30_000,
        'the fixture exits',
      );
      if (code !== 0 && /^unshare:/m.test(err)) ctx.skip(`no pid namespace here: ${err.trim()}`);
      expect(code, err).toBe(0);
      const result = JSON.parse(out) as { pid: number; errors: string[]; skip?: string };
      if (result.skip) ctx.skip(result.skip);
      expect(result.errors).toEqual([
        `t: a message of 100000 bytes from process ${result.pid} was cut off after ${SINGLE_CHUNK_PAYLOAD} bytes (its writer died)`,
      ]);
    },
  );

  it('the table CRC-32 (for Node without zlib.crc32) agrees with zlib.crc32', () => {
    const inputs = [
      Buffer.alloc(0),
      Buffer.from('123456789'),
      Buffer.from('a'),
      Buffer.alloc(PIPE_BUF, 0xff),
      Buffer.from(Array.from({ length: 1000 }, (_, i) => (i * 37 + 11) & 0xff)),
    ];
    for (const input of inputs) {
      expect(tableCrc32(input)).toBe(crc32(input));
      expect(frameCrc32(input)).toBe(crc32(input));
    }
    expect(tableCrc32(Buffer.from('123456789'))).toBe(0xcbf43926);
  });

  it('refuses a message over maxMessageBytes from its first chunk and skips the rest of it quietly', async () => {
    await Fifo.create('bounded');
    const receiver = await Fifo.receiver<Uint8Array>('bounded', { codec: 'raw', maxMessageBytes: 20_000 });
    const sender = await Fifo.sender<Uint8Array>('bounded', { codec: 'raw', maxMessageBytes: 1 << 20 });
    await sender.send(new Uint8Array(50_000).fill(1));
    await sender.send(new Uint8Array(19_000).fill(2));
    await expect(watchdog(receiver.receive(), 5000, 'refusal')).rejects.toMatchObject({
      code: ErrorCodes.FRAME_TOO_LARGE,
    });
    const next = await watchdog(receiver.receive(), 5000, 'the next message');
    expect(next.byteLength).toBe(19_000);
    expect(next.every((x) => x === 2)).toBe(true);
    await sender.close();
    await receiver.close();
  });

  it('refused messages count toward the receive high-water mark: a writer of nothing else is held back', async () => {
    await Fifo.create('refusals');
    const receiver = await Fifo.receiver<Uint8Array>('refusals', {
      codec: 'raw',
      maxMessageBytes: 64,
      receiveHighWaterMark: 4,
    });
    const sender = await Fifo.sender<Uint8Array>('refusals', { codec: 'raw' });
    const tooLarge = new Uint8Array(100);
    // Nobody receives: once the pipe is full the writer must wait, as it would for good messages.
    let heldBack: unknown;
    for (let sent = 0; sent < 100_000 && heldBack === undefined; sent++) {
      await sender.send(tooLarge, { timeout: 1000 }).catch((err: unknown) => {
        heldBack = err;
      });
    }
    expect(heldBack).toMatchObject({ code: ErrorCodes.TIMEOUT });
    await expect(watchdog(receiver.receive(), 5000, 'refusal')).rejects.toMatchObject({
      code: ErrorCodes.FRAME_TOO_LARGE,
    });
    sender.destroy();
    receiver.destroy();
  });

  it('bad channel options fail before the FIFO is opened: no fd is left open, no reader is waited for', async () => {
    await Fifo.create('options');
    const bad = [
      { maxMessageBytes: 0 },
      { receiveHighWaterMark: 0 },
      { codec: 'nope' },
      { schema: {} },
    ] as FifoOptions[];
    const before = openFdCount();
    // No reader yet: a sender that opened first would wait for one before it saw its options.
    for (const opts of bad) {
      const refused = await watchdog(rejectionOf(Fifo.sender('options', opts)), 5000, 'sender refusal');
      expect(refused.name).toMatch(/^(TypeError|RangeError)$/);
    }
    // A receiver that opened first kept the fd: a reader that never reads, for good.
    for (const opts of bad) {
      const refused = await rejectionOf(Fifo.receiver('options', opts));
      expect(refused.name).toMatch(/^(TypeError|RangeError)$/);
    }
    expect(openFdCount()).toBe(before);
    // With a reader there, a refused sender leaves no fd either.
    const receiver = await Fifo.receiver('options');
    const withReader = openFdCount();
    for (const opts of bad) await expect(Fifo.sender('options', opts)).rejects.toBeInstanceOf(Error);
    expect(openFdCount()).toBe(withReader);
    await receiver.close();
  });

  it('a sender waits for a reader, bounded by its timeout', async () => {
    await Fifo.create('lonely');
    await expect(Fifo.sender('lonely', { timeout: 50 })).rejects.toMatchObject({ code: ErrorCodes.TIMEOUT });
    const pending = Fifo.sender<string>('lonely', { format: 'lines' });
    const receiver = await Fifo.receiver<string>('lonely', { format: 'lines' });
    const sender = await watchdog(pending, 5000, 'sender opens once a reader exists');
    await sender.send('met');
    expect(await watchdog(receiver.receive(), 5000, 'receive')).toBe('met');
    await sender.close();
    await receiver.close();
  });

  it('the receiver outlives its writers: a writer closing does not end iteration', async () => {
    await Fifo.create('durable');
    const receiver = await Fifo.receiver<number>('durable');
    for (const n of [1, 2]) {
      const sender = await Fifo.sender<number>('durable');
      await sender.send(n);
      await sender.close();
    }
    expect(await watchdog(receiver.receive(), 5000, 'first')).toBe(1);
    expect(await watchdog(receiver.receive(), 5000, 'second')).toBe(2);
    await expect(receiver.receive({ timeout: 20 })).rejects.toMatchObject({ code: ErrorCodes.TIMEOUT });
    await receiver.close();
  });

  it('a FIFO swapped for a symlink while being made: the file it points to keeps its mode', async () => {
    Fifo.path('x'); // creates the runtime dir
    const target = join(env.dir, 'target');
    writeFileSync(target, 'secret', { mode: 0o600 });
    const path = join(env.dir, 'shared-fifo');
    const binding = native();
    const mkfifo = binding.mkfifo.bind(binding);
    const swap = vi.spyOn(binding, 'mkfifo').mockImplementation((at: string, mode: number) => {
      mkfifo(at, mode);
      rmSync(at);
      symlinkSync(target, at);
    });
    try {
      await expect(Fifo.create({ path }, { mode: 0o666 })).rejects.toMatchObject({
        code: ErrorCodes.UNSAFE_PATH,
      });
    } finally {
      swap.mockRestore();
    }
    expect(statSync(target).mode & 0o777).toBe(0o600);
  });

  it('refuses a planted symlink and a path that is not a FIFO', async () => {
    const target = join(env.dir, '..', 'target');
    writeFileSync(target, 'secret');
    Fifo.path('x'); // creates the runtime dir
    symlinkSync(target, Fifo.path('planted'));
    await expect(Fifo.receiver('planted')).rejects.toMatchObject({ code: ErrorCodes.UNSAFE_PATH });
    await expect(Fifo.sender('planted', { timeout: 100 })).rejects.toMatchObject({
      code: ErrorCodes.UNSAFE_PATH,
    });
    writeFileSync(Fifo.path('regular'), 'x');
    await expect(Fifo.receiver('regular')).rejects.toMatchObject({ code: ErrorCodes.INCOMPATIBLE });
    await expect(Fifo.unlink('regular')).rejects.toMatchObject({ code: ErrorCodes.INCOMPATIBLE });
    await expect(Fifo.receiver('missing')).rejects.toMatchObject({ code: ErrorCodes.NOT_FOUND });
    // A socket file and a directory fail to open with ENXIO (as a FIFO with no reader yet, which a
    // sender waits out) and EISDIR: both are refused as not FIFOs, at once.
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(Fifo.path('socket'), resolve));
    try {
      for (const end of [
        () => Fifo.receiver('socket'),
        () => Fifo.sender('socket'),
      ] as (() => Promise<unknown>)[]) {
        await expect(watchdog(end(), 5000, 'refusal')).rejects.toMatchObject({
          code: ErrorCodes.INCOMPATIBLE,
        });
      }
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
    mkdirSync(Fifo.path('directory'));
    await expect(Fifo.receiver('directory')).rejects.toMatchObject({ code: ErrorCodes.INCOMPATIBLE });
  });

  it('an unsafe registry refuses unlink() before the FIFO is removed', async () => {
    await Fifo.create('kept');
    const registry = join(env.dir, '.registry');
    rmSync(registry, { recursive: true });
    symlinkSync(join(env.dir, '..'), registry);
    await expect(Fifo.unlink('kept')).rejects.toMatchObject({ code: ErrorCodes.UNSAFE_PATH });
    expect(lstatSync(Fifo.path('kept')).isFIFO()).toBe(true);
  });

  it('works at an explicit path outside the runtime dir', async () => {
    const path = join(env.dir, '..', 'explicit.fifo');
    await Fifo.create({ path });
    expect(lstatSync(path).isFIFO()).toBe(true);
    const receiver = await Fifo.receiver<string>({ path }, { format: 'lines' });
    await run('sh', ['-c', 'echo there > "$0"', path]);
    expect(await watchdog(receiver.receive(), 5000, 'line')).toBe('there');
    await receiver.close();
    await Fifo.unlink({ path });
  });
});
