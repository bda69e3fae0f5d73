import { compareAt } from './bytes.ts';
import { BoltError } from './errors.ts';
import type { Node } from './node.ts';
import { BUCKET_LEAF_FLAG, corrupt, type Page } from './page.ts';
import { aborted, type ParsedRange } from './range.ts';
import type { ScanEntry, EntryVisitor } from './scan.ts';

const MAX_DEPTH = 64;
const EMPTY_VALUE = Buffer.alloc(0);
/** Scratch for Page.lowerBound's exact-match answer during a descent. */
const exact = { hit: false };
import type { Bucket } from './bucket.ts';

/** A key and its value; the value is null when the key names a sub-bucket. */
/** Keys and values are zero-copy Buffer views (a Buffer is a Uint8Array). */
export type Entry = [key: Buffer, value: Buffer | null];

/** One level of the path from the root to the current leaf: a page, or a node if materialized. */
interface Frame {
  node: Node | null;
  page: Page | null;
  index: number;
}

function count(f: Frame): number {
  return f.node ? f.node.count : f.page!.count;
}
function isLeaf(f: Frame): boolean {
  return f.node ? f.node.leaf : f.page!.isLeaf;
}
function lowerBound(f: Frame, key: Uint8Array): number {
  return f.node ? f.node.lowerBound(key) : f.page!.lowerBound(key);
}
function equalsKey(f: Frame, i: number, key: Uint8Array): boolean {
  return f.node ? f.node.compareKeyAt(i, key) === 0 : f.page!.compareKey(i, key) === 0;
}

/** Is e's key within the low bounds (gt/gte)? Compared in place. */
function aboveLow(e: ScanEntry, gt: Uint8Array | undefined, gte: Uint8Array | undefined): boolean {
  return (
    (gt === undefined || compareAt(e.keyBuffer, e.keyOffset, e.keyLength, gt) > 0) &&
    (gte === undefined || compareAt(e.keyBuffer, e.keyOffset, e.keyLength, gte) >= 0)
  );
}

/** Is e's key within the high bounds (lt/lte)? Compared in place. */
function belowHigh(e: ScanEntry, lt: Uint8Array | undefined, lte: Uint8Array | undefined): boolean {
  return (
    (lt === undefined || compareAt(e.keyBuffer, e.keyOffset, e.keyLength, lt) < 0) &&
    (lte === undefined || compareAt(e.keyBuffer, e.keyOffset, e.keyLength, lte) <= 0)
  );
}

type Position = 'unset' | 'valid' | 'eof' | 'bof';

/**
 * Ordered iteration over one bucket. Moving past either end leaves the cursor there: `prev()`
 * after the end returns the last entry, `next()` before the start the first. The cursor survives
 * writes to its transaction: it re-finds its key after any change, so `delete()` followed by
 * `next()` yields the entry that followed the deleted one.
 */
export class Cursor {
  readonly bucket: Bucket;
  /** @internal */
  private stack: Frame[] = [];
  /** @internal */
  private pos: Position = 'unset';
  /** @internal */
  private key: Buffer | null = null;
  /** @internal */
  private seen: number;

  /** @internal Transactions, buckets and cursors come from the engine, not from `new`. */
  static create(bucket: Bucket): Cursor {
    return new Cursor(bucket);
  }

  private constructor(bucket: Bucket) {
    this.bucket = bucket;
    this.seen = bucket.tx.mutations;
  }

  first(): Entry | undefined {
    this.bucket.tx.checkOpen();
    this.reset();
    this.descend(false);
    if (count(this.top()) === 0 && !this.moveNext()) return this.settle('eof');
    return this.settle('valid');
  }

  last(): Entry | undefined {
    this.bucket.tx.checkOpen();
    this.reset();
    this.top().index = count(this.top()) - 1;
    this.descend(true);
    if (count(this.top()) === 0 && !this.movePrev()) return this.settle('bof');
    return this.settle('valid');
  }

