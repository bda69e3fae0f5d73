import { compareAt } from './bytes.ts';
import { BoltError } from './errors.ts';
import type { ScanEntry } from './scan.ts';

/** On-disk layout constants of bbolt's format version 2 (see shared/docs/bbolt-format.md). */
export const PAGE_HEADER_SIZE = 16;
export const ELEMENT_SIZE = 16;
export const BRANCH_FLAG = 0x01;
export const LEAF_FLAG = 0x02;
export const META_FLAG = 0x04;
export const FREELIST_FLAG = 0x10;
/** Leaf element flag: the value is a sub-bucket. */
export const BUCKET_LEAF_FLAG = 0x01;
export const BUCKET_HEADER_SIZE = 16;
export const MAX_SAFE_PGID = Number.MAX_SAFE_INTEGER;

export function pageTypeName(flags: number): string {
  switch (flags) {
    case BRANCH_FLAG:
      return 'branch';
    case LEAF_FLAG:
      return 'leaf';
    case META_FLAG:
      return 'meta';
    case FREELIST_FLAG:
      return 'freelist';
    default:
      return `unknown<${flags.toString(16)}>`;
  }
}

/**
 * Node's own Buffer subclass (what `Buffer.from` and `subarray` construct), reached through the
 * public species hook. Constructing it directly skips `subarray`'s species lookup and argument
 * handling, which made a view cost about twice as much; a range of 100 entries makes 200 views.
 */
type ViewCtor = new (buffer: ArrayBufferLike, byteOffset: number, length: number) => Buffer;
const SPECIES = (Buffer as unknown as { [Symbol.species]?: unknown })[Symbol.species];
const FastView: ViewCtor | null = (() => {
  if (typeof SPECIES !== 'function') return null;
  try {
    const v = new (SPECIES as ViewCtor)(new ArrayBuffer(2), 1, 1);
    return Buffer.isBuffer(v) && Object.getPrototypeOf(v) === Buffer.prototype && v.byteOffset === 1 && v.length === 1
      ? (SPECIES as ViewCtor)
      : null;
  } catch {
    return null;
  }
})();

/** A zero-copy Buffer view of bytes [start, start+len) of buf. */
export function view(buf: Buffer, start: number, len: number): Buffer {
  return FastView ? new FastView(buf.buffer, buf.byteOffset + start, len) : buf.subarray(start, start + len);
}

export function corrupt(msg: string): BoltError {
  return new BoltError('ERR_CORRUPT_PAGE', msg);
}

/** Reads a little-endian u64 as a JS number, refusing values we could not represent exactly. */
export function readU64(dv: DataView, off: number): number {
  const lo = dv.getUint32(off, true);
  const hi = dv.getUint32(off + 4, true);
  if (hi > 0x1fffff) throw corrupt(`64-bit field at ${off} out of range`);
  return hi * 0x100000000 + lo;
}

export function writeU64(dv: DataView, off: number, v: number): void {
  dv.setUint32(off, v >>> 0, true);
  dv.setUint32(off + 4, Math.floor(v / 0x100000000), true);
}

/**
 * The search key as big-endian 32-bit words, so a probe compares four bytes per step. Filled once
 * per search by `loadKeyWords`; shared because searches never interleave (JS is single-threaded
 * and a search calls nothing that could start another).
 */
const KEY_WORDS_MAX = 64;
const keyWords = new Uint32Array(KEY_WORDS_MAX);

/** Fill keyWords from key; returns how many whole words it holds (0 for long keys: bytewise then). */
function loadKeyWords(key: Uint8Array): number {
  const n = key.length >>> 2;
  if (n > KEY_WORDS_MAX) return 0;
  for (let w = 0, i = 0; w < n; w++, i += 4) {
    keyWords[w] = ((key[i]! << 24) | (key[i + 1]! << 16) | (key[i + 2]! << 8) | key[i + 3]!) >>> 0;
  }
  return n;
}

/**
 * Compare page bytes [start, start+len) with key, whose first `words` words are in keyWords:
 * whole words through the DataView while both sides have them, then the remaining bytes.
 */
function compareWords(
  dv: DataView,
  buf: Uint8Array,
  start: number,
  len: number,
  key: Uint8Array,
  words: number,
): number {
  const n = len < key.length ? len : key.length;
  const w = Math.min(n >>> 2, words);
  for (let i = 0; i < w; i++) {
    const a = dv.getUint32(start + (i << 2), false);
    const b = keyWords[i]!;
    if (a !== b) return a < b ? -1 : 1;
  }
  for (let i = w << 2; i < n; i++) {
    const d = buf[start + i]! - key[i]!;
    if (d !== 0) return d;
  }
  return len - key.length;
}

