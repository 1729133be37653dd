import { spawnSync } from 'node:child_process';
import {
  chownSync,
  closeSync,
  existsSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  ErrorCodes,
  type IpcError,
  isIpcError,
  listResources,
  SharedMemory,
  shareFds,
  spawn,
} from '../../src/index.js';
import { native } from '../../src/native/binding.js';
import { kernelName, kernelPath } from '../../src/shm/kernel-name.js';
import { fixtureArgs, isolateRuntimeDir, openFdCount, watchdog } from '../helpers.js';
import { killAll, removeShmObjects, startFixture, succeeded } from '../sync/children.js';

let env: ReturnType<typeof isolateRuntimeDir>;
const opened: SharedMemory[] = [];
beforeEach(() => {
  env = isolateRuntimeDir();
});
afterEach(async () => {
  await killAll();
  for (const segment of opened.splice(0)) {
    segment.close();
    segment.unlink();
  }
  removeShmObjects();
  env.cleanup();
});

function track(segment: SharedMemory): SharedMemory {
  opened.push(segment);
  return segment;
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return isIpcError(err) ? err.code : `not an IpcError: ${String(err)}`;
  }
  return undefined;
}

/** The /dev/shm entries of this test's runtime directory. */
function ourShmEntries(): string[] {
  const prefix = kernelName('shm', 'x', 'probe').slice(1, -'shm.x'.length);
  return readdirSync('/dev/shm').filter((f) => f.startsWith(prefix));
}

