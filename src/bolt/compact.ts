/**
 * Copy-compaction, as bbolt's `compact` command does it: walk every bucket of a source snapshot and
 * re-insert its keys, in order, into an empty destination with full pages. The destination comes
 * out dense — no free pages, leaves filled to the brim — so it is as small as the data allows.
 * Large databases are copied in several destination transactions (txMaxSize) so no single commit
 * holds everything in memory; the source is read from one read transaction, so the result is one
 * consistent snapshot even while writers go on.
 */
import type { Bucket } from './bucket.ts';
import type { DB } from './db.ts';
import { BoltError } from './errors.ts';
import type { Tx } from './tx.ts';

export interface CompactOptions {
  /** Commit the destination after about this many bytes of keys and values. 0: one transaction. Default 64 KiB, as bbolt's CLI. */
  txMaxSize?: number;
  /** Stops the copy with ERR_ABORTED; the destination then holds what was committed so far. */
  signal?: AbortSignal;
  /** Called after each destination commit with bytes of keys and values copied and the source size. */
  onProgress?: (copiedBytes: number, sourceBytes: number) => void;
}

export interface CompactResult {
  /** Source file bytes as its snapshot saw them (high-water mark × page size). */
  srcSize: number;
  /** Destination bytes in use after the copy. */
  dstSize: number;
  keys: number;
  buckets: number;
  /** The source transaction id that was copied. */
  txid: number;
}

const DEFAULT_TX_MAX_SIZE = 65536;

/** Destination buckets are written with full leaves: nothing will be inserted between their keys. */
const DENSE_FILL = 1.0;

/**
 * Copy every bucket of src's current snapshot into dst (which must be empty of those buckets).
 * Yields to the event loop between destination commits.
 */
export async function compact(src: DB, dst: DB, options: CompactOptions = {}): Promise<CompactResult> {
  const txMaxSize = options.txMaxSize ?? DEFAULT_TX_MAX_SIZE;
  if (!Number.isFinite(txMaxSize) || txMaxSize < 0)
    throw new BoltError('ERR_INVALID_OPTION', 'txMaxSize must be a number >= 0');
  const stx = src.begin(false);
  try {
    const copier = new Copier(dst, stx, txMaxSize, options);
    await copier.run();
    return { srcSize: stx.size, dstSize: copier.dstSize, keys: copier.keys, buckets: copier.buckets, txid: stx.id };
  } finally {
    stx.abort();
  }
}

class Copier {
  private dtx: Tx | null = null;
  /** Destination buckets along the current path, valid for the current destination tx only. */
  private open: Bucket[] = [];
  private readonly path: Uint8Array[] = [];
  private pending = 0;
  private copied = 0;
  keys = 0;
  buckets = 0;
  dstSize = 0;

  constructor(
    private readonly dst: DB,
    private readonly stx: Tx,
    private readonly txMaxSize: number,
    private readonly options: CompactOptions,
  ) {}

  async run(): Promise<void> {
    this.dtx = this.dst.begin(true);
    try {
      const c = this.stx.cursor();
      for (let e = c.first(); e; e = c.next()) {
        const name = e[0];
        const b = this.stx.bucket(name);
        if (!b) continue;
        await this.copyBucket(name, b);
      }
      this.dstSize = this.dtx.size;
      await this.dtx.commitAsync();
      this.dstSize = this.dst.view((tx) => tx.size);
      this.dtx = null;
      this.options.onProgress?.(this.copied, this.stx.size);
    } finally {
      if (this.dtx) this.dtx.abort();
    }
  }

  /** The destination bucket at the current path, reopened after each commit. */
  private current(): Bucket {
    const depth = this.path.length;
    if (this.open.length === depth) return this.open[depth - 1]!;
    const tx = this.dtx!;
    let b: Bucket | undefined;
    this.open = [];
    for (const name of this.path) {
      b = b ? b.bucket(name) : tx.bucket(name);
      if (!b) throw new BoltError('ERR_BUCKET_NOT_FOUND', 'destination bucket vanished during compaction');
      b.fillPercent = DENSE_FILL;
      this.open.push(b);
    }
    return b!;
  }

  private async copyBucket(name: Uint8Array, src: Bucket): Promise<void> {
    const parent = this.path.length > 0 ? this.current() : null;
    const created = parent ? parent.createBucket(name) : this.dtx!.createBucket(name);
    created.fillPercent = DENSE_FILL;
    const seq = src.sequenceBigInt();
    if (seq !== 0n) created.setSequence(seq);
    this.buckets++;
    this.path.push(name);
    this.open.push(created);
    await this.account(name.length);
    const c = src.cursor();
    for (let e = c.first(); e; e = c.next()) {
      const [k, v] = e;
      if (v === null) {
        const child = src.bucket(k);
        if (child) await this.copyBucket(k, child);
        continue;
      }
      this.current().put(k, v);
      this.keys++;
      await this.account(k.length + v.length);
    }
    this.path.pop();
    if (this.open.length > this.path.length) this.open.length = this.path.length;
  }

  /** Count bytes; past txMaxSize commit the destination and start a new transaction. */
  private async account(bytes: number): Promise<void> {
    this.pending += bytes;
    this.copied += bytes;
    if (this.txMaxSize === 0 || this.pending < this.txMaxSize) return;
    if (this.options.signal?.aborted) throw new BoltError('ERR_ABORTED', 'compaction aborted');
    this.pending = 0;
    const tx = this.dtx!;
    this.dtx = null;
    this.open = [];
    await tx.commitAsync();
    this.options.onProgress?.(this.copied, this.stx.size);
    this.stx.checkOpen();
    this.dtx = this.dst.begin(true);
  }
}
