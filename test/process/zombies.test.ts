import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { spawn } from '../../src/index.js';
import { fixtureArgs, isolateRuntimeDir, openFdCount, watchdog } from '../helpers.js';
import { childrenOfThisProcess, LineReader } from './proc-helpers.js';

let env: ReturnType<typeof isolateRuntimeDir>;
beforeEach(() => {
  env = isolateRuntimeDir();
});
afterEach(() => env.cleanup());

function zombies(): number[] {
  return childrenOfThisProcess()
    .filter((p) => p.state === 'Z')
    .map((p) => p.pid);
}

describe('no zombies, no leaked fds', () => {
  it('200 spawn/kill cycles leave no zombie child and no open fd behind', async () => {
    const fdsBefore = openFdCount();
    const childrenBefore = childrenOfThisProcess().length;
    const run = async () => {
      for (let i = 0; i < 200; i++) {
        // Every path a child can end by: SIGKILL, stop() (SIGTERM), a paused child killed, a stop()
        // that escalates, an exit of its own; half of them with a channel nobody closes.
        const channel = i % 2 === 0 ? ('pipe' as const) : false;
        const child = spawn('sleep', ['1000'], { channel, stdio: 'ignore', killGroup: i % 10 === 3 });
        switch (i % 5) {
          case 0:
            child.kill('SIGKILL');
            break;
          case 1:
            await child.stop();
            break;
          case 2:
            child.pause();
            child.kill('SIGKILL');
            break;
          case 3:
            child.pause();
            await child.stop({ graceMs: 0 });
            break;
          case 4:
            child.kill('SIGTERM');
            break;
        }
        await child.exited;
      }
      // Children that end on their own, too.
      for (let i = 0; i < 10; i++) await spawn('true', [], { channel: 'pipe', stdio: 'ignore' }).exited;
    };
    await watchdog(run(), 120_000, '200 cycles');
    expect(zombies()).toEqual([]);
    expect(childrenOfThisProcess().length).toBe(childrenBefore);
    // A channel's fds are released when the end of the child's side is read, which may come a
    // turn of the event loop after the exit: wait for the count (a leak never gets there).
    const fdsBack = new Promise<void>((resolve) => {
      const check = () => (openFdCount() <= fdsBefore ? resolve() : setImmediate(check));
      check();
    });
    await watchdog(fdsBack, 10_000, `fd count back to ${fdsBefore} (now ${openFdCount()})`);
    expect(openFdCount()).toBe(fdsBefore);
  });

  it('a bad channel option is refused before anything starts, so no child is left without a handle', () => {
    const before = childrenOfThisProcess().length;
    expect(() => spawn('sleep', ['1000'], { channel: 'pipe', codec: {} as never })).toThrow(TypeError);
    expect(childrenOfThisProcess().length).toBe(before);
  });

  it('a group leader that exits takes what is left of its group with it (killGroup)', async () => {
    const child = spawn(process.execPath, fixtureArgs('process-spawn-grandchild.ts'), {
      killGroup: true,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const out = new LineReader(child.process.stdout!);
    await watchdog(out.line(/^grandchild \d+$/), 15_000, 'grandchild');
    // Only the leader is killed; the grandchild must not survive it.
    process.kill(child.pid, 'SIGKILL');
    await watchdog(child.exited, 10_000, 'leader exit');
    await watchdog(out.ended, 15_000, 'grandchild gone');
    expect(zombies()).toEqual([]);
  });
});
