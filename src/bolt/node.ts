/**
 * A page materialized for writing (bbolt's node) and the tree work done at write and commit time:
 * split and rebalance. The element type is in inode.ts, the page image writer in node-write.ts,
 * spill in spill.ts.
 */
import { invariant } from './errors.ts';
import { elementSize, Inode, keyPrefix, makeInode, setInodeKey } from './inode.ts';
import { HeldPuts } from './held-puts.ts';
import { splitForPages } from './node-write.ts';
import { ELEMENT_SIZE, PAGE_HEADER_SIZE, type Page } from './page.ts';

const EMPTY = Buffer.alloc(0);
/** Scratch for Page.lowerBound's exact-match answer. */
const EXACT = { hit: false };

/** Puts a page-backed leaf holds aside before it builds its elements. */
const MAX_EDITS = 8;

/**
 * lowerBound in a leaf page a node stands in for, without the page's key index: a leaf read for
 * writing is searched a few times at most (the descent of each put into it), and building its
 * index (every key of the page, on its second search) cost more than the searches it saved.
 */
function searchLeafPage(page: Page, key: Uint8Array, exact: { hit: boolean }): number {
  let lo = 0;
  let hi = page.count;
  let hit = false;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const c = page.compareKey(mid, key);
    if (c < 0) lo = mid + 1;
    else {
      hi = mid;
      hit = c === 0;
    }
  }
  exact.hit = hit;
  return lo;
}

/**
 * A page materialized for writing. Nodes form a tree that mirrors the pages a write transaction
 * touched; untouched subtrees stay on disk and are referenced by pgid. No I/O happens here: the
 * caller hands in a loader for child pages.
 */
export class Node {
  leaf: boolean;
  /** The page this node was read from, 0 for a node born in this transaction. */
  pgid: number;
  overflow: number;
  parent: Node | null;
  /** Size of this node written as a page: header + elements + keys (+ values). */
  byteSize: number;
  /** Set by deletes; rebalance looks only at these. */
  unbalanced = false;
  /** Set when merged away or removed; such a node must not be written. */
  dead = false;
  /** The elements; null while `src` stands in for them (see `inodes`). */
  private items: Inode[] | null;
  /**
   * A branch read from a page keeps the page instead of elements until something needs them as
   * objects: a small commit only walks through its branches and changes one child id in each, so
   * it neither builds ~170 elements per branch nor rewrites them one by one (spill copies the page
   * and patches the ids). Any structural change turns it into elements first.
   */
  private src: Page | null = null;
  /** Children materialized while `src` stands in for the elements, by index. */
  private kids: Map<number, Node> | null = null;
  /**
   * A leaf read from a page keeps the page too, with the puts into it held aside, sorted by key
   * (up to MAX_EDITS): most leaves a transaction loads for writing get one or two puts (a small
   * commit, a batch, a bulk load over a large tree), and spill then writes the page's elements
   * with those puts merged in straight into the new page. A delete, more puts, a split, or anyone
   * asking for the elements builds them.
   */
  private held: HeldPuts | null = null;

  constructor(leaf: boolean, parent: Node | null, inodes: Inode[] = [], pgid = 0, overflow = 0) {
    this.leaf = leaf;
    this.parent = parent;
    this.items = inodes;
    this.pgid = pgid;
    this.overflow = overflow;
    let size = PAGE_HEADER_SIZE;
    for (const inode of inodes) size += elementSize(leaf, inode);
    this.byteSize = size;
  }

  /** The elements, built from the source page on first use. */
  get inodes(): Inode[] {
    return this.items ?? this.inflate();
  }

  set inodes(inodes: Inode[]) {
    this.items = inodes;
    this.src = null;
    this.kids = null;
    this.held = null;
  }

  /** Number of elements, without building them. */
  get count(): number {
    if (this.items !== null) return this.items.length;
    return this.src!.count + (this.held === null ? 0 : this.held.inserts);
  }

  /** @internal A leaf's pending puts, sorted by key, while sourcePage is set. */
  get heldPuts(): HeldPuts | null {
    return this.items === null ? this.held : null;
  }

