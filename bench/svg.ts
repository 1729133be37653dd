/**
 * The suite's results as a self-contained SVG bar chart (`--svg FILE`): one panel per kind of
 * figure (round trip, message throughput, bandwidth), one group of horizontal bars per case, ipckit
 * first and its baselines from the same run beside it. The value axis is logarithmic because one
 * panel holds microsecond pings and millisecond 1 MiB transfers. Written by hand, no dependency:
 * the output is plain SVG 1.1 text that browsers, GitHub and image viewers render as is.
 */
import type { Environment, ResultRow } from './suite.js';
import { formatNumber } from './table.js';

/** Which rows a panel shows, and how it titles them. */
interface PanelSpec {
  title: string;
  unit: string;
  accepts(row: ResultRow): boolean;
}

const PANELS: readonly PanelSpec[] = [
  {
    title: 'Round trip, µs (shorter is better)',
    unit: 'µs',
    accepts: (row) => row.unit === 'µs' && /round trip/i.test(row.case),
  },
  {
    title: 'Throughput, messages/s (longer is better)',
    unit: 'msg/s',
    accepts: (row) => row.unit === 'msg/s',
  },
  {
    title: 'Bandwidth, MB/s (longer is better)',
    unit: 'MB/s',
    accepts: (row) => row.unit === 'MB/s',
  },
];

const WIDTH = 1000;
const MARGIN = 20;
const LABEL_WIDTH = 390;
const VALUE_WIDTH = 110;
const PLOT_LEFT = MARGIN + LABEL_WIDTH;
const PLOT_WIDTH = WIDTH - PLOT_LEFT - VALUE_WIDTH - MARGIN;
const BAR_HEIGHT = 14;
const BAR_GAP = 4;
const GROUP_TITLE = 22;
const GROUP_GAP = 10;
const PANEL_TITLE = 30;
const AXIS_HEIGHT = 24;

/** Bar colors: ipckit, Node's own process.send, every other baseline. */
export const COLORS = { ipckit: '#2563eb', processSend: '#d97706', other: '#9ca3af' } as const;

function colorOf(subject: string, ours: boolean): string {
  if (ours) return COLORS.ipckit;
  return /process\.send/.test(subject) ? COLORS.processSend : COLORS.other;
}

/** Escapes text for SVG content and attribute values. */
export function escapeXml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

