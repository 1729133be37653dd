/**
 * ShmChannel options: the ring capacity of a spawned child's channel (`spawn(..., { channel: 'shm',
 * capacity })`) and how readers wait (`mode: 'default' | 'latency'`): both modes park an idle
 * reader (its idle flag is set in the ring), so neither burns a core while nothing arrives.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it, vi } from 'vitest';
import { type ChildProcess, SharedMemory, ShmChannel, spawn } from '../../src/index.js';
import { Ctl, RING_CONTROL_BYTES } from '../../src/shm/ring.js';
import { checkLayout, ringControlOffset } from '../../src/shm/shm-channel-layout.js';
import { checkMessage, makeMessage, sizeFor } from '../fixtures/shm-channel-message.js';
import { fixtureArgs, watchdog } from '../helpers.js';
import { isolatedWithChildren } from '../support/spawned-children.js';

const children = isolatedWithChildren();

/** Bytes of the child's mappings of ipckit memfd segments (the channel's, header page included). */
function memfdBytes(pid: number): number {
  let total = 0;
  for (const line of readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n')) {
    if (!line.includes('memfd:ipckit-anonymous')) continue;
    const [from, to] = line
      .split(' ')[0]!
      .split('-')
      .map((h) => Number.parseInt(h, 16));
    total += to! - from!;
  }
  return total;
}

/** Resolves once the reader of ring `ring` of channel `name` has parked (set its idle flag). */
async function parked(name: string, ring: number): Promise<void> {
  const seg = SharedMemory.open(name);
  try {
    const control = new Int32Array(seg.buffer, ringControlOffset(ring), RING_CONTROL_BYTES / 4);
    while (Atomics.load(control, Ctl.READER_IDLE) !== 1) await new Promise((r) => setImmediate(r));
  } finally {
    seg.close();
  }
}

describe("spawn(..., { channel: 'shm', capacity, mode })", () => {
  it('sizes the rings of the child channel; messages larger than a ring still go whole', async () => {
    const child = spawn<Uint8Array>(process.execPath, fixtureArgs('echo-parent-channel.ts'), {
      channel: 'shm',
      codec: 'raw',
      capacity: 4096,
      env: { ...process.env, FIXTURE_CODEC: 'raw' },
    });
    children.push(child as ChildProcess<unknown>);
    for (let i = 0; i < 50; i++) {
      await child.channel.send(makeMessage(i, sizeFor(i, 4 * 4096)));
      expect(checkMessage(await watchdog(child.channel.receive(), 15_000, `echo ${i}`))).toBe(i);
    }
    // The control page, two 4 KiB rings, and the segment's own header page.
    expect(memfdBytes(child.pid)).toBe(4096 + 2 * 4096 + 4096);
    await child.channel.close();
    expect(await watchdog(child.exited, 15_000, 'child exits')).toEqual({ code: 0, signal: null });
  });

  it('round trips in latency mode', async () => {
    const child = spawn<{ n: number }>(process.execPath, fixtureArgs('echo-parent-channel.ts'), {
      channel: 'shm',
      mode: 'latency',
    });
    children.push(child as ChildProcess<unknown>);
    for (let n = 0; n < 200; n++) {
      await child.channel.send({ n });
      expect(await watchdog(child.channel.receive(), 15_000, `echo ${n}`)).toEqual({ n });
    }
    await child.channel.close();
    expect(await watchdog(child.exited, 15_000, 'child exits')).toEqual({ code: 0, signal: null });
  });

  it('rejects bad ring options before anything is started', () => {
    const run = (opts: object) => () => spawn(process.execPath, ['-e', ''], opts);
    expect(run({ channel: 'shm', capacity: 5000 })).toThrow(/options.capacity/);
    expect(run({ channel: 'shm', mode: 'fast' })).toThrow(/options.mode/);
    expect(run({ channel: 'pipe', capacity: 4096 })).toThrow(RangeError);
    expect(run({ capacity: 4096 })).toThrow(RangeError);
    expect(() => ShmChannel.create('x', { mode: 'fast' as 'latency' })).toThrow(RangeError);
  });

  it('refuses a capacity that is not a number with a TypeError, one that is out of range with a RangeError', () => {
    expect(() => ShmChannel.create('x', { capacity: '4096' as never })).toThrow(TypeError);
    expect(() => ShmChannel.create('x', { capacity: '4096' as never })).toThrow(/options\.capacity/);
    expect(() => spawn(process.execPath, ['-e', ''], { channel: 'shm', capacity: '4096' as never })).toThrow(
      TypeError,
    );
    expect(() => ShmChannel.create('x', { capacity: 5000 })).toThrow(RangeError);
  });
});

describe('ShmChannel reader modes', () => {
  for (const mode of ['default', 'latency'] as const) {
    it(`${mode}: an idle reader parks, and a message wakes it`, async () => {
      const a = ShmChannel.create<string>(`idle-${mode}`, { mode, codec: 'json' });
      const b = ShmChannel.open<string>(`idle-${mode}`, { codec: 'json' });
      const received = b.receive();
      await watchdog(parked(`idle-${mode}`, 0), 10_000, 'the reader parks');
      await a.send('wake');
      expect(await watchdog(received, 10_000, 'woken')).toBe('wake');
      await a.close();
      await b.close();
    });
  }
});

describe('ShmChannel.create', () => {
  it('create() lays the channel out before the segment header makes it visible to openers', () => {
    // The header is written once the initializer returns: the layout must be complete by then, or
    // an opener in that instant finds a segment that is not a ShmChannel (ERR_IPC_INCOMPATIBLE).
    const original = SharedMemory.createInitialized;
    const spy = vi.spyOn(SharedMemory, 'createInitialized').mockImplementation((name, opts, init) =>
      original.call(SharedMemory, name, opts, (data) => {
        init?.(data);
        expect(() => checkLayout(data, 'test')).not.toThrow();
      }),
    );
    try {
      const channel = ShmChannel.create('laid-out');
      expect(spy).toHaveBeenCalledTimes(1);
      channel.destroy();
    } finally {
      spy.mockRestore();
    }
  });
});
