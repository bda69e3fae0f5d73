import { Bucket } from './bucket.ts';
import { type Bytes } from './bytes.ts';
import { checkTx } from './check.ts';
import { type CopySink, type WriteToOptions, writeTxTo } from './backup.ts';
import type { Cursor, Entry } from './cursor.ts';
import type { DB } from './db.ts';
import { BoltkvError } from '../errors.ts';
import { BoltError, Panic } from './errors.ts';
import { encodeFreelistPage, freelistPageCount } from './freelist/index.ts';
import { encodeMeta, type Meta, PGID_NO_FREELIST } from './meta.ts';
import { corrupt, type Page } from './page.ts';
import type { Pager } from './pager.ts';
import type { AsyncPageWriter } from './page-writer.ts';

function corruptFree(pgid: number, why: string): BoltError {
  return corrupt(`page ${pgid} cannot be freed: ${why}; the file is damaged (db.check() lists how)`);
}

type TxState = 'open' | 'committing' | 'committed' | 'rolledback';

/**
 * Largest commit (pages) placed by lifetime, or grown at the file's end by allocationSlack:
 * batches and loads (many leaves) keep one reservation for all their pages.
 */
const SMALL_COMMIT_PAGES = 16;
/**
 * Free share of the file from which a small commit first asks for one run of all its pages: in the
 * model (bench/alloc-sim.ts) whole runs keep recurring only with about 0.64 of the file free;
 * below that, taking them breaks up the runs that placement by lifetime reuses.
 */
const WHOLE_RUN_FREE_SHARE = 0.6;

/**
 * A transaction: a read-only snapshot, or the single writer. Read transactions stay valid across
 * `await`; end them (rollback, or `using`) or the pages they pin are never reused.
 */
export class Tx implements Disposable {
  readonly db: DB;
  /** @internal The file this transaction reads; a reader keeps it even if defragment() swaps the DB's file. */
  readonly pager: Pager;
  readonly writable: boolean;
  /** @internal This transaction's copy of the meta; the writer updates it as it allocates and commits. */
  readonly meta: Meta;
  /** @internal */
  readonly root: Bucket;
  /** @internal Pages written by this transaction, by id, waiting for commit. */
  readonly dirty = new Map<number, Uint8Array>();
  /** @internal Bumped on every change, so cursors know to re-find their position. */
  mutations = 0;
  /** @internal Set for the transactions of view/update: the callback may not end them itself. */
  managed = false;
  /** @internal */
  private state: TxState = 'open';
  /** @internal */
  private readonly commitHandlers: Array<() => void> = [];

  /** @internal Transactions, buckets and cursors come from the engine, not from `new`. */
  static create(db: DB, writable: boolean, meta: Meta): Tx {
    return new Tx(db, writable, meta);
  }

  private constructor(db: DB, writable: boolean, meta: Meta) {
    this.db = db;
    this.pager = db.pager;
    this.writable = writable;
    this.meta = { ...meta };
    if (writable) this.meta.txid += 1;
    this.root = Bucket.create(this, this.meta.root, this.meta.sequence, null);
  }

  /** The transaction id: the committed txid a reader sees, or the one the writer will commit. */
  get id(): number {
    return this.meta.txid;
  }

  /** Bytes of the database as this transaction sees it (high-water mark × page size). */
  get size(): number {
    return this.meta.pgid * this.db.pageSize;
  }

  get closed(): boolean {
    return this.state === 'committed' || this.state === 'rolledback';
  }

  /** @internal */
  checkOpen(): void {
    if (this.db.closed) throw new BoltError('ERR_CLOSED', 'database not open');
    if (this.state !== 'open') throw new BoltError('ERR_TX_CLOSED', 'tx closed');
  }

  /** @internal */
  checkWritable(): void {
    this.checkOpen();
    if (!this.writable) throw new BoltError('ERR_TX_NOT_WRITABLE', 'tx not writable');
  }

  // ---- buckets at the top level ----

