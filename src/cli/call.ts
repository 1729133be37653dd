/** `ipckit call URL METHOD [JSON]`: one request to a socket server, its reply printed. */
import { Command } from 'commander';
import { connect, IpcError, isIpcError, parseAddress, RemoteError } from '../index.js';
import { checkArgument, parseMs } from './arguments.js';
import { UsageError } from './errors.js';
import { jsonText, jsonValue, parseJsonArgument } from './json-text.js';
import { createOutput } from './output.js';
import { TOKEN_ENV } from './serve.js';

/** Builds the `call` command. */
export function callCommand(): Command {
  return new Command('call')
    .description('send one request to the server at URL and print its reply')
    .argument('<url>', 'tcp://host:port, unix:///path/to.sock or pipe://name')
    .argument('<method>', "the method name, e.g. 'echo'")
    .argument('[json]', 'the params as JSON (default: none)')
    .option(
      '--timeout <ms>',
      'give up after this many milliseconds, connecting included (default 10000)',
      parseMs,
    )
    .option('--json', 'print the reply as a JSON document (strings quoted)')
    .addHelpText(
      'after',
      `
A string reply is printed as is, anything else as one line of JSON. A request the server's handler
failed prints the remote code and message on stderr (exit code 1). The token of a server that needs
one is read from ${TOKEN_ENV}.

Examples:
  $ ipckit call unix:///tmp/demo.sock echo '{"hello":"world"}'
  $ ipckit call tcp://127.0.0.1:7000 ping --json`,
    )
    .action(
      async (
        url: string,
        method: string,
        text: string | undefined,
        opts: { timeout?: number; json?: boolean },
      ) => {
        checkArgument(url, parseAddress);
        // The library's rule for a method name, checked before connecting.
        const methodBytes = Buffer.byteLength(method);
        if (methodBytes === 0 || methodBytes > 255) {
          throw new UsageError(`method must be 1..255 bytes of UTF-8, got ${methodBytes}`);
        }
        const params = text === undefined ? undefined : parseJsonArgument(text, 'the params argument');
        const out = createOutput();
        const timeout = opts.timeout ?? 10_000;
        const token = process.env[TOKEN_ENV];
        const deadline = Date.now() + timeout;
        const client = await connect(url, { timeout, ...(token ? { auth: { token } } : {}) });
        let reply: unknown;
        try {
          reply = await client.request(method, params, { timeout: Math.max(1, deadline - Date.now()) });
        } catch (err) {
          if (err instanceof RemoteError && isIpcError(err)) {
            // Name the side that failed: the same code can also come from this process (a timeout).
            const detail = err.remoteCode === undefined ? '' : ` [${err.remoteCode}]`;
            throw new IpcError(err.code, `the server failed '${method}': ${err.message}${detail}`, {
              cause: err,
            });
          }
          throw err;
        } finally {
          await client.close();
        }
        if (opts.json) out.json(jsonValue(reply));
        else out.line(typeof reply === 'string' ? reply : jsonText(reply));
      },
    );
}
