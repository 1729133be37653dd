/**
 * The set-up most multi-process tests share: each test gets its own runtime directory (IPCKIT_DIR),
 * and every child it pushes onto the returned list is killed with SIGKILL, and reaped, when the
 * test ends, whatever the test did.
 */
import { afterEach, beforeEach } from 'vitest';
import type { ChildProcess } from '../../src/index.js';
import { isolateRuntimeDir } from '../helpers.js';

/** Registers the hooks; returns the list to push each spawned child onto. */
export function isolatedWithChildren(): ChildProcess<unknown>[] {
  let env: ReturnType<typeof isolateRuntimeDir>;
  const children: ChildProcess<unknown>[] = [];
  beforeEach(() => {
    env = isolateRuntimeDir();
  });
  afterEach(async () => {
    for (const child of children.splice(0)) {
      child.kill('SIGKILL');
      await child.exited;
    }
    env.cleanup();
  });
  return children;
}
