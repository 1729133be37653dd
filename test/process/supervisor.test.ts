import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  type ChildProcess,
  ErrorCodes,
  type ExitStatus,
  IpcError,
  type RestartInfo,
  Supervisor,
  spawn,
} from '../../src/index.js';
import { fixtureArgs, isolateRuntimeDir, rejectionOf, watchdog } from '../helpers.js';

let env: ReturnType<typeof isolateRuntimeDir>;
const supervisors: Supervisor[] = [];
beforeEach(() => {
  env = isolateRuntimeDir();
});
afterEach(async () => {
  await Promise.all(supervisors.splice(0).map((s) => s.stop()));
  env.cleanup();
});

function supervisor(opts?: ConstructorParameters<typeof Supervisor>[0]): Supervisor {
  const sup = new Supervisor(opts);
  supervisors.push(sup);
  return sup;
}

/** Anonymous shared-memory segments mapped in this process (an shm channel's, among others). */
function segments(): number {
  return readFileSync('/proc/self/maps', 'utf8')
    .split('\n')
    .filter((line) => line.includes('memfd:ipckit-anonymous')).length;
}

/** Kills the processes whose pids a fixture appended to `pidFile`, one per line. */
function killListed(pidFile: string): void {
  for (const pid of readFileSync(pidFile, 'utf8').split('\n').filter(Boolean)) {
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch {}
  }
}

const node =
  (fixture: string, ...args: string[]) =>
  () =>
    spawn(process.execPath, fixtureArgs(fixture, ...args), { channel: 'pipe' });

/** Records every event in order. */
function record(sup: Supervisor): string[] {
  const log: string[] = [];
  sup.on('start', (name) => log.push(`start ${name}`));
  sup.on('exit', (name, status) => log.push(`exit ${name} ${status.code ?? status.signal}`));
  sup.on('restart', (name, info) => log.push(`restart ${name} #${info.attempt} after ${info.delayMs}`));
  sup.on('giveup', (name, last) => log.push(`giveup ${name} ${last.code ?? last.signal}`));
  return log;
}

