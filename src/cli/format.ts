/** Text formatting shared by the commands: ages, counts, durations and aligned tables. */

/** A compact age: `42s`, `5m`, `3h`, `2d`. */
export function formatAge(ms: number): string {
  const seconds = Math.max(0, Math.floor(ms / 1000));
  if (seconds < 60) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours}h`;
  return `${Math.floor(hours / 24)}d`;
}

/** A count with thousands separators, rounded: `83,412`. */
export function formatCount(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/** A size in the binary unit that reads best: `512 B`, `4 KiB`, `1.5 MiB`. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  const text = Number.isInteger(value) || value >= 100 ? String(Math.round(value)) : value.toFixed(1);
  return `${text} ${units[unit]}`;
}

/** A duration picked in the unit that reads best: `850 µs`, `12.3 ms`, `2.10 s`. */
export function formatDuration(ms: number): string {
  if (ms < 1) return `${Math.round(ms * 1000)} µs`;
  if (ms < 1000) return `${ms < 10 ? ms.toFixed(2) : ms.toFixed(1)} ms`;
  return `${(ms / 1000).toFixed(2)} s`;
}

/**
 * Left-aligned columns separated by two spaces. `style(column, padded)` may color a cell: it is
 * applied after padding, so escape codes never disturb the alignment.
 */
export function renderTable(
  header: readonly string[],
  rows: readonly (readonly string[])[],
  style: (column: number, padded: string, row: number) => string = (_, text) => text,
): string[] {
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length)),
  );
  const render = (cells: readonly string[], row: number) =>
    cells
      .map((cell, column) => {
        const last = column === cells.length - 1;
        return style(column, last ? cell : cell.padEnd(widths[column] ?? 0), row);
      })
      .join('  ');
  return [render(header, -1), ...rows.map((row, index) => render(row, index))];
}
