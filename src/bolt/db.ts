import { AsyncLocalStorage } from 'node:async_hooks';
import { BoltError } from './errors.ts';
import type { FileIO, FileSystem } from './file.ts';
import { createFreelist, decodeFreelistPage } from './freelist/index.ts';
import type { Freelist } from './freelist/freelist.ts';
import { readMetaSlot, encodeMeta, impossiblePageSize, type Meta, type MetaSlot, PGID_NO_FREELIST } from './meta.ts';
import { nodeFileSystem } from './node-file.ts';
import { FREELIST_FLAG, corrupt, PAGE_HEADER_SIZE, writePageHeader, LEAF_FLAG } from './page.ts';
import { defaultCacheSize, Pager } from './pager.ts';
import { reachablePages } from './check.ts';
import { backupTxToFile, type WriteToOptions } from './backup.ts';
import { defragmentDB, type DefragmentOptions, type DefragmentResult } from './defrag.ts';
import { Tx } from './tx.ts';

export interface OpenOptions {
  /** Open read-only with a shared lock; many processes may do so at once. */
  readOnly?: boolean;
  /** How long to wait for the file lock before failing with ERR_LOCK_TIMEOUT. 0: one attempt. */
  lockTimeoutMs?: number;
  /** Page size for a new file (power of two, 1024..65536). Existing files keep theirs. */
  pageSize?: number;
  /** Skip fdatasync: fast, and a crash may lose or corrupt recent commits. For tests and bulk loads. */
  noSync?: boolean;
  /** Accepted for bbolt parity; boltkv never syncs separately when the file grows. */
  noGrowSync?: boolean;
  /** Never write the freelist (bbolt's NoFreelistSync); every open rebuilds it by walking the trees. */
  noFreelistSync?: boolean;
  /**
   * When the freelist is written (unless noFreelistSync): 'close' (the default) writes it once, at a
   * clean close, so a commit costs the same however many pages are free; after a crash the next
   * open rebuilds it by walking the trees. 'commit' writes it with every commit, as Go bbolt does.
   */
  freelistWrite?: 'close' | 'commit';
  freelist?: 'hashmap' | 'array';
  /** Bytes of parsed pages kept in memory. */
  cacheSize?: number;
  /** Grow a new or small file to at least this many bytes up front. */
  initialSize?: number;
  /** Mode for a newly created file. */
  fileMode?: number;
  /** Group commit (db.batch): most calls in one transaction, and how long to wait for more. */
  maxBatchSize?: number;
  maxBatchDelayMs?: number;
  /** The file layer; tests inject faults here. */
  fileSystem?: FileSystem;
}

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

const DEFAULT_PAGE_SIZE = 4096;

type BatchCall = { fn: (tx: Tx) => unknown; resolve: (v: unknown) => void; reject: (e: unknown) => void };

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return (typeof v === 'object' || typeof v === 'function') && v !== null && typeof (v as { then?: unknown }).then === 'function';
}

/** A promise we refuse: observe its settling so a later rejection cannot crash the process. */
function dropQuietly(v: PromiseLike<unknown>): void {
  Promise.resolve(v).catch(() => {});
}

/** Runs a batch callback, refusing (and quietly dropping) a promise it returns. */
function callBatchFn(fn: (tx: Tx) => unknown, tx: Tx): unknown {
  const r = fn(tx);
  if (isThenable(r)) {
    dropQuietly(r);
    throw new BoltError('ERR_INVALID_OPTION', 'batch() callbacks must be synchronous');
  }
  return r;
}

const AsyncFunction = (async () => {}).constructor;

