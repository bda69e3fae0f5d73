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

export function aborted(signal: AbortSignal): BoltError {
  return new BoltError('ERR_ABORTED', 'range scan aborted', { cause: signal.reason });
}

const RANGE_OPTIONS = new Set(['gt', 'gte', 'lt', 'lte', 'reverse', 'limit', 'signal']);

/** RangeOptions checked and with its bounds as bytes; made eagerly, so bad options fail at range(). */
export interface ParsedRange {
  gt: Uint8Array | undefined;
  gte: Uint8Array | undefined;
  lt: Uint8Array | undefined;
  lte: Uint8Array | undefined;
  reverse: boolean;
  limit: number;
  signal: AbortSignal | undefined;
}

function badRange(msg: string): BoltError {
  return new BoltError('ERR_INVALID_OPTION', `range: ${msg}`);
}

/** A bound as bytes. Module-level, not a closure per call: a scan parses its options every time. */
function boundOf(r: Record<string, unknown>, name: 'gt' | 'gte' | 'lt' | 'lte'): Uint8Array | undefined {
  const v = r[name];
  return v === undefined ? undefined : toBytes(v, 'key');
}

export function parseRange(o: unknown): ParsedRange {
  if (o === undefined) o = {};
  if (o === null || typeof o !== 'object' || Array.isArray(o))
    throw badRange(`options must be an object, got ${o === null ? 'null' : typeof o}`);
  const r = o as Record<string, unknown>;
  for (const name of Object.keys(r)) {
    if (!RANGE_OPTIONS.has(name))
      throw badRange(`unknown option ${JSON.stringify(name)} (bounds are gt, gte, lt, lte)`);
  }
  const { reverse, limit, signal } = r;
  if (reverse !== undefined && typeof reverse !== 'boolean') throw badRange('reverse must be a boolean');
  if (
    limit !== undefined &&
    (typeof limit !== 'number' || !(limit >= 0) || (!Number.isInteger(limit) && limit !== Infinity))
  ) {
    throw badRange('limit must be a non-negative integer or Infinity');
  }
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw badRange('signal must be an AbortSignal');
  return {
    gt: boundOf(r, 'gt'),
    gte: boundOf(r, 'gte'),
    lt: boundOf(r, 'lt'),
    lte: boundOf(r, 'lte'),
    reverse: reverse ?? false,
    limit: (limit as number | undefined) ?? Infinity,
    signal: signal as AbortSignal | undefined,
  };
}

/** Entries of a cursor's bucket within the bounds, in key order (or reverse). */
export function* scan(c: Cursor, o: ParsedRange): Generator<Entry, void, undefined> {
  const { gt, gte, lt, lte, limit, signal } = o;
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
