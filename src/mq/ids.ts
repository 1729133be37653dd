/**
 * Message ids the queue generates: a random per-process prefix and a counter, so they are unique
 * across processes and restarts without a round trip to the store, and known before the commit
 * (a send whose commit failed can be retried under the same id and deduplicated).
 */
import { randomBytes } from 'node:crypto';

const prefix = randomBytes(9).toString('base64url');
let counter = 0;

/** A new id such as `Yq3vA9x0kL2m-1a`. */
export function newMessageId(): string {
  return `${prefix}-${(counter++).toString(36)}`;
}
