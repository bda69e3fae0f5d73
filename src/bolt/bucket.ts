import { type Bytes, bytesKey, checkKey, checkValue, compare, toBytes } from './bytes.ts';
import { Cursor, type Entry } from './cursor.ts';
import { BoltError, invariant } from './errors.ts';
import { freeNode, Node, rebalanceNode, splitIfLarge, type TreeContext } from './node.ts';
import { spillTree } from './spill.ts';
import { inodesSize, writeInodes } from './node-write.ts';
import { BUCKET_HEADER_SIZE, BUCKET_LEAF_FLAG, corrupt, Page, PAGE_HEADER_SIZE, readU64, writeU64 } from './page.ts';
import type { Tx } from './tx.ts';
import { parseRange, type RangeOptions, scan } from './range.ts';
import { ScanEntry, type EntryVisitor } from './scan.ts';

/** Scratch for Page.lowerBound's exact-match answer, so a get allocates nothing per level. */
const exact = { hit: false };

/** bbolt's default: split pages half full, which suits random inserts. */
export const DEFAULT_FILL_PERCENT = 0.5;
const MIN_FILL = 0.1;
const MAX_FILL = 1.0;

/** Counts gathered by Bucket.stats(), as bbolt's BucketStats. */
export interface BucketStats {
  branchPageN: number;
  branchOverflowN: number;
  leafPageN: number;
  leafOverflowN: number;
  keyN: number;
  depth: number;
  branchAlloc: number;
  branchInuse: number;
  leafAlloc: number;
  leafInuse: number;
  bucketN: number;
  inlineBucketN: number;
  inlineBucketInuse: number;
}

/**
 * A bucket: an ordered map of byte keys to values or sub-buckets, stored as its own B+tree (or
 * inline, inside its parent's leaf, while small).
 */
export class Bucket {
  readonly tx: Tx;
  /** @internal Root page id; 0 for an inline bucket. */
  rootPgid: number;
  /** @internal */
  private seq: bigint;
  /** @internal The page image of an inline bucket. */
  private inlinePage: Page | null;
  /** @internal The root node once this transaction has modified the bucket. */
  rootNode: Node | null = null;
  /** @internal Sub-buckets opened in this transaction, by name. */
  private children = new Map<string, Bucket>();
  /** @internal */
  private unbalanced = new Set<Node>();
  /** @internal */
  private seqDirty = false;
  /** Fraction a page is filled to when a node is split at commit (0.1 ... 1.0). */
  fillPercent = DEFAULT_FILL_PERCENT;

  /** @internal Transactions, buckets and cursors come from the engine, not from `new`. */
  static create(tx: Tx, rootPgid: number, sequence: bigint, inlinePage: Page | null): Bucket {
    return new Bucket(tx, rootPgid, sequence, inlinePage);
  }

  private constructor(tx: Tx, rootPgid: number, sequence: bigint, inlinePage: Page | null) {
    this.tx = tx;
    this.rootPgid = rootPgid;
    this.seq = sequence;
    this.inlinePage = inlinePage;
  }

  /** @internal A bucket from the value stored under its name in the parent. */
  static fromValue(tx: Tx, value: Uint8Array): Bucket {
    if (value.length < BUCKET_HEADER_SIZE) throw corrupt('bucket header truncated');
    const dv = new DataView(value.buffer, value.byteOffset, value.byteLength);
    const root = readU64(dv, 0);
    const seq = dv.getBigUint64(8, true);
    if (root !== 0) return new Bucket(tx, root, seq, null);
    const page = new Page(value.subarray(BUCKET_HEADER_SIZE));
    page.validate();
    if (!page.isLeaf) throw corrupt('inline bucket is not a leaf');
    return new Bucket(tx, 0, seq, page);
  }

  get writable(): boolean {
    return this.tx.writable;
  }

  /** The bucket's sequence. The format holds a u64: past 2^53 use sequenceBigInt(). */
  get sequence(): number {
    this.tx.checkOpen();
    if (this.seq > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new BoltError('ERR_VALUE_TOO_LARGE', `sequence ${this.seq} exceeds 2^53; use sequenceBigInt()`);
    }
    return Number(this.seq);
  }

  sequenceBigInt(): bigint {
    this.tx.checkOpen();
    return this.seq;
  }

