/**
 * Memory for the page images a commit writes, kept for the next commit. A fresh zeroed 1 MiB
 * chunk per transaction cost a small commit about a fifth of its CPU (allocation, zeroing and
 * the collector); here a commit carves zeroed runs out of chunks the previous commits used, and
 * only a commit larger than any before allocates. Buffers handed out are valid until the next
 * `reset()`, which the DB calls when a write transaction begins: nothing may keep them past the
 * commit (the pager caches copies, never these).
 */
export class PageArena {
  private readonly chunks: Uint8Array[] = [];
  /** Per chunk, the end of the bytes handed out since it was allocated: below it, re-zero on reuse. */
  private readonly touched: number[] = [];
  private chunk = 0;
  private used = 0;

  constructor(
    /** Chunk bytes kept across commits; a larger commit allocates more and drops the excess. */
    private readonly retainBytes = 4 << 20,
    private readonly maxChunk = 1 << 20,
  ) {}

  /** Start over: every buffer handed out since the last reset is free for reuse. */
  reset(): void {
    let kept = 0;
    let n = 0;
    while (n < this.chunks.length && kept + this.chunks[n]!.length <= this.retainBytes)
      kept += this.chunks[n++]!.length;
    this.chunks.length = n;
    this.touched.length = n;
    this.chunk = 0;
    this.used = 0;
  }

  /** `bytes` of zeroed memory. Runs above a quarter chunk get their own allocation. */
  take(bytes: number): Uint8Array {
    if (bytes > this.maxChunk >> 2) return new Uint8Array(bytes);
    for (;;) {
      const c = this.chunks[this.chunk];
      if (c === undefined) {
        // Start small (a one-put commit writes a handful of pages) and double up to maxChunk.
        const last = this.chunks[this.chunks.length - 1]?.length ?? 0;
        this.chunks.push(new Uint8Array(Math.min(this.maxChunk, Math.max(bytes, last * 2, 32 << 10))));
        this.touched.push(0);
        continue;
      }
      if (this.used + bytes > c.length) {
        this.chunk++;
        this.used = 0;
        continue;
      }
      const start = this.used;
      const end = start + bytes;
      const t = this.touched[this.chunk]!;
      if (start < t) c.fill(0, start, Math.min(end, t));
      if (end > t) this.touched[this.chunk] = end;
      this.used = end;
      return c.subarray(start, end);
    }
  }
}