  /** Position at the first key >= key. */
  seek(key: Uint8Array | string): Entry | undefined {
    this.bucket.tx.checkOpen();
    const k = this.bucket.keyBytes(key);
    this.seekRaw(k);
    return this.settle(this.normalizeForward() ? 'valid' : 'eof');
  }

  next(): Entry | undefined {
    const tx = this.bucket.tx;
    tx.checkOpen();
    // The common step: on a valid entry of an unchanged snapshot, with another entry in this leaf page.
    if (this.pos === 'valid' && this.seen === tx.mutations) {
      const t = this.stack[this.stack.length - 1]!;
      const p = t.page;
      if (p !== null && p.isLeaf && t.index + 1 < p.count) {
        const e = p.entry(++t.index);
        this.key = e[0];
        return e;
      }
    }
    switch (this.pos) {
      case 'unset':
      case 'bof':
        return this.first();
      case 'eof':
        return undefined;
    }
    if (this.resync()) return this.settle(this.normalizeForward() ? 'valid' : 'eof');
    return this.settle(this.moveNext() ? 'valid' : 'eof');
  }

  prev(): Entry | undefined {
    this.bucket.tx.checkOpen();
    switch (this.pos) {
      case 'unset':
      case 'eof':
        return this.last();
      case 'bof':
        return undefined;
    }
    this.resync();
    return this.settle(this.movePrev() ? 'valid' : 'bof');
  }

  /** The entry under the cursor, if it is on one. */
  current(): Entry | undefined {
    this.bucket.tx.checkOpen();
    if (this.pos !== 'valid') return undefined;
    if (this.resync()) {
      this.pos = 'unset';
      return undefined;
    }
    return this.entry();
  }

  /** Delete the entry under the cursor. Sub-buckets must be removed with deleteBucket. */
  delete(): void {
    const tx = this.bucket.tx;
    tx.checkWritable();
    if (this.pos !== 'valid' || this.resync()) {
      throw new BoltError('ERR_KEY_REQUIRED', 'cursor is not on an entry');
    }
    const f = this.top();
    const flags = f.node ? f.node.inodes[f.index]!.flags : f.page!.elementFlags(f.index);
    if (flags & BUCKET_LEAF_FLAG) throw new BoltError('ERR_INCOMPATIBLE_VALUE', 'incompatible value: key is a bucket');
    const node = this.materialize();
    node.removeAt(this.top().index);
    this.bucket.noteDelete(node);
    tx.mutations++;
  }

  // ---- internals used by Bucket ----

  /** @internal Position on the leaf slot where key is or would be inserted (index may equal count). */
  seekRaw(key: Uint8Array): void {
    this.reset();
    for (;;) {
      const f = this.top();
      if (isLeaf(f)) {
        f.index = lowerBound(f, key);
        break;
      }
      const n = count(f);
      if (n === 0) break;
      let i: number;
      if (f.page !== null) {
        i = f.page.lowerBound(key, exact);
        if (!exact.hit) i = i > 0 ? i - 1 : 0;
      } else {
        i = f.node!.lowerBound(key);
        if (!(i < n && equalsKey(f, i, key))) i = i > 0 ? i - 1 : 0;
      }
      f.index = i;
      this.push(this.child(f));
    }
    this.pos = 'valid';
    this.seen = this.bucket.tx.mutations;
  }

  /** @internal After seekRaw: is the cursor exactly on key? */
  isAt(key: Uint8Array): boolean {
    const f = this.top();
    return isLeaf(f) && f.index < count(f) && equalsKey(f, f.index, key);
  }

  /** @internal Flags of the leaf element under the cursor (after seekRaw + isAt). */
  flagsHere(): number {
    const f = this.top();
    return f.node ? f.node.inodes[f.index]!.flags : f.page!.elementFlags(f.index);
  }

