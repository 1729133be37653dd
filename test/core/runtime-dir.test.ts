import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isKept, keepResource, keptMarks, releaseResource } from '../../src/cli/persistent.js';
import { unregister } from '../../src/core/registry.js';
import {
  checkName,
  readPrivateFile,
  runtimeDir,
  runtimeDirPath,
  runtimeSubdir,
} from '../../src/core/runtime-dir.js';
import {
  Barrier,
  Condition,
  ErrorCodes,
  Event,
  Fifo,
  type IpcError,
  listen,
  listResources,
  MessageQueue,
  Mutex,
  NamedPipe,
  RwLock,
  Semaphore,
  SharedMemory,
  ShmChannel,
} from '../../src/index.js';
import { isolateRuntimeDir } from '../helpers.js';

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return (err as IpcError).code;
  }
  return undefined;
}

describe('where the runtime directory is', () => {
  it("uses XDG_RUNTIME_DIR only when it is this user's directory", () => {
    const saved = { IPCKIT_DIR: process.env.IPCKIT_DIR, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR };
    const base = mkdtempSync(join(tmpdir(), 'ipckit-xdg-'));
    try {
      const own = join(base, 'own');
      const foreign = join(base, 'foreign');
      mkdirSync(own, { mode: 0o700 });
      mkdirSync(foreign, { mode: 0o700 });
      chownSync(foreign, 65534, 65534);
      delete process.env.IPCKIT_DIR;
      process.env.XDG_RUNTIME_DIR = own;
      expect(runtimeDirPath()).toBe(join(own, 'ipckit'));
      process.env.XDG_RUNTIME_DIR = foreign;
      expect(runtimeDirPath()).toBe(join(tmpdir(), `ipckit-${process.getuid!()}`));
      // Made after this process first looked (by the login manager, say): used from then on.
      const late = join(base, 'late');
      process.env.XDG_RUNTIME_DIR = late;
      expect(runtimeDirPath()).toBe(join(tmpdir(), `ipckit-${process.getuid!()}`));
      mkdirSync(late, { mode: 0o700 });
      expect(runtimeDirPath()).toBe(join(late, 'ipckit'));
    } finally {
      for (const [key, value] of Object.entries(saved)) {
        if (value === undefined) delete process.env[key];
        else process.env[key] = value;
      }
      rmSync(base, { recursive: true, force: true });
    }
  });
});

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
    mkdirSync(env.dir, { mode: 0o700 });
    const parent = dirname(env.dir);
    // What these names could make: in the runtime directory, beside it (../escape), in /dev/shm.
    // Other tests' files come and go in the parent meanwhile, so only names like these count.
    const ours = (name: string) =>
      name.includes('escape') || name.includes('xxxxxxxxxx') || name.includes('nul');
    const snapshot = () => ({
      dir: readdirSync(env.dir).sort(),
      parent: readdirSync(parent).filter(ours).sort(),
      shm: readdirSync('/dev/shm').filter(ours).sort(),
    });
    const before = snapshot();
    const sync: Array<[string, (name: string) => unknown]> = [
      ['SharedMemory.create', (n) => SharedMemory.create(n, { size: 64 })],
      ['SharedMemory.open', (n) => SharedMemory.open(n)],
      ['SharedMemory.openOrCreate', (n) => SharedMemory.openOrCreate(n, { size: 64 })],
      ['SharedMemory.unlink', (n) => SharedMemory.unlink(n)],
      ['ShmChannel.create', (n) => ShmChannel.create(n)],
      ['ShmChannel.open', (n) => ShmChannel.open(n)],
      ['Mutex.create', (n) => Mutex.create(n)],
      ['Mutex.open', (n) => Mutex.open(n)],
      ['Mutex.unlink', (n) => Mutex.unlink(n)],
      ['Semaphore.openOrCreate', (n) => Semaphore.openOrCreate(n)],
      ['RwLock.create', (n) => RwLock.create(n)],
      ['Barrier.create', (n) => Barrier.create(n, { parties: 2 })],
      ['Event.openOrCreate', (n) => Event.openOrCreate(n)],
      ['Condition.create', (n) => Condition.create(n)],
      ['Fifo.path', (n) => Fifo.path(n)],
    ];
    const async: Array<[string, (name: string) => Promise<unknown>]> = [
      ['Fifo.create', (n) => Fifo.create(n)],
      ['Fifo.receiver', (n) => Fifo.receiver(n)],
      ['Fifo.sender', (n) => Fifo.sender(n)],
      ['Fifo.unlink', (n) => Fifo.unlink(n)],
      ['NamedPipe.listen', (n) => NamedPipe.listen(n)],
      ['NamedPipe.connect', (n) => NamedPipe.connect(n)],
      ['MessageQueue.open', (n) => MessageQueue.open(n)],
      ['MessageQueue.remove', (n) => MessageQueue.remove(n)],
    ];
    try {
      for (const name of ['../escape', 'x'.repeat(300), 'nul\0byte']) {
        for (const [api, call] of sync) {
          expect({ api, name, code: codeOf(() => call(name)) }).toEqual({
            api,
            name,
            code: ErrorCodes.INVALID_NAME,
          });
        }
        for (const [api, call] of async) {
          const code = await call(name).then(
            () => 'resolved',
            (err: IpcError) => err.code,
          );
          expect({ api, name, code }).toEqual({ api, name, code: ErrorCodes.INVALID_NAME });
        }
      }
      expect(snapshot()).toEqual(before);
    } finally {
      env.cleanup();
    }
  });
});