function checkCallback(fn: unknown, what: string, sync: boolean): void {
  if (typeof fn !== 'function') {
    throw new BoltError('ERR_INVALID_ARGUMENT', `${what}: the callback must be a function, got ${fn === null ? 'null' : typeof fn}`);
  }
  if (sync && fn instanceof AsyncFunction) {
    throw new BoltError('ERR_INVALID_OPTION', `${what}: the callback must be synchronous; use updateAsync() for async work`);
  }
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
  private batchCalls: BatchCall[] = [];
  /** @internal */
  private batchTimer: NodeJS.Immediate | NodeJS.Timeout | null = null;
  /** @internal */
  private readonly maxBatchSize: number;
  /** @internal */
  private readonly maxBatchDelayMs: number;
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
    this.maxBatchSize = options.maxBatchSize ?? 1000;
    this.maxBatchDelayMs = options.maxBatchDelayMs ?? 0;
    this.pager = new Pager(file, meta.pageSize, options.cacheSize ?? defaultCacheSize());
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
      const buf = overflow === 0 ? head : this.pager.readRaw(m.freelist * this.pageSize, (overflow + 1) * this.pageSize);
      const ids = decodeFreelistPage(buf);
      for (const id of ids) if (id >= m.pgid) throw corrupt(`freelist holds page ${id} beyond high water ${m.pgid}`);
      fl.init(ids);
      this.freelistOverflow = overflow;
    } else {
      // No freelist on disk: every page below the high-water mark that no tree reaches is free.
      const tx = Tx.create(this, false, m);
      const reached = reachablePages(tx);
      const free: number[] = [];
      for (let id = 2; id < m.pgid; id++) if (!reached.has(id)) free.push(id);
      fl.init(free);
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
    return new Promise<T>((resolve, reject) => {
      checkCallback(fn, 'batch', true);
      this.checkNotClosed();
      this.checkNotNested('batch');
      this.batchCalls.push({ fn, resolve: resolve as (v: unknown) => void, reject });
      if (this.batchCalls.length >= this.maxBatchSize) this.flushBatch();
      else if (!this.batchTimer) {
        this.batchTimer =
          this.maxBatchDelayMs > 0 ? setTimeout(() => this.flushBatch(), this.maxBatchDelayMs) : setImmediate(() => this.flushBatch());
      }
    });
  }

  /** @internal */
  private flushBatch(): void {
    if (this.batchTimer) {
      clearTimeout(this.batchTimer as NodeJS.Timeout);
      clearImmediate(this.batchTimer as NodeJS.Immediate);
      this.batchTimer = null;
    }
    const calls = this.batchCalls;
    this.batchCalls = [];
    if (calls.length > 0) void this.runBatch(calls);
  }

  /** @internal */
  private async runBatch(calls: BatchCall[]): Promise<void> {
    let pending = calls;
    while (pending.length > 0) {
      let failed = -1;
      let failure: unknown;
      const results: unknown[] = [];
      try {
        await this.updateAsync((tx) => {
          for (let i = 0; i < pending.length; i++) {
            try {
              results.push(callBatchFn(pending[i]!.fn, tx));
            } catch (err) {
              failed = i;
              failure = err;
              throw err;
            }
          }
        });
      } catch (err) {
        if (failed < 0) {
          // The commit itself failed: every call in it failed.
          for (const c of pending) c.reject(err);
          return;
        }
        const bad = pending[failed]!;
        pending = pending.filter((_, i) => i !== failed);
        // Run the failing call alone so its own error (or success) is what its caller sees.
        try {
          bad.resolve(await this.updateAsync((tx) => callBatchFn(bad.fn, tx)));
        } catch (soloErr) {
          bad.reject(soloErr ?? failure);
        }
        continue;
      }
      pending.forEach((c, i) => c.resolve(results[i]));
      return;
    }
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
    if (this.freelistImpl === null || this.writer !== null || tx.meta.txid !== this.meta.txid || this.noFreelistSync) return null;
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

/** Open (creating if needed) the database at path. */
/** Attempts at opening when the file at path keeps being removed or replaced under us. */
const MAX_OPEN_ATTEMPTS = 5;

/**
 * Open (creating if needed) the database at path. A new file is created whole, atomically, before
 * anyone locks it; a file is only read, and only re-initialised when no commit ever reached it,
 * once we hold its lock and have checked it is still the file at path.
 */
export function open(path: string, options: OpenOptions = {}): DB {
  if (typeof path !== 'string' || path.length === 0) {
    throw new BoltError('ERR_INVALID_ARGUMENT', `open: path must be a non-empty string, got ${describe(path)}`);
  }
  validateOptions(options);
  const fsys = options.fileSystem ?? nodeFileSystem;
  const readOnly = options.readOnly ?? false;
  const mode = options.fileMode ?? 0o600;
  for (let attempt = 1; ; attempt++) {
    if (!fsys.exists(path)) {
      if (readOnly) throw new BoltError('ERR_IO', `open ${path}: no such file`);
      fsys.create(path, initImage(options.pageSize ?? DEFAULT_PAGE_SIZE), mode);
    }
    let file: FileIO;
    try {
      file = fsys.open(path, { readOnly, mode });
    } catch (err) {
      // Removed between our check and our open: start over.
      if (attempt < MAX_OPEN_ATTEMPTS && !fsys.exists(path)) continue;
      throw err;
    }
    try {
      lock(file, path, !readOnly, options.lockTimeoutMs ?? 0);
      if (!fsys.isCurrent(path, file)) {
        // We locked a file that was removed or replaced while we waited: its lock guards nothing.
        if (attempt >= MAX_OPEN_ATTEMPTS) throw new BoltError('ERR_IO', `open ${path}: the file keeps being replaced while we lock it`);
        closeQuietly(file);
        continue;
      }
      return openLocked(path, file, options);
    } catch (err) {
      closeQuietly(file);
      throw err;
    }
  }
}

function closeQuietly(file: FileIO): void {
  try {
    file.close();
  } catch {
    // already failing; the first error is the one to report
  }
}

/** Read the metas of a file we hold the lock on; re-initialise a file no commit ever reached. */
function openLocked(path: string, file: FileIO, options: OpenOptions): DB {
  const readOnly = options.readOnly ?? false;
  const attempt = (): DB => {
    const meta = readMeta(file);
    const size = file.size();
    if (size < meta.pgid * meta.pageSize) {
      throw new BoltError('ERR_INVALID_FILE', `invalid database ${path}: file is ${size} bytes, its pages need ${meta.pgid * meta.pageSize}`);
    }
    const db = DB.create(path, file, meta, options);
    if (!readOnly) void db.freelist; // load now so a corrupt freelist fails the open, not a later write
    return db;
  };
  let db: DB;
  try {
    db = attempt();
  } catch (err) {
    const size = file.size();
    const ps = readOnly ? null : neverCompleted(file, size, options.pageSize ?? DEFAULT_PAGE_SIZE);
    if (ps === null) {
      if (size === 0) throw new BoltError('ERR_INVALID_FILE', `invalid database ${path}: empty file`);
      throw err;
    }
    // Nothing was ever committed here (an interrupted creation): start it over, under our lock.
    file.write(initImage(ps), 0);
    if (size > 4 * ps) file.truncate(4 * ps);
    if (!(options.noSync ?? false)) file.sync();
    db = attempt();
  }
  if (!readOnly && options.initialSize) db.pager.grow(options.initialSize);
  return db;
}

const PAGE_SIZES = [1024, 2048, 4096, 8192, 16384, 32768, 65536];
/** Files above this size cannot be a creation that never completed (its image is 4 pages). */
const MAX_INIT_BYTES = 1 << 20;

/**
 * The page size of a file no commit ever reached: every byte is either zero or the byte a new
 * file's image holds there, for some page size (pages past the image read as zeros). Such a file
 * holds nothing anyone wrote, so re-initialising it loses nothing. null for any other file.
 */
function neverCompleted(file: FileIO, size: number, preferred: number): number | null {
  if (size > MAX_INIT_BYTES) return null;
  const buf = new Uint8Array(size);
  if (file.read(buf, 0) < size) return null;
  for (const ps of [preferred, ...PAGE_SIZES.filter((p) => p !== preferred)]) {
    const img = initImage(ps);
    let ok = true;
    for (let i = 0; i < size && ok; i++) {
      const b = buf[i]!;
      ok = b === 0 || (i < img.length && b === img[i]);
    }
    if (ok) return ps;
  }
  return null;
}

const OPTION_NAMES = new Set<string>([
  'readOnly', 'lockTimeoutMs', 'pageSize', 'noSync', 'noGrowSync', 'noFreelistSync', 'freelist', 'cacheSize',
  'initialSize', 'fileMode', 'maxBatchSize', 'maxBatchDelayMs', 'fileSystem', 'freelistWrite',
]);

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  if (typeof v === 'symbol') return 'a symbol';
  if (typeof v === 'function') return 'a function';
  return Array.isArray(v) ? 'an array' : typeof v;
}

