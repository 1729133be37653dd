/** `ipckit shm create|rm|dump`: named shared-memory segments, made, removed and read from a shell. */
import { Command, Option } from 'commander';
import { ErrorCodes, isIpcError, listResources, SharedMemory } from '../index.js';
import { parseNonNegativeInt, parseSize } from './arguments.js';
import { UsageError } from './errors.js';
import { parseMode } from './fifo.js';
import { createOutput } from './output.js';
import { keepResource, releaseResource } from './persistent.js';

/** Bytes shown per line of a hex dump, as `xxd` does. */
const BYTES_PER_LINE = 16;

/**
 * `bytes` as `xxd` prints them: offset, 16 bytes in groups of two, then the printable ASCII.
 * Runs of all-zero lines after the first are folded into one `*` line, as `xxd -a` does, so an
 * empty segment of a few MiB stays readable.
 */
export function hexDump(bytes: Uint8Array, baseOffset = 0): string[] {
  const lines: string[] = [];
  let folding = false;
  for (let at = 0; at < bytes.length; at += BYTES_PER_LINE) {
    const row = bytes.subarray(at, Math.min(at + BYTES_PER_LINE, bytes.length));
    const zero = row.every((b) => b === 0);
    const last = at + BYTES_PER_LINE >= bytes.length;
    if (zero && !last && at > 0 && bytes.subarray(at - BYTES_PER_LINE, at).every((b) => b === 0)) {
      if (!folding) lines.push('*');
      folding = true;
      continue;
    }
    folding = false;
    let hex = '';
    for (let i = 0; i < BYTES_PER_LINE; i++) {
      hex += i < row.length ? row[i]!.toString(16).padStart(2, '0') : '  ';
      if (i % 2 === 1) hex += ' ';
    }
    const text = Array.from(row, (b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.')).join('');
    lines.push(`${(baseOffset + at).toString(16).padStart(8, '0')}: ${hex} ${text}`);
  }
  return lines;
}

function createCommand(): Command {
  return new Command('create')
    .description('create the shared-memory segment NAME, zero-filled, and keep it after this command exits')
    .argument('<name>', 'the segment name: 1-100 characters of A-Z a-z 0-9 . _ -')
    .requiredOption('-s, --size <bytes>', 'size in bytes; k, M, G multiply by 1024, 1024², 1024³', parseSize)
    .option('-m, --mode <octal>', 'permissions, as for chmod (default 600: this user only)', parseMode)
    .option('--json', 'print { kind, name, size, path }')
    .addHelpText(
      'after',
      `
The segment outlives this command: it is marked as kept, so 'ipckit gc' leaves it although its
creator (this command) has exited. Remove it with 'ipckit shm rm NAME'.

Examples:
  $ ipckit shm create frames --size 1M
  $ ipckit shm dump frames --length 64`,
    )
    .action((name: string, opts: { size: number; mode?: number; json?: boolean }) => {
      const out = createOutput();
      const segment = SharedMemory.create(name, { size: opts.size, mode: opts.mode ?? 0o600 });
      segment.close();
      try {
        keepResource('shm', name);
      } catch (err) {
        // Not kept, it would be collected as its creator (this command) exits: a failed command
        // leaves nothing behind instead, as `ipckit fifo create` does.
        try {
          SharedMemory.unlink(name);
        } catch {}
        throw err;
      }
      const path = listResources().find((e) => e.kind === 'shm' && e.name === name)?.path;
      if (opts.json) out.json({ kind: 'shm', name, size: opts.size, path });
      else out.line(`created shared memory '${name}' (${opts.size} bytes)${path ? ` at ${path}` : ''}`);
    });
}

function rmCommand(): Command {
  return new Command('rm')
    .description('remove shared-memory segments by name (processes that have them mapped keep them)')
    .argument('<names...>', 'the segment names')
    .option('-f, --force', 'ignore segments that do not exist')
    .action((names: string[], opts: { force?: boolean }) => {
      for (const name of names) {
        try {
          SharedMemory.unlink(name);
        } catch (err) {
          if (!(opts.force && isIpcError(err, ErrorCodes.NOT_FOUND))) throw err;
        } finally {
          releaseResource('shm', name);
        }
      }
    });
}

function dumpCommand(): Command {
  return new Command('dump')
    .description("print the bytes of the segment NAME as a hex dump, like 'xxd'")
    .argument('<name>', 'the segment name')
    .option('-o, --offset <n>', 'first byte to show (decimal or 0x hex)', parseNonNegativeInt, 0)
    .option('-l, --length <n>', 'bytes to show (default: to the end of the segment)', parseNonNegativeInt)
    .option('--json', 'print { kind, name, size, offset, length, encoding, data }')
    .addOption(
      new Option('--encoding <encoding>', 'encoding of data with --json')
        .choices(['base64', 'hex'])
        .default('base64'),
    )
    .addHelpText(
      'after',
      `
Lines of zero bytes after the first are folded into one '*' line, as 'xxd -a' does.

Examples:
  $ ipckit shm dump frames --offset 0x100 --length 32
  $ ipckit shm dump frames --json --encoding hex`,
    )
    .action(
      (
        name: string,
        opts: { offset: number; length?: number; json?: boolean; encoding: 'base64' | 'hex' },
      ) => {
        const out = createOutput();
        const segment = SharedMemory.open(name);
        try {
          if (opts.offset > segment.size) {
            throw new UsageError(
              `--offset ${opts.offset} is past the end of '${name}' (${segment.size} bytes)`,
            );
          }
          const length = Math.min(opts.length ?? segment.size - opts.offset, segment.size - opts.offset);
          // A copy: the mapping is gone once the segment is closed below.
          const bytes = new Uint8Array(segment.buffer, opts.offset, length).slice();
          if (opts.json) {
            out.json({
              kind: 'shm',
              name,
              size: segment.size,
              offset: opts.offset,
              length,
              encoding: opts.encoding,
              data: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString(opts.encoding),
            });
          } else {
            for (const line of hexDump(bytes, opts.offset)) out.line(line);
          }
        } finally {
          segment.close();
        }
      },
    );
}

/** Builds the `shm` command group. */
export function shmCommand(): Command {
  return new Command('shm')
    .description('create, remove and dump named shared-memory segments')
    .addCommand(createCommand())
    .addCommand(rmCommand())
    .addCommand(dumpCommand());
}
