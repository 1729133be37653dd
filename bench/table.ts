/** Renders suite results as plain-text tables: one per scenario, one line per subject of a case. */
import type { Measurement } from './scenario.js';
import type { Environment, ResultRow } from './suite.js';

/** 3 significant figures at most, thousands separated: 41.2, 1,234,567, 0.873. */
export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  const abs = Math.abs(value);
  const digits = abs >= 100 ? 0 : abs >= 10 ? 1 : 2;
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function renderHeader(env: Environment): string {
  const mode = env.quick ? 'quick' : 'full';
  const load = `load average ${env.load.start.toFixed(2)} at start, ${env.load.end.toFixed(2)} at end`;
  return `ipckit benchmarks: ${env.date}, Node ${env.node}, ${env.platform}, ${env.cpus} CPUs, ${load}, ${mode}, median of ${env.runs} runs`;
}

/** The tables for all rows, grouped by scenario, each followed by its notes. */
export function renderTables(rows: readonly ResultRow[], descriptions: ReadonlyMap<string, string>): string {
  const out: string[] = [];
  const scenarios = [...new Set(rows.map((row) => row.scenario))];
  for (const scenario of scenarios) {
    const own = rows.filter((row) => row.scenario === scenario);
    out.push('', `${scenario}: ${descriptions.get(scenario) ?? ''}`, '');
    const lines: string[][] = [['case', 'unit', 'subject', 'median', '[min–max]', 'ratio', 'peak RSS']];
    for (const row of own) {
      lines.push(subjectLine(row.case, row.unit, row.ours, ''));
      for (const b of row.baselines) {
        const r = row.ratios[b.subject];
        lines.push(subjectLine('', '', b, r === undefined ? '' : `${formatNumber(r)}x`));
      }
    }
    out.push(...align(lines, [false, false, false, true, false, true, true]));
    const notes = own.filter((row) => row.notes);
    if (notes.length > 0) out.push('', ...notes.map((row) => `  ${row.case}: ${row.notes}`));
  }
  return out.join('\n');
}

function subjectLine(label: string, unit: string, m: Measurement, ratioText: string): string[] {
  return [
    label,
    unit,
    m.subject,
    formatNumber(m.median),
    `[${formatNumber(m.min)}–${formatNumber(m.max)}]`,
    ratioText,
    m.peakRssMiB === undefined ? '' : `${Math.round(m.peakRssMiB)} MiB`,
  ];
}

/** Pads columns to a common width; numbers right-aligned. */
function align(lines: string[][], right: boolean[]): string[] {
  const widths = lines[0]!.map((_, c) => Math.max(...lines.map((line) => line[c]!.length)));
  return lines.map((line) =>
    line
      .map((cell, c) => (right[c] ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!)))
      .join('  ')
      .trimEnd(),
  );
}

/** True for a baseline that is Node's own `process.send` (any serialization). */
export function isProcessSend(subject: string): boolean {
  return /process\.send/.test(subject);
}

/**
 * One line per case that has a `process.send` baseline: ipckit's median, the best `process.send`
 * variant's, and the ratio (> 1 means ipckit is better). The comparison most Node users care about.
 */
export function renderProcessSendSummary(rows: readonly ResultRow[]): string {
  const lines: string[][] = [
    ['scenario', 'case', 'unit', 'ipckit', 'process.send', 'ratio', 'process.send variant'],
  ];
  for (const row of rows) {
    const candidates = row.baselines.filter((b) => isProcessSend(b.subject));
    if (candidates.length === 0) continue;
    // The fairest comparison is against the best process.send variant of the case.
    const best = candidates.reduce((a, b) =>
      (row.ratios[a.subject] ?? 0) <= (row.ratios[b.subject] ?? 0) ? a : b,
    );
    lines.push([
      row.scenario,
      row.case,
      row.unit,
      formatNumber(row.ours.median),
      formatNumber(best.median),
      `${formatNumber(row.ratios[best.subject]!)}x`,
      best.subject,
    ]);
  }
  if (lines.length === 1) return '';
  return [
    '',
    'ipckit vs process.send (ratio > 1: ipckit is better)',
    '',
    ...align(lines, [false, false, false, true, true, true, false]),
  ].join('\n');
}
