/**
 * Encoding of records stored in the backend, with msgpackr: a KeyValue as a 6-element array (a
 * tombstone as the 1-element array [key], as etcd stores a key-only KeyValue), a lease as [ID, TTL].
 * Arrays rather than maps keep records small and decoding cheap.
 */
import { Packr } from 'msgpackr';
import type { KeyValue } from './types.ts';
import { corruption } from './errors.ts';
import { bytesToByteString } from '../keys.ts';

const packr = new Packr({ useRecords: false, mapsAsObjects: true, int64AsType: 'bigint' });
const SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;

/** Lease IDs within ±2^53 are stored as plain msgpack integers (as before bigint IDs), others as int64. */
function packLease(id: bigint): number | bigint {
  return id <= SAFE && id >= -SAFE ? Number(id) : id;
}

/** Why a stored record cannot be one boltkv wrote; the caller names bucket and key. */
class Damaged extends Error {}

function unpackLease(v: unknown): bigint {
  if (typeof v === 'bigint' && v >= INT64_MIN && v <= INT64_MAX) return v;
  if (typeof v === 'number' && Number.isSafeInteger(v)) return BigInt(v);
  throw new Damaged('lease is not an int64');
}

function bytes(b: unknown, what: string): Uint8Array {
  if (!(b instanceof Uint8Array)) throw new Damaged(`${what} is not bytes`);
  return b;
}

/** A revision or version field: a safe integer ≥ min (msgpackr returns int64-encoded ones as bigint). */
function count(v: unknown, what: string, min: number): number {
  const n = typeof v === 'bigint' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < min)
    throw new Damaged(`${what} is not an integer ≥ ${min}`);
  return n;
}

function unpack(b: Uint8Array): unknown {
  try {
    return packr.unpack(b) as unknown;
  } catch (e) {
    throw new Damaged(`not msgpack (${e instanceof Error ? e.message : String(e)})`);
  }
}

function inBucket<T>(bucket: string, at: Uint8Array, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof Damaged) throw corruption(bucket, at, e.message);
    throw e;
  }
}

export function encodeKeyValue(kv: KeyValue): Uint8Array {
  return encodeRecord(kv.key, kv.createRevision, kv.modRevision, kv.version, kv.value, kv.lease);
}

/** encodeKeyValue from the fields themselves, so a put needs no KeyValue (nor copies) to be stored. */
export function encodeRecord(
  key: Uint8Array,
  createRevision: number,
  modRevision: number,
  version: number,
  value: Uint8Array,
  lease: bigint,
): Uint8Array {
  return packr.pack([key, createRevision, modRevision, version, value, packLease(lease)]);
}

export function encodeTombstone(key: Uint8Array): Uint8Array {
  return packr.pack([key]);
}

/** Decoded record: a tombstone carries only its key. */
export type StoredRecord = { tombstone: false; kv: KeyValue } | { tombstone: true; key: Uint8Array };

/**
 * A record of the `key` bucket stored at revision key `at`. Key and value are Buffer views into `b`
 * (no copy: the engine never reuses a buffer it handed out). A record that cannot be one boltkv
 * wrote throws ERR_CORRUPT naming the bucket and key. The layouts boltkv writes are read by hand
 * (every range and every watch event decodes records: msgpackr's generic decode made an array and
 * more per record); anything else goes to msgpackr, which also says what is wrong.
 */
export function decodeRecord(b: Uint8Array, at: Uint8Array): StoredRecord {
  if (!scanRecord(b, 0, b.length)) return decodeRecordFull(b, at);
  const key = view(b, sKeyStart, sKeyEnd);
  if (sTombstone) return { tombstone: true, key };
  return {
    tombstone: false,
    kv: {
      key,
      createRevision: sCreate,
      modRevision: sMod,
      version: sVersion,
      value: view(b, sValueStart, sValueEnd),
      lease: sLease,
    },
  };
}

/** Bytes [start, end) of b as a Buffer view. */
function view(b: Uint8Array, start: number, end: number): Buffer {
  return Buffer.from(b.buffer, b.byteOffset + start, end - start);
}

/** decodeRecord by msgpackr alone: the reference the hand reader is tested against. */
export function decodeRecordFull(b: Uint8Array, at: Uint8Array): StoredRecord {
  return inBucket('key', at, () => {
    const a = unpack(b);
    if (!Array.isArray(a) || (a.length !== 1 && a.length !== 6))
      throw new Damaged('not a KeyValue or tombstone record');
    const key = asBuffer(bytes(a[0], 'key'));
    if (key.length === 0) throw new Damaged('empty key');
    if (a.length === 1) return { tombstone: true, key };
    const createRevision = count(a[1], 'createRevision', 1);
    const modRevision = count(a[2], 'modRevision', 1);
    if (createRevision > modRevision) throw new Damaged('createRevision after modRevision');
    return {
      tombstone: false,
      kv: {
        key,
        createRevision,
        modRevision,
        version: count(a[3], 'version', 1),
        value: asBuffer(bytes(a[4], 'value')),
        lease: unpackLease(a[5]),
      },
    };
  });
}

