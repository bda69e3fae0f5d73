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

/** What a meta page slot holds: a meta, or nothing trustworthy (torn, unwritten, not bbolt). */
export type MetaSlot = { meta: Meta } | { unverified: BoltError };

const MAX_U64_SAFE_HI = 0x1fffff;

/**
 * Decode meta page `which` (0 or 1). A page that fails its magic, version or checksum is
 * `unverified`: a torn or never-written meta, which the other meta replaces (as in bbolt). A page
 * that passes its checksum but holds something that cannot be true is damage written by
 * something: that throws ERR_INVALID_FILE naming the meta and the field, so a caller never silently
 * gets an older commit than the file claims.
 */
export function readMetaSlot(buf: Uint8Array, which: 0 | 1): MetaSlot {
  if (buf.length < PAGE_HEADER_SIZE + META_SIZE) {
    return { unverified: new BoltError('ERR_INVALID_FILE', 'invalid database: meta page truncated') };
  }
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const o = PAGE_HEADER_SIZE;
  if (dv.getUint32(o, true) !== MAGIC)
    return { unverified: new BoltError('ERR_INVALID_FILE', 'invalid database: bad magic') };
  const version = dv.getUint32(o + 4, true);
  if (version !== VERSION) {
    return {
      unverified: new BoltError('ERR_VERSION_MISMATCH', `version mismatch: file has ${version}, expected ${VERSION}`),
    };
  }
  const storedLo = dv.getUint32(o + 56, true);
  const storedHi = dv.getUint32(o + 60, true);
  const [hi, lo] = fnv64a(buf.subarray(o, o + 56));
  if (hi !== storedHi || lo !== storedLo)
    return { unverified: new BoltError('ERR_CHECKSUM', 'meta checksum mismatch') };
  const impossible = (what: string): BoltError =>
    new BoltError('ERR_INVALID_FILE', `invalid database: meta ${which} passes its checksum but ${what}`);
  const u64 = (name: string, off: number): number => {
    if (dv.getUint32(off + 4, true) > MAX_U64_SAFE_HI) throw impossible(`its ${name} is 2^53 or more`);
    return readU64(dv, off);
  };
  const noFreelist = dv.getUint32(o + 36, true) === NO_FREELIST_HI && dv.getUint32(o + 32, true) === NO_FREELIST_LO;
  const m: Meta = {
    pageSize: dv.getUint32(o + 8, true),
    flags: dv.getUint32(o + 12, true),
    root: u64('root', o + 16),
    sequence: dv.getBigUint64(o + 24, true),
    freelist: noFreelist ? PGID_NO_FREELIST : u64('freelist', o + 32),
    pgid: u64('pgid', o + 40),
    txid: u64('txid', o + 48),
  };
  const ps = m.pageSize;
  if (!(ps >= 1024 && ps <= 65536 && (ps & (ps - 1)) === 0))
    throw impossible(`its page size ${ps} is not a power of two in 1024..65536`);
  if (m.pgid < 4) throw impossible(`its high-water mark pgid ${m.pgid} is below the 4 pages every file has`);
  if (m.root < 2 || m.root >= m.pgid)
    throw impossible(`its root ${m.root} is outside the pages in use (2..${m.pgid - 1})`);
  if (m.freelist !== PGID_NO_FREELIST && (m.freelist < 2 || m.freelist >= m.pgid)) {
    throw impossible(`its freelist ${m.freelist} is outside the pages in use (2..${m.pgid - 1})`);
  }
  return { meta: m };
}

/** A meta page's fields; throws the typed error of an unverified or impossible meta. */
export function decodeMeta(buf: Uint8Array, which: 0 | 1 = 0): Meta {
  const slot = readMetaSlot(buf, which);
  if ('unverified' in slot) throw slot.unverified;
  return slot.meta;
}

/** The meta page size check a caller needs before it trusts where meta 1 lies. */
export function impossiblePageSize(which: 0 | 1, found: number, at: number): BoltError {
  return new BoltError(
    'ERR_INVALID_FILE',
    `invalid database: meta ${which} passes its checksum but its page size ${found} is unlike the ${at} it was found at`,
  );
}

export function readMetaTxid(buf: Uint8Array): number {
  return readU64(new DataView(buf.buffer, buf.byteOffset, buf.byteLength), PAGE_HEADER_SIZE + 48);
}
