/**
 * A progress bar on stderr for long runs: redrawn in place on a terminal,
 * one line per step otherwise (when asked for with `--progress`), silent
 * when off. stdout stays clean for the command's result.
 */

/** A running progress report. */
export interface Progress {
  /** `done` of `total` finished; `detail` is appended (e.g. deliveries scheduled). */
  update(done: number, detail?: string): void;
  /** Ends the bar (a newline after an in-place bar). */
  finish(): void;
}

const WIDTH = 30;

/** A progress bar over `total` units, drawn on `stream` when `enabled`. */
export function createProgress(
  stream: { write(chunk: string): unknown; isTTY?: boolean },
  total: number,
  enabled: boolean,
  label: string,
): Progress {
  if (!enabled || total <= 0) return { update() {}, finish() {} };
  const inPlace = stream.isTTY === true;
  let drawn = false;
  return {
    update(done, detail) {
      const ratio = Math.min(1, done / total);
      const filled = Math.round(ratio * WIDTH);
      const bar = `${'#'.repeat(filled)}${'-'.repeat(WIDTH - filled)}`;
      const text = `${label} [${bar}] ${String(Math.round(ratio * 100)).padStart(3)}% ${done}/${total}${detail ? ` ${detail}` : ''}`;
      stream.write(inPlace ? `\r${text}\u001b[K` : `${text}\n`);
      drawn = true;
    },
    finish() {
      if (inPlace && drawn) stream.write('\n');
    },
  };
}