/** Pages with fewer elements are searched in place: an index would not pay for itself. */
const INDEX_MIN = 8;
/**
 * A leaf page builds its index on this many-th search, not the first: a page searched once (a
 * one-off seek) should not pay for reading every key. Branch pages are crossed by every search
 * below them, so they build on the first.
 */
const LEAF_INDEX_AFTER = 2;

/** The key index's leaf value-length word: this bit set means the element is a sub-bucket. */
const VALUE_BUCKET_BIT = 0x80000000;

/** Bytes [from, from+4) of b as a big-endian word, bytes at or past `end` read as zero. */
function wordAt(b: Uint8Array, from: number, end: number): number {
  if (from + 4 <= end) return ((b[from]! << 24) | (b[from + 1]! << 16) | (b[from + 2]! << 8) | b[from + 3]!) >>> 0;
  let w = 0;
  for (let i = 0; i < 4; i++) w = (w << 8) | (from + i < end ? b[from + i]! : 0);
  return w >>> 0;
}

/**
 * A read-only view of one page (or of an inline bucket's page image). Element accessors check
 * bounds, so a corrupt page surfaces as ERR_CORRUPT_PAGE instead of a RangeError deep inside.
 */
export class Page {
  /** A Buffer, so keys and values cut from it are Buffer views (they print as bytes, decode with toString). */
  readonly buf: Buffer;
  readonly dv: DataView;
  readonly id: number;
  readonly flags: number;
  readonly count: number;
  readonly overflow: number;
  /** flags === LEAF_FLAG, as a field: it is read at every level of every search. */
  readonly isLeaf: boolean;
  /** @internal The page cache's generation this page belongs to (pager.ts); 0 when not cached. */
  cacheGen = 0;
  /**
   * @internal The key index, built by the first search of a branch page and the second of a leaf:
   * each key's first eight bytes as two big-endian words (zero padded), side by side; then per
   * element three words: the key's length and, for a leaf, the value's offset and its length with
   * the sub-bucket flag in the top bit, for a branch the child page id (low, high word). A probe
   * reads this one small array instead of the element header and then the key at the far end of
   * the page, and a get or descent then finds the value or child in the same array: fewer cache
   * lines per level. Keys of up to eight bytes are decided by the index alone; longer keys that
   * tie on their first eight bytes are compared in the page.
   */
  private prefixes: Uint32Array | null = null;
  /** @internal Leaf pages: searches so far, until the index is built. */
  private searches = 0;
  /** The buffer's memory and offset, kept so a view is one constructor call. */
  private readonly ab: ArrayBufferLike;
  private readonly base: number;

  constructor(buf: Uint8Array) {
    if (buf.length < PAGE_HEADER_SIZE) throw corrupt(`page image of ${buf.length} bytes is shorter than its header`);
    this.buf = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
    this.dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.ab = buf.buffer;
    this.base = buf.byteOffset;
    this.id = readU64(this.dv, 0);
    this.flags = this.dv.getUint16(8, true);
    this.count = this.dv.getUint16(10, true);
    this.overflow = this.dv.getUint32(12, true);
    this.isLeaf = this.flags === LEAF_FLAG;
  }

  get isBranch(): boolean {
    return this.flags === BRANCH_FLAG;
  }

  /** Validate that every element's key (and value) lies inside the page, once per page. */
  validate(): void {
    if (this.flags !== LEAF_FLAG && this.flags !== BRANCH_FLAG) {
      throw corrupt(`page ${this.id}: expected branch or leaf, found ${pageTypeName(this.flags)}`);
    }
    const len = this.buf.length;
    if (PAGE_HEADER_SIZE + this.count * ELEMENT_SIZE > len) {
      throw corrupt(`page ${this.id}: ${this.count} elements do not fit in ${len} bytes`);
    }
    for (let i = 0; i < this.count; i++) {
      const e = PAGE_HEADER_SIZE + i * ELEMENT_SIZE;
      if (this.flags === LEAF_FLAG) {
        const pos = this.dv.getUint32(e + 4, true);
        const ksize = this.dv.getUint32(e + 8, true);
        const vsize = this.dv.getUint32(e + 12, true);
        if (e + pos + ksize + vsize > len || ksize === 0) {
          throw corrupt(`page ${this.id}: leaf element ${i} out of bounds`);
        }
      } else {
        const pos = this.dv.getUint32(e, true);
        const ksize = this.dv.getUint32(e + 4, true);
        if (e + pos + ksize > len) throw corrupt(`page ${this.id}: branch element ${i} out of bounds`);
        readU64(this.dv, e + 8);
      }
    }
  }

