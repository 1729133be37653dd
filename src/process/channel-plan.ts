/**
 * Which transport carries a spawned child's channel. Every transport is prepared the same way
 * before the fork (fds for the child's stdio, variables for its environment) and attached after it,
 * so spawn() has one code path and a new transport is one more branch in {@link planChannel}.
 */
import type { StdioOptions } from 'node:child_process';
import type { Channel, ChannelOptions } from '../core/channel.js';
import { resolveCodec } from '../core/codec.js';
import { checkMaxMessageBytes } from '../core/framing.js';
import { choiceError, numberError } from '../core/options.js';
import { CHANNEL_ENV, planChildPipes } from '../pipe/child-channel.js';
import { checkRingCapacity } from '../shm/ring.js';
import { planChildShm, type ShmChannelMode } from '../shm/shm-channel.js';

/** The transports a spawned child's channel can use: two anonymous pipes, or a ShmChannel. */
export type ChannelKind = 'pipe' | 'shm';

/** One entry of a child's stdio array. */
export type StdioEntry = Extract<StdioOptions, readonly unknown[]>[number];

/** What spawn needs to give a child a channel of some transport. */
export interface ChannelPlan {
  /** Entries appended to the child's stdio after fds 0-2 (the channel's fds, possibly none). */
  stdio: StdioEntry[];
  /** Variables added to the child's environment (how `parentChannel()` finds the channel). */
  env: Record<string, string>;
  /**
   * After the fork: releases the child's ends here and returns the parent's Channel. `pid` is the
   * child's, so a transport without an end-of-stream (shm) notices a child that dies before attaching.
   */
  attach<T>(
    what: string,
    opts: ChannelOptions<T> | undefined,
    childStdio: readonly unknown[],
    pid?: number,
  ): Channel<T>;
  /** Releases everything if the spawn failed. */
  abort(): void;
}

/** The variable that names the child's channel; spawn removes an inherited one when it adds none. */
export const CHANNEL_ENV_NAME = CHANNEL_ENV;

/** Checks `options.channel`: a known transport or false. */
export function checkChannelKind(value: unknown): ChannelKind | false {
  if (value === undefined || value === false) return false;
  if (value === 'pipe' || value === 'shm') return value;
  throw choiceError(value, `options.channel must be 'pipe', 'shm' or false, got ${String(value)}`);
}

/**
 * Checks the channel options before anything is forked, so that a bad codec is a synchronous
 * TypeError/RangeError and never a child left running without a handle.
 */
export function checkChannelOptions(opts: ChannelOptions<unknown> | undefined): void {
  resolveCodec(opts, 'spawn');
  checkMaxMessageBytes(opts?.maxMessageBytes);
  const high = opts?.receiveHighWaterMark;
  if (high !== undefined && (!Number.isInteger(high) || high < 1)) {
    throw numberError(high, `options.receiveHighWaterMark must be a positive integer, got ${String(high)}`);
  }
}

/** The options of a shm channel to a child. */
export interface ShmPlanOptions {
  capacity?: number | undefined;
  mode?: ShmChannelMode | undefined;
}

/**
 * Checks the options only a shm channel takes (`capacity`, `mode`): a RangeError if they are bad,
 * or given for another transport, where they would be silently ignored.
 */
export function checkShmOptions(kind: ChannelKind | false, capacity: unknown, mode: unknown): ShmPlanOptions {
  if (kind !== 'shm') {
    if (capacity !== undefined) throw new RangeError("options.capacity applies only to channel: 'shm'");
    if (mode !== undefined) throw new RangeError("options.mode applies only to channel: 'shm'");
    return {};
  }
  if (capacity !== undefined) checkRingCapacity(capacity);
  if (mode !== undefined && mode !== 'default' && mode !== 'latency') {
    throw choiceError(mode, `options.mode must be 'default' or 'latency', got ${String(mode)}`);
  }
  return { capacity: capacity as number | undefined, mode: mode as ShmChannelMode | undefined };
}

/** Prepares the channel of the given kind. */
export function planChannel(kind: ChannelKind, shm?: ShmPlanOptions): ChannelPlan {
  switch (kind) {
    case 'pipe': {
      const plan = planChildPipes();
      return { ...plan, stdio: [...plan.stdio] };
    }
    case 'shm': {
      // The segment goes at the child's fd 3, where the pipe plan puts its first pipe.
      const plan = planChildShm(3, CHANNEL_ENV, shm);
      return { ...plan, stdio: [...plan.stdio] };
    }
  }
}
