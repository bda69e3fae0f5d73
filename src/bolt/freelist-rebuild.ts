import { BoltError } from './errors.ts';
import type { FileIO } from './file.ts';
import {
  BRANCH_FLAG,
  BUCKET_HEADER_SIZE,
  BUCKET_LEAF_FLAG,
  LEAF_FLAG,
  Page,
  PAGE_HEADER_SIZE,
  readU64,
} from './page.ts';

/** Pages per read: nearby pages are read together, up to this many (1 MiB at 4 KiB pages). */
const WINDOW_PAGES = 256;
/** Unneeded pages a read may span to reach the next needed one: a page copy is cheaper than a syscall. */
const MAX_GAP_PAGES = 8;
/** Levels of pages (over all nested buckets) before we call the file damaged. */
const MAX_LEVELS = 4096;

function damaged(msg: string): BoltError {
  return new BoltError('ERR_CORRUPT_PAGE', msg);
}

/**
 * The free pages of a file whose meta records no freelist (written by a commit that a crash
 * interrupted before the clean close that writes it): every page below the high-water mark
 * that no tree reaches. The walk goes one level at a time over all trees at once, in page order,
 * reading nearby pages with one large read; it reads a leaf's first page only (its header holds
 * its overflow, its element headers tell whether it holds sub-buckets) and the rest of a leaf
 * only when it holds sub-buckets. So it costs about one sequential pass over the branch pages
 * and leaf heads, not a syscall per page. Reachable pages are kept in a bitmap (a bit a page).
 */
export function rebuildFreePages(file: FileIO, pageSize: number, highWater: number, root: number): number[] {
  const ps = pageSize;
  const seen = new Uint8Array(Math.ceil(highWater / 8));
  const mark = (id: number): void => {
    const byte = id >>> 3;
    const bit = 1 << (id & 7);
    if (seen[byte]! & bit) throw damaged(`page ${id}: multiple references`);
    seen[byte]! |= bit;
  };
  const window = Buffer.allocUnsafeSlow(WINDOW_PAGES * ps);
  const readFull = (id: number, pages: number): Buffer => {
    const buf = Buffer.allocUnsafeSlow(pages * ps);
    if (file.read(buf, id * ps) < buf.length) throw damaged(`page ${id}: file truncated`);
    return buf;
  };

  let level: number[] = [root];
  let next: number[] = [];
  /** Sub-bucket roots found in a leaf page; inline buckets are walked in place. */
  const visitLeafBuckets = (page: Page): void => {
    for (let i = 0; i < page.count; i++) {
      if (!(page.elementFlags(i) & BUCKET_LEAF_FLAG)) continue;
      const value = page.value(i);
      if (value.length < BUCKET_HEADER_SIZE) throw damaged('bucket header truncated');
      const sub = readU64(new DataView(value.buffer, value.byteOffset, value.byteLength), 0);
      if (sub !== 0) next.push(sub);
      else {
        const inline = new Page(value.subarray(BUCKET_HEADER_SIZE));
        inline.validate();
        visitLeafBuckets(inline);
      }
    }
  };

  const visit = (id: number, head: Buffer): void => {
    const dv = new DataView(head.buffer, head.byteOffset, PAGE_HEADER_SIZE);
    if (readU64(dv, 0) !== id) throw damaged(`page ${id}: header says id ${readU64(dv, 0)}`);
    const flags = dv.getUint16(8, true);
    const count = dv.getUint16(10, true);
    const overflow = dv.getUint32(12, true);
    if (flags !== LEAF_FLAG && flags !== BRANCH_FLAG) throw damaged(`page ${id}: invalid type`);
    if (id + overflow >= highWater) throw damaged(`page ${id}: overflow past high water`);
    for (let i = 0; i <= overflow; i++) mark(id + i);
    const full = (): Page => {
      const p = new Page(overflow === 0 ? head : readFull(id, overflow + 1));
      p.validate();
      return p;
    };
    if (flags === BRANCH_FLAG) {
      const p = full();
      for (let i = 0; i < p.count; i++) next.push(p.child(i));
      return;
    }
    // A leaf: its element headers (in the first page) say whether any value is a sub-bucket.
    const n = Math.min(count, (ps - PAGE_HEADER_SIZE) / 16);
    const edv = new DataView(head.buffer, head.byteOffset, ps);
    let hasBucket = count > n;
    for (let i = 0; i < n && !hasBucket; i++)
      if (edv.getUint32(PAGE_HEADER_SIZE + i * 16, true) & BUCKET_LEAF_FLAG) hasBucket = true;
    if (hasBucket) visitLeafBuckets(full());
  };

  for (let depth = 0; level.length > 0; depth++) {
    if (depth > MAX_LEVELS) throw damaged(`trees deeper than ${MAX_LEVELS} levels`);
    const ids = Float64Array.from(level).sort();
    next = [];
    let i = 0;
    while (i < ids.length) {
      const start = ids[i]!;
      if (!(start >= 2 && start < highWater)) throw damaged(`page ${start}: out of bounds: ${highWater}`);
      // Extend the read over the following needed pages while they are close and fit the window.
      let j = i + 1;
      while (j < ids.length && ids[j]! - ids[j - 1]! <= MAX_GAP_PAGES && ids[j]! - start < WINDOW_PAGES) j++;
      const last = Math.min(ids[j - 1]!, highWater - 1);
      const len = (last - start + 1) * ps;
      if (file.read(window.subarray(0, len), start * ps) < len) throw damaged(`page ${start}: file truncated`);
      for (let k = i; k < j; k++) {
        const id = ids[k]!;
        if (id >= highWater) throw damaged(`page ${id}: out of bounds: ${highWater}`);
        if (k > i && id === ids[k - 1]) throw damaged(`page ${id}: multiple references`);
        const off = (id - start) * ps;
        visit(id, window.subarray(off, off + ps));
      }
      i = j;
    }
    level = next;
  }
  const free: number[] = [];
  for (let id = 2; id < highWater; id++) if (!(seen[id >>> 3]! & (1 << (id & 7)))) free.push(id);
  return free;
}