/** A label cut to about `max` characters, so it stays in its column. */
function clip(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** 1, 10, 100, 1k, 10k, … for the axis. */
function tickLabel(value: number): string {
  if (value >= 1e9) return `${value / 1e9}G`;
  if (value >= 1e6) return `${value / 1e6}M`;
  if (value >= 1e3) return `${value / 1e3}k`;
  return String(value);
}

interface Bar {
  subject: string;
  median: number;
  min: number;
  max: number;
  ours: boolean;
}

function barsOf(row: ResultRow): Bar[] {
  const all = [{ ...row.ours, ours: true }, ...row.baselines.map((b) => ({ ...b, ours: false }))];
  // A log axis cannot place zero or negative figures; such a subject is left out of the chart.
  return all
    .filter((m) => Number.isFinite(m.median) && m.median > 0)
    .map((m) => ({ subject: m.subject, median: m.median, min: m.min, max: m.max, ours: m.ours }));
}

/** Renders one panel at `top`; returns its SVG and height. */
function renderPanel(
  spec: PanelSpec,
  rows: readonly ResultRow[],
  top: number,
): { svg: string[]; height: number } {
  const groups = rows.map((row) => ({ row, bars: barsOf(row) })).filter((g) => g.bars.length > 0);
  const values = groups.flatMap((g) =>
    g.bars.flatMap((b) => [b.median, b.min > 0 ? b.min : b.median, b.max]),
  );
  const lo = 10 ** Math.floor(Math.log10(Math.min(...values)));
  const hi = 10 ** Math.ceil(Math.log10(Math.max(...values)) + 1e-9);
  const span = Math.log10(hi) - Math.log10(lo);
  const x = (v: number) => PLOT_LEFT + ((Math.log10(Math.max(v, lo)) - Math.log10(lo)) / span) * PLOT_WIDTH;

  const svg: string[] = [];
  let y = top;
  svg.push(`<text class="panel" x="${MARGIN}" y="${y + 20}">${escapeXml(spec.title)}</text>`);
  y += PANEL_TITLE;
  const gridTop = y;
  const body: string[] = [];
  for (const { row, bars } of groups) {
    body.push(
      `<text class="group" x="${MARGIN}" y="${y + 15}">${escapeXml(clip(`${row.scenario}: ${row.case}`, 120))}</text>`,
    );
    y += GROUP_TITLE;
    for (const bar of bars) {
      const end = x(bar.median);
      const label = clip(bar.subject, 62);
      const ratio = bar.ours ? '' : ` (ipckit ${formatNumber(row.ratios[bar.subject] ?? Number.NaN)}x)`;
      body.push(
        `<g><title>${escapeXml(`${bar.subject}: median ${formatNumber(bar.median)} ${row.unit}, range ${formatNumber(bar.min)}–${formatNumber(bar.max)}${ratio}`)}</title>`,
        `<text class="${bar.ours ? 'label ours' : 'label'}" x="${PLOT_LEFT - 8}" y="${y + BAR_HEIGHT - 3}" text-anchor="end">${escapeXml(label)}</text>`,
        `<rect x="${PLOT_LEFT}" y="${y}" width="${Math.max(1, end - PLOT_LEFT).toFixed(1)}" height="${BAR_HEIGHT}" fill="${colorOf(bar.subject, bar.ours)}"/>`,
      );
      if (bar.max > bar.min && bar.min > 0) {
        // The spread over runs: a whisker from the fastest to the slowest run.
        const mid = y + BAR_HEIGHT / 2;
        body.push(
          `<line class="spread" x1="${x(bar.min).toFixed(1)}" x2="${x(bar.max).toFixed(1)}" y1="${mid}" y2="${mid}"/>`,
        );
      }
      body.push(
        `<text class="value" x="${(Math.max(end, x(bar.max)) + 6).toFixed(1)}" y="${y + BAR_HEIGHT - 3}">${escapeXml(`${formatNumber(bar.median)} ${row.unit}`)}</text></g>`,
      );
      y += BAR_HEIGHT + BAR_GAP;
    }
    y += GROUP_GAP;
  }
  // Decade grid lines behind the bars, labelled below the panel.
  const grid: string[] = [];
  for (let v = lo; v <= hi * 1.0001; v *= 10) {
    const gx = x(v).toFixed(1);
    grid.push(
      `<line class="grid" x1="${gx}" x2="${gx}" y1="${gridTop}" y2="${y}"/>`,
      `<text class="tick" x="${gx}" y="${y + 14}" text-anchor="middle">${tickLabel(v)}</text>`,
    );
  }
  grid.push(
    `<text class="tick" x="${PLOT_LEFT + PLOT_WIDTH}" y="${y + 14}" dx="40" text-anchor="start">${escapeXml(spec.unit)} (log)</text>`,
  );
  y += AXIS_HEIGHT;
  return { svg: [...svg, ...grid, ...body], height: y - top };
}

/** The whole chart for `rows`; an SVG document as a string. */
export function renderSvg(rows: readonly ResultRow[], env: Environment): string {
  const top = 64;
  const parts: string[] = [];
  let y = top;
  for (const spec of PANELS) {
    const own = rows.filter((row) => spec.accepts(row));
    if (own.length === 0 || own.every((row) => barsOf(row).length === 0)) continue;
    const panel = renderPanel(spec, own, y);
    parts.push(...panel.svg);
    y += panel.height + 12;
  }
  if (parts.length === 0) {
    parts.push(
      `<text class="group" x="${MARGIN}" y="${y + 16}">No round-trip or throughput figures in these results.</text>`,
    );
    y += 30;
  }
  const height = y + 10;
  const load = `load ${env.load.start.toFixed(2)}→${Number.isFinite(env.load.end) ? env.load.end.toFixed(2) : '?'}`;
  const subtitle = `${env.date.slice(0, 16).replace('T', ' ')} UTC · Node ${env.node} · ${env.platform} · ${env.cpus} CPUs · ${load} · ${env.quick ? 'quick' : 'full'}, median of ${env.runs} runs; whiskers: fastest to slowest run`;
  const legend = [
    { color: COLORS.ipckit, text: 'ipckit' },
    { color: COLORS.processSend, text: 'process.send' },
    { color: COLORS.other, text: 'other baselines (net, workers, zeromq, BullMQ, …)' },
  ];
  let lx = WIDTH - MARGIN;
  const legendSvg: string[] = [];
  for (const item of [...legend].reverse()) {
    const width = 22 + item.text.length * 6.6;
    lx -= width;
    legendSvg.push(
      `<rect x="${lx.toFixed(1)}" y="14" width="12" height="12" fill="${item.color}"/>`,
      `<text class="legend" x="${(lx + 16).toFixed(1)}" y="24">${escapeXml(item.text)}</text>`,
    );
    lx -= 10;
  }
  return [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" role="img" aria-label="ipckit benchmarks: round trip and throughput of each mechanism beside Node baselines">`,
    `<title>ipckit benchmarks</title>`,
    '<style>',
    'text { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; fill: #111827; }',
    '.title { font-size: 18px; font-weight: 600; } .subtitle { font-size: 11px; fill: #4b5563; }',
    '.panel { font-size: 15px; font-weight: 600; } .group { font-size: 12px; font-weight: 600; fill: #374151; }',
    '.label, .value, .legend { font-size: 11px; } .ours { font-weight: 600; } .tick { font-size: 10px; fill: #6b7280; }',
    '.grid { stroke: #e5e7eb; stroke-width: 1; } .spread { stroke: #111827; stroke-width: 1; stroke-opacity: 0.55; }',
    '</style>',
    `<rect width="${WIDTH}" height="${height}" fill="#ffffff"/>`,
    `<text class="title" x="${MARGIN}" y="28">ipckit benchmarks</text>`,
    `<text class="subtitle" x="${MARGIN}" y="46">${escapeXml(subtitle)}</text>`,
    ...legendSvg,
    ...parts,
    '</svg>',
    '',
  ].join('\n');
}
