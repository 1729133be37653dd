import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { listResources } from '../../src/index.js';
import { isolateRuntimeDir } from '../helpers.js';
import { runExample } from './run-example.js';

let runtime: ReturnType<typeof isolateRuntimeDir>;
beforeEach(() => {
  runtime = isolateRuntimeDir();
});
afterEach(() => runtime.cleanup());

describe('examples/sockets', () => {
  it('echo.ts: a client process gets its words back upper-cased over TCP', async () => {
    const run = await runExample('sockets', 'echo.ts');
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/server listening on tcp:\/\/127\.0\.0\.1:\d+/);
    expect(run.stdout).toContain('client connected from 127.0.0.1');
    const replies = run.stdout
      .split('\n')
      .filter((line) => line.startsWith('client got: '))
      .map((line) => line.slice('client got: '.length));
    expect(replies).toEqual(['HELLO', 'OVER', 'TCP']);
    expect(run.stdout).toContain('client exited with code 0');
  });

  it('rpc.ts: concurrent requests over a named pipe; remote errors keep their code, no stack', async () => {
    const run = await runExample('sockets', 'rpc.ts');
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`(${runtime.dir}/example-rpc-`);
    expect(run.stdout).toContain('sums: 0 2 4 6 8 10 12 14 16 18');
    expect(run.stdout).toContain('7 / 2 = 3.5');
    expect(run.stdout).toContain(
      '1 / 0 failed remotely: ERR_IPC_REMOTE (RangeError): divide: the divisor must not be 0',
    );
    expect(run.stdout).toContain("no handler for method 'sqrt'");
    expect(run.stdout).not.toContain('at ');
    expect(run.stdout).toContain('client exited with code 0');
    expect(listResources()).toEqual([]); // the server's socket file and registry entry are gone
  });

  it('pubsub.ts: a token-authenticated subscriber process prints every price in order', async () => {
    const run = await runExample('sockets', 'pubsub.ts');
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const ticks = run.stdout
      .split('\n')
      .filter((line) => line.startsWith('subscriber: '))
      .map((line) => line.slice('subscriber: '.length));
    expect(ticks).toEqual(['ACME 101.00', 'ACME 102.01', 'INIT 103.03', 'ACME 104.06', 'INIT 105.10']);
    expect(run.stdout).toContain('subscriber exited with code 0');
  });
});
