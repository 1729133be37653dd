/**
 * Deterministic crash points for the reliability tests: `IPCKIT_CRASHPOINT=mq.commit:after` makes
 * the process SIGKILL itself the first time it reaches that point, `…@3` the third time. Only the
 * test suite sets the variable; unset (or in the built package), each check is one string
 * comparison against undefined.
 *
 * Points: `mq.commit:before` (inside a send's transaction, every row written, not committed),
 * `mq.commit:after` (a send committed, its promise not yet resolved), `mq.claim:after` (messages
 * leased, not yet handed to the application), `mq.settle:after` (acks committed, not yet resolved).
 */

/**
 * Honoured only where this module runs from its TypeScript source, as the test suite runs it: the
 * built package (dist/, JavaScript) ignores the variable, so no environment can make a production
 * process kill itself mid-transaction.
 */
const fromSources = import.meta.url.endsWith('.ts');
const spec = fromSources ? process.env.IPCKIT_CRASHPOINT : undefined;
const at = spec?.lastIndexOf('@') ?? -1;
const point = spec === undefined ? undefined : at > 0 ? spec.slice(0, at) : spec;
let remaining = at > 0 ? Number(spec!.slice(at + 1)) : 1;

/** Dies here, by SIGKILL, when the environment names this point. */
export function crashpoint(name: string): void {
  if (point !== name) return;
  if (--remaining > 0) return;
  process.kill(process.pid, 'SIGKILL');
}
