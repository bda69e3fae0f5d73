/**
 * Spill (bbolt's node.spill): a transaction's materialized nodes written to freshly allocated
 * pages at commit, children before parents, adding branch levels until one root remains. Nodes
 * still backed by their page (node.ts) are written by copying that page with their changes
 * patched or merged in.
 */
import { invariant } from './errors.ts';
import { copyBytes, type Inode, makeInode } from './inode.ts';
import { Node, type TreeContext } from './node.ts';
import { splitForPages, writeInodes } from './node-write.ts';
import { ELEMENT_SIZE, LEAF_FLAG, PAGE_HEADER_SIZE, type Page, writePageHeader, writeU64 } from './page.ts';

const EMPTY = Buffer.alloc(0);

/** Write a tree of materialized nodes to new pages, adding branch levels until one root remains. */
export function spillTree(root: Node, ctx: TreeContext, fillPercent: number): number {
  let refs = spillNode(root, ctx, fillPercent);
  while (refs.length > 1) refs = spillNode(new Node(false, null, refs), ctx, fillPercent);
  return refs[0]!.pgid;
}

/** Write node (and its materialized descendants) to freshly allocated pages; the refs to them. */
function spillNode(node: Node, ctx: TreeContext, fillPercent: number): Inode[] {
  invariant(!node.dead, 'spilling a dead node');
  const src = node.sourcePage;
  if (src !== null)
    return node.leaf ? spillSourceLeaf(node, src, ctx, fillPercent) : spillSourceBranch(node, src, ctx, fillPercent);
  let inodes = node.inodes;
  if (!node.leaf) {
    const out: Inode[] = [];
    for (const inode of inodes) {
      if (inode.child) out.push(...spillNode(inode.child, ctx, fillPercent));
      else out.push(inode);
    }
    inodes = out;
  }
  return writeNode(node, inodes, inodes === node.inodes ? node.byteSize : undefined, ctx, fillPercent);
}

/**
 * Spill a branch still backed by its page. When every spilled child came back as one page under
 * the same first key, the new branch is the old page with those children's ids replaced: one copy
 * instead of an object and a key copy per element. Otherwise it is built from elements as usual.
 */
function spillSourceBranch(node: Node, src: Page, ctx: TreeContext, fillPercent: number): Inode[] {
  const kids = node.sourceKids;
  const order = kids === null ? [] : [...kids.keys()].sort((a, b) => a - b);
  const spilled: Inode[][] = [];
  let patchable = src.overflow === 0 && src.buf.length === ctx.pageSize && node.byteSize <= ctx.pageSize;
  for (const i of order) {
    const refs = spillNode(kids!.get(i)!, ctx, fillPercent);
    spilled.push(refs);
    if (refs.length !== 1 || src.compareKey(i, refs[0]!.key) !== 0) patchable = false;
  }
  if (!patchable) {
    const inodes = node.inodes;
    const out: Inode[] = [];
    let next = 0;
    for (let i = 0; i < inodes.length; i++) {
      if (next < order.length && order[next] === i) out.push(...spilled[next++]!);
      else out.push(inodes[i]!);
    }
    return writeNode(node, out, undefined, ctx, fillPercent);
  }
  if (node.pgid !== 0) {
    ctx.free(node.pgid, node.overflow);
    node.pgid = 0;
  }
  const pgid = ctx.allocate(1);
  const buf = ctx.pageBuffer(1);
  buf.set(src.buf);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  writeU64(dv, 0, pgid);
  for (let j = 0; j < order.length; j++) {
    const childPgid = spilled[j]![0]!.pgid;
    invariant(childPgid >= 2, `branch element points at page ${childPgid}`);
    writeU64(dv, PAGE_HEADER_SIZE + order[j]! * ELEMENT_SIZE + 8, childPgid);
  }
  ctx.write(pgid, buf);
  return [makeInode(0, src.count > 0 ? src.key(0) : EMPTY, EMPTY, pgid, null)];
}

/**
 * Spill a leaf still backed by its page (with its pending puts): when it fits one page, the new
 * page is the old elements, copied byte for byte, with the puts merged in at their places.
 */