  /** @internal */
  keyBytes(key: unknown): Uint8Array {
    return toBytes(key, 'key');
  }

  // ---- reading ----

  /** The value under key; undefined if absent or if key names a sub-bucket. */
  get(key: Bytes): Buffer | undefined {
    this.tx.checkOpen();
    // Imported functions cost a getter call each under a CommonJS transform (tsx): skip it for bytes.
    const k = key instanceof Uint8Array ? key : toBytes(key, 'key');
    // A direct descent: the hot read path allocates nothing but the returned view.
    let node = this.rootNode;
    let page = node ? null : this.rootPgid === 0 ? this.inlinePage! : this.tx.treePage(this.rootPgid);
    for (let depth = 0; depth <= 64; depth++) {
      if (node) {
        if (node.leaf) {
          const inode = node.inodes[node.lowerBound(k)];
          if (!inode || compare(inode.key, k) !== 0 || inode.flags & BUCKET_LEAF_FLAG) return undefined;
          return inode.value;
        }
        if (node.inodes.length === 0) return undefined;
        const inode = node.inodes[node.childIndexFor(k)]!;
        if (inode.child) node = inode.child;
        else {
          page = this.tx.treePage(inode.pgid);
          node = null;
        }
        continue;
      }
      const p = page!;
      const n = p.count;
      const i = p.lowerBound(k, exact);
      if (p.isLeaf) {
        return exact.hit ? p.leafValue(i) : undefined;
      }
      if (n === 0) return undefined;
      page = this.tx.treePage(p.child(exact.hit ? i : i > 0 ? i - 1 : 0));
    }
    throw corrupt('tree deeper than 64 levels: a branch page points back up the tree');
  }

  cursor(): Cursor {
    this.tx.checkOpen();
    return Cursor.create(this);
  }

  /** Calls fn for every entry in key order (value null for sub-buckets); stop by returning false. */
  forEach(fn: (key: Buffer, value: Buffer | null) => void | boolean): void {
    if (typeof fn !== 'function')
      throw new BoltError('ERR_INVALID_ARGUMENT', 'forEach: the callback must be a function');
    const c = this.cursor();
    for (let e = c.first(); e; e = c.next()) {
      if (fn(e[0], e[1]) === false) return;
    }
  }

  /**
   * Entries within bounds (gt/gte/lt/lte), forward or reverse, optionally limited and abortable.
   * Lazy: each step moves a cursor, so stop early for free.
   */
  range(options: RangeOptions = {}): Generator<Entry, void, undefined> {
    return scan(this.cursor(), parseRange(options));
  }

  /**
   * Shows `visit` each entry within the bounds (as range(): gt/gte/lt/lte, reverse, limit, signal)
   * without building a view per entry: the visitor gets one reused ScanEntry telling where the key
   * and value lie, and asks for views or copies only of what it keeps. Returning false stops the
   * scan. Returns how many entries were shown. Entries written by the visitor itself are seen or
   * not depending on where they land, as with a cursor.
   */
  scan(options: RangeOptions | undefined, visit: EntryVisitor): number {
    this.tx.checkOpen();
    if (typeof visit !== 'function')
      throw new BoltError('ERR_INVALID_ARGUMENT', 'scan: the visitor must be a function');
    return Cursor.create(this).visit(parseRange(options), ScanEntry.create(), visit);
  }

  *entries(): IterableIterator<Entry> {
    const c = this.cursor();
    for (let e = c.first(); e; e = c.next()) yield e;
  }

  [Symbol.iterator](): IterableIterator<Entry> {
    return this.entries();
  }

  /** The sub-bucket under name, if any. */
  bucket(name: Bytes): Bucket | undefined {
    this.tx.checkOpen();
    const k = toBytes(name, 'bucket name');
    const id = bytesKey(k);
    const cached = this.children.get(id);
    if (cached) return cached;
    const c = Cursor.create(this);
    c.seekRaw(k);
    if (!c.isAt(k) || !(c.flagsHere() & BUCKET_LEAF_FLAG)) return undefined;
    const child = Bucket.fromValue(this.tx, c.valueHere());
    this.children.set(id, child);
    return child;
  }

  // ---- writing ----