  bucket(name: Bytes): Bucket | undefined {
    // Callers name buckets by string on every operation (a batch calls this once per put): skip
    // the encoding and the lookup in the root for a name already found in this transaction.
    if (typeof name === 'string') {
      const hit = this.bucketsByName?.get(name);
      if (hit !== undefined) {
        this.checkOpen();
        return hit;
      }
      const b = this.root.bucket(name);
      if (b !== undefined) (this.bucketsByName ??= new Map()).set(name, b);
      return b;
    }
    return this.root.bucket(name);
  }
  createBucket(name: Bytes): Bucket {
    this.bucketsByName = null;
    return this.root.createBucket(name);
  }
  createBucketIfNotExists(name: Bytes): Bucket {
    return this.root.createBucketIfNotExists(name);
  }
  deleteBucket(name: Bytes): void {
    this.bucketsByName = null;
    this.root.deleteBucket(name);
  }

  /** @internal Top-level buckets this transaction found by string name (dropped when one is created or deleted). */
  private bucketsByName: Map<string, Bucket> | null = null;
  /** A cursor over the top-level bucket names (values are null). */
  cursor(): Cursor {
    return this.root.cursor();
  }
  /** Calls fn with each top-level bucket's name and the bucket. */
  forEach(fn: (name: Buffer, bucket: Bucket) => void | boolean): void {
    if (typeof fn !== 'function')
      throw new BoltError('ERR_INVALID_ARGUMENT', 'forEach: the callback must be a function');
    // A top-level key that is not a bucket (damage, or a foreign writer) is skipped; check() reports it.
    this.root.forEach((k, v) => (v === null ? fn(k, this.root.bucket(k)!) : undefined));
  }
  entries(): IterableIterator<Entry> {
    return this.root.entries();
  }

  /** @internal */
  private slab = Buffer.alloc(0);
  /** @internal */
  private slabUsed = 0;

  /**
   * A private copy of caller bytes (the caller may reuse its buffer). Small ones are carved out
   * of shared slabs: one allocation per 64 KiB instead of one per key and value.
   * @internal
   */
  own(b: Uint8Array): Buffer {
    const at = this.ownAt(b);
    return this.owned.subarray(at, at + b.length);
  }

  /** @internal The buffer the last ownAt copied into. */
  owned: Buffer = this.slab;

  /**
   * own() without the view: copies b and returns where its bytes start in `owned` (a put held by
   * a leaf keeps the offsets, not a Buffer, until commit).
   * @internal
   */
  ownAt(b: Uint8Array): number {
    const n = b.length;
    if (n > 2048) {
      this.owned = Buffer.from(b);
      return 0;
    }
    if (this.slabUsed + n > this.slab.length) {
      // A one-put transaction needs a few bytes: start at 512 bytes and double up to 64 KiB. The
      // first, small slabs come from Node's shared pool: no ArrayBuffer of their own to create
      // and collect per transaction.
      const size = Math.min(65536, Math.max(512, n, this.slab.length * 2));
      this.slab = size <= 2048 ? Buffer.allocUnsafe(size) : Buffer.allocUnsafeSlow(size);
      this.slabUsed = 0;
    }
    const at = this.slabUsed;
    this.slab.set(b, at);
    this.slabUsed += n;
    this.owned = this.slab;
    return at;
  }

  /**
   * Memory for npages dirty pages, written over in full by the caller (TreeContext): a page's own
   * buffer, or zeroed memory from the DB's arena valid until the next write transaction begins
   * (after this one has written them).
   * @internal
   */
  pageBuffer(npages: number): Uint8Array {
    // A single page the pager will cache gets a buffer of its own, handed to the cache as it is;
    // the rest (overflow runs, leaves of a commit too large to cache) come from the arena.
    const pager = this.pager;
    if (npages === 1 && pager.cachesWrittenLeaves(this.dirty.size + 1)) return pager.ownedPageBuffer();
    return this.db.arena.take(npages * this.db.pageSize);
  }

