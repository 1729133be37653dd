/**
 * Vitest global setup: compiles src/ into dist/ once per run, so tests that spawn the real
 * `ipckit` binary (bin/ipckit.js loads dist/cli/main.js) test the current source.
 * The build is incremental (its state kept in node_modules/.cache), so an unchanged tree costs
 * about a second; it is redone from scratch whenever dist/ has been removed.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));
const buildInfo = fileURLToPath(
  new URL('../../node_modules/.cache/ipckit/tsconfig.build.tsbuildinfo', import.meta.url),
);
const entry = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

export default function setup(): void {
  // Incremental state without its outputs would make tsc skip emitting them.
  if (!existsSync(entry)) rmSync(buildInfo, { force: true });
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  try {
    execFileSync(
      process.execPath,
      [tsc, '-p', 'tsconfig.build.json', '--incremental', '--tsBuildInfoFile', buildInfo],
      { cwd: root, encoding: 'utf8', stdio: 'pipe' },
    );
  } catch (err) {
    // tsc still emits when some file has a type error; the typecheck step reports those. Only a
    // build that produced no CLI at all stops the run.
    const output = (err as { stdout?: string }).stdout ?? String(err);
    if (!existsSync(entry)) throw new Error(`tsc -p tsconfig.build.json failed:\n${output}`);
    console.warn(`tsc -p tsconfig.build.json reported errors (dist was still emitted):\n${output}`);
  }
}