describe('SharedMemory (named)', () => {
  it('creates a zeroed segment whose buffer is exactly the requested size, mode 0600', () => {
    const segment = track(SharedMemory.create('frames', { size: 1000 }));
    expect(segment.buffer.byteLength).toBe(1000);
    expect(segment.size).toBe(1000);
    expect(new Uint8Array(segment.buffer).every((b) => b === 0)).toBe(true);
    const stat = statSync(kernelPath(kernelName('shm', 'frames', 'x')));
    expect(stat.mode & 0o777).toBe(0o600);
  });

  it('applies an explicit mode exactly, whatever the umask', () => {
    const old = process.umask(0o077);
    try {
      track(SharedMemory.create('shared', { size: 64, mode: 0o640 }));
    } finally {
      process.umask(old);
    }
    expect(statSync(kernelPath(kernelName('shm', 'shared', 'x'))).mode & 0o777).toBe(0o640);
  });

  it('shares bytes with another process that opens it by name', async () => {
    const segment = track(SharedMemory.create('pattern', { size: 1 << 16 }));
    const child = startFixture('shm-write-pattern.ts', ['pattern']);
    await succeeded(child, 20_000, 'writer');
    const bytes = new Uint8Array(segment.buffer);
    let mismatches = 0;
    for (let i = 0; i < bytes.length; i++) if (bytes[i] !== ((i * 7) & 255)) mismatches++;
    expect(mismatches).toBe(0);
  });

  it('reports EXISTS, NOT_FOUND and INVALID_NAME with stable codes', () => {
    track(SharedMemory.create('taken', { size: 16 }));
    expect(codeOf(() => SharedMemory.create('taken', { size: 16 }))).toBe(ErrorCodes.EXISTS);
    expect(codeOf(() => SharedMemory.open('missing'))).toBe(ErrorCodes.NOT_FOUND);
    expect(codeOf(() => SharedMemory.open('../escape'))).toBe(ErrorCodes.INVALID_NAME);
    expect(codeOf(() => SharedMemory.create('x'.repeat(101), { size: 1 }))).toBe(ErrorCodes.INVALID_NAME);
  });

  it('rejects bad sizes and modes with RangeErrors naming the option', () => {
    expect(() => SharedMemory.create('a', { size: 0 })).toThrow(/options\.size/);
    expect(() => SharedMemory.create('a', { size: 1.5 })).toThrow(RangeError);
    expect(() => SharedMemory.create('a', { size: 8, mode: 0o1777 })).toThrow(/options\.mode/);
  });

  it('rejects sizes and modes that are not numbers with TypeErrors naming the option', () => {
    expect(() => SharedMemory.create('a', { size: '10' as never })).toThrow(TypeError);
    expect(() => SharedMemory.create('a', { size: '10' as never })).toThrow(/options\.size/);
    expect(() => SharedMemory.openOrCreate('a', { size: 10n as never })).toThrow(TypeError);
    expect(() => SharedMemory.create('a', { size: 8, mode: 'x' as never })).toThrow(TypeError);
    expect(() => SharedMemory.create('a', { size: 8, mode: 'x' as never })).toThrow(/options\.mode/);
    expect(() => SharedMemory.anonymous('8' as never)).toThrow(TypeError);
    expect(() => SharedMemory.inherited('0' as never)).toThrow(TypeError);
    expect(() => SharedMemory.inherited(-1)).toThrow(RangeError);
  });

  it('openOrCreate creates once, then opens; a different size is INCOMPATIBLE', () => {
    const first = track(SharedMemory.openOrCreate('table', { size: 256 }));
    new Uint8Array(first.buffer)[5] = 42;
    const second = track(SharedMemory.openOrCreate('table', { size: 256 }));
    expect(new Uint8Array(second.buffer)[5]).toBe(42);
    expect(codeOf(() => SharedMemory.openOrCreate('table', { size: 512 }))).toBe(ErrorCodes.INCOMPATIBLE);
  });

  it('records the creator in the header and in the registry for ipckit ls', () => {
    const segment = track(SharedMemory.create('listed', { size: 8 }));
    expect(segment.creator?.pid).toBe(process.pid);
    const entry = listResources().find((r) => r.kind === 'shm' && r.name === 'listed');
    expect(entry?.owner.pid).toBe(process.pid);
    expect(entry?.ownerAlive).toBe(true);
    expect(entry?.path).toBe(kernelPath(kernelName('shm', 'listed', 'x')));
    segment.unlink();
    expect(listResources().some((r) => r.kind === 'shm' && r.name === 'listed')).toBe(false);
  });

  it('detaches the buffer on close, so stale views read nothing instead of faulting', () => {
    const segment = SharedMemory.create('closing', { size: 4096 });
    const view = new Int32Array(segment.buffer);
    view[0] = 7;
    segment.close();
    segment.close();
    expect(segment.closed).toBe(true);
    expect(segment.buffer.byteLength).toBe(0);
    expect(view.length).toBe(0);
    expect(view[0]).toBeUndefined();
    segment.unlink();
  });

  it('keeps a mapping valid after unlink, while new opens fail', () => {
    const segment = track(SharedMemory.create('gone', { size: 64 }));
    new Uint8Array(segment.buffer)[0] = 9;
    segment.unlink();
    expect(new Uint8Array(segment.buffer)[0]).toBe(9);
    expect(codeOf(() => SharedMemory.open('gone'))).toBe(ErrorCodes.NOT_FOUND);
    expect(codeOf(() => SharedMemory.unlink('gone'))).toBe(ErrorCodes.NOT_FOUND);
  });

  it("a handle's unlink() leaves alone a name that now belongs to a newer segment", () => {
    const old = track(SharedMemory.create('reused', { size: 64 }));
    old.unlink();
    const fresh = track(SharedMemory.create('reused', { size: 64 }));
    new Uint8Array(fresh.buffer)[0] = 7;
    old.unlink();
    const reopened = track(SharedMemory.open('reused'));
    expect(new Uint8Array(reopened.buffer)[0]).toBe(7);
    expect(listResources().some((r) => r.kind === 'shm' && r.name === 'reused')).toBe(true);
    fresh.unlink();
    expect(codeOf(() => SharedMemory.open('reused'))).toBe(ErrorCodes.NOT_FOUND);
  });

  it('isolates runtime directories: another IPCKIT_DIR does not see the segment', () => {
    track(SharedMemory.create('private', { size: 8 }));
    const other = isolateRuntimeDir();
    try {
      expect(codeOf(() => SharedMemory.open('private'))).toBe(ErrorCodes.NOT_FOUND);
      const mine = SharedMemory.create('private', { size: 8 });
      mine.close();
      mine.unlink();
    } finally {
      other.cleanup();
      process.env.IPCKIT_DIR = env.dir;
    }
    expect(SharedMemory.open('private').size).toBe(8);
  });
});