  /** @internal Runs fn after this transaction commits (not after a rollback). */
  onCommit(fn: () => void): void {
    this.commitHandlers.push(fn);
  }

  /** Problems bbolt's checker would report, for the snapshot this transaction sees. */
  check(): string[] {
    this.checkOpen();
    return checkTx(this);
  }

  /** Stream a consistent copy of this snapshot (a whole bbolt file) into sink; see backup.ts. */
  writeTo(sink: CopySink, options?: WriteToOptions): Promise<number> {
    return writeTxTo(this, sink, options);
  }

  // ---- pages ----

  /** @internal The page size (TreeContext). */
  get pageSize(): number {
    return this.db.pageSize;
  }

  /** @internal A tree page for node.ts's commit-time work (TreeContext). */
  load(pgid: number): Page {
    return this.treePage(pgid);
  }

  /** @internal A page image spill produced, to be written at commit (TreeContext). */
  write(pgid: number, buf: Uint8Array): void {
    const w = this.pageWriter;
    if (w !== null) {
      // Its write may already be in flight: a page handed over twice could land in either order.
      if (w.has(pgid)) throw new Panic(`page ${pgid} written twice in one commit`);
      this.dirty.set(pgid, buf);
      w.add(pgid);
      return;
    }
    this.dirty.set(pgid, buf);
  }

  /** @internal Set during an async commit: pages go to the disk as spill hands them over. */
  private pageWriter: AsyncPageWriter | null = null;

  /** @internal A branch or leaf page visible to this transaction. */
  treePage(pgid: number): Page {
    const page = this.pager.page(pgid, this.meta.pgid);
    if (!page.isLeaf && !page.isBranch)
      throw corrupt(`page ${pgid}: expected a branch or leaf page, found flags ${page.flags}`);
    return page;
  }

  /** @internal */
  allocate(n: number, longLived = false): number {
    this.allocatedPages += n;
    if (longLived) this.longLivedPages += n;
    const id = this.growAtEnd ? 0 : this.db.freelist.allocate(this.meta.txid, n, longLived && this.placeApart);
    if (id !== 0) return id;
    const start = this.meta.pgid;
    this.meta.pgid += n;
    return start;
  }

  /**
   * Free a page this transaction's snapshot used. Freeing a page that is already free or pending,
   * or one this transaction just wrote, means the file lists a page twice (in a tree and in the
   * freelist, or in two trees): that is damage check() reports, so it is a corruption error, not a
   * broken invariant of ours.
   * @internal
   */
  free(pgid: number, overflow: number): void {
    if (this.dirty.has(pgid))
      throw corruptFree(pgid, 'it was reused in this transaction (listed as free while in use)');
    try {
      this.db.freelist.free(this.meta.txid, pgid, overflow);
    } catch (err) {
      if (err instanceof Panic) throw corruptFree(pgid, err.message);
      throw err;
    }
    this.freedPages.push(pgid);
  }

  /** @internal Spill allocates at the file's end, not from the freelist (allocationSlack). */
  private growAtEnd = false;
  /** @internal A small commit: long-lived pages go into holes apart from its run (prepareCommit). */
  private placeApart = false;
  /** @internal Pages handed to this transaction by allocate(), for the next commit's reservation. */
  private allocatedPages = 0;
  /** @internal Of those, the pages spill said are long-lived. */
  private longLivedPages = 0;
  /** @internal First ids of the runs this transaction freed (the cache keys a run by its first page), dropped from the page cache once it commits. */
  private readonly freedPages: number[] = [];

  // ---- ending ----

  commit(): void {
    this.beginCommit();
    try {
      this.prepareCommit();
      this.writeData(false);
      this.writeMeta(false);
    } catch (err) {
      this.failCommit(err);
    }
    this.finishCommit();
  }

