/**
 * How to start a Node child that runs ipckit code: which node flags it gets, and whether it needs a
 * TypeScript loader (running ipckit from its sources, or a `.ts` task module).
 */
import { existsSync } from 'node:fs';
import { extname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ErrorCodes, IpcError } from '../core/errors.js';

const TS_EXTENSIONS = new Set(['.ts', '.mts', '.cts']);

/** The file URL of a module given as a path (relative to the cwd), a file: URL string or a URL. */
export function moduleUrl(module: string | URL, what: string): URL {
  let url: URL;
  if (module instanceof URL) url = module;
  else if (typeof module === 'string' && module !== '') {
    url = module.startsWith('file:') ? new URL(module) : pathToFileURL(resolve(module));
  } else {
    throw new TypeError(`${what} must be a path or a file: URL`);
  }
  if (url.protocol !== 'file:') throw new TypeError(`${what} must be a path or a file: URL, got ${url.href}`);
  if (!existsSync(fileURLToPath(url))) {
    throw new IpcError(ErrorCodes.NOT_FOUND, `${what}: no such file: ${fileURLToPath(url)}`);
  }
  return url;
}

/** True for a file Node cannot run without a TypeScript loader. */
export function isTypeScript(url: URL): boolean {
  return TS_EXTENSIONS.has(extname(url.pathname));
}

/** A sibling module of this one: `.ts` when ipckit runs from its sources, `.js` when built. */
export function siblingModule(name: string): URL {
  const ext = extname(new URL(import.meta.url).pathname) === '.ts' ? '.ts' : '.js';
  return new URL(`./${name}${ext}`, import.meta.url);
}

/**
 * Flags that make node run something else than the program named after them, or that only go with
 * code given as a string (`--input-type`: node refuses it with a program file); they take a value.
 */
const RUN_OTHER_WITH_VALUE = new Set(['-e', '--eval', '-pe', '--input-type', '--watch-path']);
/** The same, without a value. */
const RUN_OTHER = new Set([
  '-c',
  '--check',
  '-i',
  '--interactive',
  '--test',
  '--watch',
  '--watch-preserve-output',
]);
/** `--print`'s value is optional: node takes the next argument only if it is not a flag. */
const PRINT = new Set(['-p', '--print']);

/**
 * `args` without the flags that would make a child run something else than its program: under
 * `node -e CODE` this process's execArgv is `['-e', CODE]`, and a child given it would run CODE
 * (which may start the same children again) instead of its program, or fail on `--input-type`.
 * Also without debugger flags: a second debugger on the same port fails the child.
 */
function withoutParentOnlyFlags(args: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const name = arg.startsWith('--') && arg.includes('=') ? arg.slice(0, arg.indexOf('=')) : arg;
    if (/^--(inspect|debug)/.test(name) || RUN_OTHER.has(name)) continue;
    if (RUN_OTHER_WITH_VALUE.has(name) || PRINT.has(name)) {
      const valueFollows = name === arg && i + 1 < args.length;
      if (valueFollows && (!PRINT.has(name) || !args[i + 1]!.startsWith('-'))) i++;
      continue;
    }
    out.push(arg);
  }
  return out;
}

/**
 * The flags for a Node child: `execArgv` (default: this process's, like `child_process.fork`)
 * without debugger flags and flags that would run something else than the child's program (`-e`,
 * `-p`, `--input-type`, `--check`, `--test`, `--watch`…), plus the tsx loader when one of
 * `modules` is TypeScript and no loader is among the flags yet.
 */
export function childExecArgv(execArgv: readonly string[] | undefined, modules: readonly URL[]): string[] {
  if (execArgv !== undefined && (!Array.isArray(execArgv) || execArgv.some((a) => typeof a !== 'string'))) {
    throw new TypeError('options.execArgv must be an array of strings');
  }
  const args = withoutParentOnlyFlags(execArgv ?? process.execArgv);
  // Node 22.6+ can strip types itself (process.features.typescript); Node 20 cannot.
  const nodeStripsTypes = Boolean((process.features as { typescript?: unknown }).typescript);
  const needsLoader = !nodeStripsTypes && modules.some(isTypeScript);
  if (needsLoader && !hasTypeScriptLoader(args)) args.push('--import', tsxLoader());
  return args;
}

function hasTypeScriptLoader(args: readonly string[]): boolean {
  return args.some((a) => /tsx|ts-node|strip-types|transform-types/.test(a));
}

function tsxLoader(): string {
  try {
    return import.meta.resolve('tsx');
  } catch (err) {
    throw new IpcError(
      ErrorCodes.NOT_FOUND,
      'a TypeScript module needs a loader in the child: install tsx or run this process under tsx',
      { cause: err },
    );
  }
}
