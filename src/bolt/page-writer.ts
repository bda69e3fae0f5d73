import type { FileIO } from './file.ts';

/** Bytes per write call; runs of contiguous pages are grouped up to this size. */
export const MAX_WRITEV_BYTES = 8 << 20;
export const MAX_WRITEV_BUFFERS = 1024;

/**
 * Calls `fn` once per run of contiguous pages among `ids` (sorted ascending, each a key of
 * `pages`), with the run's buffers and its first page id. A buffer may span several pages (an
 * overflow run); runs are cut at MAX_WRITEV_BYTES / MAX_WRITEV_BUFFERS.
 */
export function forEachRun(
  ids: readonly number[],
  pages: ReadonlyMap<number, Uint8Array>,
  pageSize: number,
  fn: (bufs: Uint8Array[], start: number) => void,
): void {
  let i = 0;
  while (i < ids.length) {
    const start = ids[i]!;
    const bufs: Uint8Array[] = [];
    let next = start;
    let bytes = 0;
    while (i < ids.length && ids[i] === next && bytes < MAX_WRITEV_BYTES && bufs.length < MAX_WRITEV_BUFFERS) {
      const buf = pages.get(ids[i]!)!;
      bufs.push(buf);
      bytes += buf.length;
      next = ids[i]! + buf.length / pageSize;
      i++;
      // Skip ids covered by this buffer's overflow (they are not separate entries, but be safe).
      while (i < ids.length && ids[i]! < next) i++;
    }
    fn(bufs, start);
  }
}

/** Pages gathered before their writes are issued: enough to find contiguous runs among them. */
const CHUNK_PAGES = 64;

/**
 * The data-page writes of an async commit (db.batch, updateAsync), issued to the thread pool while
 * spill builds the next pages instead of one blocking write per run after it: the kernel's part of
 * the writes (a fifth of a batch's samples) overlaps the commit's CPU. Pages are gathered in chunks,
 * sorted, and written as vectored runs. A page must not change once added (spill writes each page
 * whole, then hands it over), and the caller must await `settled()` before the fdatasync and before
 * the buffers can be reused (the arena's, at the next write transaction).
 * @internal
 */
export class AsyncPageWriter {
  private readonly inFlight: Promise<void>[] = [];
  private failure: unknown = null;
  private failed = false;
  private readonly chunk: number[] = [];
  /** Pages handed over, by id (the commit's dirty map). */
  private readonly added = new Set<number>();

  constructor(
    private readonly file: FileIO & Required<Pick<FileIO, 'writevAsync'>>,
    private readonly pageSize: number,
    private readonly pages: ReadonlyMap<number, Uint8Array>,
  ) {}

  /** Whether pgid was handed over already (its write may be in flight: it must not change). */
  has(pgid: number): boolean {
    return this.added.has(pgid);
  }

  /** Queue the page at pgid (already in the pages map); writes go out once a chunk is full. */
  add(pgid: number): void {
    this.added.add(pgid);
    this.chunk.push(pgid);
    if (this.chunk.length >= CHUNK_PAGES) this.issue();
  }

  /** Issue every page of the map not handed over yet (e.g. the freelist page), then the rest of the chunk. */
  flush(): void {
    for (const pgid of this.pages.keys()) if (!this.added.has(pgid)) this.add(pgid);
    this.issue();
  }

  private issue(): void {
    if (this.chunk.length === 0) return;
    const ids = this.chunk.sort((a, b) => a - b);
    // A failed write ends the commit: nothing more is issued, and settled() reports the failure.
    if (!this.failed)
      forEachRun(ids, this.pages, this.pageSize, (bufs, start) => {
        let p: Promise<void>;
        try {
          p = this.file.writevAsync(bufs, start * this.pageSize);
        } catch (err) {
          p = Promise.reject(err);
        }
        this.inFlight.push(
          p.catch((err: unknown) => {
            if (!this.failed) {
              this.failed = true;
              this.failure = err;
            }
          }),
        );
      });
    this.chunk.length = 0;
  }

  /** Resolves once every issued write has finished; rejects with the first failure, after all settled. */
  async settled(): Promise<void> {
    await Promise.all(this.inFlight);
    this.inFlight.length = 0;
    if (this.failed) throw this.failure;
  }
}