function asBuffer(b: Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

export interface LeaseRecord {
  ID: bigint;
  TTL: number;
}

export function encodeLease(l: LeaseRecord): Uint8Array {
  return packr.pack([packLease(l.ID), l.TTL]);
}

/** A record of the `lease` bucket stored under `at`; ERR_CORRUPT if damaged. */
export function decodeLease(b: Uint8Array, at: Uint8Array): LeaseRecord {
  return inBucket('lease', at, () => {
    const a = unpack(b);
    if (!Array.isArray(a) || a.length !== 2) throw new Damaged('not a lease record');
    const ID = unpackLease(a[0]);
    if (ID === 0n) throw new Damaged('lease ID 0');
    return { ID, TTL: count(a[1], 'TTL', 1) };
  });
}

/** What the key index needs from a record when it is rebuilt on open: no value, no copies. */
export interface IndexFields {
  /** The key as a binary (latin1) string. */
  key: string;
  tombstone: boolean;
  createRevision: number;
  modRevision: number;
  version: number;
  lease: bigint;
}

/**
 * Reads only the index fields straight from the msgpack bytes of a record (reopening a million-key
 * store decodes every record, and skipping the value halves the garbage). Any layout it does not
 * expect falls back to the full decoder.
 */
export function decodeIndexFields(b: Uint8Array, at: Uint8Array): IndexFields {
  return { ...decodeIndexFieldsShared(b, at) };
}

/** The fields every decode writes into: reopening decodes millions of records, one object serves. */
const shared: IndexFields = { key: '', tombstone: false, createRevision: 0, modRevision: 0, version: 0, lease: 0n };

/**
 * decodeIndexFields without an allocation per record (only the key string): the answer is one
 * shared object, valid until the next call.
 */
export function decodeIndexFieldsShared(b: Uint8Array, at: Uint8Array): Readonly<IndexFields> {
  return decodeIndexFieldsAt(b, 0, b.length, at, 0, at.length);
}

/**
 * decodeIndexFieldsShared of bytes [start, end) of `b`, stored under the key at [atOff, atOff+atLen)
 * of `atBuf`: no view of either is made unless the record is damaged.
 */
export function decodeIndexFieldsAt(
  b: Uint8Array,
  start: number,
  end: number,
  atBuf: Uint8Array,
  atOff: number,
  atLen: number,
): Readonly<IndexFields> {
  if (readIndexFields(b, start, end)) return shared;
  const rec = decodeRecord(b.subarray(start, end), atBuf.slice(atOff, atOff + atLen));
  if (rec.tombstone) return fill(latin1(rec.key, 0, rec.key.length), true, 0, 0, 0, 0n);
  const kv = rec.kv;
  return fill(latin1(kv.key, 0, kv.key.length), false, kv.createRevision, kv.modRevision, kv.version, kv.lease);
}

function fill(
  key: string,
  tombstone: boolean,
  createRevision: number,
  modRevision: number,
  version: number,
  lease: bigint,
): IndexFields {
  shared.key = key;
  shared.tombstone = tombstone;
  shared.createRevision = createRevision;
  shared.modRevision = modRevision;
  shared.version = version;
  shared.lease = lease;
  return shared;
}

/** Bytes [start, end) of b as a byte-string; straight from a Buffer, without a view object. */
function latin1(b: Uint8Array, start: number, end: number): string {
  return Buffer.isBuffer(b) ? b.toString('latin1', start, end) : bytesToByteString(b.subarray(start, end));
}

// Reader state of readIndexFields (module-level: per-call closures cost more than the parsing).
let rb: Uint8Array = new Uint8Array(0);
let rpos = 0;
/** Where the record being read ends in rb. */
let rend = 0;
let binStart = 0;

/** Skips a msgpack bin, leaving its start in binStart; false if the next item is not a bin. */
function readBin(): boolean {
  const t = rb[rpos];
  let len: number;
  if (t === 0xc4) {
    len = rb[rpos + 1]!;
    rpos += 2;
  } else if (t === 0xc5) {
    len = (rb[rpos + 1]! << 8) | rb[rpos + 2]!;
    rpos += 3;
  } else if (t === 0xc6) {
    len = ((rb[rpos + 1]! << 24) >>> 0) + ((rb[rpos + 2]! << 16) | (rb[rpos + 3]! << 8) | rb[rpos + 4]!);
    rpos += 5;
  } else return false;
  binStart = rpos;
  rpos += len;
  return rpos <= rend;
}

/** A msgpack integer (or float64 holding one); NaN if the next item is something else. */
function readInt(): number {
  const t = rb[rpos]!;
  if (t <= 0x7f) {
    rpos += 1;
    return t;
  }
  if (t >= 0xe0) {
    rpos += 1;
    return t - 0x100;
  }
  const at = rpos + 1;
  // revisions are mostly uint16/uint32: read them by hand, a DataView per field is garbage
  if (t === 0xcc && at < rend) {
    rpos += 2;
    return rb[at]!;
  }
  if (t === 0xcd && at + 1 < rend) {
    rpos += 3;
    return (rb[at]! << 8) | rb[at + 1]!;
  }
  if (t === 0xce && at + 3 < rend) {
    rpos += 5;
    return ((rb[at]! << 24) >>> 0) + ((rb[at + 1]! << 16) | (rb[at + 2]! << 8) | rb[at + 3]!);
  }
  const v = new DataView(rb.buffer, rb.byteOffset);
  switch (t) {
    case 0xcc:
      rpos += 2;
      return v.getUint8(at);
    case 0xcd:
      rpos += 3;
      return v.getUint16(at);
    case 0xce:
      rpos += 5;
      return v.getUint32(at);
    case 0xcf:
      rpos += 9;
      return Number(v.getBigUint64(at));
    case 0xd0:
      rpos += 2;
      return v.getInt8(at);
    case 0xd1:
      rpos += 3;
      return v.getInt16(at);
    case 0xd2:
      rpos += 5;
      return v.getInt32(at);
    case 0xd3:
      rpos += 9;
      return Number(v.getBigInt64(at));
    case 0xcb:
      rpos += 9;
      return v.getFloat64(at);
    default:
      return NaN;
  }
}

/** A lease ID: small ones as readInt reads them, int64 ones exactly. */
function readLease(): bigint | undefined {
  const t = rb[rpos];
  if (t === 0xcf || t === 0xd3) {
    if (rpos + 9 > rend) return undefined;
    const v = new DataView(rb.buffer, rb.byteOffset + rpos + 1, 8);
    rpos += 9;
    return t === 0xcf ? v.getBigUint64(0) : v.getBigInt64(0);
  }
  const n = readInt();
  if (n === 0) return 0n; // no lease: the common case, no BigInt to allocate
  return Number.isSafeInteger(n) ? BigInt(n) : undefined;
}

/** The fast path into `shared`; false when the full decoder must look (it says what is wrong). */
function readIndexFields(b: Uint8Array, start: number, end: number): boolean {
  if (!scanRecord(b, start, end)) return false;
  const key = latin1(b, sKeyStart, sKeyEnd);
  if (sTombstone) fill(key, true, 0, 0, 0, 0n);
  else fill(key, false, sCreate, sMod, sVersion, sLease);
  return true;
}

// What scanRecord found (module-level, as the reader state above): positions are into its `b`.
let sTombstone = false;
let sKeyStart = 0;
let sKeyEnd = 0;
let sValueStart = 0;
let sValueEnd = 0;
let sCreate = 0;
let sMod = 0;
let sVersion = 0;
let sLease = 0n;

/**
 * Reads a record of the layouts boltkv writes from bytes [start, end) of b into the s* registers,
 * checking what the full decoder checks; false when it is anything else (the full decoder must
 * look).
 */
function scanRecord(b: Uint8Array, start: number, end: number): boolean {
  try {
    return scanRecordUnchecked(b, start, end);
  } catch {
    return false; // truncated
  }
}

function scanRecordUnchecked(b: Uint8Array, start: number, end: number): boolean {
  if (end <= start) return false;
  const head = b[start];
  if (head !== 0x91 && head !== 0x96) return false;
  rb = b;
  rpos = start + 1;
  rend = end;
  if (!readBin()) return false;
  if (rpos === binStart) return false; // empty key
  sKeyStart = binStart;
  sKeyEnd = rpos;
  if (head === 0x91) {
    if (rpos !== rend) return false;
    sTombstone = true;
    return true;
  }
  const createRevision = readInt();
  const modRevision = readInt();
  const version = readInt();
  if (!(Number.isSafeInteger(createRevision) && Number.isSafeInteger(modRevision) && Number.isSafeInteger(version)))
    return false;
  if (createRevision < 1 || createRevision > modRevision || version < 1 || !readBin()) return false;
  sValueStart = binStart;
  sValueEnd = rpos;
  const lease = readLease();
  if (lease === undefined || lease > INT64_MAX || rpos !== rend) return false;
  sTombstone = false;
  sCreate = createRevision;
  sMod = modRevision;
  sVersion = version;
  sLease = lease;
  return true;
}
