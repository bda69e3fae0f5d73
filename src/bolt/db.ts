import { AsyncLocalStorage } from 'node:async_hooks';
import { Batcher } from './batch.ts';
import { checkCallback, dropQuietly, isThenable } from './callback.ts';
import type { OpenOptions } from './db-open.ts';
import { BoltError } from './errors.ts';
import type { FileIO, FileSystem } from './file.ts';
import { createFreelist, decodeFreelistPage } from './freelist/index.ts';
import { rebuildFreePages } from './freelist-rebuild.ts';
import type { Freelist } from './freelist/freelist.ts';
import { type Meta, PGID_NO_FREELIST } from './meta.ts';
import { nodeFileSystem } from './node-file.ts';
import { FREELIST_FLAG, corrupt } from './page.ts';
import { PageArena } from './page-arena.ts';
import { defaultCacheSize, Pager } from './pager.ts';
import { backupTxToFile, type WriteToOptions } from './backup.ts';
import { defragmentDB, type DefragmentOptions, type DefragmentResult } from './defrag.ts';
import { Tx } from './tx.ts';

export { open, type OpenOptions } from './db-open.ts';

export interface DBStats {
  pageSize: number;
  txid: number;
  /** High-water mark: pages in use by the file's format. */
  pgid: number;
  freePageN: number;
  pendingPageN: number;
  freelistKind: 'hashmap' | 'array';
  openReadTxN: number;
  txN: number;
  writeTxN: number;
  cache: { pages: number; bytes: number; limit: number };
}

/** The write callbacks (updateAsync, and batch through it) the current async context runs inside. */
interface WriteScope {
  readonly db: DB;
  active: boolean;
}
const writeScopes = new AsyncLocalStorage<readonly WriteScope[]>();

/**
 * An open database file. One writer at a time (in this process, enforced here; across processes,
 * by flock) and any number of snapshot readers.
 */
export class DB {
  readonly path: string;
  readonly readOnly: boolean;
  readonly pageSize: number;
  readonly noSync: boolean;
  readonly noFreelistSync: boolean;
  /** @internal */
  private readonly freelistWrite: 'close' | 'commit';
  /** @internal Set while close() writes the freelist. */
  private closing = false;
  /** @internal Replaced only when defragment() swaps in the rewritten file. */
  pager: Pager;
  /** @internal How the file was opened: defragment() opens its new file the same way. */
  readonly fileSystem: FileSystem;
  /** @internal */
  readonly openOptions: Readonly<OpenOptions>;
  /** @internal Files replaced by defragment() that readers still use, with their reader counts. */
  private retired = new Map<Pager, number>();
  /** @internal */
  private meta: Meta;
  /** @internal */
  private freelistImpl: Freelist | null = null;
  /** @internal */
  private readonly freelistKind: 'hashmap' | 'array';
  /** @internal Overflow count of the freelist page the current meta points at. */
  freelistOverflow = 0;
  /** @internal */
  private readers = new Map<number, number>();
  /** @internal */
  private readerCount = 0;
  /** @internal */
  private writer: Tx | null = null;
  /** @internal */
  private writeQueue: Promise<void> = Promise.resolve();
  /** @internal */
  private failure: unknown = null;
  /** @internal */
  private txN = 0;
  /** @internal */
  private writeTxN = 0;
  /** @internal */
  private readonly batcher: Batcher;
  /** @internal Pages the last commit's spill allocated: the size of the next commit's reservation. */
  commitPagesHint = 0;
  /** @internal Of those, the pages spill did not call long-lived: the size of a small commit's run. */
  commitRunPagesHint = 0;
  /** @internal OpenOptions.allocationSlack: free share of the file below which small commits grow it to stay contiguous. */
  readonly allocationSlack: number;
  /** @internal Page images of the current commit, reused by the next. */
  readonly arena = new PageArena();
  /** @internal */
  private isClosed = false;

  /** True once close() has run. */
  get closed(): boolean {
    return this.isClosed;
  }