  /** A view of bytes [start, start+len) of this page. */
  private cut(start: number, len: number): Buffer {
    return FastView ? new FastView(this.ab, this.base + start, len) : this.buf.subarray(start, start + len);
  }

  key(i: number): Buffer {
    const e = PAGE_HEADER_SIZE + i * ELEMENT_SIZE;
    if (this.isLeaf) return this.cut(e + this.dv.getUint32(e + 4, true), this.dv.getUint32(e + 8, true));
    return this.cut(e + this.dv.getUint32(e, true), this.dv.getUint32(e + 4, true));
  }

  /** Compare the key of element i with key, in place. */
  compareKey(i: number, key: Uint8Array): number {
    const e = PAGE_HEADER_SIZE + i * ELEMENT_SIZE;
    if (this.isLeaf) {
      return compareAt(this.buf, e + this.dv.getUint32(e + 4, true), this.dv.getUint32(e + 8, true), key);
    }
    return compareAt(this.buf, e + this.dv.getUint32(e, true), this.dv.getUint32(e + 4, true), key);
  }

  /**
   * Index of the first element whose key is >= key; `exact` (when given) learns whether that
   * element's key equals key, so a caller needs no second comparison.
   */
  lowerBound(key: Uint8Array, exact?: { hit: boolean }): number {
    if (this.count >= INDEX_MIN) {
      if (this.prefixes !== null) return this.indexedLowerBound(this.prefixes, key, exact);
      if (!this.isLeaf || ++this.searches >= LEAF_INDEX_AFTER)
        return this.indexedLowerBound(this.buildIndex(), key, exact);
    }
    const words = loadKeyWords(key);
    const dv = this.dv;
    const buf = this.buf;
    // Leaf elements keep (pos, ksize) at +4/+8, branch elements at +0/+4.
    const off = this.isLeaf ? 4 : 0;
    let lo = 0;
    let hi = this.count;
    let hit = false;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const e = PAGE_HEADER_SIZE + mid * ELEMENT_SIZE;
      const start = e + dv.getUint32(e + off, true);
      const len = dv.getUint32(e + off + 4, true);
      const c = words > 0 ? compareWords(dv, buf, start, len, key, words) : compareAt(buf, start, len, key);
      if (c < 0) lo = mid + 1;
      else {
        hi = mid;
        hit = c === 0;
      }
    }
    if (exact) exact.hit = hit;
    return lo;
  }

  /** lowerBound through the key index (see `prefixes`). */
  private indexedLowerBound(idx: Uint32Array, key: Uint8Array, exact?: { hit: boolean }): number {
    const klen = key.length;
    const k0 = wordAt(key, 0, klen);
    const k1 = wordAt(key, 4, klen);
    const n = this.count;
    let lo = 0;
    let hi = n;
    let hit = false;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const a0 = idx[mid << 1]!;
      let c: number;
      if (a0 !== k0) c = a0 < k0 ? -1 : 1;
      else {
        const a1 = idx[(mid << 1) + 1]!;
        if (a1 !== k1) c = a1 < k1 ? -1 : 1;
        else {
          // Equal first eight bytes, zero padded. If either key has at most eight bytes, it is
          // a prefix of the other (the padding matched real zeros), so the shorter sorts first.
          const alen = idx[(n << 1) + mid * 3]!;
          if (alen <= 8 || klen <= 8) c = alen - klen;
          else {
            const e = PAGE_HEADER_SIZE + mid * ELEMENT_SIZE;
            const off = this.isLeaf ? 4 : 0;
            c = compareAt(this.buf, e + this.dv.getUint32(e + off, true), alen, key);
          }
        }
      }
      if (c < 0) lo = mid + 1;
      else {
        hi = mid;
        hit = c === 0;
      }
    }
    if (exact) exact.hit = hit;
    return lo;
  }

  private buildIndex(): Uint32Array {
    const n = this.count;
    const dv = this.dv;
    const buf = this.buf;
    const leaf = this.isLeaf;
    // Leaf elements keep (pos, ksize) at +4/+8, branch elements at +0/+4.
    const off = leaf ? 4 : 0;
    const idx = new Uint32Array(n * 5);
    for (let i = 0; i < n; i++) {
      const e = PAGE_HEADER_SIZE + i * ELEMENT_SIZE;
      const start = e + dv.getUint32(e + off, true);
      const len = dv.getUint32(e + off + 4, true);
      idx[i << 1] = wordAt(buf, start, start + len);
      idx[(i << 1) + 1] = wordAt(buf, start + 4, start + len);
      const t = (n << 1) + i * 3;
      idx[t] = len;
      if (leaf) {
        const vlen = dv.getUint32(e + 12, true);
        // A value of 2 GiB or more cannot lie inside a page buffer: only a damaged page says so.
        if (vlen >= VALUE_BUCKET_BIT)
          throw corrupt(`page ${this.id}: leaf element ${i} value length ${vlen} out of range`);
        idx[t + 1] = start + len;
        idx[t + 2] = dv.getUint32(e, true) & BUCKET_LEAF_FLAG ? (vlen | VALUE_BUCKET_BIT) >>> 0 : vlen;
      } else {
        // Range-checked here, so child() can combine the words without a check.
        readU64(dv, e + 8);
        idx[t + 1] = dv.getUint32(e + 8, true);
        idx[t + 2] = dv.getUint32(e + 12, true);
      }
    }
    this.prefixes = idx;
    return idx;
  }

  /** Leaf only. */
  value(i: number): Buffer {
    const e = PAGE_HEADER_SIZE + i * ELEMENT_SIZE;
    const pos = this.dv.getUint32(e + 4, true);
    const ksize = this.dv.getUint32(e + 8, true);
    return this.cut(e + pos + ksize, this.dv.getUint32(e + 12, true));
  }

  /** Leaf only: the value of element i, or undefined when it is a sub-bucket. */
  leafValue(i: number): Buffer | undefined {
    const idx = this.prefixes;
    if (idx !== null && i >= 0 && i < this.count) {
      const t = (this.count << 1) + i * 3;
      const vlen = idx[t + 2]!;
      if (vlen >= VALUE_BUCKET_BIT) return undefined;
      return this.cut(idx[t + 1]!, vlen);
    }
    const dv = this.dv;
    const e = PAGE_HEADER_SIZE + i * ELEMENT_SIZE;
    if (dv.getUint32(e, true) & BUCKET_LEAF_FLAG) return undefined;
    return this.cut(e + dv.getUint32(e + 4, true) + dv.getUint32(e + 8, true), dv.getUint32(e + 12, true));
  }

  /** Leaf only: key and value of element i (value null for a sub-bucket), reading the element once. */
  entry(i: number): [key: Buffer, value: Buffer | null] {
    const dv = this.dv;
    const e = PAGE_HEADER_SIZE + i * ELEMENT_SIZE;
    const kstart = e + dv.getUint32(e + 4, true);
    const ksize = dv.getUint32(e + 8, true);
    const key = this.cut(kstart, ksize);
    if (dv.getUint32(e, true) & BUCKET_LEAF_FLAG) return [key, null];
    return [key, this.cut(kstart + ksize, dv.getUint32(e + 12, true))];
  }

  /**
   * Leaf only: point a scan's entry at element i (no views). Here rather than in the cursor so
   * the layout constants are this module's own: under a CommonJS transform (tsx) every imported
   * binding is a getter call, which showed as 12 % of a scan.
   */
  point(i: number, e: ScanEntry): void {
    const dv = this.dv;
    const el = PAGE_HEADER_SIZE + i * ELEMENT_SIZE;
    const ks = el + dv.getUint32(el + 4, true);
    const kl = dv.getUint32(el + 8, true);
    const bucket = (dv.getUint32(el, true) & BUCKET_LEAF_FLAG) !== 0;
    // Consecutive entries come from the same page: storing an object reference costs a write
    // barrier, a comparison does not.
    const buf = this.buf;
    if (e.keyBuffer !== buf) e.keyBuffer = buf;
    e.keyOffset = ks;
    e.keyLength = kl;
    if (e.valueBuffer !== buf) e.valueBuffer = buf;
    e.valueOffset = ks + kl;
    e.valueLength = bucket ? 0 : dv.getUint32(el + 12, true);
    e.isBucket = bucket;
  }

  /** Leaf only. */
  elementFlags(i: number): number {
    return this.dv.getUint32(PAGE_HEADER_SIZE + i * ELEMENT_SIZE, true);
  }

  /** Branch only. */
  child(i: number): number {
    const idx = this.prefixes;
    if (idx !== null && i >= 0 && i < this.count) {
      const t = (this.count << 1) + i * 3;
      return idx[t + 2]! * 0x100000000 + idx[t + 1]!;
    }
    return readU64(this.dv, PAGE_HEADER_SIZE + i * ELEMENT_SIZE + 8);
  }
}

/** Writes a page header into buf. */
export function writePageHeader(buf: Uint8Array, id: number, flags: number, count: number, overflow: number): DataView {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  writeU64(dv, 0, id);
  dv.setUint16(8, flags, true);
  dv.setUint16(10, count, true);
  dv.setUint32(12, overflow, true);
  return dv;
}
