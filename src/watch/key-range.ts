/**
 * Turns a request's key/rangeEnd into the byte-strings the indexes work on. A byte-string holds one
 * byte per UTF-16 code unit (latin1), so JS string comparison is exactly bytewise key order and map
 * lookups need no custom hashing.
 */
import { Buffer } from 'node:buffer';
import { WatchError } from './errors.ts';

/** A single key (`end === undefined`), a half-open range, or every key >= start (`end === null`). */
export interface KeyRange {
  start: string;
  end: string | null | undefined;
}

export function bytesToByteString(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
}

export function byteStringToBytes(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s, 'latin1'));
}

function toByteString(k: unknown, what: string): string {
  if (typeof k === 'string') return Buffer.from(k, 'utf8').toString('latin1');
  if (k instanceof Uint8Array) return bytesToByteString(k);
  throw new WatchError('ERR_INVALID_WATCH_REQUEST', `${what} must be a Uint8Array or a string`);
}

/** Applies etcd's range_end rules; rejects ranges that can never match. */
export function parseKeyRange(key: unknown, rangeEnd: unknown): KeyRange {
  const start = toByteString(key, 'key');
  if (rangeEnd === undefined || rangeEnd === null) {
    if (start.length === 0) throw new WatchError('ERR_INVALID_WATCH_REQUEST', 'key is not provided');
    return { start, end: undefined };
  }
  const end = toByteString(rangeEnd, 'rangeEnd');
  if (end.length === 0) {
    if (start.length === 0) throw new WatchError('ERR_INVALID_WATCH_REQUEST', 'key is not provided');
    return { start, end: undefined };
  }
  if (end === '\0') return { start, end: null };
  if (end <= start) throw new WatchError('ERR_EMPTY_WATCH_RANGE', 'mvcc: watcher range is empty');
  return { start, end };
}
