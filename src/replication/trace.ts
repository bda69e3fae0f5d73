/**
 * A put's timeline across processes, for finding where latency goes: with BOLTKV_TRACE=<dir> set,
 * `mark()` records (monotonic ns, event, detail) in memory and the process writes them to
 * `<dir>/trace-<pid>.tsv` when it exits. CLOCK_MONOTONIC is shared by the processes of one
 * machine, so the files of a client and three members merge into one timeline. Unset, `mark` is a
 * constant no-op and callers guard with `tracing` so nothing is built for it.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.env.BOLTKV_TRACE;
export const tracing: boolean = dir !== undefined && dir !== '';
const lines: string[] = [];
const LIMIT = 1_000_000;

export function mark(event: string, detail: string | number = ''): void {
  if (!tracing || lines.length >= LIMIT) return;
  lines.push(`${process.hrtime.bigint()}\t${process.pid}\t${event}\t${detail}`);
}

/** This process's marks so far, as the lines its file will hold (a driver merging timelines before it exits). */
export function ownMarks(): readonly string[] {
  return lines;
}

if (tracing) {
  process.on('exit', () => {
    try {
      writeFileSync(join(dir!, `trace-${process.pid}.tsv`), `${lines.join('\n')}\n`);
    } catch {
      // tracing is a diagnostic: a lost file must not change the exit
    }
  });
}
