/**
 * An independent reader of the bbolt page layout, just enough to tell corruption tests where each
 * kind of page lives in a valid file (meta, freelist, branch, leaf, overflow continuation) and to
 * re-seal a meta page after editing it. Written from the format facts in
 * /work/shared/docs/bbolt-format.md, deliberately not sharing code with the engine under test.
 */

export const PAGE_BRANCH = 0x01;
export const PAGE_LEAF = 0x02;
export const PAGE_META = 0x04;
export const PAGE_FREELIST = 0x10;
const BUCKET_LEAF_FLAG = 0x01;
const MAGIC = 0xed0cdaed;

export interface MetaInfo {
  page: 0 | 1;
  valid: boolean;
  pageSize: number;
  root: bigint;
  freelist: bigint;
  pgid: bigint;
  txid: bigint;
}

export type PageKind = 'meta' | 'freelist' | 'branch' | 'leaf' | 'overflow';

export interface PageMap {
  pageSize: number;
  meta: MetaInfo;
  /** Page ids by kind; 'overflow' are continuation pages of multi-page nodes and freelists. */
  pages: Record<PageKind, number[]>;
  /** How many buckets are stored inline in their parent's leaf. */
  inlineBuckets: number;
}

/** 64-bit FNV-1a, the meta checksum. */
export function fnv1a64(bytes: Uint8Array): bigint {
  let h = 0xcbf29ce484222325n;
  for (const b of bytes) {
    h ^= BigInt(b);
    h = (h * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return h;
}

function dv(buf: Uint8Array): DataView {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
}

export function readMeta(file: Uint8Array, page: 0 | 1, pageSize: number): MetaInfo {
  const off = page * pageSize;
  const bad: MetaInfo = { page, valid: false, pageSize: 0, root: 0n, freelist: 0n, pgid: 0n, txid: 0n };
  if (file.length < off + 80) return bad;
  const v = dv(file.subarray(off, off + 80));
  const valid =
    v.getUint32(16, true) === MAGIC &&
    v.getUint32(20, true) === 2 &&
    v.getBigUint64(72, true) === fnv1a64(file.subarray(off + 16, off + 72));
  return {
    page,
    valid,
    pageSize: v.getUint32(24, true),
    root: v.getBigUint64(32, true),
    freelist: v.getBigUint64(48, true),
    pgid: v.getBigUint64(56, true),
    txid: v.getBigUint64(64, true),
  };
}

/** Recompute a meta page's checksum after its fields were edited. */
export function resealMeta(file: Uint8Array, page: 0 | 1, pageSize: number): void {
  const off = page * pageSize;
  dv(file).setBigUint64(off + 72, fnv1a64(file.subarray(off + 16, off + 72)), true);
}

/** The meta a reader uses: the valid one with the higher txid. */
export function currentMeta(file: Uint8Array, pageSize = 4096): MetaInfo {
  const metas = [readMeta(file, 0, pageSize), readMeta(file, 1, pageSize)].filter((m) => m.valid);
  if (metas.length === 0) throw new Error('no valid meta page');
  return metas.reduce((a, b) => (b.txid > a.txid ? b : a));
}

/** Walk the tree of a valid file and classify every reachable page. */
export function mapPages(file: Uint8Array, pageSize = 4096): PageMap {
  const meta = currentMeta(file, pageSize);
  const pages: Record<PageKind, number[]> = { meta: [0, 1], freelist: [], branch: [], leaf: [], overflow: [] };
  const header = (id: number): { flags: number; count: number; overflow: number } => {
    const v = dv(file.subarray(id * pageSize, id * pageSize + 16));
    return { flags: v.getUint16(8, true), count: v.getUint16(10, true), overflow: v.getUint32(12, true) };
  };
  const addOverflow = (id: number, n: number): void => {
    for (let i = 1; i <= n; i++) pages.overflow.push(id + i);
  };
  if (meta.freelist !== 0xffffffffffffffffn) {
    const id = Number(meta.freelist);
    pages.freelist.push(id);
    addOverflow(id, header(id).overflow);
  }
  const seen = new Set<number>();
  let inlineBuckets = 0;
  const visitLeafBuckets = (base: number, count: number): void => {
    for (let i = 0; i < count; i++) {
      const e = base + 16 + i * 16;
      const v = dv(file.subarray(e, e + 16));
      if ((v.getUint32(0, true) & BUCKET_LEAF_FLAG) === 0) continue;
      const valueAt = e + v.getUint32(4, true) + v.getUint32(8, true);
      const root = dv(file.subarray(valueAt, valueAt + 8)).getBigUint64(0, true);
      if (root === 0n) {
        // Inline bucket: a leaf image follows the 16-byte bucket header inside the value.
        inlineBuckets++;
        const inline = valueAt + 16;
        visitLeafBuckets(inline, dv(file.subarray(inline, inline + 16)).getUint16(10, true));
      } else {
        visit(Number(root));
      }
    }
  };
  const visit = (id: number): void => {
    if (seen.has(id)) return;
    seen.add(id);
    const h = header(id);
    addOverflow(id, h.overflow);
    if (h.flags === PAGE_BRANCH) {
      pages.branch.push(id);
      for (let i = 0; i < h.count; i++) {
        const e = id * pageSize + 16 + i * 16;
        visit(Number(dv(file.subarray(e, e + 16)).getBigUint64(8, true)));
      }
    } else if (h.flags === PAGE_LEAF) {
      pages.leaf.push(id);
      visitLeafBuckets(id * pageSize, h.count);
    } else {
      throw new Error(`page ${id}: unexpected flags ${h.flags}`);
    }
  };
  visit(Number(meta.root));
  return { pageSize, meta, pages, inlineBuckets };
}