  /** Commit with fdatasync off the event loop; resolves once the commit is durable. */
  async commitAsync(): Promise<void> {
    this.beginCommit();
    try {
      this.pageWriter = this.db.pager.asyncWriter(this.dirty);
      try {
        this.prepareCommit();
        await this.writeDataAsync();
      } catch (err) {
        // No page buffer may be reused (or the commit abandoned) while a write from it is in flight.
        await this.pageWriter?.settled().catch(() => undefined);
        throw err;
      } finally {
        this.pageWriter = null;
      }
      await this.writeMetaAsync();
    } catch (err) {
      this.failCommit(err);
    }
    this.finishCommit();
  }

  rollback(): void {
    if (this.managed)
      throw new BoltError(
        'ERR_TX_MANAGED',
        'managed tx rollback not allowed: return or throw from the callback instead',
      );
    if (this.db.closed && this.state === 'open') {
      this.state = 'rolledback';
      return;
    }
    this.checkOpen();
    this.abort();
  }

  [Symbol.dispose](): void {
    if (this.state === 'open') this.abort();
  }

  /** @internal End the transaction without committing, whatever its state. */
  abort(): void {
    if (this.state === 'committed' || this.state === 'rolledback') return;
    this.state = 'rolledback';
    if (this.writable) {
      this.db.freelist.rollback(this.meta.txid);
      this.db.endWriter(this);
    } else {
      this.db.endReader(this);
    }
  }

  /** @internal Checks, before anything changes, that this caller may commit now. */
  private beginCommit(): void {
    if (this.managed && !this.internalCommit) {
      throw new BoltError(
        'ERR_TX_MANAGED',
        'managed tx commit not allowed: update/updateAsync/batch commit when the callback returns',
      );
    }
    this.checkWritable();
    this.db.checkCanWrite();
    this.state = 'committing';
  }

  /** @internal Set by DB.update/updateAsync/batch, which commit on the callback's behalf. */
  internalCommit = false;

  /** @internal */
  private prepareCommit(): void {
    const db = this.db;
    this.root.rebalance();
    // Reserve one run for the pages spill is about to allocate (sized by the previous commit,
    // with an eighth of slack for large ones), so they are contiguous: the commit then writes them
    // with one vectored write into one region of the disk instead of a pwrite per scattered page.
    // What spill does not use goes back at once; what it needs beyond the run comes from further
    // runs (hashmap freelist) or page by page as before. No slack for small commits: a one-put
    // commit needs exactly as many pages as the last, and runs of that length are the common ones.
    const fl = db.freelist;
    const hint = db.commitPagesHint;
    const txid = this.meta.txid;
    const small = hint <= SMALL_COMMIT_PAGES;
    if (hint > 1 && small && db.allocationSlack > 0 && fl.freeCount() < db.allocationSlack * this.meta.pgid) {
      // With allocationSlack, a small commit that finds no free run of its whole size goes to the
      // file's end in one piece while free pages are under that share of the file (a bounded
      // growth: see OpenOptions.allocationSlack and bench/alloc-sim.ts for the steady state).
      const want = hint + (hint >> 3);
      this.growAtEnd = fl.reserve(txid, want, want) === 0;
    } else if (hint >= 1 && small) {
      // A small commit's pages differ in lifetime: its leaf lives until that leaf is written again
      // (tens of thousands of one-put commits in a large tree), the branches above it and the root
      // bucket's leaf for one to a few hundred. With room to spare (a share of the file free that
      // lets whole runs recur) the commit first asks for one run of all its pages. Otherwise the
      // long-lived pages go into holes of their own (best fit takes single free pages first) and
      // the rest are reserved as one run, whole or not at all: such a run is freed nearly whole
      // within a few commits and reused whole, so a one-put commit writes two extents in the
      // steady state without growing the file (bench/alloc-sim.ts).
      const want = hint + (hint >> 3);
      const roomy = fl.freeCount() >= WHOLE_RUN_FREE_SHARE * this.meta.pgid;
      if (!(hint > 1 && roomy && fl.reserve(txid, want, want) !== 0)) {
        this.placeApart = true;
        const run = db.commitRunPagesHint;
        if (run > 1) fl.reserve(txid, run, run);
      }
    } else if (hint > 1) fl.reserve(txid, hint + (hint >> 3));
    try {
      this.allocatedPages = 0;
      this.longLivedPages = 0;
      this.root.spill();
    } finally {
      this.growAtEnd = false;
      this.placeApart = false;
      fl.endReservation();
    }
    db.commitPagesHint = this.allocatedPages;
    db.commitRunPagesHint = this.allocatedPages - this.longLivedPages;
    this.meta.root = this.root.rootPgid;
    const ps = db.pageSize;
    if (this.meta.freelist !== PGID_NO_FREELIST) {
      this.free(this.meta.freelist, db.freelistOverflow);
    }
    if (!db.writesFreelist()) {
      this.meta.freelist = PGID_NO_FREELIST;
    } else {
      // Allocating the freelist's own pages can only shrink the free set, so size it first.
      const n = freelistPageCount(db.freelist.count(), ps);
      const pgid = this.allocate(n);
      const image = encodeFreelistPage(pgid, db.freelist.copyAll(), ps);
      const buf = image.length === n * ps ? image : new Uint8Array(n * ps);
      if (buf !== image) buf.set(image);
      new DataView(buf.buffer, buf.byteOffset).setUint32(12, n - 1, true);
      this.dirty.set(pgid, buf);
      this.meta.freelist = pgid;
      this.newFreelistOverflow = n - 1;
    }
    db.pager.grow(this.meta.pgid * ps);
  }

