/**
 * Key encoding shared by the revision layer and watch. Indexes hold keys as byte-strings: one byte
 * per UTF-16 code unit (latin1), so JS string comparison is bytewise key order and Map lookups need
 * no custom hashing. etcd's range rules live here once: an absent or empty range end means one key,
 * the range end "\0" means every key from the start on.
 */
import { Buffer } from 'node:buffer';

/** Bytes as a byte-string (no copy of the bytes; one string allocation). */
export function bytesToByteString(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
}

/** A byte-string back to bytes (a fresh copy). */
export function byteStringToBytes(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s, 'latin1'));
}

/** A user's key as bytes: strings are UTF-8. Returns undefined for any other type. */
export function keyBytes(k: unknown): Uint8Array | undefined {
  if (typeof k === 'string') return new Uint8Array(Buffer.from(k, 'utf8'));
  if (k instanceof Uint8Array) return k;
  return undefined;
}

/** True for etcd's "\0" range end (every key >= start). */
export function isFromKeyEnd(end: Uint8Array): boolean {
  return end.length === 1 && end[0] === 0;
}

/** The "\0" range end, as a byte-string. */
export const FROM_KEY_END = '\0';

/** etcd's prefix end: the smallest key greater than every key with this prefix ("\0" if none). */
export function prefixEndBytes(p: Uint8Array): Uint8Array {
  for (let i = p.length - 1; i >= 0; i--) {
    const b = p[i]!;
    if (b < 0xff) {
      const out = p.slice(0, i + 1);
      out[i] = b + 1;
      return out;
    }
  }
  return new Uint8Array([0]);
}
