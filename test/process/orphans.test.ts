import { spawn as nodeSpawn } from 'node:child_process';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isAlive } from '../../src/core/process-identity.js';
import { ErrorCodes } from '../../src/index.js';
import { fixtureArgs, isolateRuntimeDir, watchdog } from '../helpers.js';
import { LineReader } from './proc-helpers.js';

let env: ReturnType<typeof isolateRuntimeDir>;
const leftovers: number[] = [];
beforeEach(() => {
  env = isolateRuntimeDir();
});
afterEach(() => {
  for (const pid of leftovers.splice(0)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {}
  }
  env.cleanup();
});

/** Starts a fixture that spawns children sharing its stdout; returns its pid and its output. */
function startParent(fixture: string, ...args: string[]) {
  const parent = nodeSpawn(process.execPath, fixtureArgs(fixture, ...args), {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  leftovers.push(parent.pid!);
  return { parent, out: new LineReader(parent.stdout!) };
}

describe('when the parent dies (kill -9)', () => {
  it('with exitWithParent, the child exits', async () => {
    const { parent, out } = startParent('process-orphan-parent.ts', 'exit');
    const childPid = Number((await watchdog(out.line(/^child (\d+)$/), 20_000, 'child ready'))[1]);
    leftovers.push(childPid);
    const child = { pid: childPid, startTime: 0 };
    expect(isAlive(child)).toBe(true);
    parent.kill('SIGKILL');
    // The child writes to the same pipe as the parent: it ends only when both are gone.
    await watchdog(out.ended, 15_000, 'the orphaned child to exit');
    expect(isAlive(child)).toBe(false);
  });

  it('without it, the child learns ERR_IPC_PEER_GONE from its parentChannel and keeps running', async () => {
    const { parent, out } = startParent('process-orphan-parent.ts', 'stay');
    const childPid = Number((await watchdog(out.line(/^child (\d+)$/), 20_000, 'child ready'))[1]);
    leftovers.push(childPid);
    parent.kill('SIGKILL');
    const gone = await watchdog(out.line(/^parent gone: (\S+)$/), 15_000, 'the child to notice');
    expect(gone[1]).toBe(ErrorCodes.PEER_GONE);
    expect(isAlive({ pid: childPid, startTime: 0 })).toBe(true);
    process.kill(childPid, 'SIGKILL');
    await watchdog(out.ended, 15_000, 'child gone');
  });

  it("a pool's workers exit when the process that created the pool dies", async () => {
    const { parent, out } = startParent('process-pool-parent.ts');
    const pids = (await watchdog(out.line(/^workers ([\d,]+)$/), 30_000, 'workers ready'))[1]!
      .split(',')
      .map(Number);
    leftovers.push(...pids);
    expect(pids).toHaveLength(2);
    parent.kill('SIGKILL');
    await watchdog(out.ended, 15_000, 'the workers to exit');
    for (const pid of pids) expect(isAlive({ pid, startTime: 0 })).toBe(false);
  });
});