  /** Use open(). */
  private constructor(path: string, file: FileIO, meta: Meta, options: OpenOptions) {
    this.path = path;
    this.readOnly = options.readOnly ?? false;
    this.pageSize = meta.pageSize;
    this.noSync = options.noSync ?? false;
    this.noFreelistSync = options.noFreelistSync ?? false;
    this.freelistWrite = options.freelistWrite ?? 'close';
    this.freelistKind = options.freelist ?? 'hashmap';
    this.allocationSlack = options.allocationSlack ?? 0;
    this.batcher = new Batcher(options.maxBatchSize ?? 1000, options.maxBatchDelayMs ?? 0, (fn) =>
      this.updateAsync(fn),
    );
    this.pager = new Pager(
      file,
      meta.pageSize,
      options.cacheSize ?? defaultCacheSize(),
      options.cacheWrittenLeaves ?? true,
    );
    this.fileSystem = options.fileSystem ?? nodeFileSystem;
    this.openOptions = { ...options };
    this.meta = meta;
  }

  /** @internal open()'s way in: the file is already opened and locked. */
  static create(path: string, file: FileIO, meta: Meta, options: OpenOptions): DB {
    return new DB(path, file, meta, options);
  }

  /** @internal The freelist, loaded on first use (read-only handles rarely need it). */
  get freelist(): Freelist {
    if (!this.freelistImpl) this.freelistImpl = this.loadFreelist();
    return this.freelistImpl;
  }

  /** @internal */
  private loadFreelist(): Freelist {
    const fl = createFreelist(this.freelistKind);
    const m = this.meta;
    if (m.freelist !== PGID_NO_FREELIST) {
      const head = this.pager.readRaw(m.freelist * this.pageSize, this.pageSize);
      const dv = new DataView(head.buffer, head.byteOffset, head.byteLength);
      const overflow = dv.getUint32(12, true);
      if (dv.getUint16(8, true) !== FREELIST_FLAG) throw corrupt(`page ${m.freelist}: expected freelist page`);
      if (m.freelist + overflow >= m.pgid) throw corrupt(`freelist page ${m.freelist} overflows past high water`);
      const buf =
        overflow === 0 ? head : this.pager.readRaw(m.freelist * this.pageSize, (overflow + 1) * this.pageSize);
      const ids = decodeFreelistPage(buf);
      for (const id of ids) if (id >= m.pgid) throw corrupt(`freelist holds page ${id} beyond high water ${m.pgid}`);
      fl.init(ids);
      this.freelistOverflow = overflow;
    } else {
      // No freelist on disk: every page below the high-water mark that no tree reaches is free.
      fl.init(rebuildFreePages(this.pager.file, this.pageSize, m.pgid, m.root));
    }
    return fl;
  }

  /** Begin a transaction. A writable one fails with ERR_WRITER_BUSY while another writer is open. */
  begin(writable = false): Tx {
    this.checkNotClosed();
    this.txN++;
    if (!writable) {
      const tx = Tx.create(this, false, this.meta);
      this.readers.set(tx.id, (this.readers.get(tx.id) ?? 0) + 1);
      this.readerCount++;
      return tx;
    }
    if (this.readOnly) throw new BoltError('ERR_DATABASE_READ_ONLY', 'database is in read-only mode');
    if (this.writer) throw new BoltError('ERR_WRITER_BUSY', 'another write transaction is open');
    this.checkCanWrite();
    const fl = this.freelist;
    this.releasePending(fl);
    this.arena.reset();
    const tx = Tx.create(this, true, this.meta);
    this.writer = tx;
    this.writeTxN++;
    return tx;
  }

  /** Runs fn in a read-only snapshot; the transaction ends when fn returns (or its promise settles). */
  view<T>(fn: (tx: Tx) => T): T {
    checkCallback(fn, 'view', false);
    const tx = this.begin(false);
    tx.managed = true;
    let result: T;
    try {
      result = fn(tx);
    } catch (err) {
      tx.abort();
      throw err;
    }
    if (isThenable(result)) {
      return Promise.resolve(result).finally(() => tx.abort()) as T;
    }
    tx.abort();
    return result;
  }

  /** Runs fn in the write transaction and commits when it returns; rolls back if it throws. */
  update<T>(fn: (tx: Tx) => T): T {
    checkCallback(fn, 'update', true);
    const tx = this.begin(true);
    tx.managed = true;
    try {
      const result = fn(tx);
      if (isThenable(result)) {
        dropQuietly(result);
        throw new BoltError('ERR_INVALID_OPTION', 'update() callbacks must be synchronous; use updateAsync()');
      }
      tx.internalCommit = true;
      tx.commit();
      return result;
    } catch (err) {
      tx.abort();
      throw err;
    }
  }

