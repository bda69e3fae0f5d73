import { compareAt, toBytes } from './bytes.ts';
import { view } from './page.ts';

/**
 * The entry a `Bucket.scan` visitor is shown: where the key and value lie, not copies or views
 * of them. The visitor reads what it needs (compare in place, copy out, decode at an offset) or
 * asks for views with `key()`/`value()`. One object is reused for every entry of a scan, so its
 * fields are only meaningful during the call; the bytes themselves (and views made from them) stay
 * valid for the transaction, as a cursor's entries do. This is what makes a scan cheaper than
 * `range()`: no view, tuple or generator step is built for an entry the caller does not keep.
 */
export class ScanEntry {
  /** The bytes holding the key, at [keyOffset, keyOffset + keyLength). Do not write to them. */
  keyBuffer: Buffer = EMPTY;
  keyOffset = 0;
  keyLength = 0;
  /** The bytes holding the value, at [valueOffset, valueOffset + valueLength); empty for a sub-bucket. */
  valueBuffer: Buffer = EMPTY;
  valueOffset = 0;
  valueLength = 0;
  /** The key names a sub-bucket (open it with `bucket()`); `value()` is null then. */
  isBucket = false;

  /** @internal Scans make their own entry. */
  static create(): ScanEntry {
    return new ScanEntry();
  }

  private constructor() {}

  /** The key as a zero-copy view, valid for the transaction. */
  key(): Buffer {
    return view(this.keyBuffer, this.keyOffset, this.keyLength);
  }

  /** The value as a zero-copy view valid for the transaction; null for a sub-bucket. */
  value(): Buffer | null {
    return this.isBucket ? null : view(this.valueBuffer, this.valueOffset, this.valueLength);
  }

  /** Bytewise comparison of this entry's key with `other` (negative: the key sorts first), in place. */
  compareKey(other: Uint8Array | string): number {
    return compareAt(this.keyBuffer, this.keyOffset, this.keyLength, toBytes(other, 'key'));
  }

  /** A private copy of the key, safe to keep after the transaction ends. */
  copyKey(): Buffer {
    return Buffer.from(this.keyBuffer.subarray(this.keyOffset, this.keyOffset + this.keyLength));
  }
}

const EMPTY = Buffer.alloc(0);

/** A scan's visitor; returning false stops the scan. */
export type EntryVisitor = (entry: ScanEntry) => void | boolean;
