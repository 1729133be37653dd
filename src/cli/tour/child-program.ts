/**
 * Locates the tour's child programs. They ship compiled in dist/cli/tour/children/ and run with
 * plain `node`, so the tour needs no TypeScript loader on a user's machine.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { ChildCommand } from './step.js';

/** The command running child program `name` with `args`. */
export function childProgram(name: string, args: readonly string[]): ChildCommand {
  const compiled = fileURLToPath(new URL(`./children/${name}.js`, import.meta.url));
  if (existsSync(compiled)) return { command: process.execPath, args: [compiled, ...args] };
  // Only when the CLI itself runs from source (node --import tsx src/cli/main.ts) are the children
  // TypeScript next to this file; give them the same loader.
  const source = fileURLToPath(new URL(`./children/${name}.ts`, import.meta.url));
  return { command: process.execPath, args: ['--import', 'tsx', source, ...args] };
}
