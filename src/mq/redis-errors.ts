/**
 * Redis and ioredis errors as ipckit errors. A command that failed on a dropped connection is
 * reported as unknown, not as "not done": the script may have run before the reply was lost,
 * which is why a send should be retried with the same `id`, and the dedupe makes the retry safe.
 */
import { ErrorCodes, fromSystemError, IpcError } from '../core/errors.js';

interface RedisLikeError {
  name?: string;
  code?: string;
  message?: string;
}

/** Turns an error from ioredis (a reply error, a connection error) into an IpcError naming `what`. */
export function redisError(err: unknown, what: string): IpcError {
  if (err instanceof IpcError) return err;
  const e = (err ?? {}) as RedisLikeError;
  const message = String(e.message ?? err);
  if (e.name === 'ReplyError') {
    if (/^(NOAUTH|WRONGPASS|NOPERM)/.test(message)) {
      return new IpcError(ErrorCodes.AUTH, `${what}: Redis refused the credentials: ${message}`, {
        cause: err,
      });
    }
    if (/^WRONGTYPE/.test(message) || /WRONGTYPE/.test(message)) {
      return new IpcError(
        ErrorCodes.INCOMPATIBLE,
        `${what}: its Redis keys hold data of another kind (not an ipckit queue): ${message}`,
        { cause: err },
      );
    }
    return new IpcError(ErrorCodes.SYSTEM, `${what}: Redis answered ${message}`, { cause: err });
  }
  if (typeof e.code === 'string' && /^E[A-Z]+$/.test(e.code)) return fromSystemError(err, what);
  if (e.name === 'MaxRetriesPerRequestError' || /Connection is closed|Stream isn't writeable/.test(message)) {
    return new IpcError(
      ErrorCodes.PEER_GONE,
      `${what}: the connection to Redis was lost; the outcome is unknown`,
      { cause: err },
    );
  }
  return new IpcError(ErrorCodes.SYSTEM, `${what}: ${message}`, { cause: err });
}
