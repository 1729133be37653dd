/**
 * The error a request rejects with when the handler on the other side failed: an IpcError with the
 * remote code and message. Its stack is this process's (where `request` was awaited); the remote
 * stack is sent only when the server opted in with `exposeErrorStacks`.
 */
import { ErrorCodes, IpcError, type IpcErrorCode } from '../core/errors.js';
import type { WireError } from './protocol.js';

const knownCodes = new Set<string>(Object.values(ErrorCodes));

/** A request's failure, raised by the handler in the peer process. */
export class RemoteError extends IpcError {
  /** Always true: tells a remote failure from a local one with the same code (a timeout, say). */
  readonly remote = true;
  /** The method that failed. */
  readonly method: string;
  /** The class name of a non-ipckit error (`TypeError`, …). */
  readonly remoteName: string | undefined;
  /** The `code` of a non-ipckit error (`'ENOENT'`, an application's own code). */
  readonly remoteCode: string | undefined;
  /** The remote stack, only when the server sends it. */
  readonly remoteStack: string | undefined;

  constructor(method: string, wire: WireError) {
    const code = knownCodes.has(wire.code) ? (wire.code as IpcErrorCode) : ErrorCodes.REMOTE;
    super(code, wire.message);
    this.name = 'RemoteError';
    this.method = method;
    this.remoteName = wire.name;
    this.remoteCode = code === wire.code ? wire.remoteCode : wire.code;
    this.remoteStack = wire.stack;
  }

  // IpcError's brand check is inherited as a static; without this, every IpcError would pass
  // `instanceof RemoteError`.
  static override [Symbol.hasInstance](value: unknown): boolean {
    return value instanceof IpcError && (value as { remote?: unknown }).remote === true;
  }
}