describe('SharedMemory header checks', () => {
  function corrupt(name: string, offset: number, bytes: number[]): void {
    const fd = openSync(kernelPath(kernelName('shm', name, 'x')), 'r+');
    try {
      writeSync(fd, Buffer.from(bytes), 0, bytes.length, offset);
    } finally {
      closeSync(fd);
    }
  }

  it('refuses a wrong magic with INCOMPATIBLE', () => {
    track(SharedMemory.create('bad-magic', { size: 64 }));
    corrupt('bad-magic', 0, [0xde, 0xad, 0xbe, 0xef]);
    expect(codeOf(() => SharedMemory.open('bad-magic'))).toBe(ErrorCodes.INCOMPATIBLE);
  });

  it('refuses an unknown layout version with INCOMPATIBLE', () => {
    track(SharedMemory.create('bad-version', { size: 64 }));
    corrupt('bad-version', 4, [99, 0, 0, 0]);
    expect(codeOf(() => SharedMemory.open('bad-version'))).toBe(ErrorCodes.INCOMPATIBLE);
  });

  it('refuses a header that claims more bytes than the object has (no SIGBUS)', () => {
    track(SharedMemory.create('bad-size', { size: 64 }));
    // f64 at byte 16: 1 GiB.
    const size = Buffer.alloc(8);
    size.writeDoubleLE(1 << 30);
    corrupt('bad-size', 16, [...size]);
    expect(codeOf(() => SharedMemory.open('bad-size'))).toBe(ErrorCodes.INCOMPATIBLE);
  });

  it('refuses a header that claims more than an ArrayBuffer holds, even when the object is that big', () => {
    track(SharedMemory.create('huge-header', { size: 64 }));
    const claimed = 2 ** 33;
    const size = Buffer.alloc(8);
    size.writeDoubleLE(claimed);
    corrupt('huge-header', 16, [...size]);
    // Sparse: the object really is that long, so only the size limit stands between it and a map.
    truncateSync(kernelPath(kernelName('shm', 'huge-header', 'x')), 4096 + claimed);
    expect(codeOf(() => SharedMemory.open('huge-header'))).toBe(ErrorCodes.INCOMPATIBLE);
  });

  it('refuses sizes past the largest ArrayBuffer with a RangeError naming the option, creating nothing', () => {
    const before = ourShmEntries();
    expect(() => SharedMemory.create('too-big', { size: 2 ** 32 + 1 })).toThrow(RangeError);
    expect(() => SharedMemory.create('too-big', { size: 2 ** 32 + 1 })).toThrow(
      /options\.size must be at most/,
    );
    expect(() => SharedMemory.anonymous(2 ** 32 + 1)).toThrow(RangeError);
    expect(ourShmEntries()).toEqual(before);
  });

  it.skipIf(process.getuid?.() !== 0)('refuses an object another user made under its name', () => {
    track(SharedMemory.create('planted', { size: 64 }));
    // As another user would have made it (root can hand it over; nobody else can).
    chownSync(kernelPath(kernelName('shm', 'planted', 'x')), 65534, 65534);
    const err = (() => {
      try {
        SharedMemory.open('planted');
      } catch (e) {
        return e as { code?: string; message: string };
      }
    })();
    expect(err?.code).toBe(ErrorCodes.PERMISSION);
    expect(err?.message).toMatch(/owned by uid 65534/);
  });

  it('an opener waits for a creator still at work, however long past 250 ms, and then maps what it made', async () => {
    const creator = startFixture('shm-create-slowly.ts', ['slow', '1500']);
    await creator.line('initializing', 30_000);
    // The object exists, its header unwritten for 1.5 s more: its creator holds the creation lock.
    const segment = SharedMemory.open('slow');
    expect(segment.size).toBe(4096);
    await creator.line('created', 30_000);
    segment.close();
    SharedMemory.unlink('slow');
  });

  it('refuses an object too small to hold a header, and one whose header never completed', () => {
    const path = kernelPath(kernelName('shm', 'foreign', 'x'));
    const fd = openSync(path, 'w', 0o600);
    writeSync(fd, Buffer.from('not ipckit'));
    closeSync(fd);
    expect(codeOf(() => SharedMemory.open('foreign'))).toBe(ErrorCodes.INCOMPATIBLE);
    const blank = kernelPath(kernelName('shm', 'blank', 'x'));
    const fd2 = openSync(blank, 'w', 0o600);
    writeSync(fd2, Buffer.alloc(8192));
    closeSync(fd2);
    expect(codeOf(() => SharedMemory.open('blank'))).toBe(ErrorCodes.INCOMPATIBLE);
    SharedMemory.unlink('foreign');
    SharedMemory.unlink('blank');
  });
});

/** Why a child cannot get a /dev/shm of its own (a small tmpfs in a new mount namespace), or undefined. */
function whyNoPrivateDevShm(): string | undefined {
  if (process.platform !== 'linux') return 'mount namespaces are Linux only';
  if (process.getuid?.() !== 0) return 'mounting a tmpfs needs root';
  const probe = spawnSync('unshare', ['-m', 'sh', '-c', 'mount -t tmpfs -o size=64k tmpfs /dev/shm']);
  if (probe.error) return `unshare is missing: ${probe.error.message}`;
  if (probe.status !== 0) return `no mount namespace here: ${probe.stderr.toString().trim()}`;
  return undefined;
}
const noPrivateDevShm = whyNoPrivateDevShm();

