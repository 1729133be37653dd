/**
 * ShmChannel with `producers: 'many'`: producer processes append to one ring, each claiming its
 * record by compare-and-swap. Every message must arrive exactly once, whole, and in each producer's
 * order; a producer killed mid-stream must not wedge the ring for the others. In process: a claim
 * whose producer died before committing it is skipped.
 */
import { spawn as nodeSpawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCodes, ShmChannel } from '../../src/index.js';
import { MpRingWriter, ProducerSlots } from '../../src/shm/mp-ring.js';
import { RecordKind, RING_CONTROL_BYTES, RingReader, ringViews } from '../../src/shm/ring.js';
import { checkMessage } from '../fixtures/shm-channel-message.js';
import { fixtureArgs, isolateRuntimeDir, rejectionOf, watchdog } from '../helpers.js';

let env: ReturnType<typeof isolateRuntimeDir>;
beforeEach(() => {
  env = isolateRuntimeDir();
});
afterEach(() => env.cleanup());

function startProducer(name: string, id: number, count: number, max: number) {
  const proc = nodeSpawn(
    process.execPath,
    fixtureArgs('shm-channel-producer.ts', name, String(id), String(count), String(max)),
    { stdio: ['ignore', 'inherit', 'inherit'] },
  );
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  return { proc, exited };
}

