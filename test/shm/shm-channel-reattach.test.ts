/**
 * ShmChannel takeover: a writer SIGKILLed at random points, round after round, on one named channel.
 * Each round the reader gets only whole, checksummed, in-order records, then ERR_IPC_PEER_GONE; a
 * new process then takes the dead end over with ShmChannel.open, the survivor accepts it with
 * reattach(), and messages flow both ways again, none of the old conversation's crossing over.
 * Writers are started ahead (each waits for its cue), since a tsx start costs about a second here.
 */
import { type ChildProcess, spawn as nodeSpawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCodes, ShmChannel, spawn } from '../../src/index.js';
import { checkMessage } from '../fixtures/shm-channel-message.js';
import { fixtureArgs, isolateRuntimeDir, rejectionOf, watchdog } from '../helpers.js';

// Each round starts a writer process (a tsx start, 1-5 s on a loaded 2-core machine), so the suite
// runs 10; the issue asks 200: IPCKIT_TAKEOVER_ROUNDS=200 runs them.
const ROUNDS = Number(process.env.IPCKIT_TAKEOVER_ROUNDS ?? 10);
const CAPACITY = 16 * 1024;

let env: ReturnType<typeof isolateRuntimeDir>;
const procs: ChildProcess[] = [];
beforeEach(() => {
  env = isolateRuntimeDir();
});
afterEach(() => {
  for (const p of procs.splice(0)) p.kill('SIGKILL');
  env.cleanup();
});

/** A writer process waiting for its cue, with its stdout as a queue of lines. */
interface Writer {
  proc: ChildProcess;
  line(): Promise<string>;
  exited: Promise<void>;
}

function startWriter(name: string, maxSize: number): Writer {
  const proc = nodeSpawn(
    process.execPath,
    fixtureArgs('shm-channel-writer-on-cue.ts', name, String(maxSize)),
    {
      stdio: ['pipe', 'pipe', 'inherit'],
    },
  );
  procs.push(proc);
  const lines: string[] = [];
  const waiting: Array<(line: string) => void> = [];
  createInterface({ input: proc.stdout! }).on('line', (l) => {
    const w = waiting.shift();
    if (w) w(l);
    else lines.push(l);
  });
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  return {
    proc,
    exited,
    line: () => {
      const l = lines.shift();
      return l !== undefined ? Promise.resolve(l) : new Promise((resolve) => waiting.push(resolve));
    },
  };
}

/** A small deterministic PRNG, so a failing run can be replayed from its printed seed. */
function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x100000000;
  };
}

describe('ShmChannel: a new writer takes over the end of a dead one', () => {
  it(`${ROUNDS} rounds of SIGKILL at random points: whole in-order records, PEER_GONE, then the newcomer's`, async () => {
    const seed = Number(process.env.IPCKIT_TEST_SEED ?? Date.now() % 0x7fffffff);
    console.log(`shm takeover test seed: ${seed} (IPCKIT_TEST_SEED to replay)`);
    const random = prng(seed);
    const name = 'takeover';
    let channel = ShmChannel.create<Uint8Array>(name, { capacity: CAPACITY, codec: 'raw' });
    // Up to 4x the ring: big messages go in pieces, so some kills land between the pieces of one.
    const maxSize = 4 * CAPACITY;
    const queue = [startWriter(name, maxSize), startWriter(name, maxSize), startWriter(name, maxSize)];
    const text = (s: string) => new TextEncoder().encode(s);
    for (let round = 0; round <= ROUNDS; round++) {
      const writer = queue.shift()!;
      if (round + queue.length < ROUNDS) queue.push(startWriter(name, maxSize));
      writer.proc.stdin!.write('go\n');
      expect(await watchdog(writer.line(), 60_000, `round ${round}: the writer opens`)).toBe('open');
      if (round > 0) channel = await watchdog(channel.reattach(), 15_000, `round ${round}: reattach`);
      // The other direction reaches the newcomer, and nothing sent to its predecessor does.
      await channel.send(text(`round ${round}`));
      expect(await watchdog(writer.line(), 15_000, `round ${round}: the writer receives`)).toBe(
        `got round ${round}`,
      );
      const killAfter = 1 + Math.floor(random() * 200);
      let next = 0;
      const ended = await watchdog(
        (async () => {
          try {
            for (;;) {
              const m = await channel.receive();
              expect(checkMessage(m)).toBe(next++);
              if (next === killAfter) {
                if (round === ROUNDS) return undefined;
                writer.proc.kill('SIGKILL');
              }
            }
          } catch (err) {
            return err as { code?: string };
          }
        })(),
        30_000,
        `round ${round}: the reader ends`,
      );
      if (round === ROUNDS) {
        expect(ended).toBeUndefined();
        break;
      }
      expect(ended?.code).toBe(ErrorCodes.PEER_GONE);
      expect(next).toBeGreaterThanOrEqual(killAfter);
      expect((await rejectionOf(channel.send(text('late')))).code).toBe(ErrorCodes.PEER_GONE);
      await writer.exited;
    }
    await channel.close();
  }, 600_000);

  it('keeps an end exclusive while its process lives; reattach() only after the peer is gone', async () => {
    const a = ShmChannel.create<Uint8Array>('excl', { codec: 'raw' });
    const b = ShmChannel.open<Uint8Array>('excl', { codec: 'raw' });
    expect(() => ShmChannel.open('excl')).toThrow(expect.objectContaining({ code: ErrorCodes.EXISTS }));
    expect((await rejectionOf(a.reattach())).code).toBe(ErrorCodes.EXISTS);
    expect((await rejectionOf(a.reattach({ timeout: -1 }))).name).toBe('RangeError');
    // A peer that closed cleanly can be replaced too; a wait for it honours its timeout.
    await b.close();
    await expect(watchdog(a.receive(), 5_000, 'peer closes')).rejects.toMatchObject({
      code: ErrorCodes.CLOSED,
    });
    expect((await rejectionOf(a.reattach({ timeout: 50 }))).code).toBe(ErrorCodes.TIMEOUT);
    a.destroy();
    expect((await rejectionOf(a.reattach())).code).toBe(ErrorCodes.CLOSED);
  });

  it("a spawn(..., { channel: 'shm' }) channel cannot be taken over: reattach() is ERR_IPC_INCOMPATIBLE", async () => {
    const child = spawn(process.execPath, ['-e', 'process.exit(0)'], { channel: 'shm' });
    await watchdog(rejectionOf(child.channel.receive()), 15_000, 'PEER_GONE');
    const err = await rejectionOf((child.channel as ShmChannel).reattach());
    expect(err.code).toBe(ErrorCodes.INCOMPATIBLE);
    await child.exited;
  });
});
