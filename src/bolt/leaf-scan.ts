/**
 * A bulk, in-order walk of every key/value of one bucket, for rebuilding an in-memory index from a
 * whole bucket (the revision layer's reopen reads every revision once). A cursor walk reads each
 * leaf through the page cache (a fresh buffer per page, cached pages evicting useful ones) and cuts
 * two Buffer views per entry; here the branch pages come from the cache as usual, but the leaves
 * are read in large positional reads into one reused buffer that bypasses the cache, and the
 * visitor gets offsets into it instead of views.
 *
 * Same answer as a cursor walk from the first key (nested buckets skipped), same snapshot: it reads
 * what the transaction sees. A bucket this (writable) transaction has modified, or an inline one,
 * is walked with a cursor instead, since its entries are not (all) on disk.
 */
import type { Bucket } from './bucket.ts';
import { BoltError } from './errors.ts';
import { BUCKET_LEAF_FLAG, corrupt, ELEMENT_SIZE, Page, PAGE_HEADER_SIZE } from './page.ts';

/**
 * One entry: key bytes [keyOff, keyOff+keyLen) of `keyBuf`, value bytes [valOff, valOff+valLen) of
 * `valBuf` (often the same buffer). The bytes are only valid during the call: the buffer is reused.
 * Return false to stop.
 */
export type LeafVisitor = (
  keyBuf: Uint8Array,
  keyOff: number,
  keyLen: number,
  valBuf: Uint8Array,
  valOff: number,
  valLen: number,
) => boolean | void;

/** Leaves located per window; their pages are then read sorted by id, nearby ones merged. */
const WINDOW_LEAVES = 512;
/** Free pages between two wanted leaves that one read may span rather than issuing a second read. */
const MAX_GAP_PAGES = 4;
/** Largest single read, in pages (4 MiB of 4 KiB pages). */
const MAX_RUN_PAGES = 1024;
const MAX_DEPTH = 64;

/** Visit every entry of `bucket` in key order (nested buckets skipped). */
export function scanLeaves(bucket: Bucket, fn: LeafVisitor): void {
  const tx = bucket.tx;
  tx.checkOpen();
  if (typeof fn !== 'function')
    throw new BoltError('ERR_INVALID_ARGUMENT', 'scanLeaves: the visitor must be a function');
  if (bucket.rootNode !== null || bucket.rootPgid === 0) {
    cursorWalk(bucket, fn);
    return;
  }
  const leaves = leafIds(bucket);
  const ps = tx.pager.pageSize;
  const limit = tx.meta.pgid;
  const file = tx.pager.file;
  let scratch = Buffer.allocUnsafeSlow(0);
  const where = new Map<number, number>();
  for (let w = 0; w < leaves.length; w += WINDOW_LEAVES) {
    const win = leaves.slice(w, w + WINDOW_LEAVES);
    const sorted = [...new Set(win)].sort((a, b) => a - b);
    // plan the reads: [start page, page count, offset in scratch]
    const runs: number[] = [];
    let bytes = 0;
    for (let i = 0; i < sorted.length; ) {
      const start = sorted[i]!;
      let end = start + 1;
      i++;
      while (i < sorted.length && sorted[i]! - end <= MAX_GAP_PAGES && sorted[i]! + 1 - start <= MAX_RUN_PAGES)
        end = sorted[i++]! + 1;
      runs.push(start, end - start, bytes);
      bytes += (end - start) * ps;
    }
    if (scratch.length < bytes) scratch = Buffer.allocUnsafeSlow(bytes);
    where.clear();
    for (let r = 0; r < runs.length; r += 3) {
      const start = runs[r]!;
      const len = runs[r + 1]! * ps;
      const off = runs[r + 2]!;
      const got = file.read(scratch.subarray(off, off + len), start * ps);
      if (got < len) throw corrupt(`short read at offset ${start * ps}: file truncated`);
      for (let p = start; p < start + runs[r + 1]!; p++) where.set(p, off + (p - start) * ps);
    }
    for (const id of win) {
      const off = where.get(id)!;
      let page = new Page(scratch.subarray(off, off + ps));
      if (page.id !== id) throw corrupt(`page ${id}: header says id ${page.id}`);
      if (!page.isLeaf)
        throw corrupt(`page ${id}: expected a leaf at the bottom of the tree, found flags ${page.flags}`);
      if (page.overflow > 0) {
        if (id + page.overflow >= limit)
          throw corrupt(`page ${id}: overflow ${page.overflow} runs past high water ${limit}`);
        // a leaf with overflow pages: from the cache path, which reads them whole
        page = tx.treePage(id);
      } else page.validate();
      if (visitLeaf(page, fn) === false) return;
    }
  }
}

/** Ids of the bucket's leaves in key order, found through its branch pages (read via the cache). */
function leafIds(bucket: Bucket): number[] {
  const tx = bucket.tx;
  const limit = tx.meta.pgid;
  // every leaf of a bbolt tree is at the same depth: find it down the leftmost path
  let depth = 0;
  for (let p = tx.treePage(bucket.rootPgid); !p.isLeaf; p = tx.treePage(p.child(0))) {
    if (++depth > MAX_DEPTH) throw corrupt('tree deeper than 64 levels: a branch page points back up the tree');
    if (p.count === 0) throw corrupt(`page ${p.id}: empty branch page`);
  }
  const out: number[] = [];
  if (depth === 0) {
    out.push(bucket.rootPgid);
    return out;
  }
  const walk = (pgid: number, level: number): void => {
    const p = tx.treePage(pgid);
    if (p.isLeaf) throw corrupt(`page ${pgid}: a leaf above the bottom of the tree`);
    for (let i = 0; i < p.count; i++) {
      const c = p.child(i);
      if (level + 1 === depth) {
        if (!(c >= 2 && c < limit)) throw corrupt(`page ${c} out of bounds (high water ${limit})`);
        out.push(c);
      } else walk(c, level + 1);
    }
  };
  walk(bucket.rootPgid, 0);
  return out;
}

function visitLeaf(page: Page, fn: LeafVisitor): boolean {
  const dv = page.dv;
  const buf = page.buf;
  for (let i = 0; i < page.count; i++) {
    const e = PAGE_HEADER_SIZE + i * ELEMENT_SIZE;
    if (dv.getUint32(e, true) & BUCKET_LEAF_FLAG) continue;
    const k = e + dv.getUint32(e + 4, true);
    const klen = dv.getUint32(e + 8, true);
    if (fn(buf, k, klen, buf, k + klen, dv.getUint32(e + 12, true)) === false) return false;
  }
  return true;
}

function cursorWalk(bucket: Bucket, fn: LeafVisitor): void {
  const c = bucket.cursor();
  for (let e = c.first(); e !== undefined; e = c.next()) {
    const [k, v] = e;
    if (v === null) continue;
    if (fn(k, 0, k.length, v, 0, v.length) === false) return;
  }
}
