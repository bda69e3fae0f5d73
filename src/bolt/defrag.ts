/**
 * Online defragmentation. etcd's defrag (bbolt's compact into a new file) stops every write for its
 * whole run; this one does not:
 *
 * 1. Copy: from a read transaction, every bucket is copied into a new file beside the database
 *    (dense leaves, committed in bounded chunks) while writers keep committing to the old file.
 * 2. Catch up: a newer read transaction is diffed against the one copied and the difference applied
 *    to the new file, a few times, each round smaller. The diff is cheap because the tree is
 *    copy-on-write and a page a reader can see is never reused: a page id present in both snapshots
 *    is the same subtree with the same content, so only the paths writers touched are read.
 * 3. Swap: holding the write slot (writers queue, readers go on), apply the last small diff, make
 *    the new file durable, rename it over the database and continue on it. This pause is bounded by
 *    what was written since the last round, not by the size of the database.
 *
 * Readers open at the swap finish on the old file (its descriptor stays open until the last one
 * ends). Crash safety: until the rename the database file is untouched (a crash leaves a stray
 * `.defrag` file that the next defragment removes); the new file is fsynced before the rename, and
 * the rename is atomic, so a crash at any point leaves one complete database at the path. The new
 * file is locked before it is renamed into place, so the path is never unlocked.
 */
import fs from 'node:fs';
import type { Bucket } from './bucket.ts';
import type { DB } from './db.ts';
import { BoltError } from './errors.ts';
import { nodeFileSystem } from './node-file.ts';
import { BUCKET_HEADER_SIZE, BUCKET_LEAF_FLAG, Page, readU64 } from './page.ts';
import type { Tx } from './tx.ts';

export interface DefragmentOptions {
  /** Commit the new file after about this many bytes of copied keys and values. Default 256 KiB. */
  txMaxSize?: number;
  /** Most catch-up rounds before the swap. Default 8. */
  maxRounds?: number;
  /** Go to the swap once a round applied no more than this many changes. Default 256. */
  settleChanges?: number;
  /** Cancels before the swap (ERR_ABORTED); the database is left as it was. */
  signal?: AbortSignal;
  /** Called as the copy advances: bytes of keys and values copied, and the source size. */
  onProgress?: (copiedBytes: number, sourceBytes: number) => void;
}

export interface DefragmentResult {
  /** File bytes in use (high-water mark) before and after. */
  before: number;
  after: number;
  /** How long writers were held at the swap, in milliseconds. */
  pauseMs: number;
  totalMs: number;
  /** Catch-up rounds run before the swap (the last diff, inside the pause, not counted). */
  rounds: number;
  /** Changes (puts, deletes, bucket changes) applied by the catch-up rounds and inside the pause. */
  catchUpChanges: number;
  pauseChanges: number;
}

const SWAPPED = Symbol('swapped');
const YIELD_EVERY_MS = 2;
const SYNC_EVERY_BYTES = 1 << 20;

export function defragPath(path: string): string {
  return `${path}.defrag`;
}

