/**
 * A Backend over the bolt engine: one file, etcd's bucket layout. Reads run in bolt read
 * transactions (snapshots); `update` uses updateAsync, whose fdatasync does not block the event
 * loop, and resolves when the commit is durable.
 */
import { open, type DB, type OpenOptions, type Tx, type Bucket } from '../../bolt/index.ts';
import { deleteWhere } from '../../bolt/delete-where.ts';
import { scanLeaves } from '../../bolt/leaf-scan.ts';
import type { Backend, BackendReader, BackendWriter, RawScanVisitor, ScanVisitor } from '../backend.ts';
import { KEY_BUCKET } from '../buckets.ts';

/**
 * The `key` bucket only ever grows at its end (revision keys rise), so a split page is never
 * written again: fill it as etcd does (bbolt's FillPercent 0.9 on its sequential puts) instead of
 * the default half, which left the file twice etcd's size.
 */
const KEY_BUCKET_FILL = 0.9;

/**
 * The page-cache budget of a revision store's file unless the caller sets `cacheSize`. The engine's
 * own default (an eighth of memory, up to 2 GiB) suits a plain key-value file whose reads all go
 * to pages; here the key index answers which revision to read from memory, a reopen reads the key
 * bucket outside the cache, and the cache only serves value reads and commits. With the engine's
 * default, loading 1M keys left the whole 136 MiB file cached (RSS 433 MiB); with this, 40 MiB
 * (RSS 349 MiB).
 */
export const REVISION_STORE_CACHE_SIZE = 64 * 2 ** 20;

const enc = new TextEncoder();
const names = new Map<string, Uint8Array>();
function bucketName(name: string): Uint8Array {
  let b = names.get(name);
  if (b === undefined) names.set(name, (b = enc.encode(name)));
  return b;
}

function lessThan(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.compare(a, b) < 0;
}

class BoltReader implements BackendReader {
  constructor(protected readonly tx: Tx) {}

  protected bucket(name: string): Bucket | undefined {
    return this.tx.bucket(bucketName(name));
  }

  get(bucket: string, key: Uint8Array): Uint8Array | undefined {
    return this.bucket(bucket)?.get(key) ?? undefined;
  }

  scan(bucket: string, from: Uint8Array, to: Uint8Array | undefined, fn: ScanVisitor): void {
    const b = this.bucket(bucket);
    if (b === undefined) return;
    const c = b.cursor();
    for (let e = c.seek(from); e !== undefined; e = c.next()) {
      const [k, v] = e;
      if (to !== undefined && !lessThan(k, to)) return;
      if (v === null) continue; // a nested bucket, not ours
      if (fn(k, v) === false) return;
    }
  }

  scanAll(bucket: string, fn: RawScanVisitor): void {
    const b = this.bucket(bucket);
    if (b !== undefined) scanLeaves(b, fn);
  }

  scanReverse(bucket: string, from: Uint8Array, to: Uint8Array | undefined, fn: ScanVisitor): void {
    const b = this.bucket(bucket);
    if (b === undefined) return;
    const c = b.cursor();
    let e = to === undefined ? c.last() : c.seek(to);
    if (to !== undefined) e = e === undefined ? c.last() : c.prev();
    for (; e !== undefined; e = c.prev()) {
      const [k, v] = e;
      if (lessThan(k, from)) return;
      if (to !== undefined && !lessThan(k, to)) continue;
      if (v === null) continue;
      if (fn(k, v) === false) return;
    }
  }
}

class BoltWriter extends BoltReader implements BackendWriter {
  /** The bucket of the last put: a commit puts a thousand records in a row into `key`. */
  #lastName: string | undefined;
  #last: Bucket | undefined;

  put(bucket: string, key: Uint8Array, value: Uint8Array): void {
    let b = bucket === this.#lastName ? this.#last : undefined;
    if (b === undefined) {
      b = this.tx.createBucketIfNotExists(bucketName(bucket));
      if (bucket === KEY_BUCKET) b.fillPercent = KEY_BUCKET_FILL;
      this.#lastName = bucket;
      this.#last = b;
    }
    b.put(key, value);
  }
  delete(bucket: string, key: Uint8Array): void {
    this.bucket(bucket)?.delete(key);
  }
  deleteWhere(
    bucket: string,
    from: Uint8Array,
    to: Uint8Array | undefined,
    doomed: (key: Uint8Array) => boolean,
    maxDeleted: number,
    maxExamined: number,
  ): { deleted: number; examined: number; next: Uint8Array | undefined } {
    const b = this.bucket(bucket);
    if (b === undefined) return { deleted: 0, examined: 0, next: undefined };
    return deleteWhere(b, from, to, doomed, maxDeleted, maxExamined);
  }
}

export class BoltBackend implements Backend {
  readonly db: DB;

  constructor(db: DB) {
    this.db = db;
  }

  /**
   * Open (or create) the bolt file at `path`. Unless the caller says otherwise, the page cache
   * keeps no copies of the leaves a commit writes: the `key` bucket only appends, so they are
   * rarely read again, and at 1M keys loaded they were 300 MiB of short-lived buffers that left
   * glibc's heap 60-90 MiB above the live cache (settled RSS 228-248 MiB with them, 151 without).
   */
  static open(path: string, options: OpenOptions = {}): BoltBackend {
    return new BoltBackend(
      open(path, {
        ...options,
        cacheSize: options.cacheSize ?? REVISION_STORE_CACHE_SIZE,
        cacheWrittenLeaves: options.cacheWrittenLeaves ?? false,
      }),
    );
  }

  view<T>(fn: (r: BackendReader) => T): T {
    return this.db.view((tx) => fn(new BoltReader(tx)));
  }

  update<T>(fn: (w: BackendWriter) => T): Promise<T> {
    return this.db.updateAsync((tx) => fn(new BoltWriter(tx)));
  }

  close(): void {
    this.db.close();
  }

  /** As etcd computes it: pages up to the high-water mark, less free pages for the part in use. */
  size(): { dbSize: number; dbSizeInUse: number } {
    const s = this.db.stats();
    return { dbSize: s.pgid * s.pageSize, dbSizeInUse: (s.pgid - s.freePageN) * s.pageSize };
  }
}
