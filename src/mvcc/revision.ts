/**
 * Revision keys as etcd lays them out in the `key` bucket: 8-byte big-endian main revision, '_',
 * 8-byte big-endian sub revision, and an 18th byte 't' when the revision is a tombstone. Big-endian
 * makes byte order equal revision order, so bucket scans walk history in order.
 */
import { Panic } from '../errors.ts';

export const REV_BYTES = 17;
export const MARKED_REV_BYTES = 18;
const SEP = 0x5f; // '_'
const TOMBSTONE = 0x74; // 't'

export interface Revision {
  main: number;
  sub: number;
}

function writeU64(out: Uint8Array, off: number, n: number): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new Panic(`revision component out of range: ${n}`);
  const hi = Math.floor(n / 0x1_0000_0000);
  const lo = n >>> 0;
  out[off] = hi >>> 24;
  out[off + 1] = (hi >>> 16) & 0xff;
  out[off + 2] = (hi >>> 8) & 0xff;
  out[off + 3] = hi & 0xff;
  out[off + 4] = lo >>> 24;
  out[off + 5] = (lo >>> 16) & 0xff;
  out[off + 6] = (lo >>> 8) & 0xff;
  out[off + 7] = lo & 0xff;
}

function readU64(b: Uint8Array, off: number): number {
  const hi = ((b[off]! << 24) >>> 0) + (b[off + 1]! << 16) + (b[off + 2]! << 8) + b[off + 3]!;
  const lo = ((b[off + 4]! << 24) >>> 0) + (b[off + 5]! << 16) + (b[off + 6]! << 8) + b[off + 7]!;
  return hi * 0x1_0000_0000 + lo;
}

/** 17-byte key (18 with the tombstone mark). */
export function revToBytes(main: number, sub: number, tombstone = false): Uint8Array {
  const out = new Uint8Array(tombstone ? MARKED_REV_BYTES : REV_BYTES);
  revIntoBytes(out, main, sub);
  if (tombstone) out[17] = TOMBSTONE;
  return out;
}

/** Writes the 17-byte key of (main, sub) into the first 17 bytes of `out`; returns `out`. */
export function revIntoBytes(out: Uint8Array, main: number, sub: number): Uint8Array {
  writeU64(out, 0, main);
  out[8] = SEP;
  writeU64(out, 9, sub);
  return out;
}

/** The 8-byte prefix etcd uses as an exclusive upper bound "every revision with main < n". */
export function mainRevPrefix(main: number): Uint8Array {
  const out = new Uint8Array(8);
  writeU64(out, 0, main);
  return out;
}

export function bytesToRev(b: Uint8Array): Revision {
  if (b.length < REV_BYTES || b[8] !== SEP) throw new Panic('malformed revision key');
  return { main: readU64(b, 0), sub: readU64(b, 9) };
}

/** Main and sub revision of a revision key already known to be well formed, without allocating. */
export function revKeyMain(b: Uint8Array): number {
  return readU64(b, 0);
}

export function revKeySub(b: Uint8Array): number {
  return readU64(b, 9);
}

/** Whether `b` is a well-formed revision key (17 bytes, or 18 with the tombstone mark) below 2^53. */
export function isRevKey(b: Uint8Array): boolean {
  if (b.length !== REV_BYTES && !(b.length === MARKED_REV_BYTES && b[17] === TOMBSTONE)) return false;
  // the top 11 bits of each 64-bit half are zero below 2^53
  return b[8] === SEP && b[0] === 0 && (b[1]! & 0xe0) === 0 && b[9] === 0 && (b[10]! & 0xe0) === 0;
}

/** isRevKey of bytes [off, off+len) of `b` (a key inside a page, read in place). */
export function isRevKeyAt(b: Uint8Array, off: number, len: number): boolean {
  if (len !== REV_BYTES && !(len === MARKED_REV_BYTES && b[off + 17] === TOMBSTONE)) return false;
  return (
    b[off + 8] === SEP && b[off] === 0 && (b[off + 1]! & 0xe0) === 0 && b[off + 9] === 0 && (b[off + 10]! & 0xe0) === 0
  );
}

/** Main revision of a well-formed revision key at `off` of `b`. */
export function revMainAt(b: Uint8Array, off: number): number {
  return readU64(b, off);
}

/** Sub revision of a well-formed revision key at `off` of `b`. */
export function revSubAt(b: Uint8Array, off: number): number {
  return readU64(b, off + 9);
}

export function isTombstoneKey(b: Uint8Array): boolean {
  return b.length === MARKED_REV_BYTES && b[17] === TOMBSTONE;
}

/** 8-byte big-endian encoding used for `consistent_index` and lease IDs. */
export function u64ToBytes(n: number): Uint8Array {
  const out = new Uint8Array(8);
  writeU64(out, 0, n);
  return out;
}

export function bytesToU64(b: Uint8Array): number {
  if (b.length !== 8) throw new Panic('malformed 8-byte integer');
  return readU64(b, 0);
}

/** Lease IDs are signed int64 in etcd; stored as two's-complement big-endian. */
export function leaseIdToBytes(id: bigint): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigInt64(0, id);
  return out;
}

export function bytesToLeaseId(b: Uint8Array): bigint {
  return new DataView(b.buffer, b.byteOffset, 8).getBigInt64(0);
}

/** A stored revision key (17 bytes, or 18 ending in the tombstone mark); undefined if malformed. */
export function parseRevKey(b: Uint8Array): (Revision & { tombstone: boolean }) | undefined {
  if (b.length !== REV_BYTES && !(b.length === MARKED_REV_BYTES && b[17] === TOMBSTONE)) return undefined;
  if (b[8] !== SEP) return undefined;
  const main = readU64(b, 0);
  const sub = readU64(b, 9);
  if (!Number.isSafeInteger(main) || !Number.isSafeInteger(sub)) return undefined;
  return { main, sub, tombstone: b.length === MARKED_REV_BYTES };
}

/** A stored 8-byte big-endian integer; undefined if malformed or beyond 2^53. */
export function parseU64(b: Uint8Array): number | undefined {
  if (b.length !== 8) return undefined;
  const n = readU64(b, 0);
  return Number.isSafeInteger(n) ? n : undefined;
}
