/**
 * The native addon's whole surface, declared once. The addon is loaded on first use, so pipes,
 * sockets and queues work even where it failed to build; callers that need it get
 * ERR_IPC_NATIVE_UNAVAILABLE. Arguments are checked in TypeScript before they reach C++.
 * Failed syscalls throw an Error with `errno`, `code` (e.g. 'EEXIST'), `syscall` and `path`.
 */
import { createRequire } from 'node:module';
import { ErrorCodes, IpcError } from '../core/errors.js';

/** The functions the C++ addon exports (native/*.cc). */
export interface NativeBinding {
  /** mkfifo(3). The umask applies; chmod afterwards for an exact mode. */
  mkfifo(path: string, mode: number): void;
  /** pipe2(2) with O_CLOEXEC: `[readFd, writeFd]`. */
  pipe2(): [number, number];
  /** fcntl(F_SETPIPE_SZ): returns the size granted (rounded up by the kernel). */
  setPipeSize(fd: number, bytes: number): number;
  /** fcntl(F_GETPIPE_SZ). */
  getPipeSize(fd: number): number;
  /** Sets or clears FD_CLOEXEC. */
  setCloexec(fd: number, on: boolean): void;
}

let binding: NativeBinding | undefined;
let loadError: unknown;

/** The addon, loading it on first call. Throws ERR_IPC_NATIVE_UNAVAILABLE if it cannot load. */
export function native(): NativeBinding {
  if (binding) return binding;
  if (loadError === undefined) {
    try {
      const require = createRequire(import.meta.url);
      // Same relative place from src/native (tests, tsx) and dist/native (the package).
      binding = require('../../build/Release/ipckit.node') as NativeBinding;
      return binding;
    } catch (err) {
      loadError = err;
    }
  }
  throw new IpcError(
    ErrorCodes.NATIVE_UNAVAILABLE,
    'the ipckit native addon is not available (did `npm install` build it?)',
    { cause: loadError },
  );
}

/** True when the addon loads. */
export function nativeAvailable(): boolean {
  try {
    native();
    return true;
  } catch {
    return false;
  }
}
