import { describe, expect, it } from 'vitest';
import { fromSystemError } from '../../src/core/errors.js';
import { checkMaxMessageBytes } from '../../src/core/framing.js';
import { booleanOption, choiceError, numberError } from '../../src/core/options.js';
import { checkWaitOptions } from '../../src/core/wait.js';
import { ErrorCodes, IpcError, isIpcError } from '../../src/index.js';
import { checkFormat } from '../../src/pipe/fifo-format.js';
import { checkChannelKind } from '../../src/process/channel-plan.js';
import { intOption } from '../../src/socket/options.js';

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

describe('bad arguments', () => {
  it('a wrong type is a TypeError, a number out of range a RangeError, both naming the option', () => {
    expect(numberError('10', 'options.size must be a positive integer, got 10')).toBeInstanceOf(TypeError);
    expect(numberError('10', 'options.size …').message).toBe('options.size … (a string)');
    expect(numberError(undefined, 'x')).toBeInstanceOf(TypeError);
    for (const n of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(numberError(n, 'options.size …')).toBeInstanceOf(RangeError);
    }
    expect(() => checkWaitOptions({ timeout: 'x' as never })).toThrow(TypeError);
    expect(() => checkWaitOptions({ timeout: 'x' as never })).toThrow(/options\.timeout/);
    expect(() => checkWaitOptions({ timeout: null as never })).toThrow(TypeError);
    expect(() => checkWaitOptions({ timeout: -1 })).toThrow(RangeError);
    expect(() => checkWaitOptions({ timeout: Number.NaN })).toThrow(RangeError);
    // Node's setTimeout would fire such a timer after 1 ms.
    expect(() => checkWaitOptions({ timeout: 2 ** 31 })).toThrow(RangeError);
    expect(() => checkWaitOptions({ timeout: 2 ** 31 })).toThrow(/at most 2147483647 ms/);
    expect(() => checkWaitOptions({ timeout: 2 ** 31 - 1 })).not.toThrow();
    expect(() => checkMaxMessageBytes('1024' as never)).toThrow(TypeError);
    expect(() => checkMaxMessageBytes('1024' as never)).toThrow(/options\.maxMessageBytes/);
    expect(() => checkMaxMessageBytes(0)).toThrow(RangeError);
    expect(() => checkMaxMessageBytes(1.5)).toThrow(RangeError);
    expect(checkMaxMessageBytes(1024)).toBe(1024);
  });

  it('a boolean option takes a boolean or nothing: anything else is a TypeError naming it', () => {
    expect(booleanOption(undefined, 'options.shared', false)).toBe(false);
    expect(booleanOption(undefined, 'options.track', true)).toBe(true);
    expect(booleanOption(false, 'options.track', true)).toBe(false);
    for (const bad of ['y', 1, 0, null, {}, Object.create(null)]) {
      expect(() => booleanOption(bad, 'options.shared', false)).toThrow(TypeError);
      expect(() => booleanOption(bad, 'options.shared', false)).toThrow(/options\.shared must be a boolean/);
    }
  });

  it('an option of a few choices: another string is a RangeError, another type a TypeError', () => {
    expect(choiceError('xml', 'options.format …')).toBeInstanceOf(RangeError);
    expect(choiceError(42, 'options.format …')).toBeInstanceOf(TypeError);
    expect(() => checkFormat('xml')).toThrow(RangeError);
    expect(() => checkFormat(42)).toThrow(TypeError);
    expect(() => checkChannelKind('tcp')).toThrow(RangeError);
    expect(() => checkChannelKind(true)).toThrow(TypeError);
    // A socket count: a number that is no integer is out of range, a string is the wrong type.
    expect(() => intOption(1.5, 'maxConnections', 1)).toThrow(RangeError);
    expect(() => intOption('8', 'maxConnections', 1)).toThrow(TypeError);
  });
});