function badOption(name: string, want: string, got: unknown): BoltError {
  return new BoltError('ERR_INVALID_OPTION', `option ${name} must be ${want}, got ${describe(got)}`);
}

function validateOptions(o: OpenOptions): void {
  if (o === null || typeof o !== 'object' || Array.isArray(o)) {
    throw new BoltError('ERR_INVALID_OPTION', `options must be an object, got ${describe(o)}`);
  }
  for (const name of Object.keys(o)) {
    if (!OPTION_NAMES.has(name)) throw new BoltError('ERR_INVALID_OPTION', `unknown option ${JSON.stringify(name)}`);
  }
  for (const k of ['readOnly', 'noSync', 'noGrowSync', 'noFreelistSync'] as const) {
    const v = o[k];
    if (v !== undefined && typeof v !== 'boolean') throw badOption(k, 'a boolean', v);
  }
  if (o.pageSize !== undefined) {
    const ps = o.pageSize;
    if (typeof ps !== 'number' || !PAGE_SIZES.includes(ps)) throw badOption('pageSize', 'a power of two between 1024 and 65536', ps);
  }
  if (o.freelistWrite !== undefined && o.freelistWrite !== 'close' && o.freelistWrite !== 'commit') {
    throw badOption('freelistWrite', "'close' or 'commit'", o.freelistWrite);
  }
  if (o.freelist !== undefined && o.freelist !== 'hashmap' && o.freelist !== 'array') {
    throw badOption('freelist', "'hashmap' or 'array'", o.freelist);
  }
  for (const k of ['lockTimeoutMs', 'cacheSize', 'maxBatchDelayMs'] as const) {
    const v = o[k];
    if (v !== undefined && (typeof v !== 'number' || !Number.isFinite(v) || v < 0)) throw badOption(k, 'a non-negative number', v);
  }
  for (const k of ['initialSize', 'maxBatchSize'] as const) {
    const v = o[k];
    if (v !== undefined && (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)) {
      throw badOption(k, 'a non-negative integer below 2^53', v);
    }
  }
  if (o.maxBatchSize === 0) throw badOption('maxBatchSize', 'at least 1', 0);
  if (o.fileMode !== undefined && (typeof o.fileMode !== 'number' || !Number.isInteger(o.fileMode) || o.fileMode < 0 || o.fileMode > 0o7777)) {
    throw badOption('fileMode', 'a file mode (an integer in 0..0o7777)', o.fileMode);
  }
  const fsys = o.fileSystem;
  if (fsys !== undefined) {
    const f = fsys as unknown as Record<string, unknown> | null;
    if (f === null || typeof f !== 'object' || !['open', 'exists', 'create', 'isCurrent'].every((m) => typeof f[m] === 'function')) {
      throw badOption('fileSystem', 'a FileSystem (open, exists, create, isCurrent)', fsys);
    }
  }
}