  /** @internal */
  valueHere(): Buffer {
    const f = this.top();
    return f.node ? f.node.inodes[f.index]!.value : f.page!.value(f.index);
  }

  /** @internal The leaf under the cursor (a page, or a node if materialized) and the slot in it. */
  leafHere(): Readonly<Frame> {
    return this.top();
  }

  /** @internal Turn the path to the current leaf into nodes, so it can be modified; returns the leaf. */
  materialize(): Node {
    let node = this.bucket.materializeRoot();
    this.stack[0] = { node, page: null, index: this.stack[0]!.index };
    for (let d = 1; d < this.stack.length; d++) {
      const parentIndex = this.stack[d - 1]!.index;
      node = node.childAt(parentIndex, (pgid) => this.bucket.tx.treePage(pgid));
      this.stack[d] = { node, page: null, index: this.stack[d]!.index };
    }
    return node;
  }

  /**
   * @internal Bucket.scan's loop: position by o's bounds, then show fn each entry in place (no
   * views). If fn changes the transaction, the scan re-finds its place by the last key shown.
   */
  visit(o: ParsedRange, e: ScanEntry, fn: EntryVisitor): number {
    const tx = this.bucket.tx;
    tx.checkOpen();
    const { gt, gte, lt, lte, limit, signal, reverse } = o;
    if (!reverse && this.bucket.rootNode === null) {
      const r = this.visitPages(o, e, fn);
      if (r.resumeAfter === null) return r.n;
      // The visitor wrote: go on through the general loop, from the key after the last one shown.
      return (
        r.n + this.visit({ gt: r.resumeAfter, gte: undefined, lt, lte, reverse, limit: limit - r.n, signal }, e, fn)
      );
    }
    let ok: boolean;
    if (!reverse) {
      const low = gte ?? gt;
      if (low) {
        this.seekRaw(low);
        ok = this.normalizeForward();
      } else ok = this.toFirst();
      for (; ok; ok = this.moveNext()) {
        this.fill(e);
        if (aboveLow(e, gt, gte)) break;
      }
    } else {
      const high = lte ?? lt;
      if (high) {
        this.seekRaw(high);
        ok = this.normalizeForward() || this.toLast();
      } else ok = this.toLast();
      for (; ok; ok = this.movePrev()) {
        this.fill(e);
        if (belowHigh(e, lt, lte)) break;
      }
    }
    let seen = tx.mutations;
    let n = 0;
    while (ok && n < limit) {
      this.fill(e);
      if (reverse ? !aboveLow(e, gt, gte) : !belowHigh(e, lt, lte)) break;
      if (signal?.aborted) throw aborted(signal);
      n++;
      if (fn(e) === false) break;
      tx.checkOpen();
      if (tx.mutations !== seen) {
        // The visitor wrote: the path may be stale, so find the last key again and step from it.
        seen = tx.mutations;
        const k = e.copyKey();
        this.seekRaw(k);
        if (reverse) ok = this.movePrev();
        else ok = this.isAt(k) ? this.moveNext() : this.normalizeForward();
        continue;
      }
      if (reverse) ok = this.movePrev();
      else {
        // Most steps stay inside the current leaf page.
        const t = this.stack[this.stack.length - 1]!;
        const p = t.page;
        if (p !== null && p.isLeaf && t.index + 1 < p.count) t.index++;
        else ok = this.moveNext();
      }
    }
    this.pos = 'unset';
    this.key = null;
    return n;
  }

