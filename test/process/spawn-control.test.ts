import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isAlive } from '../../src/core/process-identity.js';
import { type ChildProcess, ErrorCodes, IpcError, Pipe, spawn } from '../../src/index.js';
import { watchProcess } from '../../src/shm/process-watch.js';
import { fixtureArgs, rejectionOf, watchdog } from '../helpers.js';
import { isolatedWithChildren } from '../support/spawned-children.js';
import {
  childrenOfThisProcess,
  LineReader,
  mappedAnonymousSegments,
  procState,
  untilState,
} from './proc-helpers.js';

const children = isolatedWithChildren();

function track<C>(child: C): C {
  children.push(child as unknown as ChildProcess<unknown>);
  return child;
}

describe('pause and resume', () => {
  it('a paused child makes no progress, and continues from where it was after resume', async () => {
    const counter = track(
      spawn<{ n: number } | { ack: number }>(process.execPath, fixtureArgs('process-count-lockstep.ts'), {
        channel: 'pipe',
      }),
    );
    // A second child, never paused: round trips with it are the event during which the paused
    // one has every chance to make progress.
    const control = track(
      spawn(process.execPath, fixtureArgs('echo-parent-channel.ts'), { channel: 'pipe' }),
    );
    const ch = counter.channel;
    for (let i = 0; i < 5; i++) {
      expect(await watchdog(ch.receive(), 15_000, `count ${i}`)).toEqual({ n: i });
      if (i < 4) await ch.send({ ack: i });
    }
    counter.pause();
    expect(counter.state).toBe('paused');
    await watchdog(untilState(counter.pid, 'T'), 10_000, 'the kernel reports the child stopped');
    // The ack it waits for is sent while it is stopped: a running child would answer with n = 5.
    await ch.send({ ack: 4 });
    const cpuBefore = await counter.stats();
    for (let i = 0; i < 20; i++) {
      await control.channel!.send(i);
      expect(await watchdog(control.channel!.receive(), 15_000, `control echo ${i}`)).toBe(i);
    }
    const nothing = await rejectionOf(ch.receive({ signal: AbortSignal.abort() }));
    expect(nothing.code).toBe(ErrorCodes.ABORTED);
    expect(procState(counter.pid)).toBe('T');
    const cpuAfter = await counter.stats();
    expect(cpuAfter.cpuUserMs + cpuAfter.cpuSystemMs).toBe(cpuBefore.cpuUserMs + cpuBefore.cpuSystemMs);

    counter.resume();
    expect(counter.state).toBe('running');
    expect(await watchdog(ch.receive(), 15_000, 'count after resume')).toEqual({ n: 5 });
    await ch.close();
    expect(await watchdog(counter.exited, 15_000, 'exit')).toEqual({ code: 0, signal: null });
    expect(counter.state).toBe('exited');
  });

  it('pause and resume are no-ops on an exited child', async () => {
    const child = track(spawn('true', [], { stdio: 'ignore' }));
    await watchdog(child.exited, 10_000, 'exit');
    child.pause();
    child.resume();
    expect(child.state).toBe('exited');
    expect(child.kill('SIGKILL')).toBe(false);
  });
});

