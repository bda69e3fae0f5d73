/**
 * What a watch covers, in the byte-string form the watcher group indexes (see src/keys.ts): one
 * key, a half-open range, or every key from a start on. etcd's range_end rules are applied here
 * once, for the watch layer.
 */
import { byteStringToBytes, bytesToByteString, FROM_KEY_END, keyBytes } from '../keys.ts';
import { WatchError } from './errors.ts';

/** A single key (`end === undefined`), a half-open range, or every key >= start (`end === null`). */
export interface KeyRange {
  readonly start: string;
  readonly end: string | null | undefined;
}

function toByteString(k: unknown, what: string): string {
  const b = keyBytes(k);
  if (b === undefined) throw new WatchError('ERR_INVALID_WATCH_REQUEST', `${what} must be a Uint8Array or a string`);
  return bytesToByteString(b);
}

/** Applies etcd's range_end rules; rejects ranges that can never match. */
export function parseKeyRange(key: unknown, rangeEnd: unknown): KeyRange {
  const start = toByteString(key, 'key');
  const end = rangeEnd === undefined || rangeEnd === null ? '' : toByteString(rangeEnd, 'rangeEnd');
  if (end.length === 0) {
    if (start.length === 0) throw new WatchError('ERR_INVALID_WATCH_REQUEST', 'key is not provided');
    return { start, end: undefined };
  }
  if (end === FROM_KEY_END) return { start, end: null };
  if (end <= start) throw new WatchError('ERR_EMPTY_WATCH_RANGE', 'mvcc: watcher range is empty');
  return { start, end };
}

const FROM_KEY_END_BYTES = new Uint8Array([0]);

/**
 * The range as the key/rangeEnd bytes an EventSource history read takes. Rebuilt per read rather
 * than kept per watcher, so idle watchers stay small.
 */
export function rangeBytes(r: KeyRange): {
  key: Uint8Array;
  rangeEnd: Uint8Array | undefined;
} {
  return {
    key: byteStringToBytes(r.start),
    rangeEnd: r.end === undefined ? undefined : r.end === null ? FROM_KEY_END_BYTES : byteStringToBytes(r.end),
  };
}
