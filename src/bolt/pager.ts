import { totalmem } from 'node:os';
import { BoltkvError } from '../errors.ts';
import { BoltError } from './errors.ts';
import type { FileIO } from './file.ts';
import { BRANCH_FLAG, corrupt, LEAF_FLAG, Page } from './page.ts';
import { AsyncPageWriter, forEachRun } from './page-writer.ts';

const MiB = 2 ** 20;
export const MIN_DEFAULT_CACHE = 128 * MiB;
export const MAX_DEFAULT_CACHE = 2048 * MiB;

/**
 * The page-cache budget when the caller sets none: an eighth of the memory this process may use,
 * between 128 MiB and 2 GiB. bbolt and LMDB read through an mmap and so get the whole OS page
 * cache; a fixed 128 MiB made every random get on a 244 MiB file miss half the time (a pread,
 * a fresh buffer and a validation per miss). The budget is an upper bound: memory is used only
 * for pages actually read, so a small file costs no more than before.
 */
export function defaultCacheSize(): number {
  let mem = totalmem();
  // Inside a cgroup with a memory limit, that limit is what the process really has.
  const limited = typeof process.constrainedMemory === 'function' ? process.constrainedMemory() : undefined;
  if (typeof limited === 'number' && limited > 0 && limited < mem) mem = limited;
  return Math.min(MAX_DEFAULT_CACHE, Math.max(MIN_DEFAULT_CACHE, Math.floor(mem / 8)));
}

/**
 * Positional page I/O with a bounded cache of parsed pages. Cached pages are immutable: a page id
 * that is reused gets a fresh buffer, so views handed out earlier stay intact.
 */
export class Pager {
  readonly file: FileIO;
  readonly pageSize: number;
  private readonly cacheLimit: number;
  /**
   * Two generations approximate LRU without per-hit bookkeeping: hits in the old generation move
   * to the young one; when the young one fills half the budget, the old one is dropped whole.
   * Pages are found through a table indexed by page id (a Map lookup cost several cache misses
   * per tree level); a page's generation is its `cacheGen`, and each generation lists its ids so
   * the old one can be dropped without scanning the table.
   */
  private table: Array<Page | undefined> = [];
  private epoch = 1;
  private youngIds: number[] = [];
  private oldIds: number[] = [];
  private youngBytes = 0;
  private oldBytes = 0;
  private cached = 0;
  /** Known file length, to grow in chunks rather than on every commit. */
  fileSize: number;

  /** Whether writePages caches copies of the leaves it writes (OpenOptions.cacheWrittenLeaves). */
  private readonly cacheWrittenLeaves: boolean;

  constructor(file: FileIO, pageSize: number, cacheSize: number, cacheWrittenLeaves = true) {
    this.file = file;
    this.pageSize = pageSize;
    this.cacheLimit = cacheSize;
    this.cacheWrittenLeaves = cacheWrittenLeaves;
    this.fileSize = file.size();
  }

  /** Read exactly len bytes at pos; a short read means the file is truncated. */
  readRaw(pos: number, len: number): Buffer {
    // Not pooled: a page's buffer is its own, so views of it never pin unrelated memory.
    const buf = Buffer.allocUnsafeSlow(len);
    const n = this.file.read(buf, pos);
    if (n < len) throw corrupt(`short read at offset ${pos}: file truncated`);
    return buf;
  }

  /**
   * The page at pgid with its overflow pages. `limit` is the high-water mark of the reading
   * transaction: a reference past it can only come from corruption.
   */
  page(pgid: number, limit: number): Page {
    if (!(pgid >= 2 && pgid < limit)) throw corrupt(`page ${pgid} out of bounds (high water ${limit})`);
    const hit = this.table[pgid];
    if (hit !== undefined) {
      if (hit.cacheGen !== this.epoch) {
        // A hit in the old generation moves the page to the young one.
        this.oldBytes -= hit.buf.length;
        this.addYoung(pgid, hit);
      }
      return hit;
    }
    const ps = this.pageSize;
    let buf = this.readRaw(pgid * ps, ps);
    let page = new Page(buf);
    if (page.id !== pgid) throw corrupt(`page ${pgid}: header says id ${page.id}`);
    if (page.overflow > 0) {
      if (pgid + page.overflow >= limit)
        throw corrupt(`page ${pgid}: overflow ${page.overflow} runs past high water ${limit}`);
      const full = Buffer.allocUnsafeSlow((page.overflow + 1) * ps);
      full.set(buf, 0);
      const rest = full.subarray(ps);
      if (this.file.read(rest, (pgid + 1) * ps) < rest.length) throw corrupt(`page ${pgid}: overflow truncated`);
      buf = full;
      page = new Page(buf);
    }
    if (page.isLeaf || page.isBranch) page.validate();
    this.remember(pgid, page);
    return page;
  }

  private remember(pgid: number, page: Page): void {
    this.forget(pgid);
    if (page.buf.length > this.cacheLimit / 2) return;
    const table = this.table;
    while (table.length <= pgid) table.push(undefined);
    table[pgid] = page;
    this.cached++;
    this.addYoung(pgid, page);
  }