  /**
   * Like update, but waits its turn behind other async writers, accepts an async fn, and commits
   * with fdatasync off the event loop. Resolves when the commit is durable.
   */
  updateAsync<T>(fn: (tx: Tx) => T | Promise<T>): Promise<T> {
    try {
      checkCallback(fn, 'updateAsync', false);
      this.checkNotNested('updateAsync');
    } catch (err) {
      return Promise.reject(err);
    }
    const run = async (): Promise<T> => {
      const tx = this.begin(true);
      tx.managed = true;
      const scope: WriteScope = { db: this, active: true };
      try {
        const outer = writeScopes.getStore() ?? [];
        let result: T;
        try {
          result = await writeScopes.run([...outer, scope], () => fn(tx));
        } finally {
          scope.active = false;
        }
        tx.internalCommit = true;
        await tx.commitAsync();
        return result;
      } catch (err) {
        tx.abort();
        throw err;
      }
    };
    const p = this.writeQueue.then(run);
    this.writeQueue = p.then(
      () => undefined,
      () => undefined,
    );
    return p;
  }

  /**
   * Group commit: calls made close together share one transaction and one fsync. fn must be
   * synchronous and may run more than once: if one call throws, the batch is retried without it
   * and the failing call runs alone, so the others still commit.
   */
  batch<T>(fn: (tx: Tx) => T): Promise<T> {
    try {
      checkCallback(fn, 'batch', true);
      this.checkNotClosed();
      this.checkNotNested('batch');
    } catch (err) {
      return Promise.reject(err);
    }
    return this.batcher.add(fn);
  }

  /** Problems bbolt's checker would report; never throws on a corrupt file. */
  check(): string[] {
    this.checkNotClosed();
    const tx = this.begin(false);
    try {
      return tx.check();
    } catch (err) {
      return [`check failed: ${err instanceof Error ? err.message : String(err)}`];
    } finally {
      tx.abort();
    }
  }

  stats(): DBStats {
    this.checkNotClosed();
    const fl = this.freelist;
    return {
      pageSize: this.pageSize,
      txid: this.meta.txid,
      pgid: this.meta.pgid,
      freePageN: fl.freeCount(),
      pendingPageN: fl.pendingCount(),
      freelistKind: fl.kind,
      openReadTxN: this.readerCount,
      txN: this.txN,
      writeTxN: this.writeTxN,
      cache: this.pager.cacheStats(),
    };
  }

  /** Hot backup to a new file at path from a read transaction, while writers go on; see backup.ts. */
  async backup(path: string, options?: WriteToOptions): Promise<number> {
    const tx = this.begin(false);
    try {
      return await backupTxToFile(tx, path, options);
    } finally {
      tx.abort();
    }
  }

  /**
   * Online defragmentation: rewrite the file densely while writers go on, then swap files under a
   * short pause; see defrag.ts.
   */
  defragment(options?: DefragmentOptions): Promise<DefragmentResult> {
    return defragmentDB(this, options);
  }

  /**
   * defragment()'s swap: continue on next's file (already renamed over this path) with its meta and
   * freelist. Open readers finish on the old file, which closes when the last of them ends. Call
   * only while holding the write slot.
   * @internal
   */
  adoptFile(next: DB): void {
    const old = this.pager;
    if (this.readerCount > 0) this.retired.set(old, this.readerCount);
    else closeFile(old, this.readOnly);
    this.readers.clear();
    this.readerCount = 0;
    this.pager = next.pager;
    this.meta = next.meta;
    this.freelistImpl = next.freelistImpl;
    this.freelistOverflow = next.freelistOverflow;
    next.isClosed = true;
  }

  /** fdatasync now (useful after noSync commits). */
  sync(): void {
    this.checkNotClosed();
    this.pager.sync();
  }

  /**
   * Close the file and release the lock. Open read transactions end; an open write transaction
   * is rolled back. Fails with ERR_WRITER_BUSY while an async commit is in flight: await it first.
   */
  close(): void {
    if (this.isClosed) return;
    if (this.writer) {
      const w = this.writer;
      if (w.managed) throw new BoltError('ERR_WRITER_BUSY', 'a commit is in progress; await it before close()');
      w.abort();
    }
    // A failure here leaves a sound file without a freelist (the next open walks the trees); the
    // handle still closes and releases its lock, then reports it.
    let failure: unknown = null;
    try {
      this.writeFreelistAtClose();
    } catch (err) {
      failure = err;
    }
    this.isClosed = true;
    for (const p of this.retired.keys()) closeFile(p, this.readOnly);
    this.retired.clear();
    const file = this.pager.file;
    try {
      if (!this.readOnly) file.unlock();
    } finally {
      file.close();
      this.pager.clearCache();
    }
    if (failure) throw failure;
  }