  put(key: Bytes, value: Bytes): void {
    this.tx.checkWritable();
    const k = toBytes(key, 'key');
    const v = toBytes(value, 'value');
    checkKey(k);
    checkValue(v);
    const c = Cursor.create(this);
    c.seekRaw(k);
    if (c.isAt(k) && c.flagsHere() & BUCKET_LEAF_FLAG) {
      throw new BoltError('ERR_INCOMPATIBLE_VALUE', 'incompatible value: key is a bucket');
    }
    // Copies of key and value as offsets into the transaction's bytes: a leaf holding the put
    // keeps those, not views (node.ts).
    const tx = this.tx;
    const kpos = tx.ownAt(k);
    const kbuf = tx.owned;
    const vpos = tx.ownAt(v);
    const leaf = c.materialize();
    leaf.putBytes(k, kbuf, kpos, tx.owned, vpos, v.length, 0);
    this.afterPut(leaf);
  }

  /** Delete key; a missing key is not an error. */
  delete(key: Bytes): void {
    this.tx.checkWritable();
    const k = toBytes(key, 'key');
    const c = Cursor.create(this);
    c.seekRaw(k);
    if (!c.isAt(k)) return;
    if (c.flagsHere() & BUCKET_LEAF_FLAG)
      throw new BoltError('ERR_INCOMPATIBLE_VALUE', 'incompatible value: key is a bucket');
    const node = c.materialize();
    node.removeAt(node.lowerBound(k));
    this.noteDelete(node);
    this.tx.mutations++;
  }

  createBucket(name: Bytes): Bucket {
    this.tx.checkWritable();
    const k = toBytes(name, 'bucket name');
    if (k.length === 0) throw new BoltError('ERR_BUCKET_NAME_REQUIRED', 'bucket name required');
    checkKey(k);
    const c = Cursor.create(this);
    c.seekRaw(k);
    if (c.isAt(k)) {
      if (c.flagsHere() & BUCKET_LEAF_FLAG) throw new BoltError('ERR_BUCKET_EXISTS', 'bucket already exists');
      throw new BoltError('ERR_INCOMPATIBLE_VALUE', 'incompatible value: key holds a value');
    }
    // A new bucket starts inline: header (root 0, sequence 0) and an empty leaf page image.
    const value = Buffer.alloc(BUCKET_HEADER_SIZE + PAGE_HEADER_SIZE);
    writeInodes(value.subarray(BUCKET_HEADER_SIZE), 0, true, [], 0);
    const keyCopy = this.tx.own(k);
    this.putRaw(c, keyCopy, value, BUCKET_LEAF_FLAG);
    const child = Bucket.fromValue(this.tx, value);
    child.materializeRoot();
    this.children.set(bytesKey(keyCopy), child);
    return child;
  }

  createBucketIfNotExists(name: Bytes): Bucket {
    this.tx.checkWritable();
    const existing = this.bucket(name);
    if (existing) return existing;
    return this.createBucket(name);
  }

  deleteBucket(name: Bytes): void {
    this.tx.checkWritable();
    const k = toBytes(name, 'bucket name');
    const c = Cursor.create(this);
    c.seekRaw(k);
    if (!c.isAt(k)) throw new BoltError('ERR_BUCKET_NOT_FOUND', 'bucket not found');
    if (!(c.flagsHere() & BUCKET_LEAF_FLAG))
      throw new BoltError('ERR_INCOMPATIBLE_VALUE', 'incompatible value: key holds a value');
    const child = this.bucket(k)!;
    child.freeAll();
    this.children.delete(bytesKey(k));
    const c2 = Cursor.create(this);
    c2.seekRaw(k);
    const node = c2.materialize();
    node.removeAt(node.lowerBound(k));
    this.noteDelete(node);
    this.tx.mutations++;
  }

  /** Increment and return the sequence (bbolt's NextSequence). */
  nextSequence(): number {
    this.tx.checkWritable();
    if (this.seq >= BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new BoltError('ERR_VALUE_TOO_LARGE', 'sequence would exceed 2^53; use setSequence with a bigint');
    }
    this.setSequenceRaw(this.seq + 1n);
    return Number(this.seq);
  }