  private addYoung(pgid: number, page: Page): void {
    page.cacheGen = this.epoch;
    this.youngIds.push(pgid);
    this.youngBytes += page.buf.length;
    if (this.youngBytes > this.cacheLimit / 2) this.dropOld();
  }

  /** Forget the old generation's pages (those not since moved to the young one); young becomes old. */
  private dropOld(): void {
    const old = this.epoch - 1;
    for (const id of this.oldIds) {
      const p = this.table[id];
      if (p !== undefined && p.cacheGen === old) {
        this.table[id] = undefined;
        this.cached--;
      }
    }
    this.oldIds = this.youngIds;
    this.oldBytes = this.youngBytes;
    this.youngIds = [];
    this.youngBytes = 0;
    this.epoch++;
  }

  forget(pgid: number): void {
    const p = this.table[pgid];
    if (p === undefined) return;
    this.table[pgid] = undefined;
    this.cached--;
    if (p.cacheGen === this.epoch) this.youngBytes -= p.buf.length;
    else this.oldBytes -= p.buf.length;
  }

  /**
   * Write dirty pages, merging contiguous ids into vectored writes. Written tree pages replace
   * whatever the cache held for their ids.
   */
  writePages(pages: Map<number, Uint8Array>): void {
    const ids = [...pages.keys()].sort((a, b) => a - b);
    forEachRun(ids, pages, this.pageSize, (bufs, start) => {
      if (bufs.length === 1) this.file.write(bufs[0]!, start * this.pageSize);
      else this.file.writev(bufs, start * this.pageSize);
    });
    this.cacheWritten(pages);
  }

  /**
   * A writer that issues a commit's page writes off the event loop as spill hands it the pages
   * (see AsyncPageWriter), or null when the file offers no async write. After its `settled()`,
   * call cacheWritten(pages).
   */
  asyncWriter(pages: ReadonlyMap<number, Uint8Array>): AsyncPageWriter | null {
    const file = this.file;
    if (typeof file.writevAsync !== 'function') return null;
    return new AsyncPageWriter(file as FileIO & Required<Pick<FileIO, 'writevAsync'>>, this.pageSize, pages);
  }

  /**
   * After a commit's pages are written: a commit's branch pages (and, unless the commit is large,
   * its leaves) are what the next one reads, so they are cached. A page in a buffer of its own
   * (ownedPageBuffer) is handed over as it is; one carved from a shared chunk, which the next
   * commit reuses, is copied.
   */
  cacheWritten(pages: ReadonlyMap<number, Uint8Array>): void {
    const ps = this.pageSize;
    const leaves = this.cachesWrittenLeaves(pages.size);
    for (const [id, buf] of pages) {
      const flags = buf[8]! | (buf[9]! << 8);
      if (buf.length === ps && (flags === BRANCH_FLAG || (leaves && flags === LEAF_FLAG))) {
        let own: Buffer;
        if (Buffer.isBuffer(buf) && buf.byteOffset === 0 && buf.buffer.byteLength === ps) own = buf;
        else {
          own = Buffer.allocUnsafeSlow(ps);
          own.set(buf);
        }
        this.remember(id, new Page(own));
      } else this.forget(id);
    }
  }

  /** Whether writePages caches the leaves of a commit that writes `pages` pages. */
  cachesWrittenLeaves(pages: number): boolean {
    return this.cacheWrittenLeaves && pages * this.pageSize <= this.cacheLimit / 8;
  }

  /**
   * A page buffer of its own for a page a commit writes: writePages hands it to the cache without
   * a copy, and the caller must not touch it once written. Not zeroed: the caller writes every
   * byte (the page writers zero what their elements leave). A copy per written page was 8-10 % of
   * a bulk load's samples (the arena's zeroing, the allocation, the copy), and zeroing a fresh
   * page then writing it over touched it twice.
   */
  ownedPageBuffer(): Buffer {
    return Buffer.allocUnsafeSlow(this.pageSize);
  }

  /** Make sure the file covers `bytes`, growing in chunks so commits rarely change its length. */
  grow(bytes: number): void {
    if (bytes <= this.fileSize) return;
    let target: number;
    if (bytes < 1 << 30) {
      target = Math.max(32 << 10, this.fileSize);
      while (target < bytes) target *= 2;
    } else {
      const gb = 1 << 30;
      target = Math.ceil(bytes / gb) * gb;
    }
    this.file.truncate(target);
    this.fileSize = target;
  }

  sync(): void {
    this.file.sync();
  }

  syncAsync(): Promise<void> {
    return this.file.syncAsync();
  }

  clearCache(): void {
    this.table = [];
    this.youngIds = [];
    this.oldIds = [];
    this.youngBytes = 0;
    this.oldBytes = 0;
    this.cached = 0;
    this.epoch++;
  }

  cacheStats(): { pages: number; bytes: number; limit: number } {
    return { pages: this.cached, bytes: this.youngBytes + this.oldBytes, limit: this.cacheLimit };
  }
}

export function ioFailure(op: string, err: unknown): BoltkvError {
  if (err instanceof BoltkvError) return err;
  return new BoltError('ERR_IO', `${op}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
}
