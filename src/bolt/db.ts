import { BoltkvError } from '../errors.ts';
import { BoltError } from './errors.ts';
import type { FileIO, FileSystem } from './file.ts';
import { createFreelist, decodeFreelistPage } from './freelist/index.ts';
import type { Freelist } from './freelist/freelist.ts';
import { decodeMeta, encodeMeta, type Meta, PGID_NO_FREELIST, validateMeta } from './meta.ts';
import { nodeFileSystem } from './node-file.ts';
import { FREELIST_FLAG, corrupt, PAGE_HEADER_SIZE, writePageHeader, LEAF_FLAG } from './page.ts';
import { Pager } from './pager.ts';
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
  /** Do not write the freelist at commit; it is rebuilt by a scan on open. Cheaper commits. */
  noFreelistSync?: boolean;
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
const DEFAULT_CACHE = 128 << 20;

type BatchCall = { fn: (tx: Tx) => unknown; resolve: (v: unknown) => void; reject: (e: unknown) => void };

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function';
}

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
  /** Replaced only when defragment() swaps in the rewritten file. */
  pager: Pager;
  /** How the file was opened: defragment() opens its new file the same way. */
  readonly fileSystem: FileSystem;
  readonly openOptions: Readonly<OpenOptions>;
  /** Files replaced by defragment() that readers still use, with their reader counts. */
  private retired = new Map<Pager, number>();
  private meta: Meta;
  private freelistImpl: Freelist | null = null;
  private readonly freelistKind: 'hashmap' | 'array';
  /** Overflow count of the freelist page the current meta points at. */
  freelistOverflow = 0;
  private readers = new Map<number, number>();
  private readerCount = 0;
  private writer: Tx | null = null;
  private writeQueue: Promise<void> = Promise.resolve();
  private failure: unknown = null;
  private txN = 0;
  private writeTxN = 0;
  private batchCalls: BatchCall[] = [];
  private batchTimer: NodeJS.Immediate | NodeJS.Timeout | null = null;
  private readonly maxBatchSize: number;
  private readonly maxBatchDelayMs: number;
  closed = false;

  /** Use open(); the constructor takes an already opened and locked file. */
  constructor(path: string, file: FileIO, meta: Meta, options: OpenOptions) {
    this.path = path;
    this.readOnly = options.readOnly ?? false;
    this.pageSize = meta.pageSize;
    this.noSync = options.noSync ?? false;
    this.noFreelistSync = options.noFreelistSync ?? false;
    this.freelistKind = options.freelist ?? 'hashmap';
    this.maxBatchSize = options.maxBatchSize ?? 1000;
    this.maxBatchDelayMs = options.maxBatchDelayMs ?? 0;
    this.pager = new Pager(file, meta.pageSize, options.cacheSize ?? DEFAULT_CACHE);
    this.fileSystem = options.fileSystem ?? nodeFileSystem;
    this.openOptions = { ...options };
    this.meta = meta;
  }

  /** The freelist, loaded on first use (read-only handles rarely need it). */
  get freelist(): Freelist {
    if (!this.freelistImpl) this.freelistImpl = this.loadFreelist();
    return this.freelistImpl;
  }

  private loadFreelist(): Freelist {
    const fl = createFreelist(this.freelistKind);
    const m = this.meta;
    if (m.freelist !== PGID_NO_FREELIST) {
      const head = this.pager.readRaw(m.freelist * this.pageSize, this.pageSize);
      const dv = new DataView(head.buffer);
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
      const tx = new Tx(this, false, m);
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
      const tx = new Tx(this, false, this.meta);
      this.readers.set(tx.id, (this.readers.get(tx.id) ?? 0) + 1);
      this.readerCount++;
      return tx;
    }
    if (this.readOnly) throw new BoltError('ERR_DATABASE_READ_ONLY', 'database is in read-only mode');
    if (this.writer) throw new BoltError('ERR_WRITER_BUSY', 'another write transaction is open');
    this.checkCanWrite();
    const fl = this.freelist;
    this.releasePending(fl);
    const tx = new Tx(this, true, this.meta);
    this.writer = tx;
    this.writeTxN++;
    return tx;
  }

  /** Runs fn in a read-only snapshot; the transaction ends when fn returns (or its promise settles). */
  view<T>(fn: (tx: Tx) => T): T {
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
    const tx = this.begin(true);
    tx.managed = true;
    try {
      const result = fn(tx);
      if (isThenable(result)) {
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
    const run = async (): Promise<T> => {
      const tx = this.begin(true);
      tx.managed = true;
      try {
        const result = await fn(tx);
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
      this.checkNotClosed();
      this.batchCalls.push({ fn, resolve: resolve as (v: unknown) => void, reject });
      if (this.batchCalls.length >= this.maxBatchSize) this.flushBatch();
      else if (!this.batchTimer) {
        this.batchTimer =
          this.maxBatchDelayMs > 0 ? setTimeout(() => this.flushBatch(), this.maxBatchDelayMs) : setImmediate(() => this.flushBatch());
      }
    });
  }

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
              const r = pending[i]!.fn(tx);
              if (isThenable(r)) throw new BoltError('ERR_INVALID_OPTION', 'batch() callbacks must be synchronous');
              results.push(r);
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
          bad.resolve(await this.updateAsync((tx) => bad.fn(tx)));
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
    next.closed = true;
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
    if (this.closed) return;
    if (this.writer) {
      const w = this.writer;
      if (w.managed) throw new BoltError('ERR_WRITER_BUSY', 'a commit is in progress; await it before close()');
      w.abort();
    }
    this.closed = true;
    for (const p of this.retired.keys()) closeFile(p, this.readOnly);
    this.retired.clear();
    const file = this.pager.file;
    try {
      if (!this.readOnly) file.unlock();
    } finally {
      file.close();
      this.pager.clearCache();
    }
  }

  // ---- internals for Tx ----

  checkNotClosed(): void {
    if (this.closed) throw new BoltError('ERR_DATABASE_CLOSED', 'database not open');
  }

  checkCanWrite(): void {
    if (this.failure) {
      throw new BoltError('ERR_IO', 'an earlier commit failed while writing the meta page; reopen the database', {
        cause: this.failure,
      });
    }
  }

  poison(err: unknown): void {
    this.failure = err;
  }

  installMeta(meta: Meta): void {
    this.meta = { ...meta };
  }

  endWriter(tx: Tx): void {
    if (this.writer === tx) this.writer = null;
  }

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

  /** Move pending pages that no open reader can still see to free (bbolt's rules). */
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
export function open(path: string, options: OpenOptions = {}): DB {
  validateOptions(options);
  const fsys = options.fileSystem ?? nodeFileSystem;
  const readOnly = options.readOnly ?? false;
  if (readOnly && !fsys.exists(path)) throw new BoltError('ERR_IO', `open ${path}: no such file`);
  const file = fsys.open(path, { readOnly, mode: options.fileMode ?? 0o600 });
  try {
    lock(file, !readOnly, options.lockTimeoutMs ?? 0);
    if (file.size() === 0) {
      if (readOnly) throw new BoltError('ERR_INVALID_FILE', 'invalid database: empty file');
      initFile(file, options.pageSize ?? DEFAULT_PAGE_SIZE, options.noSync ?? false);
    }
    const meta = readMeta(file);
    const db = new DB(path, file, meta, options);
    if (db.pager.fileSize < meta.pgid * meta.pageSize) {
      throw new BoltError('ERR_INVALID_FILE', `invalid database: file is ${db.pager.fileSize} bytes, its pages need ${meta.pgid * meta.pageSize}`);
    }
    if (!readOnly) {
      if (options.initialSize) db.pager.grow(options.initialSize);
      void db.freelist; // load now so a corrupt freelist fails the open, not a later write
    }
    return db;
  } catch (err) {
    try {
      file.close();
    } catch {
      // already failing; the first error is the one to report
    }
    throw err;
  }
}

function validateOptions(o: OpenOptions): void {
  if (o === null || typeof o !== 'object') throw new BoltError('ERR_INVALID_OPTION', 'options must be an object');
  if (o.pageSize !== undefined) {
    const ps = o.pageSize;
    if (!Number.isInteger(ps) || ps < 1024 || ps > 65536 || (ps & (ps - 1)) !== 0) {
      throw new BoltError('ERR_INVALID_OPTION', `pageSize must be a power of two between 1024 and 65536, got ${ps}`);
    }
  }
  if (o.freelist !== undefined && o.freelist !== 'hashmap' && o.freelist !== 'array') {
    throw new BoltError('ERR_INVALID_OPTION', `freelist must be 'hashmap' or 'array'`);
  }
  for (const k of ['lockTimeoutMs', 'cacheSize', 'initialSize', 'maxBatchSize', 'maxBatchDelayMs'] as const) {
    const v = o[k];
    if (v !== undefined && (typeof v !== 'number' || !Number.isFinite(v) || v < 0)) {
      throw new BoltError('ERR_INVALID_OPTION', `${k} must be a non-negative number`);
    }
  }
}

function lock(file: FileIO, exclusive: boolean, timeoutMs: number): void {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (file.tryLock(exclusive)) return;
    if (Date.now() >= deadline) {
      throw new BoltError('ERR_LOCK_TIMEOUT', `timeout: could not lock the database file within ${timeoutMs} ms`);
    }
    sleepSync(Math.min(10, Math.max(1, deadline - Date.now())));
  }
}