describe('stop', () => {
  it('escalates to SIGKILL for a child that ignores SIGTERM, after sending SIGTERM', async () => {
    const child = track(
      spawn(process.execPath, fixtureArgs('process-ignore-sigterm.ts'), {
        stdio: ['ignore', 'pipe', 'inherit'],
      }),
    );
    const out = new LineReader(child.process.stdout!);
    await watchdog(out.line(/^ready$/), 15_000, 'handler installed');
    const status = await watchdog(child.stop({ graceMs: 3000 }), 15_000, 'stop');
    expect(status).toEqual({ code: null, signal: 'SIGKILL' });
    await out.ended;
    expect(out.text).toContain('got SIGTERM');
  });

  it('ends a cooperative child with SIGTERM, or with the signal asked for', async () => {
    const a = track(spawn('sleep', ['1000']));
    expect(await watchdog(a.stop(), 10_000, 'stop')).toEqual({ code: null, signal: 'SIGTERM' });
    const b = track(spawn('sleep', ['1000']));
    expect(await watchdog(b.stop({ signal: 'SIGINT' }), 10_000, 'stop')).toEqual({
      code: null,
      signal: 'SIGINT',
    });
  });

  it('stops a paused child (it is continued so it can act on the signal)', async () => {
    const child = track(
      spawn(process.execPath, fixtureArgs('process-ignore-sigterm.ts'), {
        stdio: ['ignore', 'pipe', 'inherit'],
      }),
    );
    const out = new LineReader(child.process.stdout!);
    await watchdog(out.line(/^ready$/), 15_000, 'ready');
    child.pause();
    await watchdog(untilState(child.pid, 'T'), 10_000, 'stopped');
    const status = await watchdog(child.stop({ graceMs: 3000 }), 15_000, 'stop');
    expect(status.signal).toBe('SIGKILL');
    await out.ended;
    // The handler ran: the process was continued after SIGTERM, not just killed while stopped.
    expect(out.text).toContain('got SIGTERM');
  });

  it('stops a child stopped from outside (kill -STOP) with its signal, not the SIGKILL after graceMs', async () => {
    const child = track(spawn('sleep', ['1000']));
    process.kill(child.pid, 'SIGSTOP');
    await watchdog(untilState(child.pid, 'T'), 10_000, 'stopped');
    expect(child.state).toBe('running'); // pause() was not called: the handle never knew
    const status = await watchdog(child.stop({ graceMs: 600_000 }), 15_000, 'stop');
    expect(status).toEqual({ code: null, signal: 'SIGTERM' });
  });

  it('resolves with the same status when the child had already exited', async () => {
    const child = track(spawn('sh', ['-c', 'exit 3']));
    expect(await watchdog(child.exited, 10_000, 'exit')).toEqual({ code: 3, signal: null });
    expect(await child.stop()).toEqual({ code: 3, signal: null });
    expect(child.exitStatus).toEqual({ code: 3, signal: null });
  });

  it('rejects bad options without throwing synchronously', async () => {
    const child = track(spawn('sleep', ['1000']));
    await expect(child.stop({ graceMs: -1 })).rejects.toBeInstanceOf(RangeError);
    await expect(child.stop({ graceMs: Number.NaN })).rejects.toThrow(/graceMs/);
    expect(child.state).toBe('running');
  });

  it('a graceMs beyond the longest Node timer is a RangeError, not a SIGKILL at once', async () => {
    const child = track(
      spawn(process.execPath, fixtureArgs('process-ignore-sigterm.ts'), {
        stdio: ['ignore', 'pipe', 'inherit'],
      }),
    );
    const out = new LineReader(child.process.stdout!);
    await watchdog(out.line(/^ready$/), 15_000, 'handler installed');
    // Node's setTimeout fires after 1 ms for a delay past 2^31 - 1 ms.
    const err = await rejectionOf(watchdog(child.stop({ graceMs: 2 ** 31 }), 15_000, 'stop'));
    expect(err).toBeInstanceOf(RangeError);
    expect(err.message).toMatch(/graceMs/);
    expect(child.state).toBe('running');
  });

  it('a graceMs that is not a number is a TypeError, as a rejection', async () => {
    const child = track(spawn('sleep', ['1000']));
    let stopping: Promise<unknown> | undefined;
    expect(() => {
      stopping = child.stop({ graceMs: '10' as never });
    }).not.toThrow();
    await expect(stopping).rejects.toBeInstanceOf(TypeError);
    expect(() => spawn('true', [], { channel: 'pipe', receiveHighWaterMark: '4' as never })).toThrow(
      TypeError,
    );
    expect(child.state).toBe('running');
  });

  it('`await using` stops the child at the end of the scope', async () => {
    let pid = 0;
    let exited: Promise<unknown> = Promise.resolve();
    {
      await using child = spawn('sleep', ['1000']);
      pid = child.pid;
      exited = child.exited;
      expect(procState(pid)).toBeDefined();
    }
    expect(await exited).toEqual({ code: null, signal: 'SIGTERM' });
  });

  it.each(['pipe', 'shm'] as const)(
    '`await using` also closes its %s channel: the parent holds nothing of it after the scope',
    async (kind) => {
      const before = mappedAnonymousSegments();
      let handle: ChildProcess<unknown> | undefined;
      {
        await using child = spawn('sleep', ['1000'], { channel: kind, stdio: 'ignore' });
        handle = child;
        expect(child.channel.closed).toBe(false);
      }
      expect(handle.exitStatus).toEqual({ code: null, signal: 'SIGTERM' });
      expect(handle.channel!.closed).toBe(true);
      // Closed, so a pipe channel's fds are closed; a shm channel's segment is unmapped too.
      expect([...mappedAnonymousSegments()].filter((inode) => !before.has(inode))).toEqual([]);
    },
  );
});