  setSequence(n: number | bigint): void {
    this.tx.checkWritable();
    const v = typeof n === 'bigint' ? n : Number.isSafeInteger(n) ? BigInt(n) : -1n;
    if (v < 0n || v > 0xffffffffffffffffn) {
      throw new BoltError('ERR_INVALID_OPTION', 'sequence must be an integer in 0 .. 2^64-1');
    }
    this.setSequenceRaw(v);
  }

  /** @internal */
  private setSequenceRaw(n: bigint): void {
    // Materialize the root so the bucket is rewritten (with its new header) at commit.
    this.materializeRoot();
    this.seq = n;
    this.seqDirty = true;
  }

  stats(): BucketStats {
    this.tx.checkOpen();
    const s: BucketStats = {
      branchPageN: 0,
      branchOverflowN: 0,
      leafPageN: 0,
      leafOverflowN: 0,
      keyN: 0,
      depth: 0,
      branchAlloc: 0,
      branchInuse: 0,
      leafAlloc: 0,
      leafInuse: 0,
      bucketN: 1,
      inlineBucketN: 0,
      inlineBucketInuse: 0,
    };
    this.collectStats(s);
    return s;
  }

  /** @internal */
  private collectStats(s: BucketStats): void {
    const ps = this.tx.db.pageSize;
    if (this.rootPgid === 0 && !this.rootNode) {
      s.inlineBucketN++;
      s.inlineBucketInuse += this.inlinePage!.buf.length;
    }
    const visit = (page: Page, depth: number): void => {
      if (depth > 64) throw corrupt('tree deeper than 64 levels');
      s.depth = Math.max(s.depth, depth);
      let used = PAGE_HEADER_SIZE;
      if (page.isLeaf) {
        for (let i = 0; i < page.count; i++) {
          used += 16 + page.key(i).length + page.value(i).length;
          if (page.elementFlags(i) & BUCKET_LEAF_FLAG) {
            s.bucketN++;
            Bucket.fromValue(this.tx, page.value(i)).collectStatsInto(s);
          } else s.keyN++;
        }
        if (this.rootPgid !== 0) {
          s.leafPageN++;
          s.leafOverflowN += page.overflow;
          s.leafAlloc += (page.overflow + 1) * ps;
          s.leafInuse += used;
        }
      } else {
        for (let i = 0; i < page.count; i++) used += 16 + page.key(i).length;
        s.branchPageN++;
        s.branchOverflowN += page.overflow;
        s.branchAlloc += (page.overflow + 1) * ps;
        s.branchInuse += used;
        for (let i = 0; i < page.count; i++) visit(this.tx.treePage(page.child(i)), depth + 1);
      }
    };
    visit(this.rootPgid === 0 ? this.inlinePage! : this.tx.treePage(this.rootPgid), 1);
  }

  /** @internal */
  private collectStatsInto(s: BucketStats): void {
    this.collectStats(s);
  }

  // ---- internals for Cursor and Tx ----

  /** @internal Where a cursor starts: the root node if materialized, else the root page. */
  rootFrame(): { node: Node | null; page: Page | null; index: number } {
    if (this.rootNode) return { node: this.rootNode, page: null, index: 0 };
    if (this.rootPgid === 0) return { node: null, page: this.inlinePage, index: 0 };
    return { node: null, page: this.tx.treePage(this.rootPgid), index: 0 };
  }

  /** @internal */
  materializeRoot(): Node {
    if (this.rootNode) return this.rootNode;
    if (this.rootPgid === 0) this.rootNode = Node.fromPage(this.inlinePage!, null, 0);
    else this.rootNode = Node.fromPage(this.tx.treePage(this.rootPgid), null, this.rootPgid);
    return this.rootNode;
  }

  /** @internal */
  noteDelete(node: Node): void {
    this.unbalanced.add(node);
  }

  /** @internal Insert at the cursor's leaf slot; split the leaf early if it grew past a few pages. */
  private putRaw(c: Cursor, key: Buffer, value: Buffer, flags: number): void {
    const leaf = c.materialize();
    leaf.put(key, value, flags);
    this.afterPut(leaf);
  }

  /** @internal After a put into leaf: count the change, split the leaf early if it grew past a few pages. */
  private afterPut(leaf: Node): void {
    this.tx.mutations++;
    const root = splitIfLarge(leaf, this.tx.db.pageSize, this.fillPercentClamped());
    if (root) this.rootNode = root;
  }

