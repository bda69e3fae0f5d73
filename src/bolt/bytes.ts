import { BoltError } from './errors.ts';

/** Keys and values as callers may pass them: bytes, or strings taken as UTF-8. */
export type Bytes = Uint8Array | string;

const encoder = new TextEncoder();

export const MAX_KEY_SIZE = 32768;
export const MAX_VALUE_SIZE = 2 ** 31 - 2;

/** Normalise caller input to bytes; anything else is a typed error, not a TypeError later. */
export function toBytes(input: unknown, what: 'key' | 'value' | 'bucket name'): Uint8Array {
  if (input instanceof Uint8Array) return input;
  if (typeof input === 'string') return encoder.encode(input);
  throw new BoltError(
    what === 'value' ? 'ERR_INVALID_VALUE_TYPE' : 'ERR_INVALID_KEY_TYPE',
    `${what} must be a Uint8Array, Buffer or string, got ${describe(input)}`,
  );
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v === 'object' ? (v.constructor?.name ?? 'object') : typeof v;
}

export function checkKey(key: Uint8Array): void {
  if (key.length === 0) throw new BoltError('ERR_KEY_REQUIRED', 'key required');
  if (key.length > MAX_KEY_SIZE)
    throw new BoltError('ERR_KEY_TOO_LARGE', `key too large: ${key.length} > ${MAX_KEY_SIZE}`);
}

export function checkValue(value: Uint8Array): void {
  if (value.length > MAX_VALUE_SIZE) throw new BoltError('ERR_VALUE_TOO_LARGE', `value too large: ${value.length}`);
}

/** Bytewise comparison, as bbolt orders keys. */
export function compare(a: Uint8Array, b: Uint8Array): number {
  const n = a.length < b.length ? a.length : b.length;
  // Short keys compare faster in JS than through a native call.
  if (n > 32) return Buffer.compare(a, b);
  for (let i = 0; i < n; i++) {
    const d = a[i]! - b[i]!;
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

/** Compare buf[start, start+len) with key, without making a view. */
export function compareAt(buf: Uint8Array, start: number, len: number, key: Uint8Array): number {
  const n = len < key.length ? len : key.length;
  if (n > 32) return Buffer.compare(buf.subarray(start, start + len), key);
  for (let i = 0; i < n; i++) {
    const d = buf[start + i]! - key[i]!;
    if (d !== 0) return d;
  }
  return len - key.length;
}

export function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** A private copy: the caller may reuse its buffer after put returns. */
export function copy(b: Uint8Array): Uint8Array {
  return new Uint8Array(b);
}

/** A map key for byte strings (sub-bucket caches). */
export function bytesKey(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.length).toString('latin1');
}
