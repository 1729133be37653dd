import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { fixtureArgs } from '../helpers.js';

const run = promisify(execFile);

describe('what importing ipckit loads', () => {
  it('leaves msgpackr, node:tls, node:v8 and node:zlib until something needs them', async () => {
    const { stdout } = await run(process.execPath, fixtureArgs('report-modules-loaded-by-import.ts'), {
      timeout: 60_000,
    });
    const report = JSON.parse(stdout) as { before: string[]; atImport: string[]; afterUse: string[] };
    // Nothing watched was loaded before the import, so what the import adds is seen.
    expect(report.before).toEqual([]);
    expect(report.atImport).toEqual([]);
    // A Date through msgpack, a Map through v8 and a FIFO frame's CRC load what each needs, and work.
    expect(report.afterUse).toEqual(['msgpackr', 'v8', 'zlib']);
  });
});