describe("ShmChannel { producers: 'many' }", () => {
  it.each(['close', 'destroy'])(
    'a message sent right before a producer %ss reaches the parked reader',
    async (how) => {
      const reader = ShmChannel.create<string>('last', { producers: 'many' });
      const proc = nodeSpawn(
        process.execPath,
        fixtureArgs('shm-channel-send-one-then-close.ts', 'last', how),
        {
          stdio: ['ignore', 'pipe', 'inherit'],
        },
      );
      try {
        // The producer process lives on: only a ring can tell the parked reader.
        expect(await watchdog(reader.receive(), 30_000, 'the message')).toBe('event');
      } finally {
        proc.kill('SIGKILL');
        await once(proc, 'exit');
        await reader.close();
      }
    },
  );

  it('4 producer processes into one ring: every message exactly once, in each producer order', async () => {
    const count = 20_000;
    const reader = ShmChannel.create<Uint8Array>('many', {
      capacity: 64 * 1024,
      codec: 'raw',
      producers: 'many',
    });
    const producers = [0, 1, 2, 3].map((id) => startProducer('many', id, count, 300));
    const next = [0, 0, 0, 0];
    await watchdog(
      (async () => {
        for (let n = 0; n < 4 * count; n++) {
          const seq = checkMessage(await reader.receive());
          const id = Math.floor(seq / 1_000_000);
          expect(seq % 1_000_000).toBe(next[id]);
          next[id]!++;
        }
      })(),
      120_000,
      'all messages of the 4 producers',
    );
    expect(next).toEqual([count, count, count, count]);
    expect(await watchdog(Promise.all(producers.map((p) => p.exited)), 30_000, 'producers exit')).toEqual([
      0, 0, 0, 0,
    ]);
    // Nothing more, nothing duplicated: the ring is empty once the producers are gone.
    expect((await rejectionOf(reader.receive({ timeout: 100 }))).code).toBe(ErrorCodes.TIMEOUT);
    expect((await rejectionOf(reader.send(new Uint8Array(1)))).code).toBe(ErrorCodes.CLOSED);
    await reader.close();
  });

  it('a producer killed mid-stream does not wedge the ring: the others deliver everything', async () => {
    const count = 5_000;
    const reader = ShmChannel.create<Uint8Array>('many-kill', {
      capacity: 16 * 1024,
      codec: 'raw',
      producers: 'many',
    });
    const victim = startProducer('many-kill', 9, 10_000_000, 2000);
    const others = [0, 1, 2].map((id) => startProducer('many-kill', id, count, 2000));
    const next = new Map<number, number>();
    let killed = false;
    await watchdog(
      (async () => {
        while (!killed || [0, 1, 2].some((id) => (next.get(id) ?? 0) < count)) {
          const seq = checkMessage(await reader.receive());
          const id = Math.floor(seq / 1_000_000);
          expect(seq % 1_000_000).toBe(next.get(id) ?? 0);
          next.set(id, (next.get(id) ?? 0) + 1);
          if (!killed && id === 9 && seq % 1_000_000 === 500) {
            victim.proc.kill('SIGKILL');
            killed = true;
          }
        }
      })(),
      120_000,
      'the surviving producers deliver everything',
    );
    expect(killed).toBe(true);
    expect(await watchdog(Promise.all(others.map((p) => p.exited)), 30_000, 'producers exit')).toEqual([
      0, 0, 0,
    ]);
    await reader.close();
  });

  it('a producer refuses a message larger than one record; the reader end only receives', async () => {
    const reader = ShmChannel.create<Uint8Array>('many-big', {
      capacity: 4096,
      codec: 'raw',
      producers: 'many',
    });
    const producer = ShmChannel.open<Uint8Array>('many-big', { codec: 'raw' });
    expect((await rejectionOf(producer.send(new Uint8Array(4096)))).code).toBe(ErrorCodes.FRAME_TOO_LARGE);
    expect((await rejectionOf(producer.receive())).code).toBe(ErrorCodes.CLOSED);
    await producer.send(new Uint8Array([1, 2, 3]));
    expect(Array.from(await watchdog(reader.receive(), 5_000, 'message'))).toEqual([1, 2, 3]);
    expect((await rejectionOf(reader.reattach())).code).toBe(ErrorCodes.INCOMPATIBLE);
    expect(() => ShmChannel.create('bad', { producers: 'some' as 'many' })).toThrow(RangeError);
    await producer.close();
    await reader.close();
  });

  it('a producer that lost its claim to another and found no room leaves no intent behind', () => {
    const capacity = 4096;
    const buffer = new SharedArrayBuffer(4096 + RING_CONTROL_BYTES + capacity);
    const page = new Int32Array(buffer, 0, 1024);
    const views = ringViews(buffer, 4096, 4096 + RING_CONTROL_BYTES, capacity);
    const slots = new ProducerSlots(page);
    const winner = slots.register(() => true);
    const loser = slots.register(() => true);
    const w1 = new MpRingWriter(views, slots, winner);
    const w2 = new MpRingWriter(views, slots, loser);
    // Between the loser's intent and its compare-and-swap, the winner claims almost the whole ring.
    const intend = slots.intend.bind(slots);
    let raced = false;
    slots.intend = (slot, position, size) => {
      intend(slot, position, size);
      if (slot === loser && size > 0 && !raced) {
        raced = true;
        expect(w1.reserve(3000, 3000)).toBe(3000);
      }
    };
    expect(w2.reserve(2000, 2000)).toBe(-1);
    // The winner then dies before committing: its claim alone is at the reader's position, so the
    // reader skips it instead of waiting for the live loser (or failing once the loser died too).
    const gone = spawnSync('true').pid!;
    Atomics.store(page, 1024 / 4 + winner * 8 + 1, gone);
    expect(slots.deadClaimAt(new RingReader(views, true).cursor)).toBe(8 + 3000);
    // And it says so, for the channel to ring a reader that may be parked on its old intent.
    expect(w2.lostRace).toBe(true);
  });

  it('skips the claim of a producer that died between claim and commit', () => {
    const capacity = 4096;
    const buffer = new SharedArrayBuffer(4096 + RING_CONTROL_BYTES + capacity);
    const page = new Int32Array(buffer, 0, 1024);
    const views = ringViews(buffer, 4096, 4096 + RING_CONTROL_BYTES, capacity);
    const slots = new ProducerSlots(page);
    const dying = slots.register(() => true);
    const live = slots.register(() => true);
    const w1 = new MpRingWriter(views, slots, dying);
    const w2 = new MpRingWriter(views, slots, live);
    const reader = new RingReader(views, true);
    // The first producer claims and never commits; the second claims after it and commits.
    expect(w1.reserve(100, 100)).toBe(100);
    expect(w2.reserve(10, 10)).toBe(10);
    w2.commit(RecordKind.DATA, new Uint8Array(10).fill(7), 0, 10);
    expect(reader.next()).toBeUndefined();
    expect(reader.stalled()).toBe(true);
    // Its owner alive, the claim is waited for.
    expect(slots.deadClaimAt(reader.cursor)).toBe(0);
    // Now make the slot's owner a process that has exited.
    const gone = spawnSync('true').pid!;
    Atomics.store(page, 1024 / 4 + dying * 8 + 1, gone);
    const size = slots.deadClaimAt(reader.cursor);
    expect(size).toBe(8 + 104);
    reader.skip(size);
    const rec = reader.next();
    expect(rec?.kind).toBe(RecordKind.DATA);
    expect(Array.from(reader.data.subarray(rec!.offset, rec!.offset + rec!.length))).toEqual(
      new Array(10).fill(7),
    );
    // Freed bytes are zeroed, so the next lap never reads a stale header as committed.
    reader.free(rec!.end);
    expect(reader.data.subarray(0, 8 + 104 + 8 + 16).every((b) => b === 0)).toBe(true);
  });
});
