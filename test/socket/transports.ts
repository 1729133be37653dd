/**
 * The transports every socket test runs on, and a listen URL for each inside a test's own
 * runtime directory.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

/** Every socket suite is parametrized over these. */
export const transports = ['tcp', 'unix'] as const;
export type Transport = (typeof transports)[number];

/** Where to listen: an ephemeral loopback port, or a socket file in `dir` (created 0700). */
export function listenUrl(transport: Transport, dir: string, name = 'server'): string {
  if (transport === 'tcp') return 'tcp://127.0.0.1:0';
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  return `unix://${join(dir, `${name}.sock`)}`;
}