  /** @internal Free every page of this bucket and its sub-buckets (used by deleteBucket). */
  private freeAll(): void {
    // Sub-buckets first: their pages are not reachable from ours.
    const c = Cursor.create(this);
    for (let e = c.first(); e; e = c.next()) {
      if (e[1] === null) this.bucket(e[0])!.freeAll();
    }
    if (this.rootNode) freeNode(this.rootNode, this.treeContext(), (pgid) => this.freePage(pgid));
    else if (this.rootPgid !== 0) this.freePage(this.rootPgid);
    this.rootNode = null;
  }

  /** @internal */
  private freePage(pgid: number, depth = 0): void {
    if (depth > 64) throw corrupt(`page ${pgid}: tree deeper than 64 levels`);
    const page = this.tx.treePage(pgid);
    this.tx.free(pgid, page.overflow);
    if (page.isBranch) for (let i = 0; i < page.count; i++) this.freePage(page.child(i), depth + 1);
  }

  // ---- commit: rebalance and spill ----

  /** @internal Merge nodes that deletes left underfull, then do the same in sub-buckets. */
  rebalance(): void {
    const ctx = this.treeContext();
    for (const node of this.unbalanced) rebalanceNode(this, node, ctx);
    this.unbalanced.clear();
    for (const child of this.children.values()) child.rebalance();
  }

  /** @internal A bucket small enough to live inside its parent's leaf. */
  private inlineable(): boolean {
    const n = this.rootNode;
    if (!n || !n.leaf) return false;
    let size = PAGE_HEADER_SIZE;
    for (const inode of n.inodes) {
      if (inode.flags & BUCKET_LEAF_FLAG) return false;
      size += 16 + inode.key.length + inode.value.length;
      if (size > this.tx.db.pageSize / 4) return false;
    }
    return true;
  }

  /** @internal The value this bucket is stored under in its parent. */
  private headerValue(): Buffer {
    const value = Buffer.alloc(BUCKET_HEADER_SIZE);
    const dv = new DataView(value.buffer, value.byteOffset, value.byteLength);
    writeU64(dv, 0, this.rootPgid);
    dv.setBigUint64(8, this.seq, true);
    return value;
  }

  /** @internal Write sub-buckets into our leaves, then write our own dirty nodes to new pages. */
  spill(): void {
    for (const [id, child] of this.children) {
      let value: Buffer;
      if (child.inlineable()) {
        const root = child.rootNode!;
        if (root.pgid !== 0) {
          this.tx.free(root.pgid, root.overflow);
          root.pgid = 0;
        }
        child.rootPgid = 0;
        const image = new Uint8Array(inodesSize(true, root.inodes));
        writeInodes(image, 0, true, root.inodes, 0);
        value = Buffer.alloc(BUCKET_HEADER_SIZE + image.length);
        value.set(child.headerValue(), 0);
        value.set(image, BUCKET_HEADER_SIZE);
      } else {
        // Spill even an untouched child: a grandchild's change materializes it on the way.
        child.spill();
        if (!child.rootNode) continue;
        value = child.headerValue();
      }
      const key = Buffer.from(id, 'latin1');
      const c = Cursor.create(this);
      c.seekRaw(key);
      invariant(c.isAt(key), 'spilled sub-bucket missing from its parent');
      const leaf = c.materialize();
      leaf.put(key, value, BUCKET_LEAF_FLAG);
    }
    if (!this.rootNode) return;
    this.rootPgid = spillTree(this.rootNode, this.treeContext(), this.fillPercentClamped());
  }

  /** @internal What the commit-time tree work in node.ts needs: the transaction itself (no closures per call). */
  private treeContext(): TreeContext {
    return this.tx;
  }

  /** @internal */
  private fillPercentClamped(): number {
    const f = this.fillPercent;
    return Number.isFinite(f) ? Math.min(MAX_FILL, Math.max(MIN_FILL, f)) : DEFAULT_FILL_PERCENT;
  }

  /** @internal Whether the header (sequence) must be rewritten even with no node changes. */
  get sequenceDirty(): boolean {
    return this.seqDirty;
  }
}
