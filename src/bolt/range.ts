import { compare, toBytes, type Bytes } from './bytes.ts';
import type { Cursor, Entry } from './cursor.ts';
import { BoltError } from './errors.ts';

/** Bounds and options of a range scan, in abstract-level's vocabulary. */
export interface RangeOptions {
  gt?: Bytes;
  gte?: Bytes;
  lt?: Bytes;
  lte?: Bytes;
  reverse?: boolean;
  /** Stop after this many entries. */
  limit?: number;
  /** Checked between entries: an aborted scan throws ERR_ABORTED. */
  signal?: AbortSignal;
}

function aborted(signal: AbortSignal): BoltError {
  return new BoltError('ERR_ABORTED', 'range scan aborted', { cause: signal.reason });
}

/** Entries of a cursor's bucket within the bounds, in key order (or reverse). */
export function* scan(c: Cursor, o: RangeOptions): Generator<Entry, void, undefined> {
  const gt = o.gt === undefined ? undefined : toBytes(o.gt, 'key');
  const gte = o.gte === undefined ? undefined : toBytes(o.gte, 'key');
  const lt = o.lt === undefined ? undefined : toBytes(o.lt, 'key');
  const lte = o.lte === undefined ? undefined : toBytes(o.lte, 'key');
  const limit = o.limit ?? Infinity;
  if (!(limit >= 0)) throw new BoltError('ERR_INVALID_OPTION', 'limit must be a non-negative number');
  const signal = o.signal;
  const aboveLow = (k: Uint8Array): boolean =>
    (gt === undefined || compare(k, gt) > 0) && (gte === undefined || compare(k, gte) >= 0);
  const belowHigh = (k: Uint8Array): boolean =>
    (lt === undefined || compare(k, lt) < 0) && (lte === undefined || compare(k, lte) <= 0);
  let n = 0;
  let e: Entry | undefined;
  if (!o.reverse) {
    const low = gte ?? gt;
    e = low ? c.seek(low) : c.first();
    while (e && !aboveLow(e[0])) e = c.next();
    for (; e && n < limit && belowHigh(e[0]); e = c.next(), n++) {
      if (signal?.aborted) throw aborted(signal);
      yield e;
    }
  } else {
    const high = lte ?? lt;
    if (high) {
      e = c.seek(high);
      if (!e) e = c.last();
      while (e && !belowHigh(e[0])) e = c.prev();
    } else e = c.last();
    for (; e && n < limit && aboveLow(e[0]); e = c.prev(), n++) {
      if (signal?.aborted) throw aborted(signal);
      yield e;
    }
  }
}
