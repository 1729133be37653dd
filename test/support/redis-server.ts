/**
 * A private redis-server for tests and the mq benchmark: started on a free loopback port with its
 * own temporary data directory, never a shared or system instance. `--port 0` is not supported by
 * Redis, so the port is one found free below the kernel's ephemeral range (./ports.ts), where no
 * outgoing connection can take it while a restart test has the server down; if another process
 * takes it before Redis binds it, Redis exits and a new port is tried. Readiness is Redis's own
 * "Ready to accept connections" line, not a poll.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { watchdog } from '../helpers.js';
import { stablePort } from './ports.js';

/** Why redis-server cannot run here, or undefined when it can. */
export function redisUnavailable(): string | undefined {
  const probe = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  return probe.error ? 'redis-server is not installed (apt-get install redis-server)' : undefined;
}

const hasSetpriv = spawnSync('setpriv', ['--help']).status === 0;

/** Options of a test redis-server. */
export interface RedisServerOptions {
  /** `appendfsync`: 'always' (default: nothing acknowledged is lost on a kill -9) or 'everysec'. */
  appendfsync?: 'always' | 'everysec';
  /** More redis-server arguments, e.g. ['--requirepass', 'secret']. */
  args?: string[];
  /** Serve TLS only (no plain TCP) on the port, with this PEM certificate and key (files). */
  tls?: { certFile: string; keyFile: string };
}

/** A redis-server this test process started. */
export class RedisServer {
  readonly port: number;
  readonly dir: string;
  readonly #options: RedisServerOptions;
  #child: ChildProcess | undefined;

  private constructor(port: number, dir: string, options: RedisServerOptions) {
    this.port = port;
    this.dir = dir;
    this.#options = options;
  }

  /** Starts a server on a free loopback port; retries with another port if the bind fails. */
  static async start(options: RedisServerOptions = {}): Promise<RedisServer> {
    const dir = mkdtempSync(join(tmpdir(), 'ipckit-test-redis-'));
    let lastError: unknown;
    for (let attempt = 0; attempt < 5; attempt++) {
      const server = new RedisServer(await stablePort(), dir, options);
      try {
        await server.#launch();
        return server;
      } catch (err) {
        lastError = err;
      }
    }
    rmSync(dir, { recursive: true, force: true });
    throw lastError;
  }

  /** `redis://127.0.0.1:<port>`, with `suffix` (a path or query) appended. */
  url(suffix = ''): string {
    return `redis://127.0.0.1:${this.port}${suffix}`;
  }

  /** The running process's pid. */
  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** Starts redis-server on this port and data directory, resolving once it accepts connections. */
  async #launch(): Promise<void> {
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--save', ''];
    args.push('--appendonly', 'yes', '--appendfsync', this.#options.appendfsync ?? 'always');
    args.push('--daemonize', 'no', '--loglevel', 'notice', '--protected-mode', 'yes');
    const tls = this.#options.tls;
    if (tls) {
      // Later arguments win: no plain TCP port, TLS on ours, clients not asked for certificates.
      args.push('--port', '0', '--tls-port', String(this.port), '--tls-cert-file', tls.certFile);
      args.push(
        '--tls-key-file',
        tls.keyFile,
        '--tls-ca-cert-file',
        tls.certFile,
        '--tls-auth-clients',
        'no',
      );
    }
    args.push(...(this.#options.args ?? []));
    // With setpriv, the server is killed when this process dies, however it dies: a test worker
    // that is killed (a timeout, a crash) leaves no redis-server behind.
    const child = hasSetpriv
      ? spawn('setpriv', ['--pdeathsig', 'KILL', 'redis-server', ...args], {
          stdio: ['ignore', 'pipe', 'pipe'],
        })
      : spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.#child = child;
    let log = '';
    const exited = once(child, 'exit');
    const ready = new Promise<void>((resolve, reject) => {
      createInterface({ input: child.stdout! }).on('line', (line) => {
        log += `${line}\n`;
        if (line.includes('Ready to accept connections')) resolve();
      });
      exited.then(([code, signal]) =>
        reject(new Error(`redis-server on port ${this.port} exited (${code ?? signal}):\n${log}`)),
      );
    });
    try {
      await watchdog(ready, 20_000, `redis-server to accept connections on port ${this.port}`);
    } catch (err) {
      child.kill('SIGKILL');
      await exited;
      this.#child = undefined;
      throw err;
    }
  }

  /** kill -9: the crash the restart tests inject. Resolves once the process is gone. */
  async kill(): Promise<void> {
    const child = this.#child;
    this.#child = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await watchdog(exited, 20_000, 'redis-server to exit after SIGKILL');
  }

  /** Starts the server again on the same port and data directory (it replays its append-only file). */
  async restart(): Promise<void> {
    await this.kill();
    let lastError: unknown;
    // The port was ours a moment ago; a bind can still race a TIME_WAIT-less reuse, so try a few times.
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        await this.#launch();
        return;
      } catch (err) {
        lastError = err;
      }
    }
    throw lastError;
  }

  /** Stops the server and deletes its data directory. */
  async stop(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** The same, synchronously, for a process 'exit' handler. */
  stopSync(): void {
    this.#child?.kill('SIGKILL');
    this.#child = undefined;
    rmSync(this.dir, { recursive: true, force: true });
  }
}
