import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { childExecArgv } from '../../src/process/node-args.js';
import { fixture, isolateRuntimeDir, watchdog } from '../helpers.js';

let env: ReturnType<typeof isolateRuntimeDir>;
beforeEach(() => {
  env = isolateRuntimeDir();
});
afterEach(() => {
  env.cleanup();
});

describe('childExecArgv', () => {
  it.each([
    [['-e', 'CODE'], []],
    [['--eval', 'CODE'], []],
    [['--eval=CODE'], []],
    [['-pe', 'CODE'], []],
    [['-p', 'CODE'], []],
    [['--print', 'CODE'], []],
    [['--print=CODE'], []],
    [['-p', '-e', 'CODE'], []],
    [['-e', 'CODE', '-p'], []],
    [['--input-type=module', '-e', 'CODE', '--no-warnings'], ['--no-warnings']],
    [['--input-type', 'commonjs', '-e', 'CODE'], []],
    [['-c'], []],
    [['--check'], []],
    [['-i'], []],
    [['--interactive'], []],
    [['--test'], []],
    [['--watch', '--watch-path', 'src', '--watch-path=test', '--watch-preserve-output'], []],
    [['--inspect=9229', '--inspect-brk', '--debug-port=1'], []],
    [
      ['--max-old-space-size=64', '--import', 'tsx', '--enable-source-maps'],
      ['--max-old-space-size=64', '--import', 'tsx', '--enable-source-maps'],
    ],
  ])('drops what would run something else than the child program: %j', (execArgv, expected) => {
    expect(childExecArgv(execArgv, [])).toEqual(expected);
  });

  it('a pool created by `node -e` runs its tasks, not the eval code, in its workers', async () => {
    // Were the eval code run in a worker, it would create a pool of its own there (and so on): it
    // stops early when it sees it is a worker, so that a regression fails instead of forking on.
    const code = `
      if (process.env.IPCKIT_POOL_TASK) {
        console.log('the eval code ran in a worker');
        process.exit(7);
      }
      const { Pool } = await import(${JSON.stringify(new URL('../../src/index.ts', import.meta.url).href)});
      const pool = Pool.create(${JSON.stringify(fixture('pool-square.ts'))}, { size: 1 });
      try {
        console.log('result ' + (await pool.run(7)));
      } finally {
        await pool.destroy();
      }
    `;
    const { stdout } = await watchdog(
      promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
        env: process.env,
      }),
      60_000,
      'node -e',
    );
    expect(stdout).toBe('result 49\n');
  });
});
