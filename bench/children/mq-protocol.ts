/**
 * What the message-queue benchmark's parent and its worker processes say to each other over the
 * fork IPC channel, and the message body both queues carry. Not a child program itself.
 */
import { Packr } from 'msgpackr';

/** Parent → child. */
export type Command = { cmd: 'go' } | { cmd: 'stop' };

/** Child → parent. */
export type Report =
  | { ev: 'ready' }
  | { ev: 'progress'; count: number }
  | { ev: 'latency'; us: number }
  | { ev: 'done'; count: number; peakRssMiB: number; cpuMs: number };

/** The body of every benchmark message: a send timestamp, a sequence number, padding to 64 B. */
export interface BenchBody {
  /** µs on the shared clock (see nowUs), or 0 when not measured. */
  t: number;
  i: number;
  pad: string;
}

const packr = new Packr({ useRecords: false, mapsAsObjects: true, moreTypes: false, int64AsType: 'number' });

/** Padding that makes a typical BenchBody (a timestamp, a 5-byte counter) 64 bytes of msgpack. */
export function padBody(): string {
  let pad = '';
  while (packr.encode({ t: nowUs(), i: 100_000, pad: `${pad}x` }).length <= 64) pad += 'x';
  return pad;
}

/** Microseconds on a clock shared by processes on one machine (wall clock, sub-ms resolution). */
export function nowUs(): number {
  return (performance.timeOrigin + performance.now()) * 1000;
}

/** CPU time (user + system) this process used since `since`, in ms. */
export function cpuMsSince(since: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(since);
  return (used.user + used.system) / 1000;
}

/** Sends a report to the parent. */
export function reportTo(proc: NodeJS.Process): (report: Report) => void {
  return (report) => {
    proc.send?.(report);
  };
}

/** Resolves when the parent sends `cmd`. */
export function waitFor(proc: NodeJS.Process, cmd: Command['cmd']): Promise<void> {
  return new Promise((resolve) => {
    const onMessage = (message: Command) => {
      if (message?.cmd !== cmd) return;
      proc.off('message', onMessage);
      resolve();
    };
    proc.on('message', onMessage);
  });
}

/**
 * At most `size` operations in flight: `add` waits while the window is full. A counter and one
 * waiter, not Promise.race over the pending set (which costs O(size) per operation).
 */
export class Window {
  readonly #size: number;
  #inFlight = 0;
  #failure: unknown;
  #wake: (() => void) | undefined;

  constructor(size: number) {
    this.#size = size;
  }

  async add(operation: Promise<unknown>): Promise<void> {
    this.#inFlight++;
    operation.then(
      () => this.#done(),
      (err) => {
        this.#failure ??= err;
        this.#done();
      },
    );
    while (this.#inFlight >= this.#size) await new Promise<void>((resolve) => (this.#wake = resolve));
    if (this.#failure !== undefined) throw this.#failure;
  }

  /** Resolves when nothing is in flight; rejects with the first failure. */
  async drain(): Promise<void> {
    while (this.#inFlight > 0) await new Promise<void>((resolve) => (this.#wake = resolve));
    if (this.#failure !== undefined) throw this.#failure;
  }

  #done(): void {
    this.#inFlight--;
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}
