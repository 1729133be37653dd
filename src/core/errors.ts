/**
 * Errors with stable codes. Every error ipckit raises on purpose is an {@link IpcError}: match on
 * `err.code`, never on the message. `cause` carries the underlying error (errno, codec, signal reason).
 */

/** Every stable error code, documented in docs/errors.md. */
export const ErrorCodes = {
  CLOSED: 'ERR_IPC_CLOSED',
  TIMEOUT: 'ERR_IPC_TIMEOUT',
  ABORTED: 'ERR_IPC_ABORTED',
  INVALID_NAME: 'ERR_IPC_INVALID_NAME',
  EXISTS: 'ERR_IPC_EXISTS',
  NOT_FOUND: 'ERR_IPC_NOT_FOUND',
  PERMISSION: 'ERR_IPC_PERMISSION',
  INCOMPATIBLE: 'ERR_IPC_INCOMPATIBLE',
  FRAME_TOO_LARGE: 'ERR_IPC_FRAME_TOO_LARGE',
  BAD_FRAME: 'ERR_IPC_BAD_FRAME',
  INVALID_MESSAGE: 'ERR_IPC_INVALID_MESSAGE',
  PEER_GONE: 'ERR_IPC_PEER_GONE',
  OWNER_DIED: 'ERR_IPC_OWNER_DIED',
  /** A …Sync wait that could only ever be satisfied by the calling thread itself (it holds the lock). */
  DEADLOCK: 'ERR_IPC_DEADLOCK',
  AUTH: 'ERR_IPC_AUTH',
  QUEUE_FULL: 'ERR_IPC_QUEUE_FULL',
  /** Settling a queue message whose lease ran out, that was settled already, or that was only listed. */
  LEASE_LOST: 'ERR_IPC_LEASE_LOST',
  NATIVE_UNAVAILABLE: 'ERR_IPC_NATIVE_UNAVAILABLE',
  PATH_TOO_LONG: 'ERR_IPC_PATH_TOO_LONG',
  UNSAFE_PATH: 'ERR_IPC_UNSAFE_PATH',
  SYSTEM: 'ERR_IPC_SYSTEM',
  /** A request handler in another process failed with an error that carried no ipckit code. */
  REMOTE: 'ERR_IPC_REMOTE',
} as const;

/** A stable ipckit error code such as `'ERR_IPC_TIMEOUT'`. */
export type IpcErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

// A Symbol.for brand makes `instanceof IpcError` true across two copies of ipckit in one process.
const brand = Symbol.for('ipckit.IpcError');

/** The error type of ipckit: a stable `code`, a message naming the resource, and `cause`. */
export class IpcError extends Error {
  /** The stable code to match on. */
  readonly code: IpcErrorCode;

  constructor(code: IpcErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'IpcError';
  }

  get [brand](): true {
    return true;
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[brand] === true;
  }
}

/** True when `err` is an {@link IpcError}, optionally with the given code. */
export function isIpcError(err: unknown, code?: IpcErrorCode): err is IpcError {
  return err instanceof IpcError && (code === undefined || err.code === code);
}

/** Node system errors carry an errno name such as 'ENOENT' in `code`. */
interface SystemError extends Error {
  code?: string;
  syscall?: string;
  path?: string;
}

const errnoToCode: Record<string, IpcErrorCode> = {
  ENOENT: ErrorCodes.NOT_FOUND,
  EEXIST: ErrorCodes.EXISTS,
  EACCES: ErrorCodes.PERMISSION,
  EPERM: ErrorCodes.PERMISSION,
  EPIPE: ErrorCodes.PEER_GONE,
  ECONNRESET: ErrorCodes.PEER_GONE,
  ECONNREFUSED: ErrorCodes.NOT_FOUND,
  ENXIO: ErrorCodes.PEER_GONE,
  ENAMETOOLONG: ErrorCodes.PATH_TOO_LONG,
  ELOOP: ErrorCodes.UNSAFE_PATH,
};

/**
 * Wraps an errno-style error (from Node or the addon) in an IpcError whose message names `what`.
 * Errors that already are IpcErrors pass through.
 */
export function fromSystemError(err: unknown, what: string): IpcError {
  if (err instanceof IpcError) return err;
  const sys = err as SystemError;
  const code = (sys?.code && errnoToCode[sys.code]) || ErrorCodes.SYSTEM;
  const detail = sys?.code ? `${sys.code}${sys.syscall ? ` (${sys.syscall})` : ''}` : String(err);
  return new IpcError(code, `${what}: ${detail}`, { cause: err });
}

/** The error pending operations reject with once a resource is closed. */
export function closedError(what: string, cause?: unknown): IpcError {
  return new IpcError(ErrorCodes.CLOSED, `${what} is closed`, cause === undefined ? undefined : { cause });
}
