/**
 * How the suite shows that it is working, always on stderr so stdout stays the results: a
 * cli-progress bar (scenarios done, elapsed time, the current step) when stderr is a terminal,
 * plain timestamped lines when it is a pipe or a CI log, and nothing at all for `--json` runs.
 */
import cliProgress from 'cli-progress';

/** What the runner tells the progress display. */
export interface Progress {
  /** Scenario `index` (0-based) of `total` starts. */
  scenario(name: string, index: number, total: number): void;
  /** A step inside the current scenario ("pipes: round trip, 64 B object, run 2/5"). */
  note(text: string): void;
  /** The suite is over (successfully or not): the bar is completed and released. */
  stop(): void;
}

/** 'bar' on a terminal, 'lines' otherwise, 'none' when asked for silence (`--json`). */
export type ProgressMode = 'bar' | 'lines' | 'none';

/** The mode for this run: a bar only when `stream` is a terminal that can redraw a line. */
export function progressMode(json: boolean, stream: NodeJS.WriteStream = process.stderr): ProgressMode {
  if (json) return 'none';
  return stream.isTTY === true && process.env.TERM !== 'dumb' ? 'bar' : 'lines';
}

function seconds(startedAt: number): string {
  return `${((performance.now() - startedAt) / 1000).toFixed(0).padStart(3)} s`;
}

/** A progress display in `mode`, writing to `stream`. */
export function createProgress(mode: ProgressMode, stream: NodeJS.WriteStream = process.stderr): Progress {
  if (mode === 'none') return { scenario() {}, note() {}, stop() {} };
  const startedAt = performance.now();
  if (mode === 'lines') {
    return {
      scenario(name, index, total) {
        stream.write(`[${seconds(startedAt)}] bench: scenario ${index + 1}/${total}: ${name}\n`);
      },
      note(text) {
        stream.write(`[${seconds(startedAt)}] ${text}\n`);
      },
      stop() {},
    };
  }
  const bar = new cliProgress.SingleBar(
    {
      stream,
      format: 'bench {bar} {value}/{total} scenarios | {duration_formatted} | {note}',
      barsize: 24,
      hideCursor: true,
      clearOnComplete: false,
      // Redraw on every note: scenarios take seconds per step, so this is a few writes a second.
      fps: 5,
      etaBuffer: 1,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  // The step text is cut to what is left of the terminal line, so the bar never wraps.
  const room = () => Math.max(10, (stream.columns ?? 100) - 62);
  const clipNote = (text: string) => (text.length > room() ? `${text.slice(0, room() - 1)}…` : text);
  return {
    scenario(name, index, total) {
      if (!started) {
        bar.start(total, index, { note: clipNote(`${name}: starting`) });
        started = true;
      } else {
        bar.update(index, { note: clipNote(`${name}: starting`) });
      }
    },
    note(text) {
      if (started) bar.update({ note: clipNote(text) });
    },
    stop() {
      if (!started) return;
      bar.update(bar.getTotal(), { note: 'done' });
      bar.stop();
    },
  };
}