  /** The first element's key (the node must not be empty). */
  firstKey(): Buffer {
    if (this.items !== null) return this.items[0]!.key;
    const at = this.locate(0);
    return at >= 0 ? this.src!.key(at) : this.held!.key(-at - 1);
  }

  /**
   * Element m of a page-backed leaf with pending puts: -(j + 1) if m is the key inserted by held
   * put j, else the index in src of the element at m (whose key a replacing put keeps).
   */
  private locate(m: number): number {
    const held = this.held;
    let off = 0;
    if (held !== null) {
      for (let j = 0; j < held.length; j++) {
        if (held.replaces(j)) continue;
        const pos = held.at(j) + off;
        if (m === pos) return -j - 1;
        if (m < pos) break;
        off++;
      }
    }
    return m - off;
  }

  /** @internal The page standing in for this branch's elements, with the children taken from it; null once inflated. */
  get sourcePage(): Page | null {
    return this.items === null ? this.src : null;
  }

  /** @internal Children materialized from the source page, by index (only while sourcePage is set). */
  get sourceKids(): ReadonlyMap<number, Node> | null {
    return this.items === null ? this.kids : null;
  }

  private inflate(): Inode[] {
    const page = this.src!;
    const n = page.count;
    let inodes: Inode[] = new Array(n);
    const dv = page.dv;
    if (this.leaf) {
      for (let i = 0; i < n; i++) {
        // The page was validated when it was read: element i's key and value lie inside it.
        const e = PAGE_HEADER_SIZE + i * ELEMENT_SIZE;
        const kstart = e + dv.getUint32(e + 4, true);
        const ksize = dv.getUint32(e + 8, true);
        const vsize = dv.getUint32(e + 12, true);
        inodes[i] = new Inode(
          dv.getUint32(e, true),
          null,
          null,
          0,
          null,
          page,
          i,
          kstart + ksize,
          vsize,
          kstart,
          ksize,
        );
      }
      const held = this.held;
      if (held !== null) {
        // Merge: at each src position, the inserted keys below it (in key order), then the
        // element itself or the put that replaces it.
        const merged: Inode[] = [];
        const h = held.length;
        let k = 0;
        for (let i = 0; i <= n; i++) {
          while (k < h && held.at(k) === i && !held.replaces(k)) merged.push(held.inode(k++));
          if (i === n) break;
          if (k < h && held.at(k) === i) merged.push(held.inode(k++));
          else merged.push(inodes[i]!);
        }
        invariant(k === h && merged.length === n + held.inserts, 'pending leaf puts out of order');
        inodes = merged;
      }
    } else {
      for (let i = 0; i < n; i++) {
        const e = PAGE_HEADER_SIZE + i * ELEMENT_SIZE;
        const kstart = e + dv.getUint32(e, true);
        inodes[i] = new Inode(0, null, EMPTY, page.child(i), null, page, i, 0, 0, kstart, dv.getUint32(e + 4, true));
      }
      if (this.kids !== null) for (const [i, kid] of this.kids) inodes[i]!.child = kid;
    }
    this.items = inodes;
    this.src = null;
    this.kids = null;
    this.held = null;
    return inodes;
  }

  static fromPage(page: Page, parent: Node | null, pgid: number): Node {
    const leaf = page.isLeaf;
    const n = page.count;
    const dv = page.dv;
    const overflow = pgid === 0 ? 0 : page.overflow;
    const node = new Node(leaf, parent, [], pgid, overflow);
    let size = PAGE_HEADER_SIZE + n * ELEMENT_SIZE;
    if (leaf) {
      for (let e = PAGE_HEADER_SIZE; e < PAGE_HEADER_SIZE + n * ELEMENT_SIZE; e += ELEMENT_SIZE)
        size += dv.getUint32(e + 8, true) + dv.getUint32(e + 12, true);
    } else {
      for (let e = PAGE_HEADER_SIZE; e < PAGE_HEADER_SIZE + n * ELEMENT_SIZE; e += ELEMENT_SIZE)
        size += dv.getUint32(e + 4, true);
    }
    node.byteSize = size;
    node.items = null;
    node.src = page;
    return node;
  }