  // ---- internals for Tx ----

  /** @internal */
  checkNotClosed(): void {
    if (this.closed) throw new BoltError('ERR_CLOSED', 'database not open');
  }

  /**
   * Waiting from inside one of our own write callbacks for a write queued behind it would wait
   * forever (and stall every later write): refuse it.
   * @internal
   */
  private checkNotNested(what: string): void {
    if (writeScopes.getStore()?.some((s) => s.db === this && s.active)) {
      throw new BoltError(
        'ERR_WRITER_BUSY',
        `${what}() called from inside this database's own updateAsync/batch callback: it would wait for itself; use the transaction you were given`,
      );
    }
  }

  /**
   * The free and pending pages of the in-memory freelist, when they describe exactly tx's snapshot
   * (the latest commit, no writer open, freelist loaded): what check() compares against when the
   * meta says "no freelist", as Go's tx.Check uses the live freelist. null otherwise.
   * @internal
   */
  freeSetOf(tx: Tx): number[] | null {
    if (this.freelistImpl === null || this.writer !== null || tx.meta.txid !== this.meta.txid || this.noFreelistSync)
      return null;
    return this.freelistImpl.copyAll();
  }

  /** @internal Whether the commit being prepared writes a freelist page (else the meta says none). */
  writesFreelist(): boolean {
    return !this.noFreelistSync && (this.freelistWrite === 'commit' || this.closing);
  }

  /**
   * At a clean close, one last commit writes the freelist, so the next open reads it instead of
   * walking every tree. Skipped when the file already has one, or after a failed commit.
   * @internal
   */
  private writeFreelistAtClose(): void {
    if (this.readOnly || this.noFreelistSync || this.freelistWrite !== 'close') return;
    if (this.meta.freelist !== PGID_NO_FREELIST || this.failure) return;
    const tx = this.begin(true);
    this.closing = true;
    try {
      tx.internalCommit = true;
      tx.commit();
    } finally {
      this.closing = false;
      tx.abort();
    }
  }

  /** @internal */
  checkCanWrite(): void {
    if (this.failure) {
      throw new BoltError('ERR_IO', 'an earlier commit failed while writing the meta page; reopen the database', {
        cause: this.failure,
      });
    }
  }

  /** @internal */
  poison(err: unknown): void {
    this.failure = err;
  }

  /** @internal */
  installMeta(meta: Meta): void {
    this.meta = { ...meta };
  }

  /** @internal */
  endWriter(tx: Tx): void {
    if (this.writer === tx) this.writer = null;
  }

  /** @internal */
  endReader(tx: Tx): void {
    if (tx.pager !== this.pager) {
      const left = (this.retired.get(tx.pager) ?? 1) - 1;
      if (left > 0) this.retired.set(tx.pager, left);
      else if (this.retired.delete(tx.pager)) closeFile(tx.pager, this.readOnly);
      return;
    }
    const n = this.readers.get(tx.id);
    if (n === undefined) return;
    if (n <= 1) this.readers.delete(tx.id);
    else this.readers.set(tx.id, n - 1);
    this.readerCount--;
  }

  /** @internal Move pending pages that no open reader can still see to free (bbolt's rules). */
  private releasePending(fl: Freelist): void {
    const ids = [...this.readers.keys()].sort((a, b) => a - b);
    let minid = ids.length > 0 ? ids[0]! : Number.MAX_SAFE_INTEGER;
    if (minid > 0) fl.release(minid - 1);
    for (const r of ids) {
      if (r - 1 >= minid) fl.releaseRange(minid, r - 1);
      minid = r + 1;
    }
    fl.releaseRange(minid, Number.MAX_SAFE_INTEGER);
  }
}

/** Release and close a file the DB no longer uses (errors are moot: nothing reads it any more). */
function closeFile(p: Pager, readOnly: boolean): void {
  try {
    if (!readOnly) p.file.unlock();
  } catch {
    // closing releases the lock anyway
  }
  try {
    p.file.close();
  } catch {
    // see above
  }
  p.clearCache();
}
