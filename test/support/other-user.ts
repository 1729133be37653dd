/**
 * The other user the security tests act as: uid and gid 65534 (nobody), reached with setpriv(1),
 * which needs root. Tests that need it skip without it.
 */
import { spawnSync } from 'node:child_process';

/** uid and gid of the other user. */
export const NOBODY = 65534;

/** True if this process can run another as {@link NOBODY}: it is root and setpriv(1) is there. */
export const canRunAsNobody =
  process.getuid?.() === 0 && spawnSync('setpriv', ['--version'], { stdio: 'ignore' }).status === 0;

/** The command prefix that runs what follows it as {@link NOBODY}, without this user's groups. */
export const AS_NOBODY: readonly string[] = [
  'setpriv',
  `--reuid=${NOBODY}`,
  `--regid=${NOBODY}`,
  '--clear-groups',
];
