/**
 * Where platforms differ, in one place: the address of a named pipe and the socket path limit.
 * Linux is the tested platform; the Windows branch follows Node's `\\.\pipe\` convention.
 */
import { join } from 'node:path';
import { ErrorCodes, IpcError } from './errors.js';
import { checkName, runtimeDir, runtimeDirTag } from './runtime-dir.js';

/** Longest Unix socket path the kernel accepts (sun_path less its terminating NUL). */
export const MAX_SOCKET_PATH_BYTES = process.platform === 'linux' ? 107 : 103;

/** Throws ERR_IPC_PATH_TOO_LONG for a socket path Node would silently truncate. */
export function checkSocketPath(path: string, what: string): void {
  const bytes = Buffer.byteLength(path);
  if (process.platform !== 'win32' && bytes > MAX_SOCKET_PATH_BYTES) {
    throw new IpcError(
      ErrorCodes.PATH_TOO_LONG,
      `${what}: socket path is ${bytes} bytes, the limit is ${MAX_SOCKET_PATH_BYTES}: ${path} (use a shorter IPCKIT_DIR or name)`,
    );
  }
}

/** The address of the named pipe `name`: a Unix socket in the runtime dir, or `\\.\pipe\…` on Windows. */
export function namedPipeAddress(name: string): string {
  checkName(name, 'named pipe');
  if (process.platform === 'win32') return `\\\\.\\pipe\\ipckit-${runtimeDirTag()}-${name}`;
  const path = join(runtimeDir(), `${name}.sock`);
  checkSocketPath(path, `named pipe '${name}'`);
  return path;
}