function lock(file: FileIO, path: string, exclusive: boolean, timeoutMs: number): void {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (file.tryLock(exclusive)) return;
    if (Date.now() >= deadline) {
      throw new BoltError(
        'ERR_LOCK_TIMEOUT',
        `cannot lock ${path}: another handle or process holds it${exclusive ? '' : ' for writing'} (waited ${timeoutMs} ms; raise lockTimeoutMs to wait longer)`,
      );
    }
    sleepSync(Math.min(10, Math.max(1, deadline - Date.now())));
  }
}

/** A new file's image: two metas, an empty freelist page, an empty root leaf. */
function initImage(pageSize: number): Uint8Array {
  const buf = new Uint8Array(pageSize * 4);
  for (let i = 0; i < 2; i++) {
    encodeMeta(buf.subarray(i * pageSize, (i + 1) * pageSize), i, {
      pageSize,
      flags: 0,
      root: 3,
      sequence: 0n,
      freelist: 2,
      pgid: 4,
      txid: i,
    });
  }
  writePageHeader(buf.subarray(2 * pageSize), 2, FREELIST_FLAG, 0, 0);
  writePageHeader(buf.subarray(3 * pageSize), 3, LEAF_FLAG, 0, 0);
  return buf;
}

/**
 * Pick the meta with the higher txid among the verified ones, as bbolt does: a torn meta write fails
 * its checksum and the older meta carries the file. A meta that passes its checksum but cannot be
 * true refuses the file (ERR_INVALID_FILE), whichever meta it is: it is damage, reported rather
 * than skipped (see decodeMeta).
 */
function readMeta(file: FileIO): Meta {
  const first = new Uint8Array(PAGE_HEADER_SIZE + 64);
  const n = file.read(first, 0);
  const slot0 = readMetaSlot(first.subarray(0, n), 0);
  const meta0 = 'meta' in slot0 ? slot0.meta : null;
  // Meta 1 lies one page in: at meta 0's page size if we trust it, else probe each possible size.
  const sizes = meta0 ? [meta0.pageSize] : PAGE_SIZES;
  let meta1: Meta | null = null;
  let err1: BoltError | null = null;
  for (const ps of sizes) {
    const buf = new Uint8Array(PAGE_HEADER_SIZE + 64);
    if (file.read(buf, ps) < buf.length) continue;
    const slot = meta0 ? readMetaSlot(buf, 1) : probe(buf);
    if (slot === null) continue;
    if ('unverified' in slot) {
      err1 ??= slot.unverified;
      continue;
    }
    if (slot.meta.pageSize !== ps) {
      if (meta0) throw impossiblePageSize(1, slot.meta.pageSize, ps);
      continue; // probing: bytes that merely look like a meta at the wrong offset
    }
    meta1 = slot.meta;
    break;
  }
  if (!meta0 && !meta1) {
    const err = 'unverified' in slot0 ? slot0.unverified : err1;
    throw err ?? new BoltError('ERR_INVALID_FILE', 'invalid database');
  }
  if (meta0 && meta1) return meta1.txid > meta0.txid ? meta1 : meta0;
  return (meta0 ?? meta1)!;
}

/** While probing for meta 1, a checksummed page at the wrong offset is not a meta we trust. */
function probe(buf: Uint8Array): MetaSlot | null {
  try {
    return readMetaSlot(buf, 1);
  } catch {
    return null;
  }
}
