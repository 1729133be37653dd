/**
 * Helpers for the process-control tests: what /proc says about processes, and lines printed by a
 * child. Every wait here ends on an event (a line, the end of a stream, a state the kernel reports)
 * and is bounded by the caller's watchdog; none sleeps.
 */
import { readdirSync, readFileSync } from 'node:fs';
import type { Readable } from 'node:stream';

interface ProcEntry {
  pid: number;
  state: string;
  ppid: number;
}

function readEntry(pid: number): ProcEntry | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { pid, state: fields[0]!, ppid: Number(fields[1]) };
  } catch {
    return undefined;
  }
}

/** Every process whose parent is this process, with its state ('Z' for a zombie). */
export function childrenOfThisProcess(): ProcEntry[] {
  const out: ProcEntry[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const entry = readEntry(Number(name));
    if (entry && entry.ppid === process.pid) out.push(entry);
  }
  return out;
}

/** The state letter of a process ('R', 'S', 'T' stopped, 'Z' zombie), or undefined if gone. */
export function procState(pid: number): string | undefined {
  return readEntry(pid)?.state;
}

/** The state letters of every thread of `pid` (empty if it is gone). */
function threadStates(pid: number): string[] {
  try {
    return readdirSync(`/proc/${pid}/task`).map((tid) => {
      const text = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'latin1');
      return text.slice(text.lastIndexOf(')') + 2).split(' ')[0]!;
    });
  } catch {
    return [];
  }
}

/**
 * Resolves once the kernel reports `pid`, and each of its threads, in `state` (a stop reaches the
 * threads one by one: V8's helpers may still run a moment after the main thread stopped). It
 * re-reads /proc on each turn of the event loop (setImmediate, not a timer): the kernel gives no
 * event for "stopped" to a non-parent.
 */
export function untilState(pid: number, state: string): Promise<void> {
  return new Promise((resolve) => {
    const check = () => {
      const threads = threadStates(pid);
      if (procState(pid) === state && threads.length > 0 && threads.every((t) => t === state)) resolve();
      else setImmediate(check);
    };
    check();
  });
}

/**
 * The inodes of the anonymous segments (memfds) this process maps: spawn's shm channels and
 * `SharedMemory.anonymous()`. Each segment is mapped twice (its header page and its data) under one
 * inode, and its inode tells it from every other segment, whatever the other tests of the process
 * left mapped.
 */
export function mappedAnonymousSegments(): Set<string> {
  const inodes = new Set<string>();
  for (const line of readFileSync('/proc/self/maps', 'latin1').split('\n')) {
    // address perms offset dev inode path
    const fields = line.trim().split(/\s+/);
    if (fields[5]?.startsWith('/memfd:ipckit-anonymous')) inodes.add(fields[4]!);
  }
  return inodes;
}

/** Collects a stream's text; `line(re)` resolves with the first line matching `re`. */
export class LineReader {
  #text = '';
  #waiters: { re: RegExp; resolve(match: RegExpExecArray): void }[] = [];
  readonly ended: Promise<void>;

  constructor(stream: Readable) {
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      this.#text += chunk;
      this.#check();
    });
    this.ended = new Promise((resolve) => stream.once('close', () => resolve()));
  }

  get text(): string {
    return this.#text;
  }

  line(re: RegExp): Promise<RegExpExecArray> {
    return new Promise((resolve) => {
      this.#waiters.push({ re, resolve });
      this.#check();
    });
  }

  #check(): void {
    const lines = this.#text.split('\n');
    this.#waiters = this.#waiters.filter((w) => {
      for (const line of lines) {
        const match = w.re.exec(line);
        if (match) {
          w.resolve(match);
          return false;
        }
      }
      return true;
    });
  }
}