describe('stats', () => {
  it('reports CPU time and memory of the child from /proc, and ERR_IPC_NOT_FOUND once it has exited', async () => {
    const child = track(
      spawn<{ userMs: number }>(process.execPath, fixtureArgs('process-burn-cpu.ts'), { channel: 'pipe' }),
    );
    const measured = await watchdog(child.channel.receive(), 20_000, 'burned');
    const stats = await child.stats();
    // /proc counts in 10 ms ticks; the child measured itself with getrusage.
    expect(stats.cpuUserMs).toBeGreaterThanOrEqual(measured.userMs - 30);
    expect(stats.cpuUserMs + stats.cpuSystemMs).toBeGreaterThanOrEqual(250);
    const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
    const rssKiB = Number(/^VmRSS:\s+(\d+)/m.exec(status)![1]);
    // The child's RSS (tens of MiB for node), not this process's.
    expect(Math.abs(stats.rssBytes / 1024 - rssKiB)).toBeLessThan(rssKiB / 2);
    expect(stats.rssBytes).toBeLessThanOrEqual(stats.peakRssBytes);
    await child.channel.close();
    await watchdog(child.exited, 10_000, 'exit');
    const gone = await rejectionOf(child.stats());
    expect(gone).toBeInstanceOf(IpcError);
    expect(gone.code).toBe(ErrorCodes.NOT_FOUND);
  });
});

describe('killGroup', () => {
  it('stop() ends the grandchildren too', async () => {
    const child = track(
      spawn(process.execPath, fixtureArgs('process-spawn-grandchild.ts'), {
        killGroup: true,
        stdio: ['ignore', 'pipe', 'inherit'],
      }),
    );
    expect(child.pgid).toBe(child.pid);
    const out = new LineReader(child.process.stdout!);
    const grandchild = Number((await watchdog(out.line(/^grandchild (\d+)$/), 15_000, 'grandchild'))[1]);
    const identity = { pid: grandchild, startTime: 0 };
    expect(isAlive(identity)).toBe(true);
    const grandchildExited = new Promise<void>((resolve) => watchProcess(grandchild, resolve));
    await watchdog(child.stop({ graceMs: 2000 }), 15_000, 'stop');
    // The grandchild holds the same stdout pipe: it closes once the grandchild is gone too.
    await watchdog(out.ended, 15_000, 'every writer of the pipe gone');
    // An exiting process closes its fds before it becomes a zombie: wait for the exit itself.
    await watchdog(grandchildExited, 15_000, 'the grandchild exits');
    expect(isAlive(identity)).toBe(false);
  });

  it('without killGroup, the grandchild outlives stop() (what killGroup is for)', async () => {
    const child = track(
      spawn(process.execPath, fixtureArgs('process-spawn-grandchild.ts'), {
        stdio: ['ignore', 'pipe', 'inherit'],
      }),
    );
    expect(child.pgid).toBeUndefined();
    const out = new LineReader(child.process.stdout!);
    const grandchild = Number((await watchdog(out.line(/^grandchild (\d+)$/), 15_000, 'grandchild'))[1]);
    await watchdog(child.stop({ graceMs: 2000 }), 15_000, 'stop');
    expect(isAlive({ pid: grandchild, startTime: 0 })).toBe(true);
    process.kill(grandchild, 'SIGKILL');
    await watchdog(out.ended, 15_000, 'grandchild gone');
  });

  it('pause() stops the whole group', async () => {
    const child = track(
      spawn(process.execPath, fixtureArgs('process-spawn-grandchild.ts'), {
        killGroup: true,
        stdio: ['ignore', 'pipe', 'inherit'],
      }),
    );
    const out = new LineReader(child.process.stdout!);
    const grandchild = Number((await watchdog(out.line(/^grandchild (\d+)$/), 15_000, 'grandchild'))[1]);
    child.pause();
    await watchdog(untilState(grandchild, 'T'), 10_000, 'grandchild stopped');
    await watchdog(untilState(child.pid, 'T'), 10_000, 'child stopped');
    child.resume();
    await watchdog(untilState(grandchild, 'S'), 10_000, 'grandchild continued');
    child.kill('SIGKILL');
    await watchdog(out.ended, 15_000, 'group gone');
  });
});

