/**
 * The storage the revision layer runs over: named buckets of byte keys kept in byte order. Kept
 * deliberately small so the same revision layer runs over the bolt engine (one file) or over plain
 * memory, and so a test can wrap a backend to inject failures.
 */

/** Stop a scan early by returning false from the visitor. */
export type ScanVisitor = (key: Uint8Array, value: Uint8Array) => boolean | void;

/**
 * One record of a whole-bucket walk, read in place: key bytes [keyOff, keyOff+keyLen) of `keyBuf`,
 * value bytes [valOff, valOff+valLen) of `valBuf`; valid only during the call.
 */
export type RawScanVisitor = (
  keyBuf: Uint8Array,
  keyOff: number,
  keyLen: number,
  valBuf: Uint8Array,
  valOff: number,
  valLen: number,
) => boolean | void;

/** A consistent read view. Keys/values handed to visitors are only valid during the call: copy to keep. */
export interface BackendReader {
  get(bucket: string, key: Uint8Array): Uint8Array | undefined;
  /** Keys in [from, to) ascending; `to` undefined means to the end of the bucket. */
  scan(bucket: string, from: Uint8Array, to: Uint8Array | undefined, fn: ScanVisitor): void;
  /** Keys in [from, to) descending (starting just below `to`). */
  scanReverse(bucket: string, from: Uint8Array, to: Uint8Array | undefined, fn: ScanVisitor): void;
  /**
   * Every record of `bucket` in key order, without an object per record (a reopen reads millions).
   * Optional: without it the revision layer uses scan().
   */
  scanAll?(bucket: string, fn: RawScanVisitor): void;
}

/** A write transaction: reads see its own writes. Buckets are created on first put. */
export interface BackendWriter extends BackendReader {
  put(bucket: string, key: Uint8Array, value: Uint8Array): void;
  delete(bucket: string, key: Uint8Array): void;
  /**
   * Walk keys in [from, to) in order, deleting those `doomed` picks (its key argument is only valid
   * during the call), until `maxDeleted` were deleted or `maxExamined` examined; `next` is where to
   * resume, undefined once the range is done. Optional: without it the revision layer scans and
   * deletes key by key (compaction removes runs of neighbouring revision keys).
   */
  deleteWhere?(
    bucket: string,
    from: Uint8Array,
    to: Uint8Array | undefined,
    doomed: (key: Uint8Array) => boolean,
    maxDeleted: number,
    maxExamined: number,
  ): { deleted: number; examined: number; next: Uint8Array | undefined };
}

export interface Backend {
  /** Run `fn` against a read snapshot. */
  view<T>(fn: (r: BackendReader) => T): T;
  /**
   * Run `fn` in one write transaction. Resolves once the transaction is durable; if `fn` throws or
   * the commit fails, nothing of it is applied and the promise rejects. Calls are not overlapped by
   * the revision layer (it queues its own writes).
   */
  update<T>(fn: (w: BackendWriter) => T): Promise<T>;
  close(): void | Promise<void>;
  /** Bytes the data occupies and the part of them in use (etcd's dbSize / dbSizeInUse). */
  size?(): { dbSize: number; dbSizeInUse: number };
}
