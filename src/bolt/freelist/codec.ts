/**
 * The freelist page, byte-compatible with bbolt: a 16-byte page header (id u64, flags u16 = 0x10,
 * count u16, overflow u32) then the free and pending page ids as little-endian u64, ascending.
 * When there are 0xFFFF ids or more, the header count is 0xFFFF and the first u64 after the header
 * holds the real count. The ids may run on into overflow pages, which carry no header of their own.
 *
 * Ids are written and read as two u32 halves through a Uint32Array view when the platform is
 * little-endian (every platform Node ships on), which keeps a multi-million-id page in the tens of
 * milliseconds; a DataView path covers the rest. Decoding trusts nothing: a page from disk that
 * is inconsistent gets ERR_CORRUPT_PAGE, never a wrong list.
 */
import { BoltError, Panic } from '../errors.ts';

export const FREELIST_PAGE_FLAG = 0x10;
const HEADER = 16;
const TWO_32 = 0x1_0000_0000;
/** Count value in the header meaning "the real count is the first u64". */
const COUNT_OVERFLOW = 0xffff;
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function checkPageSize(pageSize: number): void {
  if (!Number.isInteger(pageSize) || pageSize < 64 || pageSize > 0x4000_0000) {
    throw new BoltError('ERR_INVALID_OPTION', `page size ${pageSize} is not an integer in 64..2^30`);
  }
}

/** Bytes of ids and count prefix after the header. */
function bodyBytes(idCount: number): number {
  return 8 * (idCount >= COUNT_OVERFLOW ? idCount + 1 : idCount);
}

/** Pages (the first plus its overflow pages) a freelist page with idCount ids occupies. */
export function freelistPageCount(idCount: number, pageSize: number): number {
  checkPageSize(pageSize);
  if (!Number.isSafeInteger(idCount) || idCount < 0) {
    throw new BoltError('ERR_INVALID_OPTION', `id count ${idCount} is not a non-negative integer`);
  }
  return Math.max(1, Math.ceil((HEADER + bodyBytes(idCount)) / pageSize));
}

/**
 * The whole run of pages holding `ids` (ascending, distinct, >= 2), starting at page `pgid`.
 * Unused bytes are zero. Ids out of order are a bug in the caller: Panic.
 */
export function encodeFreelistPage(pgid: number, ids: readonly number[], pageSize: number): Uint8Array {
  if (!Number.isSafeInteger(pgid) || pgid < 2) throw new Panic(`freelist page id ${pgid} is invalid`);
  const pages = freelistPageCount(ids.length, pageSize);
  const buf = new Uint8Array(pages * pageSize);
  const view = new DataView(buf.buffer);
  view.setUint32(0, pgid % TWO_32, true);
  view.setUint32(4, Math.floor(pgid / TWO_32), true);
  view.setUint16(8, FREELIST_PAGE_FLAG, true);
  let at = HEADER;
  if (ids.length >= COUNT_OVERFLOW) {
    view.setUint16(10, COUNT_OVERFLOW, true);
    view.setUint32(HEADER, ids.length % TWO_32, true);
    view.setUint32(HEADER + 4, Math.floor(ids.length / TWO_32), true);
    at += 8;
  } else {
    view.setUint16(10, ids.length, true);
  }
  view.setUint32(12, pages - 1, true);

  let prev = 1;
  const n = ids.length;
  if (LITTLE_ENDIAN) {
    const words = new Uint32Array(buf.buffer, at, 2 * n);
    for (let i = 0; i < n; i++) {
      const id = ids[i]!;
      if (!(id > prev) || !Number.isSafeInteger(id)) throw badId(i, id);
      prev = id;
      if (id < TWO_32) words[2 * i] = id;
      else {
        words[2 * i] = id % TWO_32;
        words[2 * i + 1] = Math.floor(id / TWO_32);
      }
    }
  } else {
    for (let i = 0; i < n; i++) {
      const id = ids[i]!;
      if (!(id > prev) || !Number.isSafeInteger(id)) throw badId(i, id);
      prev = id;
      view.setUint32(at + 8 * i, id % TWO_32, true);
      view.setUint32(at + 8 * i + 4, Math.floor(id / TWO_32), true);
    }
  }
  return buf;
}

function badId(i: number, id: number): Panic {
  return new Panic(`freelist id #${i} (${id}) is not a page id above the previous one`);
}

function corrupt(message: string): BoltError {
  return new BoltError('ERR_CORRUPT_PAGE', `freelist page: ${message}`);
}

/**
 * The ids listed by a freelist page (the buffer holds at least the page and its overflow pages'
 * bytes that carry ids). Throws ERR_CORRUPT_PAGE if the flags are not exactly the freelist flag,
 * the count runs past the buffer, or the ids are not strictly ascending safe integers >= 2.
 * Like bbolt, a page that uses the 0xFFFF count form for fewer ids is accepted.
 */
export function decodeFreelistPage(buf: Uint8Array): number[] {
  if (buf.length < HEADER) throw corrupt(`${buf.length} bytes is shorter than a page header`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const flags = view.getUint16(8, true);
  if (flags !== FREELIST_PAGE_FLAG) throw corrupt(`flags 0x${flags.toString(16)}, expected 0x10`);
  let count = view.getUint16(10, true);
  let at = HEADER;
  if (count === COUNT_OVERFLOW) {
    if (buf.length < HEADER + 8) throw corrupt('count prefix missing');
    const lo = view.getUint32(HEADER, true);
    const hi = view.getUint32(HEADER + 4, true);
    count = hi * TWO_32 + lo;
    at += 8;
  }
  if (count > (buf.length - at) / 8) {
    throw corrupt(`count ${count} needs ${at + 8 * count} bytes, buffer has ${buf.length}`);
  }
  const out = new Array<number>(count);
  let prev = 1;
  const aligned = LITTLE_ENDIAN && (buf.byteOffset + at) % 4 === 0;
  const words = aligned ? new Uint32Array(buf.buffer, buf.byteOffset + at, 2 * count) : null;
  for (let i = 0; i < count; i++) {
    let lo: number;
    let hi: number;
    if (words !== null) {
      lo = words[2 * i]!;
      hi = words[2 * i + 1]!;
    } else {
      lo = view.getUint32(at + 8 * i, true);
      hi = view.getUint32(at + 8 * i + 4, true);
    }
    if (hi > 0x1fffff) throw corrupt(`id #${i} is beyond 2^53`);
    const id = hi * TWO_32 + lo;
    if (id <= prev) {
      throw corrupt(id < 2 ? `id #${i} is ${id}, below 2` : `id #${i} (${id}) is not above ${prev}`);
    }
    out[i] = id;
    prev = id;
  }
  return out;
}
