#!/usr/bin/env node
// The ipckit command. The CLI is TypeScript compiled into dist/ by `npm install` (the package's
// prepare script); this file only loads it and hands over the arguments.
let cli;
try {
  cli = await import('../dist/cli/main.js');
} catch (err) {
  if (err?.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist/cli/main.js')) {
    process.stderr.write('ipckit: the CLI is not built (dist/cli/main.js is missing); run `npm run build`\n');
    process.exit(1);
  }
  throw err;
}
// A reader that stops early (`ipckit ls | head -1`) closes stdout: stop quietly, as ls and git do,
// rather than die of an unhandled EPIPE with a stack trace. Any other failure to write (ENOSPC when
// the output goes to a full disk, EIO) is a failure like any other: one line, exit code 1, and the
// output is not to be trusted. Either way a command with resources to clean up (the tour, serve) is
// told instead, and ends by itself once they are gone.
let outputFailed = false;
process.stdout.on('error', (err) => {
  if (err?.code !== 'EPIPE' && !outputFailed) {
    outputFailed = true;
    process.stderr.write(`ipckit: cannot write the output: ${err?.message ?? err}\n`);
  }
  if (!cli.stdoutWentAway()) process.exit(outputFailed ? 1 : 0);
});
const code = await cli.main(process.argv.slice(2));
process.exitCode = outputFailed ? 1 : code;
