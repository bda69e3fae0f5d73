import { BoltError } from './errors.ts';
import { META_FLAG, PAGE_HEADER_SIZE, readU64, writePageHeader, writeU64 } from './page.ts';

export const MAGIC = 0xed0cdaed;
export const VERSION = 2;
/** Freelist pgid meaning "no freelist written" (NoFreelistSync). */
export const PGID_NO_FREELIST = Number.MAX_SAFE_INTEGER;
const NO_FREELIST_HI = 0xffffffff;
const NO_FREELIST_LO = 0xffffffff;
const META_SIZE = 64;

/** The meta struct: the root of everything a transaction sees. */
export interface Meta {
  pageSize: number;
  flags: number;
  root: number;
  /** u64 in the format; bigint so no value is lost. */
  sequence: bigint;
  freelist: number;
  pgid: number;
  txid: number;
}

/** 64-bit FNV-1a over bytes, done in two 32-bit halves since JS has no cheap u64 multiply. */
export function fnv64a(bytes: Uint8Array): [hi: number, lo: number] {
  // offset basis 0xcbf29ce484222325, prime 0x100000001b3
  let hi = 0xcbf29ce4;
  let lo = 0x84222325;
  for (let i = 0; i < bytes.length; i++) {
    lo ^= bytes[i]!;
    // (hi:lo) * 0x1_000001b3 = (hi:lo) * 0x1b3 + ((hi:lo) << 40) ... keep 64 bits.
    const loLow = lo & 0xffff;
    const loHigh = lo >>> 16;
    const a = loLow * 0x1b3;
    const b = loHigh * 0x1b3 + (a >>> 16);
    const newLo = ((b & 0xffff) << 16) | (a & 0xffff);
    const carry = Math.floor(b / 0x10000);
    // hi * 0x1b3 + carry + (lo << 8) (the 2^40 term lands in the high word shifted by 8)
    const newHi = (Math.imul(hi, 0x1b3) + carry + (lo << 8)) >>> 0;
    lo = newLo >>> 0;
    hi = newHi;
  }
  return [hi >>> 0, lo >>> 0];
}

export function encodeMeta(buf: Uint8Array, pageId: number, m: Meta): void {
  buf.fill(0, 0, PAGE_HEADER_SIZE + META_SIZE + 8);
  const dv = writePageHeader(buf, pageId, META_FLAG, 0, 0);
  const o = PAGE_HEADER_SIZE;
  dv.setUint32(o, MAGIC, true);
  dv.setUint32(o + 4, VERSION, true);
  dv.setUint32(o + 8, m.pageSize, true);
  dv.setUint32(o + 12, m.flags, true);
  writeU64(dv, o + 16, m.root);
  dv.setBigUint64(o + 24, m.sequence, true);
  if (m.freelist === PGID_NO_FREELIST) {
    dv.setUint32(o + 32, NO_FREELIST_LO, true);
    dv.setUint32(o + 36, NO_FREELIST_HI, true);
  } else {
    writeU64(dv, o + 32, m.freelist);
  }
  writeU64(dv, o + 40, m.pgid);
  writeU64(dv, o + 48, m.txid);
  const [hi, lo] = fnv64a(buf.subarray(o, o + 56));
  dv.setUint32(o + 56, lo, true);
  dv.setUint32(o + 60, hi, true);
}

/** Decode and validate a meta page; throws a typed error saying what is wrong. */
export function decodeMeta(buf: Uint8Array): Meta {
  if (buf.length < PAGE_HEADER_SIZE + 64) throw new BoltError('ERR_INVALID_FILE', 'invalid database: meta page truncated');
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const o = PAGE_HEADER_SIZE;
  if (dv.getUint32(o, true) !== MAGIC) throw new BoltError('ERR_INVALID_FILE', 'invalid database: bad magic');
  const version = dv.getUint32(o + 4, true);
  if (version !== VERSION) throw new BoltError('ERR_VERSION_MISMATCH', `version mismatch: file has ${version}, expected ${VERSION}`);
  const storedLo = dv.getUint32(o + 56, true);
  const storedHi = dv.getUint32(o + 60, true);
  if (storedLo !== 0 || storedHi !== 0) {
    const [hi, lo] = fnv64a(buf.subarray(o, o + 56));
    if (hi !== storedHi || lo !== storedLo) throw new BoltError('ERR_CHECKSUM', 'meta checksum mismatch');
  }
  try {
    const flHi = dv.getUint32(o + 36, true);
    const flLo = dv.getUint32(o + 32, true);
    const freelist = flHi === NO_FREELIST_HI && flLo === NO_FREELIST_LO ? PGID_NO_FREELIST : readU64(dv, o + 32);
    const m: Meta = {
      pageSize: dv.getUint32(o + 8, true),
      flags: dv.getUint32(o + 12, true),
      root: readU64(dv, o + 16),
      sequence: dv.getBigUint64(o + 24, true),
      freelist,
      pgid: readU64(dv, o + 40),
      txid: readU64(dv, o + 48),
    };
    return m;
  } catch (err) {
    throw new BoltError('ERR_INVALID_FILE', `invalid database: meta field out of range`, { cause: err });
  }
}

/** Structural sanity of a meta that passed its checksum: ids must make sense together. */
export function validateMeta(m: Meta): void {
  const ok =
    m.pageSize >= 512 && m.pageSize <= 65536 && (m.pageSize & (m.pageSize - 1)) === 0 &&
    m.pgid >= 2 && m.root >= 2 && m.root < m.pgid &&
    (m.freelist === PGID_NO_FREELIST || (m.freelist >= 2 && m.freelist < m.pgid));
  if (!ok) throw new BoltError('ERR_INVALID_FILE', 'invalid database: meta fields inconsistent');
}

export function readMetaTxid(buf: Uint8Array): number {
  return readU64(new DataView(buf.buffer, buf.byteOffset, buf.byteLength), PAGE_HEADER_SIZE + 48);
}