describe('SharedMemory on a full /dev/shm', () => {
  it.skipIf(noPrivateDevShm !== undefined)(
    `is an error at create, never SIGBUS on a later write${noPrivateDevShm ? ` (skipped: ${noPrivateDevShm})` : ''}`,
    () => {
      // The child's /dev/shm is a 1 MiB tmpfs of its own; the real one is not touched.
      const script = `mount -t tmpfs -o size=1m,mode=1777 tmpfs /dev/shm && exec "$0" "$@"`;
      const child = spawnSync(
        'unshare',
        ['-m', 'sh', '-c', script, process.execPath, ...fixtureArgs('shm-create-on-full-dev-shm.ts')],
        { env: { ...process.env, IPCKIT_DIR: env.dir }, timeout: 30_000 },
      );
      expect(child.signal, child.stderr.toString()).toBeNull();
      expect(child.status, child.stderr.toString()).toBe(0);
      const results = JSON.parse(child.stdout.toString());
      const noSpace = { created: false, code: ErrorCodes.SYSTEM, cause: 'ENOSPC' };
      expect(results).toEqual({
        tooLarge: noSpace,
        fits: { created: true },
        channelTooLarge: noSpace,
        mutex: { created: true },
      });
    },
  );
});

describe('SharedMemory.mapFile on a full filesystem', () => {
  it.skipIf(noPrivateDevShm !== undefined)(
    `is an error that leaves the file as it was, so a retry fails too instead of mapping holes${noPrivateDevShm ? ` (skipped: ${noPrivateDevShm})` : ''}`,
    () => {
      const mountPoint = mkdtempSync(join(tmpdir(), 'ipckit-mapfile-full-'));
      expect(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mountPoint]).status).toBe(0);
      try {
        const path = join(mountPoint, 'data.bin');
        // A file the failed call made is removed; one that was there keeps its old size.
        expect(() => SharedMemory.mapFile(path, { size: 8 << 20 })).toThrow(/ENOSPC/);
        expect(existsSync(path)).toBe(false);
        writeFileSync(path, '');
        for (let attempt = 0; attempt < 2; attempt++) {
          let error: unknown;
          try {
            SharedMemory.mapFile(path, { size: 8 << 20 }).close();
          } catch (err) {
            error = err;
          }
          expect({
            attempt,
            code: (error as IpcError)?.code,
            cause: ((error as IpcError)?.cause as { code?: string })?.code,
          }).toEqual({
            attempt,
            code: ErrorCodes.SYSTEM,
            cause: 'ENOSPC',
          });
          expect(statSync(path).size).toBe(0);
        }
        // What fits is mapped, and every byte of it can be written.
        const fits = SharedMemory.mapFile(path, { size: 256 << 10 });
        new Uint8Array(fits.buffer).fill(1);
        fits.close();
      } finally {
        spawnSync('umount', [mountPoint]);
        rmSync(mountPoint, { recursive: true, force: true });
      }
    },
  );
});

