import { compare } from './bytes.ts';
import { decodeFreelistPage } from './freelist/index.ts';
import { PGID_NO_FREELIST } from './meta.ts';
import { BUCKET_HEADER_SIZE, BUCKET_LEAF_FLAG, Page, pageTypeName, readU64 } from './page.ts';
import type { Tx } from './tx.ts';

function hexKey(k: Uint8Array): string {
  const hex = Buffer.from(k.buffer, k.byteOffset, Math.min(k.length, 32)).toString('hex');
  return k.length > 32 ? `0x${hex}…` : `0x${hex}`;
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Walks every tree a transaction can see. For each page run it calls `visit`; a page that cannot be
 * read or has the wrong type is reported through `problem` and its subtree skipped.
 */
function walk(
  tx: Tx,
  visit: (pgid: number, overflow: number) => void,
  problem: (msg: string) => void,
  checkKeys: boolean,
): void {
  const limit = tx.meta.pgid;
  const visited = new Set<number>();
  const walkBucketValue = (value: Uint8Array, depth: number): void => {
    if (value.length < BUCKET_HEADER_SIZE) {
      problem('bucket header truncated');
      return;
    }
    const dv = new DataView(value.buffer, value.byteOffset, value.byteLength);
    let root: number;
    try {
      root = readU64(dv, 0);
    } catch (err) {
      problem(message(err));
      return;
    }
    if (root === 0) {
      try {
        const page = new Page(value.subarray(BUCKET_HEADER_SIZE));
        page.validate();
        if (!page.isLeaf) problem(`inline bucket: invalid type: ${pageTypeName(page.flags)}`);
        else walkPage(page, 0, undefined, undefined, depth + 1);
      } catch (err) {
        problem(`inline bucket: ${message(err)}`);
      }
      return;
    }
    walkId(root, undefined, undefined, depth + 1);
  };

  const walkId = (
    pgid: number,
    minKey: Uint8Array | undefined,
    maxKey: Uint8Array | undefined,
    depth: number,
  ): void => {
    if (depth > 200) {
      problem(`page ${pgid}: tree deeper than 200 levels (cycle?)`);
      return;
    }
    if (pgid >= limit || pgid < 2) {
      problem(`page ${pgid}: out of bounds: ${limit}`);
      return;
    }
    let page: Page;
    try {
      page = tx.pager.page(pgid, limit);
    } catch (err) {
      problem(`page ${pgid}: ${message(err)}`);
      return;
    }
    if (!page.isLeaf && !page.isBranch) {
      problem(`page ${pgid}: invalid type: ${pageTypeName(page.flags)}`);
      return;
    }
    const again = visited.has(pgid);
    visit(pgid, page.overflow);
    // A page reached twice is reported by visit; descending again could loop forever.
    if (again) return;
    visited.add(pgid);
    walkPage(page, pgid, minKey, maxKey, depth);
  };

  const walkPage = (
    page: Page,
    pgid: number,
    minKey: Uint8Array | undefined,
    maxKey: Uint8Array | undefined,
    depth: number,
  ): void => {
    if (checkKeys) {
      for (let i = 0; i < page.count; i++) {
        const k = page.key(i);
        if (i > 0 && compare(page.key(i - 1), k) >= 0) problem(`page ${pgid}: key ${i} is not above key ${i - 1}`);
        if (minKey && compare(k, minKey) < 0) problem(`page ${pgid}: key ${i} is below its parent's key range`);
        if (maxKey && compare(k, maxKey) >= 0) problem(`page ${pgid}: key ${i} is above its parent's key range`);
      }
    }
    if (page.isBranch) {
      for (let i = 0; i < page.count; i++) {
        const next = i + 1 < page.count ? page.key(i + 1) : maxKey;
        walkId(page.child(i), page.key(i), next, depth + 1);
      }
    } else {
      for (let i = 0; i < page.count; i++) {
        if (page.elementFlags(i) & BUCKET_LEAF_FLAG) walkBucketValue(page.value(i), depth);
      }
    }
  };

  walkId(tx.meta.root, undefined, undefined, 0);
}

/** The findings bbolt's tx.Check makes, for the snapshot tx sees. */
export function checkTx(tx: Tx): string[] {
  const problems: string[] = [];
  const limit = tx.meta.pgid;
  const reachable = new Map<number, number>();
  const mark = (id: number, parent: number): void => {
    if (reachable.has(id)) problems.push(`page ${id}: multiple references (parent ${parent})`);
    reachable.set(id, parent);
  };
  mark(0, 0);
  mark(1, 0);

  // The free set this snapshot wrote, read back from its freelist page; for a snapshot whose meta
  // says "no freelist", the handle's own freelist when it describes exactly this snapshot.
  let freed: Set<number> | null = null;
  const live = tx.meta.freelist === PGID_NO_FREELIST ? tx.db.freeSetOf(tx) : null;
  if (live) {
    freed = new Set();
    for (const id of live) {
      if (freed.has(id)) problems.push(`page ${id}: already freed`);
      freed.add(id);
      if (id >= limit) problems.push(`page ${id}: out of bounds: ${limit}`);
    }
  } else if (tx.meta.freelist !== PGID_NO_FREELIST) {
    freed = new Set();
    try {
      const fid = tx.meta.freelist;
      const ps = tx.db.pageSize;
      const head = tx.pager.readRaw(fid * ps, ps);
      const overflow = new DataView(head.buffer, head.byteOffset, head.byteLength).getUint32(12, true);
      if (fid + overflow >= limit) problems.push(`page ${fid}: out of bounds: ${limit}`);
      for (let i = 0; i <= overflow && fid + i < limit; i++) mark(fid + i, 0);
      const buf = overflow === 0 ? head : tx.pager.readRaw(fid * ps, (overflow + 1) * ps);
      for (const id of decodeFreelistPage(buf)) {
        if (freed.has(id)) problems.push(`page ${id}: already freed`);
        freed.add(id);
        if (id >= limit) problems.push(`page ${id}: out of bounds: ${limit}`);
      }
    } catch (err) {
      problems.push(`freelist: ${message(err)}`);
    }
  }

  walk(
    tx,
    (pgid, overflow) => {
      for (let i = 0; i <= overflow; i++) {
        const id = pgid + i;
        if (id >= limit) problems.push(`page ${id}: out of bounds: ${limit}`);
        mark(id, pgid);
      }
    },
    (msg) => problems.push(msg),
    true,
  );

  // The top level holds buckets only; a plain value there is damage (or a foreign writer's doing).
  try {
    const c = tx.cursor();
    for (let e = c.first(); e; e = c.next()) {
      if (e[1] !== null) problems.push(`key ${hexKey(e[0])} at the top level is not a bucket`);
    }
  } catch (err) {
    problems.push(`top level: ${message(err)}`);
  }

  if (freed) {
    for (const id of freed) if (reachable.has(id)) problems.push(`page ${id}: reachable freed`);
    for (let id = 0; id < limit; id++) {
      if (!reachable.has(id) && !freed.has(id)) problems.push(`page ${id}: unreachable unfreed`);
    }
  }
  return problems;
}
