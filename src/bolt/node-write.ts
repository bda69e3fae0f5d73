/**
 * The page image of a node's elements (bbolt's node.write), and how a node's elements are grouped
 * into page-sized runs at spill. Pure: it fills the buffers it is given.
 */
import { invariant } from './errors.ts';
import { elementSize, type Inode } from './inode.ts';
import { BRANCH_FLAG, ELEMENT_SIZE, LEAF_FLAG, PAGE_HEADER_SIZE, writePageHeader, writeU64 } from './page.ts';

/** A run of inodes [start, end) that becomes one page (plus overflow) of `size` bytes. */
export interface PagePart {
  start: number;
  end: number;
  size: number;
}

/** Groups inodes into runs that each become one page (plus overflow), as bbolt's spill does. */
export function splitForPages(
  leaf: boolean,
  inodes: readonly Inode[],
  pageSize: number,
  fillPercent: number,
  total?: number,
): PagePart[] {
  const n = inodes.length;
  if (total === undefined) total = inodesSize(leaf, inodes);
  if (n <= 4 || total <= pageSize) return [{ start: 0, end: n, size: total }];
  const threshold = Math.floor(pageSize * fillPercent);
  const parts: PagePart[] = [];
  let start = 0;
  let curSize = PAGE_HEADER_SIZE;
  for (let i = 0; i < n; i++) {
    const inode = inodes[i]!;
    const es = inode.size;
    if (i - start >= 2 && n - i >= 2 && curSize + es > threshold) {
      parts.push({ start, end: i, size: curSize });
      start = i;
      curSize = PAGE_HEADER_SIZE;
    }
    curSize += es;
  }
  parts.push({ start, end: n, size: curSize });
  return parts;
}

export function inodesSize(leaf: boolean, inodes: readonly Inode[]): number {
  let size = PAGE_HEADER_SIZE;
  for (const inode of inodes) size += elementSize(leaf, inode);
  return size;
}

/** Serialize inodes[start, end) as a page image into buf (which must be large enough), all of it written. */
export function writeInodes(
  buf: Uint8Array,
  pgid: number,
  leaf: boolean,
  inodes: readonly Inode[],
  overflow: number,
  start = 0,
  end = inodes.length,
): void {
  const count = end - start;
  invariant(count < 0xffff, `page ${pgid} would hold ${count} elements`);
  const dv = writePageHeader(buf, pgid, leaf ? LEAF_FLAG : BRANCH_FLAG, count, overflow);
  let data = PAGE_HEADER_SIZE + count * ELEMENT_SIZE;
  for (let j = 0; j < count; j++) {
    const inode = inodes[start + j]!;
    const e = PAGE_HEADER_SIZE + j * ELEMENT_SIZE;
    const pos = data - e;
    if (leaf) {
      dv.setUint32(e, inode.flags, true);
      dv.setUint32(e + 4, pos, true);
      const klen = inode.keyLength;
      dv.setUint32(e + 8, klen, true);
      const vlen = inode.valueLength;
      dv.setUint32(e + 12, vlen, true);
      inode.copyKey(buf, data);
      data += klen;
      inode.copyValue(buf, data);
      data += vlen;
    } else {
      dv.setUint32(e, pos, true);
      const klen = inode.keyLength;
      dv.setUint32(e + 4, klen, true);
      invariant(inode.pgid >= 2, `branch element points at page ${inode.pgid}`);
      writeU64(dv, e + 8, inode.pgid);
      inode.copyKey(buf, data);
      data += klen;
    }
  }
  // The buffer may hold old bytes (TreeContext.pageBuffer): what no element uses is zeroed.
  buf.fill(0, data);
}