describe('share', () => {
  it('hands extra fds to the child, found by their index in the list', async () => {
    const first = Pipe.create();
    const second = Pipe.create();
    const child = track(
      spawn(process.execPath, fixtureArgs('process-share-write.ts', '1'), {
        channel: 'pipe',
        share: [first.writer, second.writer.fd],
      }),
    );
    first.writer.close();
    second.writer.close();
    first.reader.close();
    const out = new LineReader(second.reader.stream());
    // Fds 3 and 4 carry the channel: the shared ones follow, 5 and 6.
    expect((await watchdog(out.line(/^hello through fd \d+$/), 15_000, 'line'))[0]).toBe(
      'hello through fd 6',
    );
    expect(await watchdog(child.exited, 10_000, 'exit')).toEqual({ code: 0, signal: null });
  });

  it('an anonymous shared-memory segment is mapped by SharedMemory.inherited in the child', async () => {
    const { SharedMemory } = await import('../../src/index.js');
    const segment = SharedMemory.anonymous(4096);
    try {
      const words = new Int32Array(segment.buffer);
      for (let i = 0; i < words.length; i++) words[i] = i;
      const child = track(
        spawn(process.execPath, fixtureArgs('shm-inherited-double.ts'), {
          share: [segment],
          stdio: ['ignore', 'pipe', 'inherit'],
        }),
      );
      const out = new LineReader(child.process.stdout!);
      await watchdog(out.line(/^doubled 4096$/), 15_000, 'doubled');
      expect(words[1000]).toBe(2000);
    } finally {
      segment.close();
    }
  });

  it('refuses what is not an open fd, before starting anything', () => {
    const before = childrenOfThisProcess().length;
    expect(() => spawn('true', [], { share: ['x' as never] })).toThrow(TypeError);
    expect(() => spawn('true', [], { share: [1_000_000] })).toThrow(/not open/);
    expect(childrenOfThisProcess().length).toBe(before);
  });
});