describe('SharedMemory (anonymous and files)', () => {
  it('hands an anonymous segment to a child that maps it with inherited(0)', async () => {
    const segment = SharedMemory.anonymous(4096);
    const words = new Int32Array(segment.buffer);
    for (let i = 0; i < words.length; i++) words[i] = i;
    const share = shareFds([segment], 3);
    const child = startFixture('shm-inherited-double.ts', [], {
      env: { ...process.env, ...share.env },
      stdio: ['ignore', 'pipe', 'inherit', ...share.stdio],
    });
    await succeeded(child, 20_000, 'inheriting child');
    let wrong = 0;
    for (let i = 0; i < words.length; i++) if (words[i] !== i * 2) wrong++;
    expect(wrong).toBe(0);
    segment.close();
    expect(segment.fd).toBeUndefined();
  });

  it('hands an anonymous segment to a child with spawn({ share })', async () => {
    const segment = SharedMemory.anonymous(64);
    new Int32Array(segment.buffer).fill(21);
    const child = spawn(process.execPath, fixtureArgs('shm-inherited-double.ts'), {
      share: [segment],
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    expect(await watchdog(child.exited, 20_000, 'child')).toEqual({ code: 0, signal: null });
    expect([...new Int32Array(segment.buffer)].every((v) => v === 42)).toBe(true);
    segment.close();
  });

  it('inherited(i) twice: closing one mapping leaves the other valid and never closes an fd it does not own', async () => {
    const segment = SharedMemory.anonymous(4096);
    new Int32Array(segment.buffer)[0] = 7;
    const share = shareFds([segment], 3);
    const child = startFixture('shm-inherited-twice.ts', [], {
      env: { ...process.env, ...share.env },
      stdio: ['ignore', 'pipe', 'inherit', ...share.stdio],
    });
    const out = await succeeded(child, 20_000, 'child inheriting twice');
    const report = JSON.parse(out.trim());
    // The first close() must not close the fd the second mapping still owns: if it did, the pipe
    // opened next took that fd number, and the second close() closed the pipe's end.
    expect(report).toMatchObject({ readOpen: true, writeOpen: true, secondReads: 7 });
    // Closed for good: asked again, it is not found, whatever now has that fd number.
    expect(report.again).toBe(ErrorCodes.NOT_FOUND);
    segment.close();
  });

  it('reports a missing inherited segment as NOT_FOUND (also a closed fd), a pipe there as INCOMPATIBLE', () => {
    expect(codeOf(() => SharedMemory.inherited(3))).toBe(ErrorCodes.NOT_FOUND);
    const saved = process.env.IPCKIT_SHARE_FDS;
    const [readFd, writeFd] = native().pipe2();
    process.env.IPCKIT_SHARE_FDS = `1000999,${readFd}`;
    try {
      expect(codeOf(() => SharedMemory.inherited(0))).toBe(ErrorCodes.NOT_FOUND);
      expect(codeOf(() => SharedMemory.inherited(1))).toBe(ErrorCodes.INCOMPATIBLE);
    } finally {
      native().close(readFd);
      native().close(writeFd);
      if (saved === undefined) delete process.env.IPCKIT_SHARE_FDS;
      else process.env.IPCKIT_SHARE_FDS = saved;
    }
  });

  it('mapFile creates a file with exactly the mode asked (0600 by default), whatever the umask', () => {
    const dir = join(env.dir, '..');
    const old = process.umask(0o077);
    try {
      SharedMemory.mapFile(join(dir, 'group.bin'), { size: 64, mode: 0o640 }).close();
      process.umask(0);
      SharedMemory.mapFile(join(dir, 'private.bin'), { size: 64 }).close();
    } finally {
      process.umask(old);
    }
    expect(statSync(join(dir, 'group.bin')).mode & 0o777).toBe(0o640);
    expect(statSync(join(dir, 'private.bin')).mode & 0o777).toBe(0o600);
  });

  it('a mapFile that fails leaves no file it created behind, and creates none through a dangling symlink', () => {
    const path = join(env.dir, '..', 'never.bin');
    expect(() => SharedMemory.mapFile(path)).toThrow(RangeError);
    expect(existsSync(path)).toBe(false);
    // Nor does it create a file where a symlink that points nowhere leads.
    const target = join(env.dir, '..', 'target.bin');
    symlinkSync(target, join(env.dir, '..', 'link.bin'));
    expect(codeOf(() => SharedMemory.mapFile(join(env.dir, '..', 'link.bin'), { size: 64 }))).toBe(
      ErrorCodes.NOT_FOUND,
    );
    expect(existsSync(target)).toBe(false);
  });

  it('shares a mapped file between processes, and the writes reach the file', async () => {
    const path = join(env.dir, '..', 'table.bin');
    const file = SharedMemory.mapFile(path, { size: 8192 });
    expect(statSync(path).size).toBe(8192);
    const children = [0, 1].map(() => startFixture('shm-map-file-increment.ts', [path, '20000']));
    for (const child of children) await succeeded(child, 20_000, 'file incrementer');
    expect(new Int32Array(file.buffer)[0]).toBe(40_000);
    file.close();
    expect(readFileSync(path).readInt32LE(0)).toBe(40_000);
  });
});

describe('SharedMemory leaks', () => {
  it('leaves no fds and no /dev/shm entries after 10k create/close/unlink cycles', () => {
    const fdsBefore = openFdCount();
    for (let i = 0; i < 10_000; i++) {
      const segment = SharedMemory.create(`cycle-${i % 7}`, { size: 4096 });
      new Uint8Array(segment.buffer)[0] = 1;
      segment.close();
      segment.unlink();
    }
    for (let i = 0; i < 1000; i++) SharedMemory.anonymous(4096).close();
    expect(openFdCount()).toBe(fdsBefore);
    expect(ourShmEntries()).toEqual([]);
    expect(listResources().filter((r) => r.kind === 'shm')).toEqual([]);
  });
});