export async function defragmentDB(db: DB, options: DefragmentOptions = {}): Promise<DefragmentResult> {
  db.checkNotClosed();
  if (db.readOnly) throw new BoltError('ERR_DATABASE_READ_ONLY', 'database is in read-only mode');
  const fsys = db.fileSystem;
  if (!fsys.rename || !fsys.remove)
    throw new BoltError('ERR_INVALID_OPTION', 'the file system cannot rename files: online defragmentation needs it');
  const txMaxSize = options.txMaxSize ?? 1 << 18;
  const maxRounds = options.maxRounds ?? 8;
  const settle = options.settleChanges ?? 256;
  if (!(txMaxSize >= 0) || !(maxRounds >= 0) || !(settle >= 0))
    throw new BoltError('ERR_INVALID_OPTION', 'defragment options must be numbers >= 0');
  const started = performance.now();
  const tmp = defragPath(db.path);
  fsys.remove(tmp);
  const { open } = await import('./db.ts');
  const o = db.openOptions;
  const dst = open(tmp, {
    fileSystem: fsys,
    pageSize: db.pageSize,
    noSync: true,
    noFreelistSync: o.noFreelistSync,
    freelist: o.freelist,
    cacheSize: o.cacheSize,
    fileMode: o.fileMode,
  });
  let snap: Tx | null = db.begin(false);
  const before = snap.size;
  let swapped = false;
  /** A descriptor on the old file, closed off the event loop (see below); -1 if none. */
  let oldFile = -1;
  let pauseMs = 0;
  let rounds = 0;
  let catchUpChanges = 0;
  let pauseChanges = 0;
  const applier = new Applier(dst, txMaxSize, options);
  applier.sourceBytes = before;
  try {
    // 1. The bulk copy.
    await diffBuckets(applier, null, null, snap, rootOf(snap));
    await applier.commit();
    applier.dense = false;
    // 2. Catch up while writers go on.
    while (rounds < maxRounds) {
      checkAbort(options.signal);
      const next = db.begin(false);
      if (next.id === snap.id) {
        next.abort();
        break;
      }
      const n0 = applier.changes;
      await diffBuckets(applier, snap, rootOf(snap), next, rootOf(next));
      await applier.commit();
      snap.abort();
      snap = next;
      rounds++;
      catchUpChanges += applier.changes - n0;
      if (applier.changes - n0 <= settle) break;
    }
    // Make the bulk durable now, so the pause only syncs what it writes.
    await dst.pager.syncAsync();
    checkAbort(options.signal);
    // 3. The swap, holding the write slot.
    try {
      await db.updateAsync(async (wtx) => {
        const t0 = performance.now();
        applier.holding = true;
        const last = db.begin(false);
        try {
          // The new file continues the old one's transaction ids.
          const dmeta = dst.view((t) => ({ ...t.meta }));
          dst.installMeta({ ...dmeta, txid: Math.max(dmeta.txid, last.id) });
          const n0 = applier.changes;
          await diffBuckets(applier, snap, rootOf(snap!), last, rootOf(last));
          await applier.commit(true);
          pauseChanges = applier.changes - n0;
          await dst.pager.syncAsync();
        } finally {
          last.abort();
        }
        // Closing the last descriptor of the replaced file frees its blocks inside close(), tens of
        // milliseconds for a large file: hold one more, so the engine's synchronous close is not the
        // last, and close it on the thread pool.
        if (fsys === nodeFileSystem) {
          try {
            oldFile = fs.openSync(db.path, 'r');
          } catch {
            oldFile = -1;
          }
        }
        fsys.rename!(tmp, db.path);
        // Nothing below may fail or yield: the database continues on the new file from here.
        swapped = true;
        wtx.abort();
        db.adoptFile(dst);
        pauseMs = performance.now() - t0;
        throw SWAPPED;
      });
    } catch (err) {
      if (err !== SWAPPED) throw err;
    }
  } finally {
    snap?.abort();
    if (oldFile >= 0) fs.close(oldFile, () => undefined);
    if (!swapped) {
      applier.abort();
      try {
        dst.close();
      } finally {
        fsys.remove(tmp);
      }
    }
  }
  const after = db.view((t) => t.size);
  return { before, after, pauseMs, totalMs: performance.now() - started, rounds, catchUpChanges, pauseChanges };
}

function checkAbort(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new BoltError('ERR_ABORTED', 'defragmentation aborted');
}

// ---- writing into the new file ----

/** Applies changes at a path of buckets in the new file, committing in bounded transactions. */
class Applier {
  private tx: Tx | null = null;
  private readonly path: Uint8Array[] = [];
  /** Destination buckets along `path`, valid for the current transaction. */
  private open: Bucket[] = [];
  private pending = 0;
  private copied = 0;
  changes = 0;
  /** For progress reports: the size of the snapshot being copied. */
  sourceBytes = 0;
  /** Fill leaves completely while copying in key order; later inserts land between keys. */
  dense = true;

  constructor(
    private readonly dst: DB,
    private readonly txMaxSize: number,
    private readonly options: DefragmentOptions,
  ) {}

  private writer(): Tx {
    if (!this.tx) {
      this.tx = this.dst.begin(true);
      this.open = [];
    }
    return this.tx;
  }

  /** The destination bucket at the current path (the path is never empty when called). */
  private bucket(): Bucket {
    const tx = this.writer();
    const depth = this.path.length;
    if (this.open.length === depth) return this.open[depth - 1]!;
    let b: Bucket | undefined = this.open[this.open.length - 1];
    for (let i = this.open.length; i < depth; i++) {
      const name = this.path[i]!;
      b = b ? b.bucket(name) : tx.bucket(name);
      if (!b) throw new BoltError('ERR_BUCKET_NOT_FOUND', 'defragment: a bucket of the copy is missing');
      if (this.dense) b.fillPercent = 1.0;
      this.open.push(b);
    }
    return b!;
  }

  push(name: Uint8Array): void {
    this.path.push(name);
  }
  pop(): void {
    this.path.pop();
    if (this.open.length > this.path.length) this.open.length = this.path.length;
  }

