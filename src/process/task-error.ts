/**
 * The error a pool task rejects with when the task function threw in its worker: an IpcError that
 * carries the remote error's name, message, code and stack as plain strings. It is rebuilt from
 * those strings only: nothing the worker sent is evaluated, and no remote class is instantiated.
 */
import { ErrorCodes, IpcError, type IpcErrorCode } from '../core/errors.js';

/** An error as it crosses from a pool worker to the parent. Every field is plain data. */
export interface WireError {
  /** The class name: `'TypeError'`, `'ValidationError'`, `'IpcError'`. */
  name: string;
  message: string;
  /** The error's own `code` property, when it had a string or number one. */
  code?: string;
  stack?: string;
}

const MAX_TEXT = 8192;
const MAX_NAME = 100;
const knownCodes = new Set<string>(Object.values(ErrorCodes));

function clip(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

/** In the worker: describes what a task threw. Never throws (a hostile toString is caught). */
export function toWireError(err: unknown): WireError {
  try {
    if (err instanceof Error) {
      const wire: WireError = {
        name: clip(String(err.name), MAX_NAME),
        message: clip(String(err.message), MAX_TEXT),
      };
      const code = (err as { code?: unknown }).code;
      if (typeof code === 'string' || typeof code === 'number') wire.code = clip(String(code), MAX_NAME);
      if (typeof err.stack === 'string') wire.stack = clip(err.stack, MAX_TEXT);
      return wire;
    }
    return { name: 'Error', message: clip(`non-error thrown: ${String(err)}`, MAX_TEXT) };
  } catch {
    return { name: 'Error', message: 'a value was thrown that cannot be described' };
  }
}

/** In the parent: reads a WireError from whatever arrived, tolerating anything. */
export function readWireError(value: unknown): WireError {
  const record = (typeof value === 'object' && value !== null ? value : {}) as Record<string, unknown>;
  const wire: WireError = {
    name: typeof record.name === 'string' ? clip(record.name, MAX_NAME) : 'Error',
    message: typeof record.message === 'string' ? clip(record.message, MAX_TEXT) : 'remote error',
  };
  if (typeof record.code === 'string') wire.code = clip(record.code, MAX_NAME);
  if (typeof record.stack === 'string') wire.stack = clip(record.stack, MAX_TEXT);
  return wire;
}

/**
 * A task's failure, thrown by the task function in a pool worker. `code` is the remote error's
 * ipckit code when it had one (`ERR_IPC_TIMEOUT` from an ipckit call inside the task), else
 * `ERR_IPC_REMOTE`; `remote` is always true, which tells it from a local error with the same code.
 */
export class TaskError extends IpcError {
  /** Always true: this error happened in another process. */
  readonly remote = true;
  /** The remote error's class name (`'TypeError'`, an application's own class). */
  readonly remoteName: string;
  /** The remote error's message, unchanged. */
  readonly remoteMessage: string;
  /** The remote error's own `code` (`'ENOENT'`, an application code, an ipckit code). */
  readonly remoteCode: string | undefined;
  /** The remote stack, as text. */
  readonly remoteStack: string | undefined;
  /** The pid of the worker it ran in. */
  readonly workerPid: number;

  /** `context` says what failed; default "pool task failed". */
  constructor(wire: WireError, workerPid: number, context = 'pool task failed') {
    const code =
      wire.code !== undefined && knownCodes.has(wire.code) ? (wire.code as IpcErrorCode) : ErrorCodes.REMOTE;
    super(code, `${context} in worker ${workerPid}: ${wire.name}: ${wire.message}`);
    this.name = 'TaskError';
    this.remoteName = wire.name;
    this.remoteMessage = wire.message;
    this.remoteCode = wire.code;
    this.remoteStack = wire.stack;
    this.workerPid = workerPid;
  }

  // IpcError's brand check is inherited as a static; without this every IpcError would pass
  // `instanceof TaskError`.
  static override [Symbol.hasInstance](value: unknown): boolean {
    return value instanceof IpcError && (value as { name?: unknown }).name === 'TaskError';
  }
}
