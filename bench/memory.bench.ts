/**
 * Memory under traffic: a million 64 B objects one way through each ipckit channel (pipe, shm,
 * unix and tcp sockets, named pipe, FIFO), and through `process.send` 'json' beside them in the
 * same run; the RSS of both ends before the first million and after each. The project's target: a
 * million messages through any channel leave both ends' RSS where it started, ±20 MB.
 *
 * Both ends are children (bench/children/memory-sender.ts starts the receiver), so the runner's own
 * heap is in no reading. One subject runs at a time, so no other traffic shows in a reading either.
 * Each starts fresh (two messages, then the first million), so the figures include what the JIT and
 * V8's young generation take as traffic begins. A reading is the RSS as the operating system
 * reports it (/proc), with no forced collection: what a user of the process sees.
 * Runnable alone through `bench/run.ts --only memory`.
 */
import { spawn } from '../src/index.js';
import { type CaseResult, type RunOptions, type Scenario, summarize } from './scenario.js';
import { childRssMiB } from './support/memory.js';
import { MEMORY_SUBJECTS, type MemorySubject } from './support/memory-subjects.js';
import { CHILD_STDIO, childArgs } from './support/peer.js';
import { inPrivateRuntimeDir } from './support/sync-procs.js';

/** ±20 MB, in the MiB that RSS readings come in. */
const LIMIT_MIB = 20 / 1.048576;

type End = 'sender' | 'receiver';

function rssOf(pid: number, what: string): number {
  const rss = childRssMiB(pid);
  if (rss === undefined) throw new Error(`memory: the ${what} (pid ${pid}) is gone`);
  return rss;
}

async function measure(subject: MemorySubject, opts: RunOptions): Promise<CaseResult> {
  const count = opts.quick ? 50_000 : 1_000_000;
  const runs = opts.quick ? 1 : Math.min(opts.runs, 3);
  opts.progress(`memory: ${subject.name}, starting`);
  const sender = spawn<unknown>(process.execPath, childArgs('memory-sender.ts', subject.name), {
    channel: 'pipe',
    stdio: CHILD_STDIO,
  });
  const control = sender.channel!;
  try {
    const { receiverPid } = (await control.receive({ timeout: 60_000 })) as { receiverPid: number };
    const read = () => ({ sender: rssOf(sender.pid, 'sender'), receiver: rssOf(receiverPid, 'receiver') });
    const trail = [read()];
    let seconds = 0;
    for (let run = 0; run < runs; run++) {
      opts.progress(
        `memory: ${subject.name}, ${count.toLocaleString('en-US')} messages, run ${run + 1}/${runs}`,
      );
      await control.send({ send: count });
      seconds += ((await control.receive()) as { seconds: number }).seconds;
      trail.push(read());
    }
    const growth = (end: End) => trail.slice(1).map((r, i) => r[end] - trail[i]![end]);
    const span = (end: End) => trail[trail.length - 1]![end] - trail[0]![end];
    const within = (v: number) => Math.abs(v) <= LIMIT_MIB;
    // The standard's words: a million messages leave RSS where it started (±20 MB). Each burst is
    // judged; the drift over all of them is shown beside, since V8 grows its heap in steps (the
    // young generation once, old space now and then) that can fall in any burst.
    const met = [...growth('sender'), ...growth('receiver')].every(within);
    const drift = (end: End) => `${span(end) >= 0 ? '+' : ''}${span(end).toFixed(1)} MiB`;
    const path = (end: End) => trail.map((r) => r[end].toFixed(1)).join(' → ');
    const notes = [
      `${Math.round((count * runs) / seconds).toLocaleString('en-US')} msg/s`,
      `RSS in MiB before the first burst and after each: receiver ${path('receiver')}, sender ${path('sender')}`,
      `over ${runs === 1 ? 'the burst' : `all ${runs} bursts`}: receiver ${drift('receiver')}, sender ${drift('sender')}`,
      subject.target
        ? `target each burst within ±20 MB at both ends: ${met ? 'met' : 'NOT met'}`
        : 'the baseline, for comparison',
    ];
    return {
      case: `${count.toLocaleString('en-US')} x 64 B one way, ${subject.name}`,
      unit: 'MiB',
      higherIsBetter: false,
      compare: false,
      ours: summarize('receiving child, RSS growth', growth('receiver')),
      baselines: [summarize('sending child, RSS growth', growth('sender'))],
      notes: notes.join('; '),
    };
  } finally {
    await control.close();
    await sender.exited;
  }
}

function run(opts: RunOptions): Promise<CaseResult[]> {
  return inPrivateRuntimeDir(async () => {
    const results: CaseResult[] = [];
    for (const subject of MEMORY_SUBJECTS) results.push(await measure(subject, opts));
    return results;
  });
}

const scenario: Scenario = {
  name: 'memory',
  description:
    'a million 64 B objects one way through each channel: RSS growth of the receiving and the sending child',
  run,
};

export default scenario;
