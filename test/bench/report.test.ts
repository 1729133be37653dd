import { describe, expect, it } from 'vitest';
import type { Environment, ResultRow } from '../../bench/suite.js';
import { COLORS, escapeXml, renderSvg } from '../../bench/svg.js';
import { renderProcessSendSummary, renderTables } from '../../bench/table.js';

const env: Environment = {
  date: '2026-11-26T10:00:00.000Z',
  node: 'v20.20.2',
  cpus: 2,
  platform: 'linux-x64',
  quick: true,
  runs: 3,
  load: { start: 1.5, end: 2.25 },
};

function row(
  scenario: string,
  label: string,
  unit: string,
  higherIsBetter: boolean,
  ours: [string, number],
  baselines: [string, number][],
): ResultRow {
  const m = ([subject, median]: [string, number]) => ({
    subject,
    median,
    min: median * 0.9,
    max: median * 1.2,
  });
  const r: ResultRow = {
    scenario,
    case: label,
    unit,
    higherIsBetter,
    ours: m(ours),
    baselines: baselines.map(m),
    ratios: {},
  };
  for (const b of r.baselines) {
    r.ratios[b.subject] = higherIsBetter ? r.ours.median / b.median : b.median / r.ours.median;
  }
  return r;
}

const rows: ResultRow[] = [
  row(
    'pipes',
    'round trip, 64 B object',
    'µs',
    false,
    ['ipckit pipe channel', 20],
    [
      ['process.send json', 40],
      ['net Unix socket, hand-framed', 30],
    ],
  ),
  row(
    'pipes',
    'one-way throughput, 64 B object',
    'msg/s',
    true,
    ['ipckit pipe channel', 600_000],
    [
      ['process.send json', 120_000],
      ["process.send 'advanced' <&>", 50_000],
    ],
  ),
  row(
    'pipes',
    'one-way throughput, 1 MiB buffer',
    'MB/s',
    true,
    ['ipckit pipe channel', 900],
    [['process.send advanced', 400]],
  ),
  row('sync', 'uncontended lock+unlock', 'ns', false, ['ipckit Mutex', 500], [['Python Lock', 600]]),
  row('shm', 'memory growth', 'MiB', false, ['ipckit', -0.5], []),
];

describe('bench report', () => {
  it('the SVG is one well-formed document with a panel per figure kind and a bar per subject', () => {
    const svg = renderSvg(rows, env);
    expect(
      svg.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg"'),
    ).toBe(true);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    // Self-contained: no scripts, no external references.
    expect(svg).not.toMatch(/<script|href=|url\(/);
    expect(svg).toContain('Round trip, µs (shorter is better)');
    expect(svg).toContain('Throughput, messages/s (longer is better)');
    expect(svg).toContain('Bandwidth, MB/s (longer is better)');
    // ns and MiB rows are not round trips or throughput: no panel, no bars for them.
    expect(svg).not.toContain('uncontended lock+unlock');
    expect(svg).not.toContain('memory growth');
    // 3 + 3 + 2 bars, colored by who they are (plus one legend swatch per color).
    expect(svg.match(/<rect x="\d+" y="\d+(\.\d+)?" width=/g)).toHaveLength(8);
    expect(svg.match(new RegExp(`fill="${COLORS.ipckit}"`, 'g'))).toHaveLength(3 + 1);
    expect(svg.match(new RegExp(`fill="${COLORS.processSend}"`, 'g'))).toHaveLength(4 + 1);
    expect(svg).toContain('process.send &apos;advanced&apos; &lt;&amp;&gt;');
    expect(svg).not.toContain("'advanced' <&>");
    expect(svg).toContain('Node v20.20.2');
    expect(svg).toContain('load 1.50→2.25');
  });

  it('on a log axis a 10x faster subject gets a bar one decade shorter', () => {
    const svg = renderSvg(
      [
        row(
          'x',
          'round trip, a',
          'µs',
          false,
          ['ipckit', 10],
          [
            ['process.send json', 100],
            ['net', 1000],
          ],
        ),
      ],
      env,
    );
    const widths = [...svg.matchAll(/<rect x="\d+" y="[\d.]+" width="([\d.]+)"/g)].map((m) => Number(m[1]));
    expect(widths).toHaveLength(3);
    const decade = widths[2]! - widths[1]!;
    expect(decade).toBeGreaterThan(50);
    expect(widths[1]! - widths[0]!).toBeCloseTo(decade, 0);
  });

  it('escapes text for XML and renders an empty result set as a chart that says so', () => {
    expect(escapeXml(`a<b>&"c'`)).toBe('a&lt;b&gt;&amp;&quot;c&apos;');
    const svg = renderSvg([], env);
    expect(svg).toContain('No round-trip or throughput figures in these results.');
  });

  it('the tables carry the ratio to each baseline, and the summary the ratio to the best process.send', () => {
    const tables = renderTables(rows, new Map([['pipes', 'Pipes']]));
    expect(tables).toMatch(/round trip, 64 B object\s+µs\s+ipckit pipe channel\s+20\.0/);
    expect(tables).toMatch(/process\.send json\s+40\.0\s+\[36\.0–48\.0\]\s+2\.00x/);
    const summary = renderProcessSendSummary(rows).split('\n');
    expect(summary).toContain('ipckit vs process.send (ratio > 1: ipckit is better)');
    const throughput = summary.find((line) => line.includes('one-way throughput, 64 B object'));
    // The best process.send variant is json (120k), so the ratio is 600k / 120k.
    expect(throughput).toMatch(/600,000\s+120,000\s+5\.00x\s+process\.send json$/);
    expect(summary.some((line) => line.includes('uncontended'))).toBe(false);
    expect(renderProcessSendSummary([rows[3]!])).toBe('');
  });

  it('a case whose subjects are two ends of one transfer (compare: false) shows no ratio', () => {
    const ends: ResultRow = {
      ...row(
        'memory',
        '1,000,000 x 64 B one way, ipckit pipe channel',
        'MiB',
        false,
        ['receiving child', 0.5],
        [],
      ),
      baselines: [{ subject: 'sending child', median: 0.25, min: 0, max: 1 }],
      compare: false,
    };
    const lines = renderTables([ends], new Map([['memory', 'Memory']])).split('\n');
    const sender = lines.find((line) => line.includes('sending child'));
    expect(sender).toMatch(/sending child\s+0\.25\s+\[0\.00–1\.00\]$/);
    expect(renderProcessSendSummary([ends])).toBe('');
  });
});
