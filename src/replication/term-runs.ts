/**
 * The terms of the raft log as runs: (first index, term) pairs, one per change of term. Terms
 * change only at elections, so a log of millions of entries has a handful of runs; raft's term(i)
 * is answered from them without touching an entry, and a restart reads them instead of the log.
 * A run covers its first index up to the next run's first index (the last run up to the log's
 * last index); the first run may start before the live log (compacted entries).
 */
export interface TermRun {
  readonly start: number;
  readonly term: number;
}

export class TermRuns {
  private runs: TermRun[];

  constructor(runs: readonly TermRun[] = []) {
    this.runs = [...runs];
  }

  /** A copy of the runs (later changes do not show through it). */
  list(): TermRun[] {
    return [...this.runs];
  }

  /** Term of index i, or undefined when no run starts at or before i. */
  termAt(i: number): number | undefined {
    const r = this.runs;
    const n = r.length;
    if (n === 0) return undefined;
    if (r[n - 1]!.start <= i) return r[n - 1]!.term;
    let lo = 0;
    let hi = n - 1; // r[hi].start > i
    if (r[0]!.start > i) return undefined;
    while (hi - lo > 1) {
      const mid = (lo + hi) >>> 1;
      if (r[mid]!.start <= i) lo = mid;
      else hi = mid;
    }
    return r[lo]!.term;
  }

  /** Forgets every index from i on (a replaced suffix). */
  truncateFrom(i: number): void {
    let n = this.runs.length;
    while (n > 0 && this.runs[n - 1]!.start >= i) n--;
    if (n < this.runs.length) this.runs = this.runs.slice(0, n);
  }

  /** Records that index i (the next after the current end) has this term. */
  push(i: number, term: number): void {
    const lastRun = this.runs[this.runs.length - 1];
    if (lastRun === undefined || lastRun.term !== term) this.runs.push({ start: i, term });
  }

  /** Drops the runs that cover nothing at or after `first`. */
  dropBefore(first: number): void {
    let k = 0;
    while (k + 1 < this.runs.length && this.runs[k + 1]!.start <= first) k++;
    if (k > 0) this.runs = this.runs.slice(k);
  }

  clear(): void {
    this.runs = [];
  }

  /** What changed from `before` to now: starts to delete and runs to (re)write. */
  diffFrom(before: readonly TermRun[]): { deletes: number[]; puts: TermRun[] } {
    const now = new Map(this.runs.map((r) => [r.start, r.term]));
    const was = new Map(before.map((r) => [r.start, r.term]));
    const deletes = before.filter((r) => !now.has(r.start)).map((r) => r.start);
    const puts = this.runs.filter((r) => was.get(r.start) !== r.term);
    return { deletes, puts };
  }
}
