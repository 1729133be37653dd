import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCodes, formatAddress, parseAddress } from '../../src/index.js';
import { isLoopback } from '../../src/socket/address.js';
import { isolateRuntimeDir } from '../helpers.js';

let env: ReturnType<typeof isolateRuntimeDir>;
beforeEach(() => {
  env = isolateRuntimeDir();
});
afterEach(() => env.cleanup());

describe('socket addresses', () => {
  it('parses tcp, unix and pipe URLs and formats them back', () => {
    expect(parseAddress('tcp://127.0.0.1:8080')).toEqual({ kind: 'tcp', host: '127.0.0.1', port: 8080 });
    expect(parseAddress('tcp://[::1]:0')).toEqual({ kind: 'tcp', host: '::1', port: 0 });
    expect(parseAddress('tcp://localhost:1')).toEqual({ kind: 'tcp', host: 'localhost', port: 1 });
    expect(parseAddress('unix:///run/app.sock')).toEqual({ kind: 'unix', path: '/run/app.sock' });
    expect(parseAddress('pipe://svc')).toEqual({
      kind: 'pipe',
      name: 'svc',
      path: join(env.dir, 'svc.sock'),
    });
    for (const url of ['tcp://127.0.0.1:8080', 'tcp://[::1]:9', 'unix:///run/app.sock', 'pipe://svc']) {
      expect(formatAddress(parseAddress(url))).toBe(url);
    }
  });

  it('refuses malformed URLs with TypeError/RangeError and bad names with ERR_IPC_INVALID_NAME', () => {
    expect(() => parseAddress(42)).toThrow(TypeError);
    expect(() => parseAddress('127.0.0.1:80')).toThrow(TypeError);
    expect(() => parseAddress('udp://x:1')).toThrow(/unknown scheme/);
    expect(() => parseAddress('tcp://host')).toThrow(TypeError);
    expect(() => parseAddress('tcp://[nothex]:1')).toThrow(TypeError);
    expect(() => parseAddress('tcp://h:70000')).toThrow(RangeError);
    expect(() => parseAddress('unix://')).toThrow(TypeError);
    expect(() => parseAddress('pipe://../escape')).toThrow(
      expect.objectContaining({ code: ErrorCodes.INVALID_NAME }),
    );
    expect(() => parseAddress(`unix:///${'x'.repeat(120)}`)).toThrow(
      expect.objectContaining({ code: ErrorCodes.PATH_TOO_LONG }),
    );
  });

  it('knows which hosts are loopback', () => {
    for (const host of ['127.0.0.1', '127.1.2.3', '::1', 'localhost', 'LOCALHOST', '::ffff:127.0.0.1']) {
      expect(isLoopback(host)).toBe(true);
    }
    for (const host of ['0.0.0.0', '::', '10.0.0.1', '192.168.1.1', 'example.com', '::ffff:10.0.0.1']) {
      expect(isLoopback(host)).toBe(false);
    }
  });
});
