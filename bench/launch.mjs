/**
 * The entry point of `npm run bench` and `ipckit bench`: transpiles src/ and bench/ (and the test
 * support they share) to JavaScript, then runs bench/run.js from the transpiled tree with the same
 * arguments.
 *
 * Why not tsx, as the files' own headers suggest for standalone runs: the suite starts dozens of
 * child processes, and a child under the tsx loader takes about 0.9 s longer to start than plain
 * node on the 2-core VM (1.4 s against 0.5 s to import the public entry). That fixed cost was most
 * of `--quick`, and it inflated every start-up figure of both ipckit and its baselines. esbuild
 * (tsx's own transpiler, so the code runs the same) transpiles file by file, without bundling, in
 * well under a second; imports between files keep working because the tree keeps its layout.
 *
 * The tree goes to node_modules/.cache/ipckit-bench/<pid>/, built on every launch so it never runs
 * stale code, removed when the suite exits (and, if it was killed, by the next launch); bare imports (zeromq, bullmq, better-sqlite3) resolve from the package's
 * node_modules above it, and a `build` link lets the addon load from its usual relative place.
 */
import { existsSync, mkdirSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';

const root = fileURLToPath(new URL('..', import.meta.url));
const cache = join(root, 'node_modules', '.cache', 'ipckit-bench');
const out = join(cache, String(process.pid));

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return error.code === 'EPERM';
  }
}

// Trees of launches that were killed; a concurrent launch's tree is left alone.
if (existsSync(cache)) {
  for (const name of readdirSync(cache)) {
    if (!alive(Number(name))) rmSync(join(cache, name), { recursive: true, force: true });
  }
}
mkdirSync(out, { recursive: true, mode: 0o700 });
process.on('exit', () => rmSync(out, { recursive: true, force: true }));
await build({
  // test/support: the private redis-server the mq benchmark shares with the tests.
  entryPoints: [
    'src/**/*.ts',
    'bench/**/*.ts',
    'test/support/redis-server.ts',
    'test/support/ports.ts',
    'test/helpers.ts',
  ].map((pattern) => join(root, pattern)),
  outdir: out,
  outbase: root,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  logLevel: 'warning',
});
writeFileSync(join(out, 'package.json'), '{ "type": "module" }\n');
symlinkSync(join(root, 'build'), join(out, 'build'));

await import(pathToFileURL(join(out, 'bench', 'run.js')).href);