  put(k: Uint8Array, v: Uint8Array): Promise<void> | undefined {
    this.bucket().put(k, v);
    return this.count(k.length + v.length);
  }
  delete(k: Uint8Array): Promise<void> | undefined {
    this.bucket().delete(k);
    return this.count(k.length);
  }
  createBucket(k: Uint8Array, seq: bigint): Promise<void> | undefined {
    const b = this.path.length === 0 ? this.writer().createBucket(k) : this.bucket().createBucket(k);
    if (seq !== 0n) b.setSequence(seq);
    return this.count(k.length);
  }
  deleteBucket(k: Uint8Array): Promise<void> | undefined {
    if (this.path.length === 0) this.writer().deleteBucket(k);
    else this.bucket().deleteBucket(k);
    return this.count(k.length);
  }
  /** Set the sequence of the bucket at the current path. */
  setSequence(seq: bigint): void {
    this.bucket().setSequence(seq);
    this.changes++;
  }

  private count(bytes: number): Promise<void> | undefined {
    this.changes++;
    this.pending += bytes;
    this.copied += bytes;
    if (this.txMaxSize !== 0 && this.pending >= this.txMaxSize) return this.commit();
    // Outside the pause, give the event loop (the database's writers) a turn every few milliseconds.
    if (!this.holding && (++this.sinceCheck & 63) === 0) {
      const now = performance.now();
      if (now - this.lastYield > YIELD_EVERY_MS) {
        this.lastYield = now;
        return new Promise<void>((resolve) => setImmediate(resolve));
      }
    }
    return undefined;
  }

  private sinceCheck = 0;
  private synced = 0;
  private lastYield = performance.now();
  /** Set during the swap: nothing else may run then, so never yield. */
  holding = false;

  /** Commit what is pending; with `final`, even an empty transaction (it carries the new txid). */
  async commit(final = false): Promise<void> {
    const tx = final ? this.writer() : this.tx;
    this.tx = null;
    this.open = [];
    this.pending = 0;
    if (tx) await tx.commitAsync();
    // Flush the copy as it grows: left to the end, tens of megabytes of dirty pages reach the disk
    // all at once, and every fdatasync of the database's writers meanwhile waits behind them.
    if (!this.holding && this.copied - this.synced >= SYNC_EVERY_BYTES) {
      this.synced = this.copied;
      await this.dst.pager.syncAsync();
    }
    // Let the database's own writers and readers run between chunks of the copy.
    if (!this.holding) await new Promise<void>((resolve) => setImmediate(resolve));
    this.options.onProgress?.(this.copied, this.sourceBytes);
    checkAbort(this.options.signal);
  }

  abort(): void {
    this.tx?.abort();
    this.tx = null;
  }
}

// ---- diffing two snapshots of the old file ----

/** A bucket as its header says: a root page, or an inline leaf. */
interface BucketRef {
  root: number;
  seq: bigint;
  inline: Page | null;
}

function rootOf(tx: Tx): BucketRef {
  return { root: tx.meta.root, seq: 0n, inline: null };
}

function bucketRef(value: Uint8Array): BucketRef {
  const dv = new DataView(value.buffer, value.byteOffset, value.byteLength);
  const root = readU64(dv, 0);
  const seq = dv.getBigUint64(8, true);
  return { root, seq, inline: root === 0 ? new Page(value.subarray(BUCKET_HEADER_SIZE)) : null };
}

/** A frontier entry: a page id and its height above the leaves, or an inline leaf. */
interface Node {
  id: number;
  h: number;
  inline: Page | null;
}

function heightOf(tx: Tx, root: number): number {
  let h = 0;
  let page = tx.treePage(root);
  while (page.isBranch) {
    if (page.count === 0) break;
    page = tx.treePage(page.child(0));
    h++;
    if (h > 64) throw new BoltError('ERR_CORRUPT_PAGE', 'tree deeper than 64 levels');
  }
  return h;
}

function frontier(tx: Tx | null, ref: BucketRef | null): Node[] {
  if (!tx || !ref) return [];
  if (ref.inline) return [{ id: -1, h: 0, inline: ref.inline }];
  return [{ id: ref.root, h: heightOf(tx, ref.root), inline: null }];
}

/**
 * The leaves of two trees that are not shared, in key order. Subtrees present in both by page id
 * are dropped; expansion goes level by level from the top so a shared subtree is always met at
 * the same height on both sides.
 */
