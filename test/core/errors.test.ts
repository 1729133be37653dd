import { describe, expect, it } from 'vitest';
import { fromSystemError } from '../../src/core/errors.js';
import { ErrorCodes, IpcError, isIpcError } from '../../src/index.js';

describe('IpcError', () => {
  it('carries a stable code, a message and a cause', () => {
    const cause = new Error('inner');
    const err = new IpcError(ErrorCodes.TIMEOUT, 'x timed out', { cause });
    expect(err.code).toBe('ERR_IPC_TIMEOUT');
    expect(err.message).toBe('x timed out');
    expect(err.cause).toBe(cause);
    expect(err).toBeInstanceOf(Error);
    expect(isIpcError(err, 'ERR_IPC_TIMEOUT')).toBe(true);
    expect(isIpcError(err, 'ERR_IPC_CLOSED')).toBe(false);
  });

  it('is recognized across copies of the library through its Symbol.for brand', () => {
    const foreign = Object.create(Error.prototype, { [Symbol.for('ipckit.IpcError')]: { value: true } });
    expect(foreign instanceof IpcError).toBe(true);
    expect(new Error('plain') instanceof IpcError).toBe(false);
    expect((null as unknown as object) instanceof IpcError).toBe(false);
  });

  it('maps errno errors to stable codes and keeps the original as cause', () => {
    const enoent = Object.assign(new Error('nope'), { code: 'ENOENT', syscall: 'open' });
    const mapped = fromSystemError(enoent, "fifo 'x'");
    expect(mapped.code).toBe(ErrorCodes.NOT_FOUND);
    expect(mapped.message).toContain("fifo 'x'");
    expect(mapped.cause).toBe(enoent);
    expect(fromSystemError(Object.assign(new Error(), { code: 'EWHATEVER' }), 'x').code).toBe(
      ErrorCodes.SYSTEM,
    );
  });
});
