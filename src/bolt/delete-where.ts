/**
 * A bulk, filtered delete over a key range of one bucket, for removing many neighbouring keys in
 * one write transaction (the revision layer's compaction deletes runs of old revision keys).
 * Deleting key by key seeks from the root and splices the leaf once per key; here the walk seeks
 * once per leaf, asks the predicate about each entry in order and rebuilds the leaf's element list
 * once. Emptied leaves are removed by the commit's rebalance, as after ordinary deletes.
 *
 * Same result as a cursor walk over [from, to) calling Bucket.delete on every entry the predicate
 * chooses, stopping once `maxDeleted` entries were deleted or `maxExamined` examined. Nested
 * buckets are never shown to the predicate nor deleted.
 */
import type { Bucket } from './bucket.ts';
import { BoltError } from './errors.ts';
import { invariant } from '../errors.ts';
import { Cursor } from './cursor.ts';
import { elementSize, type Inode } from './inode.ts';
import { BUCKET_LEAF_FLAG } from './page.ts';

/** True to delete the entry with this key. The key is a view into engine memory: copy to keep it. */
export type DeletePredicate = (key: Uint8Array) => boolean;

export interface DeleteWhereResult {
  deleted: number;
  examined: number;
  /**
   * Where to resume: every key of the range below it was examined, none at or above it. Undefined
   * once the whole range was examined.
   */
  next: Uint8Array | undefined;
}

/** Delete the entries of `bucket` with keys in [from, to) (to undefined: the end) that `doomed` picks. */
export function deleteWhere(
  bucket: Bucket,
  from: Uint8Array,
  to: Uint8Array | undefined,
  doomed: DeletePredicate,
  maxDeleted = Infinity,
  maxExamined = Infinity,
): DeleteWhereResult {
  const tx = bucket.tx;
  tx.checkWritable();
  if (typeof doomed !== 'function')
    throw new BoltError('ERR_INVALID_ARGUMENT', 'deleteWhere: the predicate must be a function');
  if (!(maxDeleted >= 1) || !(maxExamined >= 1))
    throw new BoltError('ERR_INVALID_ARGUMENT', 'deleteWhere: limits must be at least 1');
  let deleted = 0;
  let examined = 0;
  let seekKey: Uint8Array = from;
  for (;;) {
    const c = Cursor.create(bucket);
    if (c.seek(seekKey) === undefined) return { deleted, examined, next: undefined };
    const f = c.leafHere();
    const page = f.page;
    // A leaf still on its page is read in place and only turned into a node once it loses an
    // entry: every node is rewritten at commit, so a leaf that keeps everything stays untouched.
    let node = f.node;
    const n = node !== null ? node.inodes.length : page!.count;
    const start = f.index;
    const keyAt = (j: number): Buffer => (node !== null ? node.inodes[j]!.key : page!.key(j));
    let kept: Inode[] | null = null; // built once the leaf loses an entry
    let i = start;
    let reachedEnd = false;
    let stopped = false;
    for (; i < n; i++) {
      if (deleted >= maxDeleted || examined >= maxExamined) {
        stopped = true;
        break;
      }
      if (to !== undefined && (node !== null ? node.inodes[i]!.compareKey(to) : page!.compareKey(i, to)) >= 0) {
        reachedEnd = true;
        break;
      }
      const flags = node !== null ? node.inodes[i]!.flags : page!.elementFlags(i);
      if (flags & BUCKET_LEAF_FLAG) {
        kept?.push(node!.inodes[i]!);
        continue;
      }
      examined++;
      if (doomed(keyAt(i))) {
        if (node === null) node = c.materialize(); // same elements, same order as the page
        if (kept === null) kept = node.inodes.slice(0, i);
        node.byteSize -= elementSize(true, node.inodes[i]!);
        deleted++;
      } else {
        kept?.push(node!.inodes[i]!);
      }
    }
    invariant(i > start || stopped || reachedEnd, 'deleteWhere: a seek settled on no entry');
    const last = i > start ? keyAt(i - 1) : undefined;
    const resumeAt = i < n ? Buffer.from(keyAt(i)) : undefined;
    if (kept !== null) {
      const inodes = node!.inodes;
      for (let j = i; j < n; j++) kept.push(inodes[j]!);
      node!.inodes = kept;
      node!.unbalanced = true;
      bucket.noteDelete(node!);
      tx.mutations++;
    }
    if (reachedEnd) return { deleted, examined, next: undefined };
    if (stopped) return { deleted, examined, next: resumeAt };
    // The leaf is done: go on just past its last key (that key and a zero byte is the smallest
    // key above it).
    const k = Buffer.allocUnsafe(last!.length + 1);
    k.set(last!);
    k[last!.length] = 0;
    seekKey = k;
  }
}