  /**
   * @internal visit's forward loop over committed pages (the bucket unchanged in this
   * transaction): the path is two small arrays instead of frame objects, and a step inside a leaf
   * is an index increment. Stops with `resumeAfter` set (a copy of the last key shown) if the
   * visitor writes, so the general loop can carry on over the changed tree.
   */
  private visitPages(o: ParsedRange, e: ScanEntry, fn: EntryVisitor): { n: number; resumeAfter: Buffer | null } {
    const tx = this.bucket.tx;
    const { gt, gte, lt, lte, limit, signal } = o;
    const low = gte ?? gt;
    // The branch pages above the current leaf and the child index taken in each; `depth` of them
    // are in use (entries past it are stale, overwritten on the way down: truncating an array
    // is a runtime call).
    const pages: Page[] = [];
    const at: number[] = [];
    let depth = 0;
    let leaf = this.bucket.rootFrame().page!;
    // Down to the leaf holding low (or the first leaf), as seekRaw does.
    while (!leaf.isLeaf) {
      if (depth >= MAX_DEPTH)
        throw corrupt(`tree deeper than ${MAX_DEPTH} levels: a branch page points back up the tree`);
      if (leaf.count === 0) return { n: 0, resumeAfter: null };
      let i = 0;
      if (low !== undefined) {
        i = leaf.lowerBound(low, exact);
        if (!exact.hit) i = i > 0 ? i - 1 : 0;
      }
      pages[depth] = leaf;
      at[depth] = i;
      depth++;
      leaf = tx.treePage(leaf.child(i));
    }
    let i = low !== undefined ? leaf.lowerBound(low) : 0;
    let count = leaf.count;
    const highBound = lt !== undefined || lte !== undefined;
    let started = gt === undefined && gte === undefined;
    const seen = tx.mutations;
    let n = 0;
    while (n < limit) {
      if (i >= count) {
        // Past this leaf: up to the nearest branch with a next child, then down its first children.
        let d = depth - 1;
        while (d >= 0 && at[d]! + 1 >= pages[d]!.count) d--;
        if (d < 0) break;
        const next = at[d]! + 1;
        at[d] = next;
        depth = d + 1;
        leaf = tx.treePage(pages[d]!.child(next));
        while (!leaf.isLeaf) {
          if (depth >= MAX_DEPTH)
            throw corrupt(`tree deeper than ${MAX_DEPTH} levels: a branch page points back up the tree`);
          if (leaf.count === 0) throw corrupt('empty branch page inside a tree');
          pages[depth] = leaf;
          at[depth] = 0;
          depth++;
          leaf = tx.treePage(leaf.child(0));
        }
        i = 0;
        count = leaf.count;
        continue;
      }
      leaf.point(i, e);
      i++;
      if (!started) {
        if (!aboveLow(e, gt, gte)) continue;
        started = true;
      }
      if (highBound && !belowHigh(e, lt, lte)) break;
      if (signal?.aborted) throw aborted(signal);
      n++;
      if (fn(e) === false) break;
      tx.checkOpen();
      if (tx.mutations !== seen) return { n, resumeAfter: e.copyKey() };
    }
    return { n, resumeAfter: null };
  }

  /** @internal Point e at the leaf element under the cursor. */
  private fill(e: ScanEntry): void {
    const f = this.stack[this.stack.length - 1]!;
    const p = f.page;
    if (p !== null) {
      p.point(f.index, e);
      return;
    }
    const inode = f.node!.inodes[f.index]!;
    const bucket = (inode.flags & BUCKET_LEAF_FLAG) !== 0;
    const v = bucket ? EMPTY_VALUE : inode.value;
    e.keyBuffer = inode.key;
    e.keyOffset = 0;
    e.keyLength = inode.key.length;
    e.valueBuffer = v;
    e.valueOffset = 0;
    e.valueLength = v.length;
    e.isBucket = bucket;
  }

  /** @internal Onto the first entry; false if the bucket is empty. */
  private toFirst(): boolean {
    this.reset();
    this.descend(false);
    return count(this.top()) > 0 || this.moveNext();
  }

  /** @internal Onto the last entry; false if the bucket is empty. */
  private toLast(): boolean {
    this.reset();
    this.top().index = count(this.top()) - 1;
    this.descend(true);
    return count(this.top()) > 0 || this.movePrev();
  }