/** A new file: two metas, an empty freelist page, an empty root leaf; then fdatasync. */
function initFile(file: FileIO, pageSize: number, noSync: boolean): void {
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
  file.write(buf, 0);
  if (!noSync) file.sync();
}

/**
 * Pick the meta with the higher txid among those whose checksum holds, as bbolt does. A torn meta
 * write fails its checksum and falls back to the older meta; a meta that passes its checksum but
 * whose fields contradict each other is damage, reported rather than silently skipped.
 */
function readMeta(file: FileIO): Meta {
  const first = new Uint8Array(4096);
  const n = file.read(first, 0);
  let meta0: Meta | null = null;
  let err0: unknown = null;
  try {
    meta0 = decodeMeta(first.subarray(0, n));
  } catch (err) {
    err0 = err;
  }
  const saneSize = (ps: number): boolean => ps >= 512 && ps <= 65536 && (ps & (ps - 1)) === 0;
  // Page size: from meta 0 if it is sane, else probe where meta 1 could start.
  const sizes =
    meta0 && saneSize(meta0.pageSize) ? [meta0.pageSize] : Array.from({ length: 7 }, (_, i) => 1024 << i);
  let meta1: Meta | null = null;
  let err1: unknown = null;
  for (const ps of sizes) {
    const buf = new Uint8Array(PAGE_HEADER_SIZE + 64);
    if (file.read(buf, ps) < buf.length) continue;
    try {
      const m = decodeMeta(buf);
      if (m.pageSize !== ps) continue;
      meta1 = m;
      break;
    } catch (err) {
      err1 ??= err;
    }
  }
  const candidates = [meta0, meta1].filter((m): m is Meta => m !== null);
  if (candidates.length === 0) {
    const err = err0 ?? err1;
    if (err instanceof BoltkvError) throw err;
    throw new BoltError('ERR_INVALID_FILE', 'invalid database');
  }
  candidates.sort((a, b) => b.txid - a.txid);
  const chosen = candidates[0]!;
  validateMeta(chosen);
  if (meta0 && meta1 && meta0.pageSize !== meta1.pageSize) {
    throw new BoltError('ERR_INVALID_FILE', 'invalid database: the two meta pages disagree on the page size');
  }
  return chosen;
}