function spillSourceLeaf(node: Node, src: Page, ctx: TreeContext, fillPercent: number): Inode[] {
  const ps = ctx.pageSize;
  if (node.byteSize > ps) return writeNode(node, node.inodes, node.byteSize, ctx, fillPercent);
  const held = node.heldPuts;
  const h = held === null ? 0 : held.length;
  const first = node.count > 0 ? node.firstKey() : EMPTY;
  if (node.pgid !== 0) {
    ctx.free(node.pgid, node.overflow);
    node.pgid = 0;
  }
  const pgid = ctx.allocate(1, node.parent !== null);
  const buf = ctx.pageBuffer(1);
  const n = src.count;
  const count = node.count;
  invariant(count < 0xffff, `page ${pgid} would hold ${count} elements`);
  const dv = writePageHeader(buf, pgid, LEAF_FLAG, count, 0);
  const sdv = src.dv;
  const sbuf = src.buf;
  let data = PAGE_HEADER_SIZE + count * ELEMENT_SIZE;
  let e = PAGE_HEADER_SIZE;
  const putHeld = (j: number): void => {
    data += held!.writeElement(j, buf, dv, e, data);
    e += ELEMENT_SIZE;
  };
  // Elements of src between two puts are copied as a run: their headers one by one (offsets
  // shift), their keys and values with one copy when they lie back to back in src, as pages
  // written by bbolt or boltkv do (a view per element for the copy was a good part of a load's
  // garbage).
  const copyRun = (from: number, to: number): void => {
    const start = data;
    let sfrom = -1;
    let send = -1;
    let together = true;
    for (let i = from; i < to; i++) {
      const se = PAGE_HEADER_SIZE + i * ELEMENT_SIZE;
      const kpos = se + sdv.getUint32(se + 4, true);
      const klen = sdv.getUint32(se + 8, true);
      const vlen = sdv.getUint32(se + 12, true);
      dv.setUint32(e, sdv.getUint32(se, true), true);
      dv.setUint32(e + 4, data - e, true);
      dv.setUint32(e + 8, klen, true);
      dv.setUint32(e + 12, vlen, true);
      if (sfrom < 0) sfrom = kpos;
      else if (send !== kpos) together = false; // not back to back: copied one by one below
      send = kpos + klen + vlen;
      data += klen + vlen;
      e += ELEMENT_SIZE;
    }
    if (from === to) return;
    if (together) {
      copyBytes(buf, start, sbuf, sfrom, send - sfrom);
      return;
    }
    let at = start;
    for (let i = from; i < to; i++) {
      // The page was validated when read: its key and value lie inside it, the value after the key.
      const se = PAGE_HEADER_SIZE + i * ELEMENT_SIZE;
      const len = sdv.getUint32(se + 8, true) + sdv.getUint32(se + 12, true);
      copyBytes(buf, at, sbuf, se + sdv.getUint32(se + 4, true), len);
      at += len;
    }
  };
  let k = 0;
  let next = 0;
  for (let i = 0; i <= n; i++) {
    if (!(k < h && held!.at(k) === i) && i < n) continue;
    copyRun(next, i);
    next = i;
    // The inserted keys below element i, in key order; then element i or the put replacing it.
    while (k < h && held!.at(k) === i && !held!.replaces(k)) putHeld(k++);
    if (i === n) break;
    if (k < h && held!.at(k) === i) {
      putHeld(k++);
      next = i + 1;
    }
  }
  invariant(k === h && e === PAGE_HEADER_SIZE + count * ELEMENT_SIZE, 'pending leaf puts out of order');
  buf.fill(0, data);
  ctx.write(pgid, buf);
  return [makeInode(0, first, EMPTY, pgid, null)];
}

/** Free node's old page and write `inodes` (node's elements, children already spilled) as new pages. */
function writeNode(
  node: Node,
  inodes: Inode[],
  total: number | undefined,
  ctx: TreeContext,
  fillPercent: number,
): Inode[] {
  if (node.pgid !== 0) {
    ctx.free(node.pgid, node.overflow);
    node.pgid = 0;
  }
  const ps = ctx.pageSize;
  const refs: Inode[] = [];
  for (const part of splitForPages(node.leaf, inodes, ps, fillPercent, total)) {
    const npages = Math.ceil(part.size / ps);
    const pgid = ctx.allocate(npages, node.leaf && node.parent !== null);
    const buf = ctx.pageBuffer(npages);
    writeInodes(buf, pgid, node.leaf, inodes, npages - 1, part.start, part.end);
    ctx.write(pgid, buf);
    refs.push(makeInode(0, part.end > part.start ? inodes[part.start]!.key : EMPTY, EMPTY, pgid, null));
  }
  return refs;
}