  // ---- movement ----

  /** @internal */
  private reset(): void {
    this.stack = [this.bucket.rootFrame()];
  }

  /** @internal Descend one level. A real tree of 2^53 pages is far shallower than this: deeper means a cycle. */
  private push(f: Frame): void {
    if (this.stack.length >= MAX_DEPTH)
      throw corrupt(`tree deeper than ${MAX_DEPTH} levels: a branch page points back up the tree`);
    this.stack.push(f);
  }

  /** @internal */
  private top(): Frame {
    return this.stack[this.stack.length - 1]!;
  }

  /** @internal */
  private child(f: Frame): Frame {
    if (f.node) {
      const child = f.node.childNode(f.index);
      if (child) return { node: child, page: null, index: 0 };
      return { node: null, page: this.bucket.tx.treePage(f.node.childPgid(f.index)), index: 0 };
    }
    return { node: null, page: this.bucket.tx.treePage(f.page!.child(f.index)), index: 0 };
  }

  /** @internal From the current frame down to a leaf, along first (or last) children. */
  private descend(toLast: boolean): void {
    for (;;) {
      const f = this.top();
      if (isLeaf(f) || count(f) === 0) return;
      const c = this.child(f);
      if (toLast) c.index = count(c) - 1;
      this.push(c);
    }
  }

  /** @internal */
  private moveNext(): boolean {
    // Most steps stay inside the current leaf: no walk up the stack.
    const t = this.stack[this.stack.length - 1]!;
    if (
      t.page !== null
        ? t.page.isLeaf && t.index + 1 < t.page.count
        : t.node!.leaf && t.index + 1 < t.node!.inodes.length
    ) {
      t.index++;
      return true;
    }
    for (;;) {
      let i = this.stack.length - 1;
      while (i >= 0 && this.stack[i]!.index >= count(this.stack[i]!) - 1) i--;
      if (i < 0) return false;
      this.stack[i]!.index++;
      this.stack.length = i + 1;
      this.descend(false);
      if (count(this.top()) > 0 && isLeaf(this.top())) return true;
    }
  }

  /** @internal */
  private movePrev(): boolean {
    for (;;) {
      let i = this.stack.length - 1;
      while (i >= 0 && this.stack[i]!.index <= 0) i--;
      if (i < 0) return false;
      const f = this.stack[i]!;
      f.index = Math.min(f.index, count(f)) - 1;
      this.stack.length = i + 1;
      this.descend(true);
      if (count(this.top()) > 0 && isLeaf(this.top())) return true;
    }
  }

  /** @internal After a seek the leaf slot may be one past its page's end: step onto a real entry. */
  private normalizeForward(): boolean {
    const f = this.top();
    if (isLeaf(f) && f.index < count(f)) return true;
    return this.moveNext();
  }

  /**
   * If the transaction changed since we last looked, re-find our key. Returns true when the key
   * is gone and the cursor now sits on its successor slot.
   * @internal
   */
  private resync(): boolean {
    if (this.seen === this.bucket.tx.mutations || this.key === null) return false;
    const key = this.key;
    this.seekRaw(key);
    return !this.isAt(key);
  }

  /** @internal */
  private entry(): Entry | undefined {
    const f = this.top();
    if (!isLeaf(f) || f.index < 0 || f.index >= count(f)) return undefined;
    if (f.node) {
      const inode = f.node.inodes[f.index]!;
      return [inode.key, inode.flags & BUCKET_LEAF_FLAG ? null : inode.value];
    }
    return f.page!.entry(f.index);
  }

  /** @internal */
  private settle(pos: Position): Entry | undefined {
    this.pos = pos;
    this.seen = this.bucket.tx.mutations;
    if (pos !== 'valid') {
      this.key = null;
      return undefined;
    }
    const e = this.entry();
    this.key = e ? e[0] : null;
    return e;
  }
}
