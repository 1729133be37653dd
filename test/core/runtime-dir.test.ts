import { chownSync, mkdirSync, mkdtempSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { checkName, runtimeDir } from '../../src/core/runtime-dir.js';
import { ErrorCodes, Fifo, type IpcError } from '../../src/index.js';
import { isolateRuntimeDir } from '../helpers.js';

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return (err as IpcError).code;
  }
  return undefined;
}

describe('names', () => {
  it.each([
    ['../x'],
    ['a/b'],
    [''],
    ['.hidden'],
    ['-dash'],
    ['x'.repeat(101)],
    ['x'.repeat(300)],
    ['nul\0byte'],
    ['sp ace'],
  ])('refuses %j with ERR_IPC_INVALID_NAME', (name) => {
    expect(codeOf(() => checkName(name, 'test'))).toBe(ErrorCodes.INVALID_NAME);
  });

  it('accepts names of letters, digits, dot, dash and underscore up to 100 characters', () => {
    for (const name of ['jobs', 'a', 'A.b-c_d', '9lives', 'x'.repeat(100)]) {
      expect(() => checkName(name, 'test')).not.toThrow();
    }
  });

  it('refuses an invalid name in every API that takes one, touching nothing', async () => {
    const env = isolateRuntimeDir();
    try {
      await expect(Fifo.create('../escape')).rejects.toMatchObject({ code: ErrorCodes.INVALID_NAME });
      await expect(Fifo.receiver('x'.repeat(300))).rejects.toMatchObject({ code: ErrorCodes.INVALID_NAME });
    } finally {
      env.cleanup();
    }
  });
});

describe('runtime directory', () => {
  let env: ReturnType<typeof isolateRuntimeDir>;
  let oldUmask: number;
  beforeEach(() => {
    env = isolateRuntimeDir();
    oldUmask = process.umask(0);
  });
  afterEach(() => {
    process.umask(oldUmask);
    env.cleanup();
  });

  it('is created 0700 even under umask 000, and FIFOs in it are 0600', async () => {
    const dir = runtimeDir();
    expect(dir).toBe(env.dir);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    const path = await Fifo.create('modes');
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const registryDir = join(dir, '.registry');
    expect(statSync(registryDir).mode & 0o777).toBe(0o700);
    expect(statSync(join(registryDir, 'fifo.modes.json')).mode & 0o777).toBe(0o600);
  });

  it('tightens an existing directory it owns to 0700', () => {
    mkdirSync(env.dir, { mode: 0o755 });
    runtimeDir();
    expect(statSync(env.dir).mode & 0o777).toBe(0o700);
  });

  it('refuses a runtime directory that is a symlink', () => {
    const target = mkdtempSync(join(tmpdir(), 'ipckit-target-'));
    symlinkSync(target, env.dir);
    expect(codeOf(() => runtimeDir())).toBe(ErrorCodes.UNSAFE_PATH);
  });

  it.skipIf(process.getuid?.() !== 0)('refuses a runtime directory owned by another user', () => {
    mkdirSync(env.dir, { mode: 0o700 });
    chownSync(env.dir, 65534, 65534);
    expect(codeOf(() => runtimeDir())).toBe(ErrorCodes.PERMISSION);
  });
});