describe('bad arguments and failures to start', () => {
  it('checks options before anything is started: no child is left behind', () => {
    const before = childrenOfThisProcess().length;
    expect(() => spawn('true', [], { channel: 'tcp' as never })).toThrow(RangeError);
    expect(() => spawn('true', [], { channel: 'shm', codec: 'yaml' as never })).toThrow(RangeError);
    expect(() => spawn('true', [], { channel: 'pipe', codec: 'yaml' as never })).toThrow(RangeError);
    expect(() => spawn('true', [], { channel: 'pipe', maxMessageBytes: 0 })).toThrow(/maxMessageBytes/);
    expect(() => spawn('true', [], { killGroup: 'yes' as never })).toThrow(/killGroup/);
    expect(() => spawn('true', 'x' as never)).toThrow(TypeError);
    expect(() => spawn('', [])).toThrow(TypeError);
    expect(() => spawn('true', [], { stdio: [0, 1, 2, 3] as never })).toThrow(/share/);
    // Options Node checks itself come back as its TypeErrors, which name them.
    for (const channel of ['pipe', 'shm', false] as const) {
      expect(() => spawn('true', [], { channel, cwd: 5 as never })).toThrow(TypeError);
      expect(() => spawn('true', [], { channel, cwd: 'a\0b' })).toThrow(/options\.cwd/);
      expect(() => spawn('true', [], { channel, stdio: ['pipe', 'bogus' as never] })).toThrow(TypeError);
    }
    expect(childrenOfThisProcess().length).toBe(before);
  });

  it('an env that is not an object is a TypeError naming options.env, before anything is started', () => {
    const before = childrenOfThisProcess().length;
    for (const channel of ['pipe', 'shm', false] as const) {
      for (const env of ['PATH=/usr/bin', 5, true, ['PATH=/usr/bin']]) {
        const start = () => track(spawn('true', [], { channel, env: env as never }));
        expect(start).toThrow(TypeError);
        expect(start).toThrow(/options\.env/);
      }
    }
    expect(childrenOfThisProcess().length).toBe(before);
  });

  it('a cwd that does not exist, or is not a directory, is ERR_IPC_NOT_FOUND naming the cwd', () => {
    const loops = mkdtempSync(join(tmpdir(), 'ipckit-cwd-'));
    symlinkSync('loop', join(loops, 'loop'));
    const unusable = [
      join(process.execPath, 'sub'), // ENOTDIR: a file on the way
      join(loops, 'loop'), // ELOOP
      `/${'x'.repeat(5000)}`, // ENAMETOOLONG
    ];
    for (const cwd of ['/nonexistent/ipckit-dir', process.execPath, ...unusable]) {
      for (const channel of ['pipe', false] as const) {
        expect(() => spawn('true', [], { channel, cwd })).toThrow(
          expect.objectContaining({
            code: ErrorCodes.NOT_FOUND,
            message: expect.stringContaining(`options.cwd ${cwd}`),
          }),
        );
      }
    }
    rmSync(loops, { recursive: true, force: true });
  });

  it('a command that does not exist is ERR_IPC_NOT_FOUND; one that is not executable ERR_IPC_PERMISSION', () => {
    const bin = mkdtempSync(join(tmpdir(), 'ipckit-path-'));
    writeFileSync(join(bin, 'ipckit-not-executable'), '#!/bin/sh\n', { mode: 0o644 });
    const startError = (command: string, env?: NodeJS.ProcessEnv): unknown => {
      try {
        spawn(command, [], { channel: 'pipe', env });
      } catch (err) {
        return err;
      }
      throw new Error(`${command} started`);
    };
    try {
      const cases: [string, NodeJS.ProcessEnv | undefined, string][] = [
        ['/nonexistent/ipckit-command', undefined, ErrorCodes.NOT_FOUND],
        ['ipckit-no-such-command', { PATH: bin }, ErrorCodes.NOT_FOUND],
        [join(bin, 'ipckit-not-executable'), undefined, ErrorCodes.PERMISSION],
        ['ipckit-not-executable', { PATH: bin }, ErrorCodes.PERMISSION],
        [bin, undefined, ErrorCodes.PERMISSION], // a directory
      ];
      for (const [command, env, code] of cases) {
        const err = startError(command, env);
        expect(err).toBeInstanceOf(IpcError);
        expect({ command, code: (err as IpcError).code }).toEqual({ command, code });
      }
    } finally {
      rmSync(bin, { recursive: true });
    }
  });

  it("a child does not inherit this process's own channel variables", async () => {
    process.env.IPCKIT_CHANNEL = 'pipe:3:4';
    process.env.IPCKIT_SHARE_FDS = '7';
    try {
      const child = track(
        spawn(process.execPath, fixtureArgs('report-parent-channel.ts'), {
          stdio: ['ignore', 'pipe', 'inherit'],
        }),
      );
      const out = new LineReader(child.process.stdout!);
      await watchdog(out.line(new RegExp(`^${ErrorCodes.NOT_FOUND}$`)), 15_000, 'report');
    } finally {
      delete process.env.IPCKIT_CHANNEL;
      delete process.env.IPCKIT_SHARE_FDS;
    }
  });
});
