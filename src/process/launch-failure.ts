/**
 * Why a command could not be started. Node reports a failed spawn's errno only later, as an 'error'
 * event, while spawn() must throw at once; so the lookup execvp does is repeated here: a command
 * found but not executable is ERR_IPC_PERMISSION (EACCES), one found nowhere ERR_IPC_NOT_FOUND.
 */
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, resolve } from 'node:path';
import { ErrorCodes, IpcError } from '../core/errors.js';

export function launchFailure(command: string, cwd: string | undefined, path: string | undefined): IpcError {
  const what = `spawn ${command}`;
  const badCwd = cwdFailure(command, cwd);
  if (badCwd) return badCwd;
  // As execvp: a name with a slash is a path; a bare name is looked up on PATH.
  const candidates = command.includes('/')
    ? [resolve(cwd ?? '.', command)]
    : (path ?? '/usr/bin:/bin').split(delimiter).map((dir) => resolve(cwd ?? '.', dir || '.', command));
  const denied = candidates.find(isUnrunnableFile);
  if (denied !== undefined) {
    return new IpcError(ErrorCodes.PERMISSION, `${what}: ${denied} is not executable (EACCES)`);
  }
  return new IpcError(ErrorCodes.NOT_FOUND, `${what}: the command could not be started (not found)`);
}

/** A file that exists but cannot be executed by us (a directory counts, as execve's EACCES). */
function isUnrunnableFile(file: string): boolean {
  const stat = statSync(file, { throwIfNoEntry: false });
  if (stat === undefined) return false;
  if (stat.isDirectory()) return true;
  try {
    accessSync(file, constants.X_OK);
    return false;
  } catch {
    return true;
  }
}

/**
 * ERR_IPC_NOT_FOUND if `cwd` is given and is not a directory: the child changes to it before it
 * runs anything, so a bad one fails every command, and saying so beats blaming the command.
 */
export function cwdFailure(command: string, cwd: string | undefined): IpcError | undefined {
  if (typeof cwd !== 'string') return undefined;
  const what = `spawn ${command}: options.cwd ${cwd}`;
  try {
    if (!statSync(cwd).isDirectory()) return new IpcError(ErrorCodes.NOT_FOUND, `${what} is not a directory`);
    // The child must be able to enter it (search permission), or nothing runs there.
    accessSync(cwd, constants.X_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM') {
      return new IpcError(ErrorCodes.PERMISSION, `${what} cannot be entered (${code})`, { cause: err });
    }
    // ENOENT, ENOTDIR (a file on the way), ELOOP, ENAMETOOLONG: no directory there to run in.
    return new IpcError(
      ErrorCodes.NOT_FOUND,
      code === 'ENOENT' ? `${what} does not exist` : `${what} is not a usable directory (${code})`,
      { cause: err },
    );
  }
  return undefined;
}
