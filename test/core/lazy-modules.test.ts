import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fixtureArgs, isolateRuntimeDir } from '../helpers.js';

const run = promisify(execFile);

describe('what importing ipckit loads', () => {
  let rt: ReturnType<typeof isolateRuntimeDir>;
  beforeEach(() => {
    rt = isolateRuntimeDir();
  });
  afterEach(() => rt.cleanup());

  it('leaves msgpackr, the queue stores, node:tls, node:v8 and node:zlib until something needs them', async () => {
    const { stdout } = await run(process.execPath, fixtureArgs('report-modules-loaded-by-import.ts'), {
      timeout: 60_000,
    });
    const report = JSON.parse(stdout) as { before: string[]; atImport: string[]; afterUse: string[] };
    // Nothing watched was loaded before the import, so what the import adds is seen.
    expect(report.before).toEqual([]);
    expect(report.atImport).toEqual([]);
    // A Date through msgpack, a Map through v8, a FIFO frame's CRC and a message through a SQLite
    // queue load what each needs, and work; nothing opened a Redis queue or a TLS socket.
    expect(report.afterUse).toEqual(['msgpackr', 'sqlite store', 'v8', 'zlib']);
  });
});
