/**
 * When stdout's reader goes away (`ipckit tour | head`), most commands just stop: the bin exits
 * quietly, as `ls` and `git` do. A command that holds resources first has to clean them up; it
 * says so with {@link holdStdout}, and is told through {@link stdoutClosed}.
 */

const closed = new AbortController();
let holders = 0;

/** Aborted once stdout's reader has gone away. */
export const stdoutClosed: AbortSignal = closed.signal;

/**
 * Marks a command that must clean up before the process ends, until the returned function is
 * called. While one holds it, the bin leaves the exit to that command.
 */
export function holdStdout(): () => void {
  holders++;
  let released = false;
  return () => {
    if (released) return;
    released = true;
    holders--;
  };
}

/**
 * Called by the bin when a write to stdout failed with EPIPE. True if a command is cleaning up and
 * will end by itself; false if the process may exit now.
 */
export function stdoutWentAway(): boolean {
  if (!closed.signal.aborted) closed.abort();
  return holders > 0;
}