describe('Supervisor: restarts', () => {
  it('restarts a crashing child with a doubling backoff and gives up after maxRestarts', async () => {
    const sup = supervisor({
      restart: 'on-failure',
      maxRestarts: 2,
      windowMs: 60_000,
      backoff: { initialMs: 20 },
    });
    const log = record(sup);
    sup.add('crasher', node('process-hello-then-exit.ts', '7'));
    const channel = sup.channel<{ hello: number }>('crasher');
    const gaveUp = once(sup, 'giveup') as Promise<[string, ExitStatus]>;
    await sup.start();
    const [name, lastExit] = await watchdog(gaveUp, 60_000, 'giveup');
    expect(name).toBe('crasher');
    expect(lastExit).toEqual({ code: 7, signal: null });
    expect(log).toEqual([
      'start crasher',
      'exit crasher 7',
      'restart crasher #1 after 20',
      'start crasher',
      'exit crasher 7',
      'restart crasher #2 after 40',
      'start crasher',
      'exit crasher 7',
      'giveup crasher 7',
    ]);
    expect(sup.child('crasher')).toBeUndefined();
    expect(sup.restarts('crasher')).toBe(2);
    // Every child's hello came through the one channel, from three different processes.
    const hellos = new Set<number>();
    for (let i = 0; i < 3; i++) hellos.add((await watchdog(channel.receive(), 10_000, `hello ${i}`)).hello);
    expect(hellos.size).toBe(3);
    // Then the channel says why nothing more will come.
    const err = await rejectionOf(channel.receive());
    expect(err.code).toBe(ErrorCodes.PEER_GONE);
    expect(err.message).toMatch(/gave up after 2 restarts/);
    await expect(channel.send({ hello: 0 })).rejects.toMatchObject({ code: ErrorCodes.PEER_GONE });
  });

  it('a backoff from initialMs 0 stays 0 however large the factor (not NaN from 0 * Infinity)', async () => {
    const sup = supervisor({ maxRestarts: 3, backoff: { initialMs: 0, factor: 1e308 } });
    const delays: number[] = [];
    sup.on('restart', (_name, info: RestartInfo) => delays.push(info.delayMs));
    sup.add('crasher', () => spawn('false'));
    const gaveUp = once(sup, 'giveup');
    await sup.start();
    await watchdog(gaveUp, 30_000, 'giveup');
    // The third restart's factor^2 is Infinity.
    expect(delays).toEqual([0, 0, 0]);
  });

  it("'on-failure' does not restart a clean exit, 'always' does, 'never' never does", async () => {
    const sup = supervisor({ backoff: { initialMs: 1 }, maxRestarts: 1 });
    const log = record(sup);
    sup.add('clean', node('process-hello-then-exit.ts', '0'));
    sup.add('always', node('process-hello-then-exit.ts', '0'), { restart: 'always' });
    sup.add('never', node('process-hello-then-exit.ts', '3'), { restart: 'never' });
    const gaveUp = once(sup, 'giveup');
    await sup.start();
    expect(await watchdog(gaveUp, 60_000, 'always gives up')).toEqual(['always', { code: 0, signal: null }]);
    // 'clean' ended cleanly: its channel ends like a closed channel (iteration just stops).
    const clean: unknown[] = [];
    for await (const m of sup.channel('clean')) clean.push(m);
    expect(clean).toHaveLength(1);
    const never = sup.channel('never');
    await never.receive();
    expect((await rejectionOf(never.receive())).code).toBe(ErrorCodes.PEER_GONE);
    expect(log.filter((l) => l.startsWith('restart'))).toEqual(['restart always #1 after 1']);
    expect(log.filter((l) => l.startsWith('start always'))).toHaveLength(2);
  });

  it('re-attaches the channel to the new child transparently; sends while it is down wait for it, up to maxBuffered', async () => {
    const sup = supervisor({ restart: 'always', maxBuffered: 2, backoff: { initialMs: 50 } });
    sup.add('echo', node('echo-parent-channel.ts'));
    const channel = sup.channel<string>('echo');
    await sup.start();
    await channel.send('before');
    expect(await watchdog(channel.receive(), 15_000, 'echo before')).toBe('before');
    const firstPid = sup.child('echo')!.pid;

    const restarted = once(sup, 'start') as Promise<[string, ChildProcess<unknown>]>;
    let triedWhileDown: boolean | undefined;
    const sentWhileDown = new Promise<[Promise<void>, Promise<void>, ReturnType<typeof rejectionOf>]>(
      (resolve) => {
        sup.once('exit', () => {
          // The child is down now: trySend takes nothing (send buffers); these wait for the next
          // child; the third is over the bound.
          triedWhileDown = channel.trySend('refused');
          resolve([
            channel.send('while down 1'),
            channel.send('while down 2'),
            rejectionOf(channel.send('one too many')),
          ]);
        });
      },
    );
    sup.child('echo')!.kill('SIGKILL');
    const [first, second, third] = await watchdog(sentWhileDown, 15_000, 'exit');
    expect(triedWhileDown).toBe(false);
    await first;
    await second;
    const full = await third;
    expect(full.code).toBe(ErrorCodes.QUEUE_FULL);

    const [, child] = await watchdog(restarted, 15_000, 'restart');
    expect(child.pid).not.toBe(firstPid);
    expect(await watchdog(channel.receive(), 15_000, 'echo 1')).toBe('while down 1');
    expect(await watchdog(channel.receive(), 15_000, 'echo 2')).toBe('while down 2');
    await channel.send('after');
    expect(await watchdog(channel.receive(), 15_000, 'echo after')).toBe('after');
    expect(channel.trySend('tried')).toBe(true);
    expect(await watchdog(channel.receive(), 15_000, 'echo tried')).toBe('tried');
    // tryReceive takes what the child's channel has handed over, in order with receive.
    expect(channel.tryReceive()).toBeUndefined();
    for (let i = 0; i < 50; i++) await channel.send(`burst ${i}`);
    const echoed: unknown[] = [];
    while (echoed.length < 50) {
      const next = channel.tryReceive();
      echoed.push(next ? next.message : await watchdog(channel.receive(), 15_000, 'burst echo'));
    }
    expect(echoed).toEqual(Array.from({ length: 50 }, (_, i) => `burst ${i}`));
    await sup.stop();
    expect(() => channel.tryReceive()).toThrow(expect.objectContaining({ code: ErrorCodes.CLOSED }));
  });

  it.each(['timeout', 'signal'] as const)(
    'a send waiting behind buffered messages going out to a child that does not read: its %s applies',
    async (bound) => {
      const sup = supervisor({ restart: 'always', backoff: { initialMs: 1 }, maxBuffered: 5000 });
      let calls = 0;
      sup.add(
        'deaf',
        () =>
          calls++ === 0 ? node('process-hello-then-exit.ts', '1')() : node('hello-then-never-read.ts')(),
        { ready: (child) => child.channel!.receive() },
      );
      const restarting = once(sup, 'restart');
      await sup.start();
      await watchdog(restarting, 30_000, 'restart');
      const channel = sup.channel<string>('deaf');
      // Buffered while the child is down (each send resolves at once, before the next child
      // starts): several MiB, more than the pipes hold, so the flush to a child that does not read
      // never ends.
      const big = 'x'.repeat(2000);
      for (let i = 0; i < 3000; i++) await channel.send(big);
      await watchdog(once(sup, 'start'), 30_000, 'the next child up');
      const abort = new AbortController();
      const sending = channel.send('late', bound === 'timeout' ? { timeout: 50 } : { signal: abort.signal });
      abort.abort();
      const err = await watchdog(rejectionOf(sending), 15_000, 'send');
      expect(err.code).toBe(bound === 'timeout' ? ErrorCodes.TIMEOUT : ErrorCodes.ABORTED);
    },
  );

  it("a dying child's unread messages all come before its successor's, however many", async () => {
    // More than the supervised channel holds before it stops reading from a child (1,024): the
    // dead child's pump and its successor's used to take turns from there on.
    const COUNT = 1500;
    const sup = supervisor({ restart: 'on-failure', backoff: { initialMs: 1 } });
    let starts = 0;
    sup.add('counter', () => {
      starts++;
      const code = starts === 1 ? '3' : '0'; // the first fails and is restarted, the second is done
      return spawn(process.execPath, fixtureArgs('process-send-count-then-exit.ts', String(COUNT), code), {
        channel: 'pipe',
      });
    });
    let exits = 0;
    const bothExited = new Promise<void>((resolve) =>
      sup.on('exit', () => {
        if (++exits === 2) resolve();
      }),
    );
    const channel = sup.channel<{ pid: number; i: number }>('counter');
    await sup.start();
    await watchdog(bothExited, 30_000, 'both children exited');
    const received: { pid: number; i: number }[] = [];
    for (let k = 0; k < 2 * COUNT; k++)
      received.push(await watchdog(channel.receive(), 15_000, `message ${k}`));
    const pids = [...new Set(received.map((m) => m.pid))];
    expect(pids).toHaveLength(2);
    expect(received).toEqual(pids.flatMap((pid) => Array.from({ length: COUNT }, (_, i) => ({ pid, i }))));
  });

  it("a child that exits leaving a process that holds its pipe: its successor's messages still come", async () => {
    // The grandchild inherits the channel's pipe and outlives the child: the end-of-file the
    // child's pump waited for (so that its messages come before the successor's) never came.
    const grandchild = join(env.dir, '..', 'grandchild.pid');
    const sup = supervisor({ restart: 'always', maxRestarts: 1, backoff: { initialMs: 1 } });
    sup.add('leaves-one-behind', () =>
      spawn(
        '/bin/sh',
        [
          '-c',
          `sleep 120 & echo $! >> '${grandchild}'; exec "$0" "$@"`,
          process.execPath,
          ...fixtureArgs('process-send-count-then-exit.ts', '1', '3'),
        ],
        { channel: 'pipe' },
      ),
    );
    const channel = sup.channel<{ pid: number; i: number }>('leaves-one-behind');
    try {
      await sup.start();
      const first = await watchdog(channel.receive(), 30_000, "the first child's message");
      const second = await watchdog(channel.receive(), 30_000, "the successor's message");
      expect(second.pid).not.toBe(first.pid);
    } finally {
      await sup.stop();
      killListed(grandchild);
    }
  });

  it("the same, after the child's transport refused a send (it had closed its end of the pipe)", async () => {
    const grandchild = join(env.dir, '..', 'grandchild.pid');
    const sup = supervisor({ restart: 'always', maxRestarts: 1, backoff: { initialMs: 1 } });
    let starts = 0;
    sup.add('closes-its-input', () =>
      ++starts === 1
        ? // Closes fd 3 (what the parent sends), leaves a process holding fd 4, exits after a while.
          spawn(
            '/bin/sh',
            ['-c', `sleep 120 3<&- & echo $! >> '${grandchild}'; exec 3<&-; sleep 1; exit 1`],
            { channel: 'pipe' },
          )
        : spawn(process.execPath, fixtureArgs('process-send-count-then-exit.ts', '3', '0'), {
            channel: 'pipe',
          }),
    );
    const channel = sup.channel<{ pid: number; i: number } | string>('closes-its-input');
    const firstExited = once(sup, 'exit');
    try {
      await sup.start();
      // Sends while the first child is up: its transport refuses them (EPIPE), and they wait for
      // the next child. Paced, not timed: the loop ends when the child has exited.
      let exited = false;
      void firstExited.then(() => {
        exited = true;
      });
      while (!exited) {
        await channel.send('ping');
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      for (let i = 0; i < 3; i++) {
        expect(await watchdog(channel.receive(), 30_000, `the successor's message ${i}`)).toMatchObject({
          i,
        });
      }
    } finally {
      await sup.stop();
      killListed(grandchild);
    }
  });

  it("releases each dead child's channel: restarts of an shm child leave no segment mapped", async () => {
    const before = segments();
    const sup = supervisor({ restart: 'always', maxRestarts: 3, backoff: { initialMs: 1 } });
    sup.add('hello', () =>
      spawn(process.execPath, fixtureArgs('process-hello-then-exit.ts', '1'), { channel: 'shm' }),
    );
    const channel = sup.channel<{ hello: number }>('hello');
    await sup.start();
    // Four children say hello and exit; after the last, the channel ends once every child's
    // channel has been read to its end.
    for (let k = 0; k < 4; k++)
      expect(await watchdog(channel.receive(), 30_000, `hello ${k}`)).toHaveProperty('hello');
    const end = await watchdog(rejectionOf(channel.receive()), 30_000, 'the end after giveup');
    expect(end.code).toBe(ErrorCodes.PEER_GONE);
    expect(segments()).toBe(before);
  });

  it("a 'ready' hook gates the start; the next child starts only after it", async () => {
    const sup = supervisor();
    const log = record(sup);
    const readyOrder: string[] = [];
    for (const name of ['db', 'api']) {
      sup.add(name, node('process-hello-then-exit.ts', '0'), {
        restart: 'never',
        ready: async (child) => {
          const hello = (await child.channel!.receive()) as { hello: number };
          readyOrder.push(`${name} ${hello.hello === child.pid}`);
        },
      });
    }
    await watchdog(sup.start(), 30_000, 'start');
    expect(readyOrder).toEqual(['db true', 'api true']);
    expect(log.filter((l) => l.startsWith('start'))).toEqual(['start db', 'start api']);
  });
});

describe('Supervisor: start and stop', () => {
  it('a start() that stop() interrupts rejects with ERR_IPC_CLOSED; nothing is left running', async () => {
    const sup = supervisor({ restart: 'always' });
    let readyCalled!: () => void;
    const inReady = new Promise<void>((resolve) => {
      readyCalled = resolve;
    });
    const spawned: number[] = [];
    for (const name of ['a', 'b', 'c']) {
      sup.add(
        name,
        () => {
          const child = spawn('sleep', ['1000']);
          spawned.push(child.pid);
          return child;
        },
        // Never ready on its own: the start is still in its first child when stop() comes.
        {
          ready: () => {
            readyCalled();
            return new Promise(() => {});
          },
        },
      );
    }
    const starting = rejectionOf(sup.start());
    await watchdog(inReady, 10_000, 'the first ready hook');
    await watchdog(sup.stop(), 30_000, 'stop');
    expect((await watchdog(starting, 10_000, 'start settles')).code).toBe(ErrorCodes.CLOSED);
    expect(spawned).toHaveLength(1);
    for (const pid of spawned) expect(() => process.kill(pid, 0)).toThrow();
  });

  it('starts in order and stops in reverse order', async () => {
    const sup = supervisor({ restart: 'always' });
    const log = record(sup);
    for (const name of ['a', 'b', 'c']) sup.add(name, () => spawn('sleep', ['1000']));
    await sup.start();
    expect(log).toEqual(['start a', 'start b', 'start c']);
    const pids = sup.names.map((n) => sup.child(n)!.pid);
    await watchdog(sup.stop(), 30_000, 'stop');
    expect(log.slice(3)).toEqual(['exit c SIGTERM', 'exit b SIGTERM', 'exit a SIGTERM']);
    for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow();
    // No restart happened after stop.
    expect(log.some((l) => l.startsWith('restart'))).toBe(false);
    await expect(sup.start()).rejects.toMatchObject({ code: ErrorCodes.CLOSED });
    await expect(sup.channel('a').receive()).rejects.toMatchObject({ code: ErrorCodes.CLOSED });
  });

  it('a factory that throws fails start(), and the children already started are stopped', async () => {
    const sup = supervisor();
    const log = record(sup);
    sup.add('ok', () => spawn('sleep', ['1000']));
    sup.add('broken', () => spawn('/nonexistent/ipckit-command'));
    const err = await rejectionOf(sup.start());
    expect(err).toBeInstanceOf(IpcError);
    expect(err.code).toBe(ErrorCodes.NOT_FOUND);
    expect(log).toEqual(['start ok', 'exit ok SIGTERM']);
  });

  it('a factory that fails during a restart counts as a failure, and never raises an error event', async () => {
    const sup = supervisor({ maxRestarts: 2, backoff: { initialMs: 1 } });
    const restarts: RestartInfo[] = [];
    sup.on('restart', (_, info) => restarts.push(info));
    let calls = 0;
    sup.add('flaky', () => {
      calls++;
      if (calls === 1) return spawn('sh', ['-c', 'exit 1']);
      throw new Error('cannot spawn any more');
    });
    const gaveUp = once(sup, 'giveup');
    await sup.start();
    const [name, lastExit, error] = await watchdog(gaveUp, 30_000, 'giveup');
    expect(name).toBe('flaky');
    expect(lastExit).toEqual({ code: 1, signal: null });
    expect((error as Error).message).toBe('cannot spawn any more');
    expect(calls).toBe(3);
    expect(restarts.map((r) => r.attempt)).toEqual([1, 2]);
    expect(sup.listenerCount('error')).toBe(0);
  });

  it("restart 'never': a factory that throws ends the child's channel with that error as cause", async () => {
    const sup = supervisor({ restart: 'never' });
    await sup.start();
    const failure = new Error('factory failed: config missing');
    sup.add('broken', () => {
      throw failure;
    });
    const err = await watchdog(rejectionOf(sup.channel('broken').receive()), 30_000, 'receive');
    expect(err.code).toBe(ErrorCodes.PEER_GONE);
    expect(err.message).toContain("'broken': the child could not be started");
    expect(err.cause).toBe(failure);
  });

  it("restart 'never': a failed 'ready' hook ends the child's channel with that error as cause", async () => {
    const sup = supervisor({ restart: 'never' });
    await sup.start();
    const failure = new Error('not ready');
    sup.add('picky', node('echo-parent-channel.ts'), {
      ready: async () => {
        throw failure;
      },
    });
    const err = await watchdog(rejectionOf(sup.channel('picky').receive()), 30_000, 'receive');
    expect(err.code).toBe(ErrorCodes.PEER_GONE);
    expect(err.message).toContain("'picky': the child did not get ready (it exited: signal SIGKILL)");
    expect(err.cause).toBe(failure);
  });

  it('a child whose ready hook failed leaves no segment mapped (its channel was never attached)', async () => {
    const before = segments();
    const sup = supervisor({ restart: 'always', maxRestarts: 3, backoff: { initialMs: 1 } });
    let calls = 0;
    sup.add(
      'never-ready',
      () => spawn(process.execPath, fixtureArgs('echo-parent-channel.ts'), { channel: 'shm' }),
      {
        ready: async (child) => {
          if (++calls > 1) throw new Error(`not ready #${calls}`);
          child.kill('SIGKILL');
        },
      },
    );
    const gaveUp = once(sup, 'giveup');
    await sup.start();
    await watchdog(gaveUp, 30_000, 'giveup');
    expect(segments()).toBe(before);
  });

  it("a 'ready' hook that fails during a restart: 'giveup' carries its error", async () => {
    const sup = supervisor({ maxRestarts: 2, backoff: { initialMs: 1 } });
    let calls = 0;
    sup.add('picky', node('echo-parent-channel.ts'), {
      ready: async (child) => {
        calls++;
        if (calls > 1) throw new Error(`not ready #${calls}`);
        // The first child is ready, then made to fail.
        child.kill('SIGKILL');
      },
    });
    const gaveUp = once(sup, 'giveup');
    await sup.start();
    const [name, lastExit, error] = await watchdog(gaveUp, 30_000, 'giveup');
    expect(name).toBe('picky');
    expect(lastExit).toEqual({ code: null, signal: 'SIGKILL' });
    expect((error as Error).message).toBe('not ready #3');
  });

  it('a child that exits while start() waits for its ready hook fails start(), and is not restarted', async () => {
    const sup = supervisor({ maxRestarts: 3, backoff: { initialMs: 1 } });
    const log = record(sup);
    sup.add('early', node('process-hello-then-exit.ts', '1'), { ready: () => new Promise(() => {}) });
    const err = await watchdog(rejectionOf(sup.start()), 30_000, 'start');
    expect(err.code).toBe(ErrorCodes.PEER_GONE);
    // start() reports the failure: no 'restart' (or 'giveup') event for a restart that never comes.
    expect(log).toEqual(['exit early 1']);
    expect(sup.restarts('early')).toBe(0);
  });

  it("a child that exits while its 'ready' hook waits: 'giveup' says it exited before it was ready", async () => {
    const sup = supervisor({ maxRestarts: 1, backoff: { initialMs: 1 } });
    let calls = 0;
    sup.add('early', node('process-hello-then-exit.ts', '1'), {
      ready: async (child) => {
        calls++;
        await child.channel!.receive(); // the hello
        if (calls > 1) await new Promise(() => {}); // never ready: the child exits first
      },
    });
    const gaveUp = once(sup, 'giveup');
    await sup.start();
    const [, lastExit, error] = await watchdog(gaveUp, 30_000, 'giveup');
    expect(lastExit).toEqual({ code: 1, signal: null });
    expect((error as IpcError).code).toBe(ErrorCodes.PEER_GONE);
    expect((error as IpcError).message).toContain("'early' exited (code 1) before it was ready");
  });

  it("'on-failure' does not restart a child that exits with code 0, even before its ready hook is done", async () => {
    const sup = supervisor({ maxRestarts: 3, backoff: { initialMs: 1 } });
    const log = record(sup);
    let calls = 0;
    // The first child is ready and exits 1 (restarted); the second exits 0 before it is ready.
    sup.add('oneshot', () => node('process-hello-then-exit.ts', calls === 0 ? '1' : '0')(), {
      restart: 'on-failure',
      ready: async (child) => {
        calls++;
        await child.channel!.receive(); // the hello
        if (calls > 1) await new Promise(() => {});
      },
    });
    await sup.start();
    const ended = await watchdog(rejectionOf(sup.channel('oneshot').receive()), 30_000, 'the channel ends');
    expect(ended.code).toBe(ErrorCodes.CLOSED);
    expect(calls).toBe(2);
    expect(log.filter((l) => !l.startsWith('start'))).toEqual([
      'exit oneshot 1',
      'restart oneshot #1 after 1',
      'exit oneshot 0',
    ]);
  });

  it("a listener that throws is the application's uncaught exception; restarts go on", async () => {
    const child = spawn(process.execPath, fixtureArgs('supervisor-listener-throws.ts'), {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.process.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    const status = await watchdog(child.exited, 30_000, 'the fixture exits');
    expect(status).toEqual({ code: 0, signal: null });
    expect(JSON.parse(out)).toEqual({
      uncaught: ['a listener failed', 'a listener failed', 'a listener failed'],
      events: ['exit', 'restart', 'exit', 'restart', 'exit'],
      restarts: 2,
    });
  });

  it('refuses counts and durations that are not numbers with TypeErrors naming them', () => {
    expect(() => new Supervisor({ maxRestarts: '3' as never })).toThrow(TypeError);
    expect(() => new Supervisor({ maxRestarts: '3' as never })).toThrow(/maxRestarts/);
    expect(() => new Supervisor({ backoff: { initialMs: '5' as never } })).toThrow(TypeError);
    expect(() => new Supervisor({ maxRestarts: 1.5 })).toThrow(RangeError);
  });

  it('refuses a graceMs or backoff.maxMs beyond the longest Node timer (it would fire after 1 ms)', () => {
    expect(() => new Supervisor({ graceMs: 2 ** 31 })).toThrow(RangeError);
    expect(() => new Supervisor({ graceMs: 2 ** 31 })).toThrow(/graceMs/);
    expect(() => new Supervisor({ backoff: { initialMs: 2 ** 31, maxMs: 2 ** 31 } })).toThrow(
      /backoff\.maxMs/,
    );
    expect(() => supervisor().add('x', () => spawn('true'), { graceMs: 2 ** 31 })).toThrow(RangeError);
  });

  it('refuses bad arguments', () => {
    expect(() => new Supervisor({ restart: 'sometimes' as never })).toThrow(RangeError);
    expect(() => new Supervisor({ maxRestarts: -1 })).toThrow(/maxRestarts/);
    expect(() => new Supervisor({ windowMs: 0 })).toThrow(/windowMs/);
    expect(() => new Supervisor({ backoff: { initialMs: -5 } })).toThrow(/backoff.initialMs/);
    const sup = supervisor();
    sup.add('x', () => spawn('true'));
    expect(() => sup.add('x', () => spawn('true'))).toThrow(
      expect.objectContaining({ code: ErrorCodes.EXISTS }),
    );
    expect(() => sup.add('y', 'spawn' as never)).toThrow(TypeError);
    expect(() => sup.child('nobody')).toThrow(expect.objectContaining({ code: ErrorCodes.NOT_FOUND }));
  });
});