  /** @internal */
  private newFreelistOverflow = 0;
  /** @internal Set once the meta write began: a failure after it leaves the file's state unknown. */
  private metaTouched = false;

  /** @internal */
  private writeData(_async: boolean): void {
    this.db.pager.writePages(this.dirty);
    if (!this.db.noSync) this.db.pager.sync();
  }

  /** @internal */
  private async writeDataAsync(): Promise<void> {
    const w = this.pageWriter;
    if (w !== null) {
      w.flush();
      await w.settled();
      this.db.pager.cacheWritten(this.dirty);
    } else this.db.pager.writePages(this.dirty);
    if (!this.db.noSync) await this.db.pager.syncAsync();
  }

  /** @internal */
  private metaImage(): Uint8Array {
    const buf = this.db.arena.take(this.db.pageSize);
    encodeMeta(buf, this.meta.txid % 2, this.meta);
    return buf;
  }

  /** @internal */
  private writeMeta(_async: boolean): void {
    this.metaTouched = true;
    this.db.pager.file.write(this.metaImage(), (this.meta.txid % 2) * this.db.pageSize);
    if (!this.db.noSync) this.db.pager.sync();
  }

  /** @internal */
  private async writeMetaAsync(): Promise<void> {
    this.metaTouched = true;
    this.db.pager.file.write(this.metaImage(), (this.meta.txid % 2) * this.db.pageSize);
    if (!this.db.noSync) await this.db.pager.syncAsync();
  }

  /** @internal */
  private failCommit(err: unknown): never {
    this.state = 'open';
    this.managed = false;
    // Once the meta page may have reached the disk, reusing this commit's pages could corrupt a
    // tree that a crash would bring back: refuse further writes until the file is reopened.
    if (this.metaTouched) this.db.poison(err);
    this.abort();
    if (err instanceof BoltkvError) throw err;
    throw new BoltError('ERR_IO', `commit failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }

  /** @internal */
  private finishCommit(): void {
    this.state = 'committed';
    // Freed pages are read again only by older readers, if at all; reused ids are re-cached when
    // written. Dropping them keeps the cache to pages the current tree can reach.
    const pager = this.pager;
    for (const pgid of this.freedPages) pager.forget(pgid);
    this.db.freelistOverflow = this.newFreelistOverflow;
    this.db.installMeta(this.meta);
    this.db.endWriter(this);
    for (const fn of this.commitHandlers) fn();
  }
}
