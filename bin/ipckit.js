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
// rather than die of an unhandled EPIPE with a stack trace. A command with resources to clean up
// (the tour) is told instead, and ends by itself once they are gone.
process.stdout.on('error', (err) => {
  if (err?.code !== 'EPIPE') throw err;
  if (!cli.stdoutWentAway()) process.exit(0);
});
process.exitCode = await cli.main(process.argv.slice(2));
