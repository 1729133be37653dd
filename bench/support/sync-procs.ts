/**
 * Helpers for the shm and sync benchmarks: a private runtime directory for the run, child processes
 * that report by stdout lines, and Python baselines run through python3.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { childArgs } from './peer.js';

/** Runs `work` with IPCKIT_DIR pointing at a fresh directory (children inherit it), then removes it. */
export async function inPrivateRuntimeDir<T>(work: () => Promise<T>): Promise<T> {
  const previous = process.env.IPCKIT_DIR;
  const base = mkdtempSync(join(tmpdir(), 'ipckit-bench-'));
  process.env.IPCKIT_DIR = join(base, 'rt');
  try {
    return await work();
  } finally {
    if (previous === undefined) delete process.env.IPCKIT_DIR;
    else process.env.IPCKIT_DIR = previous;
    rmSync(base, { recursive: true, force: true });
  }
}

/** A child that reports by lines on stdout. */
export interface LineChild {
  child: ChildProcess;
  /** Resolves with the first line starting with `prefix` (rejects if the child exits first). */
  line(prefix: string): Promise<string>;
  exited: Promise<void>;
}

/** Starts bench/children/<file> with `args`; `ipc` adds a Node IPC channel (for process.send). */
export function startLineChild(file: string, args: string[], ipc = false): LineChild {
  const child = spawn(process.execPath, childArgs(file, ...args), {
    stdio: ipc ? ['ignore', 'pipe', 'inherit', 'ipc'] : ['ignore', 'pipe', 'inherit'],
  });
  let text = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const listeners: (() => void)[] = [];
  child.stdout!.on('data', (chunk: Buffer) => {
    text += chunk.toString();
    for (const listener of [...listeners]) listener();
  });
  return {
    child,
    exited,
    line(prefix) {
      return new Promise<string>((resolve, reject) => {
        const look = () => {
          const found = text.split('\n').find((l) => l.startsWith(prefix));
          if (found === undefined) return false;
          listeners.splice(listeners.indexOf(look), 1);
          resolve(found);
          return true;
        };
        listeners.push(look);
        if (look()) return;
        void exited.then(() => reject(new Error(`${file} exited before printing "${prefix}": ${text}`)));
      });
    },
  };
}

/** True when python3 runs. */
export function hasPython(): boolean {
  return spawnSync('python3', ['-c', 'print(1)'], { encoding: 'utf8' }).stdout?.trim() === '1';
}

/** Runs a Python program and returns its stdout (throws with its stderr if it fails). */
export function runPython(code: string, timeoutMs = 120_000): string {
  const result = spawnSync('python3', ['-c', code], { encoding: 'utf8', timeout: timeoutMs });
  if (result.status !== 0) throw new Error(`python3 failed: ${result.stderr || result.error}`);
  return result.stdout;
}
