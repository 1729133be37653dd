/**
 * The work a pool was given, as the scheduler sees it. A job (one `run` or one `map` call) hands
 * out units of work lazily: a run is one unit of one item, a map is chunks of `chunkSize` items,
 * cut from the input only when a worker is free to take them. A job settles exactly once: with its
 * result, with the first failure among its units, or when its wait is aborted or times out.
 */
import { armWait, type WaitOptions } from '../core/wait.js';
import { TaskError, type WireError } from './task-error.js';

/** A unit of work: some consecutive items of one job, sent to one worker in one message. */
export interface Unit {
  readonly id: number;
  readonly job: Job;
  readonly items: unknown[];
  /** Index of the first item within the job. */
  readonly offset: number;
  /** Times the unit went back to the queue because its worker died before it started. */
  readonly requeued?: number;
}

/** One `run` or `map` call. */
export abstract class Job {
  /** True once the caller's promise has settled. */
  settled = false;
  /** True while the job sits in the scheduler's queue. */
  queued = false;
  /** Units out at workers (sent, not yet answered). */
  readonly dispatched = new Set<Unit>();
  readonly promise: Promise<unknown>;
  #resolve!: (value: unknown) => void;
  #reject!: (err: unknown) => void;
  #disarm: () => void = () => {};
  readonly #onSettle: (job: Job, ok: boolean) => void;

  protected constructor(onSettle: (job: Job, ok: boolean) => void) {
    this.#onSettle = onSettle;
    this.promise = new Promise((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
  }

  /** Applies the caller's `{ signal, timeout }`: when either fires, the job fails with it. */
  arm(what: string, opts: WaitOptions | undefined): void {
    this.#disarm = armWait(what, opts, (err) => this.fail(err));
  }

  /** True while units remain to be handed out. */
  abstract hasMore(): boolean;
  /** The next unit, numbered `id`. */
  abstract take(id: number): Unit | undefined;
  /** Results for items `offset..` of `unit` (a part of them, or all). */
  abstract results(
    unit: Unit,
    offset: number,
    values: unknown[],
    errors: [number, WireError][] | undefined,
    pid: number,
  ): void;
  /** A unit that never reached its worker goes back, to be handed out again. */
  abstract requeue(unit: Unit): void;
  /** Splits a unit too large for one message; false if it holds a single item. */
  abstract split(unit: Unit): boolean;

  /** Fails the job (a task error, a crash, an abort); later results are ignored. */
  fail(err: unknown): void {
    if (this.settled) return;
    this.settled = true;
    this.#disarm();
    this.#reject(err);
    this.#onSettle(this, false);
  }

  protected succeed(value: unknown): void {
    if (this.settled) return;
    this.settled = true;
    this.#disarm();
    this.#resolve(value);
    this.#onSettle(this, true);
  }
}

/** `pool.run(data)`: one unit of one item. */
export class RunJob extends Job {
  readonly #data: unknown;
  #pending: Unit | undefined;
  #taken = false;

  constructor(data: unknown, onSettle: (job: Job, ok: boolean) => void) {
    super(onSettle);
    this.#data = data;
  }

  hasMore(): boolean {
    return !this.settled && (!this.#taken || this.#pending !== undefined);
  }

  take(id: number): Unit | undefined {
    if (this.settled) return undefined;
    if (this.#pending) {
      const unit = { ...this.#pending, id };
      this.#pending = undefined;
      return unit;
    }
    if (this.#taken) return undefined;
    this.#taken = true;
    return { id, job: this, items: [this.#data], offset: 0 };
  }

  results(
    _unit: Unit,
    _offset: number,
    values: unknown[],
    errors: [number, WireError][] | undefined,
    pid: number,
  ): void {
    if (errors?.length) this.fail(new TaskError(errors[0]![1], pid));
    else this.succeed(values[0]);
  }

  requeue(unit: Unit): void {
    this.#pending = unit;
  }

  split(): boolean {
    return false;
  }
}

/** `pool.map(items)`: chunks of `chunkSize` items, results in input order. */
export class MapJob extends Job {
  readonly #items: readonly unknown[];
  readonly #chunkSize: number;
  readonly #out: unknown[];
  #cursor = 0;
  #remaining: number;
  /** Units to hand out before cutting new ones: requeued after a crash, or halves of a split. */
  readonly #again: Unit[] = [];

  constructor(items: readonly unknown[], chunkSize: number, onSettle: (job: Job, ok: boolean) => void) {
    super(onSettle);
    this.#items = items;
    this.#chunkSize = chunkSize;
    this.#out = new Array(items.length);
    this.#remaining = items.length;
  }

  hasMore(): boolean {
    return !this.settled && (this.#again.length > 0 || this.#cursor < this.#items.length);
  }

  take(id: number): Unit | undefined {
    if (this.settled) return undefined;
    const again = this.#again.shift();
    if (again) return { ...again, id };
    if (this.#cursor >= this.#items.length) return undefined;
    const offset = this.#cursor;
    this.#cursor = Math.min(this.#items.length, offset + this.#chunkSize);
    return { id, job: this, items: this.#items.slice(offset, this.#cursor), offset };
  }

  results(
    unit: Unit,
    offset: number,
    values: unknown[],
    errors: [number, WireError][] | undefined,
    pid: number,
  ): void {
    if (errors?.length) {
      this.fail(new TaskError(errors[0]![1], pid));
      return;
    }
    const base = unit.offset + offset;
    for (let i = 0; i < values.length; i++) this.#out[base + i] = values[i];
    this.#remaining -= values.length;
    if (this.#remaining === 0) this.succeed(this.#out);
  }

  requeue(unit: Unit): void {
    this.#again.unshift(unit);
  }

  split(unit: Unit): boolean {
    if (unit.items.length < 2) return false;
    const half = unit.items.length >> 1;
    this.#again.unshift(
      { id: 0, job: this, items: unit.items.slice(0, half), offset: unit.offset },
      { id: 0, job: this, items: unit.items.slice(half), offset: unit.offset + half },
    );
    return true;
  }
}
