// Runs each program in examples/shm/ as a user would, and checks what it prints.
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { listResources } from '../../src/index.js';
import { runExample as runShared } from '../examples/run-example.js';
import { isolateRuntimeDir } from '../helpers.js';
import { removeShmObjects } from '../sync/children.js';

let runtime: ReturnType<typeof isolateRuntimeDir>;
beforeEach(() => {
  runtime = isolateRuntimeDir();
});
afterEach(() => {
  removeShmObjects();
  runtime.cleanup();
});

/** Runs `examples/shm/<file>` (these start several processes: a longer watchdog). */
function runExample(file: string) {
  return runShared('shm', file, 60_000);
}

function leftovers(): string[] {
  return listResources().map((r) => `${r.kind}:${r.name}`);
}

describe('examples/shm', () => {
  it('counter.ts: four processes keep an exact counter under a Mutex, and clean up', async () => {
    const run = await runExample('counter.ts');
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('workers exited with codes 0, 0, 0, 0');
    expect(run.stdout).toContain('counter = 40000 (expected 40000)');
    expect(leftovers()).toEqual([]);
  }, 90_000);

  it('owner-died.ts: the parent recovers the lock of a killed child and repairs the record', async () => {
    const run = await runExample('owner-died.ts');
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('parent: lock held by the child: true');
    expect(run.stdout).toContain('parent: got the lock, ownerDied = true');
    expect(run.stdout).toContain('parent: repaired the record');
    expect(leftovers()).toEqual([]);
  });

  it('anonymous-segment.ts: the child squares numbers in a segment it inherited', async () => {
    const run = await runExample('anonymous-segment.ts');
    expect(run.stderr).toBe('');
    expect(run.stdout).toContain('child exited with code 0');
    expect(run.stdout).toContain('squared by the child: 1 4 9 16 25 36 49 64');
  });

  it('file-lock.ts: flock(1) is refused while the example holds the lock', async () => {
    const run = await runExample('file-lock.ts');
    expect(run.stderr).toBe('');
    expect(run.stdout).toContain('while we hold it, flock(1) says: refused');
    expect(run.stdout).toContain('after we released it, flock(1) says: got it');
  });

  it('every example in examples/shm is run by this file', () => {
    const tested = ['counter.ts', 'owner-died.ts', 'anonymous-segment.ts', 'file-lock.ts'];
    expect(readdirSync(fileURLToPath(new URL('../../examples/shm/', import.meta.url))).sort()).toEqual(
      tested.sort(),
    );
  });
});