  /** Index of the first inode whose key is >= key (inodes.length if none). */
  lowerBound(key: Uint8Array): number {
    const inodes = this.items;
    if (inodes === null) {
      if (this.leaf) {
        // Elements below key: those of src, plus the inserted keys below it.
        const j = searchLeafPage(this.src!, key, EXACT);
        return this.held === null ? j : j + this.held.insertsBelow(key);
      }
      return this.src!.lowerBound(key);
    }
    const kp = keyPrefix(key);
    let lo = 0;
    let hi = inodes.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const inode = inodes[mid]!;
      const p = inode.prefix;
      if (p < kp || (p === kp && inode.compareKey(key) < 0)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** compare(key of element i, key), without building elements. */
  compareKeyAt(i: number, key: Uint8Array): number {
    if (this.items !== null) return this.items[i]!.compareKey(key);
    const at = this.held === null ? i : this.locate(i);
    return at >= 0 ? this.src!.compareKey(at, key) : this.held!.compareKey(-at - 1, key);
  }

  /** Branch: index of the child whose range holds key. */
  childIndexFor(key: Uint8Array): number {
    const i = this.lowerBound(key);
    if (i < this.count && this.compareKeyAt(i, key) === 0) return i;
    return i > 0 ? i - 1 : 0;
  }

  /** Branch: the materialized child at index i, if any. */
  childNode(i: number): Node | null {
    return this.items !== null ? this.items[i]!.child : (this.kids?.get(i) ?? null);
  }

  /** Branch: the page id element i points at. */
  childPgid(i: number): number {
    return this.items !== null ? this.items[i]!.pgid : this.src!.child(i);
  }

  /** Leaf: insert or replace the element with this key. */
  put(key: Buffer, value: Buffer, flags: number): void {
    this.putBytes(key, key, 0, value, 0, value.length, flags);
  }

  /**
   * Leaf: insert or replace the element with key, whose bytes the node may keep are at
   * kbuf[kpos, kpos + key.length) and the value's at vbuf[vpos, vpos + vlen) (the transaction's
   * copies; `key` is only compared).
   */
  putBytes(key: Uint8Array, kbuf: Buffer, kpos: number, vbuf: Buffer, vpos: number, vlen: number, flags: number): void {
    const klen = key.length;
    if (this.items === null && (this.held === null || this.held.length < MAX_EDITS)) {
      // A leaf still backed by its page: hold the put aside (see `held`).
      const held = (this.held ??= new HeldPuts());
      const k = held.find(key, EXACT);
      if (EXACT.hit) {
        this.byteSize += vlen - held.replaceValue(k, vbuf, vpos, vlen, flags);
        return;
      }
      const src = this.src!;
      const i = searchLeafPage(src, key, EXACT);
      if (EXACT.hit) {
        const e = PAGE_HEADER_SIZE + i * ELEMENT_SIZE;
        this.byteSize += vlen - src.dv.getUint32(e + 12, true);
      } else this.byteSize += ELEMENT_SIZE + klen + vlen;
      held.insert(k, kbuf, kpos, klen, vbuf, vpos, vlen, flags, i, EXACT.hit);
      return;
    }
    const value = vbuf.subarray(vpos, vpos + vlen);
    const i = this.lowerBound(key);
    const existing = this.inodes[i];
    if (existing && existing.compareKey(key) === 0) {
      this.byteSize += vlen - existing.valueLength;
      existing.value = value;
      existing.flags = flags;
      return;
    }
    const inode = makeInode(flags, kbuf.subarray(kpos, kpos + klen), value, 0, null);
    this.inodes.splice(i, 0, inode);
    this.byteSize += elementSize(true, inode);
  }

  /** Remove the element at index i. */
  removeAt(i: number): Inode {
    const [inode] = this.inodes.splice(i, 1);
    invariant(inode, 'removeAt out of range');
    this.byteSize -= elementSize(this.leaf, inode);
    this.unbalanced = true;
    return inode;
  }

  insertAt(i: number, inode: Inode): void {
    this.inodes.splice(i, 0, inode);
    this.byteSize += elementSize(this.leaf, inode);
  }

  /** Branch: the materialized child at index i, reading its page if needed. */
  childAt(i: number, load: (pgid: number) => Page): Node {
    invariant(!this.leaf && i >= 0 && i < this.count, 'childAt on a leaf or out of range');
    if (this.items === null) {
      this.kids ??= new Map();
      let kid = this.kids.get(i);
      if (kid === undefined) {
        const pgid = this.src!.child(i);
        kid = Node.fromPage(load(pgid), this, pgid);
        this.kids.set(i, kid);
      }
      return kid;
    }
    const inode = this.items[i]!;
    if (inode.child) return inode.child;
    const child = Node.fromPage(load(inode.pgid), this, inode.pgid);
    inode.child = child;
    return child;
  }

  /** Index of a child node within this branch. */
  indexOfChild(child: Node): number {
    if (this.items === null) {
      if (this.kids !== null) for (const [i, kid] of this.kids) if (kid === child) return i;
      invariant(false, 'child not found in parent');
    }
    if (child.count > 0) {
      const i = this.childIndexFor(child.firstKey());
      if (this.items[i]?.child === child) return i;
    }
    const i = this.items.findIndex((x) => x.child === child);
    invariant(i >= 0, 'child not found in parent');
    return i;
  }

  /** Move all inodes of `from` (the right neighbour) onto the end of this node. */
  absorb(from: Node): void {
    for (const inode of from.inodes) {
      if (inode.child) inode.child.parent = this;
      this.inodes.push(inode);
    }
    this.byteSize += from.byteSize - PAGE_HEADER_SIZE;
    from.inodes = [];
    from.byteSize = PAGE_HEADER_SIZE;
  }

  /**
   * Split off the upper half (by bytes) into a new sibling, for nodes grown past a few pages
   * during a transaction. Keeping nodes bounded keeps inserts O(node size), not O(keys in bucket).
   */
  splitHalf(pageSize: number, fillPercent: number): Node {
    const half = (this.byteSize - PAGE_HEADER_SIZE) / 2;
    let mid = 0;
    // Cut where commit would start a page anyway, so the left part is written as the same full
    // pages; a cut at the byte middle left a mostly empty page per split (68% full on appends).
    const parts = splitForPages(this.leaf, this.inodes, pageSize, fillPercent, this.byteSize);
    let acc = 0;
    for (let k = 0; k < parts.length - 1 && acc < half; k++) {
      acc += parts[k]!.size - PAGE_HEADER_SIZE;
      mid = parts[k]!.end;
    }
    if (mid === 0) {
      while (mid < this.inodes.length && acc < half) acc += elementSize(this.leaf, this.inodes[mid++]!);
    }
    mid = Math.min(Math.max(mid, 2), this.inodes.length - 2);
    const moved = this.inodes.splice(mid);
    const sibling = new Node(this.leaf, this.parent, moved);
    for (const inode of moved) if (inode.child) inode.child.parent = sibling;
    this.byteSize -= sibling.byteSize - PAGE_HEADER_SIZE;
    return sibling;
  }
}

// ---- tree work at write and commit time (bbolt keeps it in node.go) ----

/**
 * What split, rebalance and spill need from the transaction: page loads for children not yet
 * materialized, page allocation and freeing, and somewhere to put written pages. Keeping this an
 * interface leaves node.ts free of I/O.
 */
export interface TreeContext {
  readonly pageSize: number;
  load(pgid: number): Page;
  free(pgid: number, overflow: number): void;
  /**
   * npages contiguous pages. `longLived`: the page will outlive the rest of its commit by far (a
   * leaf among many), so the allocator may place it apart from the commit's run (Tx.allocate).
   */
  allocate(npages: number, longLived?: boolean): number;
  /** Memory for npages pages to write; it may hold old bytes, so the caller writes every byte. */
  pageBuffer(npages: number): Uint8Array;
  write(pgid: number, buf: Uint8Array): void;
}

/** The owner of a tree of nodes (a bucket), whose root a split or rebalance may replace. */
export interface TreeRoot {
  rootNode: Node | null;
}

/**
 * Go's bbolt splits only at commit, so one huge transaction keeps inserting into ever larger
 * nodes: quadratic. Splitting a node as soon as it passes a few pages keeps each insert cheap;
 * commit still splits into page-sized pieces. Returns the new root if the tree grew a level.
 */
export function splitIfLarge(node: Node, pageSize: number, fillPercent: number): Node | null {
  const limit = pageSize * 4;
  let newRoot: Node | null = null;
  while (node.byteSize > limit && node.inodes.length > 4) {
    const sibling = node.splitHalf(pageSize, fillPercent);
    let parent = node.parent;
    if (!parent) {
      parent = new Node(false, null, [makeInode(0, node.inodes[0]!.key, EMPTY, node.pgid, node)]);
      node.parent = parent;
      sibling.parent = parent;
      newRoot = parent;
    }
    const idx = parent.indexOfChild(node);
    // A leftmost child may have taken keys below its separator; refresh it before a sibling
    // is placed after it, or the parent's keys would fall out of order.
    setInodeKey(parent.inodes[idx]!, node.inodes[0]!.key);
    parent.insertAt(idx + 1, makeInode(0, sibling.inodes[0]!.key, EMPTY, 0, sibling));
    node = parent;
  }
  return newRoot;
}

/** Free node's page and, below it, every materialized node's page and every other child page. */
export function freeNode(node: Node, ctx: TreeContext, freePage: (pgid: number) => void): void {
  if (node.pgid !== 0) ctx.free(node.pgid, node.overflow);
  if (!node.leaf) {
    for (const inode of node.inodes) {
      if (inode.child) freeNode(inode.child, ctx, freePage);
      else freePage(inode.pgid);
    }
  }
}

/** Merge a node that deletes left underfull into a sibling, up the tree, as bbolt's rebalance. */
export function rebalanceNode(tree: TreeRoot, node: Node, ctx: TreeContext): void {
  if (!node.unbalanced || node.dead) return;
  node.unbalanced = false;
  const threshold = ctx.pageSize / 4;
  const minKeys = node.leaf ? 1 : 2;
  if (node.byteSize > threshold && node.inodes.length > minKeys) return;
  const load = (pgid: number): Page => ctx.load(pgid);
  const parent = node.parent;
  if (!parent) {
    // A root branch with a single child: the child becomes the root.
    if (!node.leaf && node.inodes.length === 1) {
      const child = node.childAt(0, load);
      child.parent = null;
      tree.rootNode = child;
      retire(node, ctx);
      child.unbalanced = true;
      rebalanceNode(tree, child, ctx);
    }
    return;
  }
  if (node.inodes.length === 0) {
    parent.removeAt(parent.indexOfChild(node));
    retire(node, ctx);
    rebalanceNode(tree, parent, ctx);
    return;
  }
  if (parent.inodes.length < 2) {
    // No sibling to merge with yet; fixing the parent first gives us one.
    parent.unbalanced = true;
    rebalanceNode(tree, parent, ctx);
    return;
  }
  const idx = parent.indexOfChild(node);
  if (idx === 0) {
    const right = parent.childAt(1, load);
    node.absorb(right);
    parent.removeAt(1);
    retire(right, ctx);
  } else {
    const left = parent.childAt(idx - 1, load);
    left.absorb(node);
    parent.removeAt(idx);
    retire(node, ctx);
  }
  rebalanceNode(tree, parent, ctx);
}

/** A node merged away or removed: never written, and its old page is freed. */
function retire(node: Node, ctx: TreeContext): void {
  node.dead = true;
  if (node.pgid !== 0) {
    ctx.free(node.pgid, node.overflow);
    node.pgid = 0;
  }
}