describe('names that are not strings', () => {
  it('are a TypeError in every API that takes a name, as wrong argument types are in Node', async () => {
    const env = isolateRuntimeDir();
    try {
      const name = 123 as never;
      await expect(Fifo.create(name)).rejects.toThrow(TypeError);
      await expect(NamedPipe.listen(name)).rejects.toThrow(TypeError);
      await expect(NamedPipe.connect(name)).rejects.toThrow(TypeError);
      await expect(MessageQueue.open(name)).rejects.toThrow(TypeError);
      expect(() => ShmChannel.create(null as never)).toThrow(/name must be a string, got null/);
      expect(() => SharedMemory.create(name, { size: 64 })).toThrow(TypeError);
      expect(() => Mutex.create(name)).toThrow(TypeError);
      expect(() => Semaphore.openOrCreate(name)).toThrow(TypeError);
    } finally {
      env.cleanup();
    }
  });
});

describe('runtime directory', () => {
  let env: ReturnType<typeof isolateRuntimeDir>;
  beforeEach(() => {
    env = isolateRuntimeDir({ umask: 0 });
  });
  afterEach(() => env.cleanup());

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

  it('is checked again on every use: loosened later, it is tightened; swapped for a symlink, refused', async () => {
    expect(runtimeDir()).toBe(env.dir);
    chmodSync(env.dir, 0o755);
    await Fifo.create('after-chmod');
    expect(statSync(env.dir).mode & 0o777).toBe(0o700);
    const target = mkdtempSync(join(tmpdir(), 'ipckit-target-'));
    try {
      renameSync(env.dir, `${env.dir}.moved`);
      symlinkSync(target, env.dir);
      await expect(Fifo.create('through-link')).rejects.toMatchObject({ code: ErrorCodes.UNSAFE_PATH });
      expect(readdirSync(target)).toEqual([]);
    } finally {
      rmSync(env.dir, { force: true });
      renameSync(`${env.dir}.moved`, env.dir);
      rmSync(target, { recursive: true, force: true });
    }
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

describe("the runtime directory's parents", () => {
  // Whoever may write to a directory above the runtime directory can rename the runtime directory
  // away and put a symlink in its place between ipckit's check and its next mkfifo or open: the
  // files then land wherever the link points.
  let env: ReturnType<typeof isolateRuntimeDir>;
  let base: string;
  beforeEach(() => {
    env = isolateRuntimeDir({ umask: 0 });
    base = dirname(env.dir);
  });
  afterEach(() => env.cleanup());

  it('refuses one that others may write to (not sticky), creating nothing in it', async () => {
    chmodSync(base, 0o777);
    expect(codeOf(() => runtimeDir())).toBe(ErrorCodes.UNSAFE_PATH);
    await expect(Fifo.create('x')).rejects.toMatchObject({ code: ErrorCodes.UNSAFE_PATH });
    expect(existsSync(env.dir)).toBe(false);
    // Further up counts as well: a missing parent would be made inside the open directory.
    process.env.IPCKIT_DIR = join(base, 'missing', 'rt');
    expect(codeOf(() => runtimeDir())).toBe(ErrorCodes.UNSAFE_PATH);
    expect(readdirSync(base)).toEqual([]);
  });

  it('refuses one that the group may write to, and one reached through a symlink in such a directory', () => {
    chmodSync(base, 0o770);
    expect(codeOf(() => runtimeDir())).toBe(ErrorCodes.UNSAFE_PATH);
    const safe = mkdtempSync(join(tmpdir(), 'ipckit-safe-'));
    try {
      // safe/link -> base: the link's own directory is safe, but where it leads is not.
      symlinkSync(base, join(safe, 'link'));
      process.env.IPCKIT_DIR = join(safe, 'link', 'rt');
      expect(codeOf(() => runtimeDir())).toBe(ErrorCodes.UNSAFE_PATH);
      expect(readdirSync(base)).toEqual([]);
    } finally {
      rmSync(safe, { recursive: true, force: true });
    }
  });

  it('accepts a sticky one that everybody may write to, as /tmp', () => {
    chmodSync(base, 0o1777);
    expect(runtimeDir()).toBe(env.dir);
  });

  it.skipIf(process.getuid?.() !== 0)('refuses one owned by another user (not root)', () => {
    chownSync(base, 65534, 65534);
    expect(codeOf(() => runtimeDir())).toBe(ErrorCodes.UNSAFE_PATH);
    expect(existsSync(env.dir)).toBe(false);
  });
});

describe('private subdirectories of the runtime directory', () => {
  let env: ReturnType<typeof isolateRuntimeDir>;
  let outside: string;
  beforeEach(() => {
    env = isolateRuntimeDir();
    mkdirSync(env.dir, { mode: 0o700 });
    outside = mkdtempSync(join(tmpdir(), 'ipckit-outside-'));
  });
  afterEach(() => {
    env.cleanup();
    rmSync(outside, { recursive: true, force: true });
  });

  /** Replaces `<runtime dir>/<name>` by a symlink to the directory outside. */
  function plant(name: string): void {
    symlinkSync(outside, join(env.dir, name));
  }

  it('are created 0700 even under umask 000, and an existing one is tightened to 0700', () => {
    const oldUmask = process.umask(0);
    try {
      expect(statSync(runtimeSubdir('.fresh')).mode & 0o777).toBe(0o700);
      mkdirSync(join(env.dir, '.loose'), { mode: 0o777 });
      expect(runtimeSubdir('.loose', { create: false })).toBe(join(env.dir, '.loose'));
      expect(statSync(join(env.dir, '.loose')).mode & 0o777).toBe(0o700);
      expect(runtimeSubdir('.missing', { create: false })).toBeUndefined();
      expect(existsSync(join(env.dir, '.missing'))).toBe(false);
    } finally {
      process.umask(oldUmask);
    }
  });

  it.each([['x'], ['.'], ['..'], ['.a/b'], ['../x'], ['']])('refuses the name %j', (name) => {
    expect(codeOf(() => runtimeSubdir(name))).toBe(ErrorCodes.INVALID_NAME);
  });

  it('refuses a symlink or a file in place of one, creating nothing through it', () => {
    plant('.linked');
    expect(codeOf(() => runtimeSubdir('.linked'))).toBe(ErrorCodes.UNSAFE_PATH);
    expect(codeOf(() => runtimeSubdir('.linked', { create: false }))).toBe(ErrorCodes.UNSAFE_PATH);
    symlinkSync(join(outside, 'not-yet'), join(env.dir, '.dangling'));
    expect(codeOf(() => runtimeSubdir('.dangling'))).toBe(ErrorCodes.UNSAFE_PATH);
    writeFileSync(join(env.dir, '.file'), '');
    expect(codeOf(() => runtimeSubdir('.file'))).toBe(ErrorCodes.UNSAFE_PATH);
    expect(readdirSync(outside)).toEqual([]);
    expect(statSync(outside).mode & 0o777).toBe(0o700); // mkdtemp's mode: not chmodded through the link
  });

  it.skipIf(process.getuid?.() !== 0)('refuses one owned by another user', () => {
    mkdirSync(join(env.dir, '.theirs'), { mode: 0o700 });
    chownSync(join(env.dir, '.theirs'), 65534, 65534);
    expect(codeOf(() => runtimeSubdir('.theirs'))).toBe(ErrorCodes.PERMISSION);
  });

  it('a planted .registry: creating, listing and removing fail with ERR_IPC_UNSAFE_PATH, touching nothing outside', async () => {
    plant('.registry');
    const decoy = join(outside, 'fifo.decoy.json');
    writeFileSync(decoy, 'precious');
    await expect(Fifo.create('ff')).rejects.toMatchObject({ code: ErrorCodes.UNSAFE_PATH });
    // Named kernel objects made before the refusal are removed with it: nothing is left behind.
    expect(codeOf(() => SharedMemory.create('seg', { size: 64 }))).toBe(ErrorCodes.UNSAFE_PATH);
    expect(codeOf(() => SharedMemory.open('seg'))).toBe(ErrorCodes.NOT_FOUND);
    expect(codeOf(() => Mutex.create('mtx'))).toBe(ErrorCodes.UNSAFE_PATH);
    expect(codeOf(() => Mutex.open('mtx'))).toBe(ErrorCodes.NOT_FOUND);
    await expect(listen('pipe://np')).rejects.toMatchObject({ code: ErrorCodes.UNSAFE_PATH });
    expect(existsSync(join(env.dir, 'np.sock'))).toBe(false); // not left bound
    expect(codeOf(() => listResources())).toBe(ErrorCodes.UNSAFE_PATH);
    expect(codeOf(() => unregister('fifo', 'decoy'))).toBe(ErrorCodes.UNSAFE_PATH);
    expect(readdirSync(outside)).toEqual(['fifo.decoy.json']);
    expect(readFileSync(decoy, 'utf8')).toBe('precious');
  });

  it("a planted registry manifest's temporary file is replaced, not written through", async () => {
    const registry = runtimeSubdir('.registry');
    const victim = join(outside, 'victim');
    writeFileSync(victim, 'precious');
    symlinkSync(victim, join(registry, `fifo.ff.json.${process.pid}.tmp`));
    await Fifo.create('ff');
    expect(readFileSync(victim, 'utf8')).toBe('precious');
    expect(lstatSync(join(registry, 'fifo.ff.json')).isFile()).toBe(true);
    expect(listResources()).toContainEqual(expect.objectContaining({ kind: 'fifo', name: 'ff' }));
  });

  it("a planted .kept (the CLI's marks): keeping, reading and releasing fail, touching nothing outside", async () => {
    await Fifo.create('kept');
    plant('.kept');
    const decoy = join(outside, 'fifo.kept.json');
    writeFileSync(decoy, 'precious');
    expect(codeOf(() => keepResource('fifo', 'kept'))).toBe(ErrorCodes.UNSAFE_PATH);
    expect(codeOf(() => keptMarks())).toBe(ErrorCodes.UNSAFE_PATH);
    const owner = listResources().find((e) => e.name === 'kept')!.owner;
    expect(codeOf(() => isKept({ kind: 'fifo', name: 'kept', owner }))).toBe(ErrorCodes.UNSAFE_PATH);
    expect(codeOf(() => releaseResource('fifo', 'kept'))).toBe(ErrorCodes.UNSAFE_PATH);
    expect(readdirSync(outside)).toEqual(['fifo.kept.json']);
    expect(readFileSync(decoy, 'utf8')).toBe('precious');
  });

  it("lists only well-formed marks: one whose kind or name is a path is skipped, so gc's cleanup stays in .kept", async () => {
    await Fifo.create('kept');
    keepResource('fifo', 'kept');
    const decoy = join(outside, 'victim.x.json');
    writeFileSync(decoy, 'precious');
    const owner = { pid: 1, startTime: 0 };
    const planted = [
      { kind: relative(join(env.dir, '.kept'), join(outside, 'victim')), name: 'x' },
      { kind: 'fifo', name: '../../x' },
      { kind: 'nonsense', name: 'x' },
    ];
    planted.forEach((mark, i) => {
      writeFileSync(
        join(env.dir, '.kept', `planted${i}.json`),
        JSON.stringify({ ...mark, owner, keptAt: '' }),
      );
    });
    const marks = keptMarks();
    expect(marks.map((mark) => `${mark.kind}.${mark.name}`)).toEqual(['fifo.kept']);
    // What `ipckit gc` does with the marks of resources no longer registered.
    for (const mark of marks) releaseResource(mark.kind, mark.name);
    expect(readFileSync(decoy, 'utf8')).toBe('precious');
  });

  it('releasing the mark of a name no resource can have (`ipckit shm rm x/../..`) removes nothing', async () => {
    await Fifo.create('kept');
    keepResource('fifo', 'kept');
    const decoy = join(outside, 'victim.json');
    writeFileSync(decoy, 'precious');
    // `.kept/shm.<name>.json` for this name is `<outside>/victim.json`.
    const name = `x/../${relative(join(env.dir, '.kept'), join(outside, 'victim'))}`;
    releaseResource('shm', name);
    expect(readFileSync(decoy, 'utf8')).toBe('precious');
    expect(isKept({ kind: 'shm', name, owner: { pid: 1, startTime: 0 } })).toBe(false);
  });

  it('readPrivateFile reads a small regular file, and nothing else: a FIFO, a symlink, a large file', () => {
    const dir = runtimeSubdir('.files');
    writeFileSync(join(dir, 'small'), 'text');
    expect(readPrivateFile(join(dir, 'small'), 4)).toBe('text');
    expect(readPrivateFile(join(dir, 'small'), 3)).toBeUndefined();
    expect(readPrivateFile(join(dir, 'missing'), 4)).toBeUndefined();
    symlinkSync(join(dir, 'small'), join(dir, 'link'));
    expect(readPrivateFile(join(dir, 'link'), 4)).toBeUndefined();
    symlinkSync('/dev/zero', join(dir, 'zero'));
    expect(readPrivateFile(join(dir, 'zero'), 4)).toBeUndefined();
    // Opening a FIFO for reading would wait for a writer that never comes.
    execFileSync('mkfifo', [join(dir, 'fifo')]);
    expect(readPrivateFile(join(dir, 'fifo'), 4)).toBeUndefined();
    expect(readPrivateFile(dir, 4)).toBeUndefined();
  });
});