function unsharedLeaves(ta: Tx | null, a: Node[], tb: Tx, b: Node[]): [Node[], Node[]] {
  for (;;) {
    const inB = new Set<number>();
    for (const n of b) if (!n.inline) inB.add(n.id);
    const shared = new Set<number>();
    for (const n of a) if (!n.inline && inB.has(n.id)) shared.add(n.id);
    if (shared.size > 0) {
      a = a.filter((n) => n.inline || !shared.has(n.id));
      b = b.filter((n) => n.inline || !shared.has(n.id));
    }
    let h = 0;
    for (const n of a) h = Math.max(h, n.h);
    for (const n of b) h = Math.max(h, n.h);
    if (h === 0) return [a, b];
    a = expand(ta!, a, h);
    b = expand(tb, b, h);
  }
}

function expand(tx: Tx, nodes: Node[], h: number): Node[] {
  if (!nodes.some((n) => n.h === h)) return nodes;
  const out: Node[] = [];
  for (const n of nodes) {
    if (n.h !== h) {
      out.push(n);
      continue;
    }
    const page = tx.treePage(n.id);
    if (!page.isBranch) throw new BoltError('ERR_CORRUPT_PAGE', `page ${n.id}: expected a branch page`);
    for (let i = 0; i < page.count; i++) out.push({ id: page.child(i), h: h - 1, inline: null });
  }
  return out;
}

interface Entry {
  key: Uint8Array;
  value: Uint8Array;
  bucket: boolean;
}

/** Entries of leaves in order; with a yield between leaves not needed (callers await per entry). */
function* entriesOf(tx: Tx | null, leaves: Node[]): Generator<Entry> {
  for (const n of leaves) {
    const page = n.inline ?? tx!.treePage(n.id);
    if (!page.isLeaf) throw new BoltError('ERR_CORRUPT_PAGE', `page ${n.id}: expected a leaf page`);
    for (let i = 0; i < page.count; i++) {
      yield { key: page.key(i), value: page.value(i), bucket: (page.elementFlags(i) & BUCKET_LEAF_FLAG) !== 0 };
    }
  }
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && compareBytes(a, b) === 0;
}

/**
 * Apply to the new file (at the applier's current path) what turns bucket `a` (in snapshot ta, or
 * nothing) into bucket `b` (in snapshot tb).
 */
async function diffBuckets(ap: Applier, ta: Tx | null, a: BucketRef | null, tb: Tx, b: BucketRef): Promise<void> {
  if (a && !a.inline && !b.inline && a.root === b.root) return;
  const [la, lb] = unsharedLeaves(ta, frontier(ta, a), tb, frontier(tb, b));
  const ia = entriesOf(ta, la);
  const ib = entriesOf(tb, lb);
  let ea = ia.next();
  let eb = ib.next();
  while (!ea.done || !eb.done) {
    const c = ea.done ? 1 : eb.done ? -1 : compareBytes(ea.value.key, eb.value.key);
    if (c < 0) {
      const x = ea.value as Entry;
      const p = x.bucket ? ap.deleteBucket(x.key) : ap.delete(x.key);
      if (p) await p;
      ea = ia.next();
    } else if (c > 0) {
      await added(ap, tb, eb.value as Entry);
      eb = ib.next();
    } else {
      const x = ea.value as Entry;
      const y = eb.value as Entry;
      if (!sameBytes(x.value, y.value) || x.bucket !== y.bucket) {
        if (x.bucket && y.bucket) {
          const ra = bucketRef(x.value);
          const rb = bucketRef(y.value);
          ap.push(y.key);
          if (ra.seq !== rb.seq) ap.setSequence(rb.seq);
          await diffBuckets(ap, ta, ra, tb, rb);
          ap.pop();
        } else if (x.bucket) {
          const p = ap.deleteBucket(x.key);
          if (p) await p;
          await added(ap, tb, y);
        } else if (y.bucket) {
          const p = ap.delete(x.key);
          if (p) await p;
          await added(ap, tb, y);
        } else {
          const p = ap.put(y.key, y.value);
          if (p) await p;
        }
      }
      ea = ia.next();
      eb = ib.next();
    }
  }
}

async function added(ap: Applier, tb: Tx, y: Entry): Promise<void> {
  if (!y.bucket) {
    const p = ap.put(y.key, y.value);
    if (p) await p;
    return;
  }
  const ref = bucketRef(y.value);
  const p = ap.createBucket(y.key, ref.seq);
  if (p) await p;
  ap.push(y.key);
  await diffBuckets(ap, null, null, tb, ref);
  ap.pop();
}
