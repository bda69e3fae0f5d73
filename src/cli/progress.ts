/**
 * A progress bar for long work (compact, backup, defrag, bench), drawn on stderr only when it is a
 * terminal, redrawn at most ten times a second, and erased when done — so scripts and pipes see
 * nothing of it.
 */
import type { CliIO } from './output.ts';

export interface Progress {
  update(done: number, total: number): void;
  done(): void;
}

const WIDTH = 30;

export function progressBar(io: CliIO, label: string): Progress {
  if (!io.isTTY) return { update: () => undefined, done: () => undefined };
  const start = Date.now();
  let last = 0;
  let drawn = false;
  return {
    update(done: number, total: number): void {
      const now = Date.now();
      if (now - last < 100 && done < total) return;
      last = now;
      const frac = total > 0 ? Math.min(1, done / total) : 0;
      const fill = Math.round(frac * WIDTH);
      const secs = Math.max(0.001, (now - start) / 1000);
      const rate = done / secs / (1 << 20);
      io.err(
        `\r${label} [${'#'.repeat(fill)}${' '.repeat(WIDTH - fill)}] ${(frac * 100).toFixed(0).padStart(3)}% ${rate.toFixed(1)} MB/s`,
      );
      drawn = true;
    },
    done(): void {
      if (drawn) io.err('\r\x1b[K');
    },
  };
}
