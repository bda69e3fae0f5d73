/**
 * etcd 3.4's HashKV (kvstore.HashByRev): a CRC-32C over the `key` bucket as etcd would store it —
 * the bucket name, then every revision key ≤ rev with its mvccpb.KeyValue bytes, in revision order —
 * so two members (or boltkv and etcd) that applied the same history agree on the number.
 *
 * boltkv stores records as msgpack, not protobuf, so each record is re-encoded as the protobuf
 * etcd would have written (a tombstone as a KeyValue holding only its key). Compaction-awareness
 * follows etcd: revisions ≤ the compaction revision count only if the key index would keep them at
 * `rev`, i.e. a key's newest record ≤ rev when that record is a put; while nothing would be kept,
 * nothing is filtered. Deriving that from the records (rather than the in-memory index) gives the
 * same set, because a compaction never removes a key's newest put ≤ its revision.
 */
import type { BackendReader } from './backend.ts';
import { decodeIndexFields, decodeRecord } from './codec.ts';
import { etcdError, MvccError } from './errors.ts';
import { bytesToRev, isTombstoneKey, mainRevPrefix, revToBytes } from './revision.ts';
import type { KeyValue } from './types.ts';

export const KEY_BUCKET_NAME = 'key';

export interface HashKVResult {
  /** CRC-32C, as etcd's HashKVResponse.hash (uint32). */
  hash: number;
  /** The store's current revision (the response header's). */
  revision: number;
  /** The compaction revision the hash was taken against (-1 before any compaction, as etcd). */
  compactRevision: number;
}

// ---- CRC-32C (Castagnoli), slicing by 4 ----

const CASTAGNOLI = 0x82f63b78;
const TABLES: Uint32Array[] = (() => {
  const t0 = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ CASTAGNOLI : c >>> 1;
    t0[i] = c >>> 0;
  }
  const ts = [t0];
  for (let n = 1; n < 4; n++) {
    const prev = ts[n - 1]!;
    const t = new Uint32Array(256);
    for (let i = 0; i < 256; i++) t[i] = (prev[i]! >>> 8) ^ t0[prev[i]! & 0xff]!;
    ts.push(t);
  }
  return ts;
})();

/** An incremental CRC-32C, like Go's crc32.New(crc32.MakeTable(crc32.Castagnoli)). */
export class Crc32c {
  private crc = 0xffffffff;

  update(b: Uint8Array): this {
    const [t0, t1, t2, t3] = TABLES as [Uint32Array, Uint32Array, Uint32Array, Uint32Array];
    let c = this.crc;
    let i = 0;
    const n4 = b.length - (b.length % 4);
    for (; i < n4; i += 4) {
      c ^= b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24);
      c = t3[c & 0xff]! ^ t2[(c >>> 8) & 0xff]! ^ t1[(c >>> 16) & 0xff]! ^ t0[c >>> 24]!;
    }
    for (; i < b.length; i++) c = t0[(c ^ b[i]!) & 0xff]! ^ (c >>> 8);
    this.crc = c >>> 0;
    return this;
  }

  digest(): number {
    return (this.crc ^ 0xffffffff) >>> 0;
  }
}

export function crc32c(b: Uint8Array): number {
  return new Crc32c().update(b).digest();
}

// ---- mvccpb.KeyValue as gogo/protobuf marshals it ----

function varintLen(n: number): number {
  let len = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 0x80);
    len++;
  }
  return len;
}

/** Revisions, versions and lengths: never negative. */
function putVarint(out: Uint8Array, pos: number, n: number): number {
  while (n >= 0x80) {
    out[pos++] = (n % 0x80) | 0x80;
    n = Math.floor(n / 0x80);
  }
  out[pos++] = n;
  return pos;
}

/** Fields 1..6 in order; zero values omitted (proto3). */
export function encodeKeyValueProto(kv: KeyValue): Uint8Array {
  let size = 0;
  if (kv.key.length > 0) size += 1 + varintLen(kv.key.length) + kv.key.length;
  if (kv.createRevision !== 0) size += 1 + varintLen(kv.createRevision);
  if (kv.modRevision !== 0) size += 1 + varintLen(kv.modRevision);
  if (kv.version !== 0) size += 1 + varintLen(kv.version);
  if (kv.value.length > 0) size += 1 + varintLen(kv.value.length) + kv.value.length;
  const lease = leaseVarint(kv.lease);
  if (lease) size += 1 + lease.length;
  const out = new Uint8Array(size);
  let p = 0;
  if (kv.key.length > 0) {
    out[p++] = 0x0a;
    p = putVarint(out, p, kv.key.length);
    out.set(kv.key, p);
    p += kv.key.length;
  }
  if (kv.createRevision !== 0) {
    out[p++] = 0x10;
    p = putVarint(out, p, kv.createRevision);
  }
  if (kv.modRevision !== 0) {
    out[p++] = 0x18;
    p = putVarint(out, p, kv.modRevision);
  }
  if (kv.version !== 0) {
    out[p++] = 0x20;
    p = putVarint(out, p, kv.version);
  }
  if (kv.value.length > 0) {
    out[p++] = 0x2a;
    p = putVarint(out, p, kv.value.length);
    out.set(kv.value, p);
    p += kv.value.length;
  }
  if (lease) {
    out[p++] = 0x30;
    out.set(lease, p);
  }
  return out;
}

/** The int64 lease id as a varint (two's complement for negatives), or null for 0 (omitted). */
function leaseVarint(lease: bigint | number): Uint8Array | null {
  let v = BigInt.asUintN(64, BigInt(lease));
  if (v === 0n) return null;
  const bytes: number[] = [];
  while (v >= 0x80n) {
    bytes.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  bytes.push(Number(v));
  return Uint8Array.from(bytes);
}

/** The bytes etcd stores for a record: a tombstone is a KeyValue with only its key. */
function etcdValueBytes(v: Uint8Array, at: Uint8Array): { key: Uint8Array; proto: Uint8Array } {
  const rec = decodeRecord(v, at);
  if (rec.tombstone) {
    return {
      key: rec.key,
      proto: encodeKeyValueProto({
        key: rec.key,
        createRevision: 0,
        modRevision: 0,
        version: 0,
        value: new Uint8Array(0),
        lease: 0n,
      }),
    };
  }
  return { key: rec.kv.key, proto: encodeKeyValueProto(rec.kv) };
}

/** How a `key` bucket's values are stored: boltkv's records, or etcd's own mvccpb.KeyValue bytes. */
export interface RecordFormat {
  /** The record's user key, as a string to group revisions by. */
  userKey(v: Uint8Array, at: Uint8Array): string;
  /** The mvccpb.KeyValue bytes etcd would have stored for it. */
  proto(v: Uint8Array, at: Uint8Array): Uint8Array;
}

export const BOLTKV_RECORDS: RecordFormat = {
  userKey: (v, at) => decodeIndexFields(v, at).key,
  proto: (v, at) => etcdValueBytes(v, at).proto,
};

/**
 * etcd's own file (an etcd snapshot): the values are mvccpb.KeyValue already; the user key is
 * field 1, which gogo/protobuf writes first (a tombstone holds only it).
 */
export const ETCD_RECORDS: RecordFormat = {
  userKey: (v) => {
    if (v.length === 0 || v[0] !== 0x0a)
      throw new MvccError('ERR_CORRUPT', 'boltkv: an etcd key record without its key field');
    let len = 0;
    let shift = 1;
    let i = 1;
    for (; i < v.length && i < 11; i++) {
      len += (v[i]! & 0x7f) * shift;
      shift *= 128;
      if ((v[i]! & 0x80) === 0) break;
    }
    const start = i + 1;
    if (start + len > v.length) throw new MvccError('ERR_CORRUPT', 'boltkv: an etcd key record shorter than its key');
    return Buffer.from(v.buffer, v.byteOffset + start, len).toString('latin1');
  },
  proto: (v) => v,
};

function revId(main: number, sub: number): string {
  return `${main}_${sub}`;
}

/**
 * HashKV at `rev` (0: the current revision) over a consistent read of the key bucket. `currentRev`
 * and `compactRev` are the store's (compactRev -1 before any compaction). Fails with etcd's
 * ERR_COMPACTED / ERR_FUTURE_REV as HashByRev does.
 */
export function hashKV(
  reader: BackendReader,
  rev: number,
  currentRev: number,
  compactRev: number,
  format: RecordFormat = BOLTKV_RECORDS,
): HashKVResult {
  if (!Number.isSafeInteger(rev) || rev < 0)
    throw new MvccError('ERR_INVALID_ARGUMENT', 'boltkv: invalid request: revision must be a non-negative integer');
  if (rev > 0 && rev <= compactRev) throw etcdError('ERR_COMPACTED');
  if (rev > 0 && rev > currentRev) throw etcdError('ERR_FUTURE_REV');
  const at = rev === 0 ? currentRev : rev;
  const upper = mainRevPrefix(at + 1);
  // Pass 1: each key's newest record ≤ at, when it is a put, is what the index would keep.
  const newest = new Map<string, string | null>();
  reader.scan(KEY_BUCKET_NAME, revToBytes(0, 0), upper, (k, v) => {
    const r = bytesToRev(k);
    newest.set(format.userKey(v, k), isTombstoneKey(k) ? null : revId(r.main, r.sub));
  });
  const keep = new Set<string>();
  for (const id of newest.values()) if (id !== null) keep.add(id);
  // Pass 2: hash, skipping revisions at or below the compaction that would not be kept.
  const h = new Crc32c();
  h.update(new TextEncoder().encode(KEY_BUCKET_NAME));
  reader.scan(KEY_BUCKET_NAME, revToBytes(0, 0), upper, (k, v) => {
    const r = bytesToRev(k);
    if (r.main < compactRev + 1 && keep.size > 0 && !keep.has(revId(r.main, r.sub))) return;
    h.update(k);
    h.update(format.proto(v, k));
  });
  return { hash: h.digest(), revision: currentRev, compactRevision: compactRev };
}

const META_BUCKET_NAME = 'meta';
const enc = new TextEncoder();

/**
 * The current and compaction revisions as a store reopened on this data would see them (the newest
 * record's revision, or the compaction revision if that is newer), then hashKV: for a closed
 * file, a backup, or a snapshot — boltkv's, or etcd's own with ETCD_RECORDS.
 */
export function hashKVOfBackend(
  reader: BackendReader,
  rev: number,
  format: RecordFormat = BOLTKV_RECORDS,
): HashKVResult {
  const fin = reader.get(META_BUCKET_NAME, enc.encode('finishedCompactRev'));
  const sch = reader.get(META_BUCKET_NAME, enc.encode('scheduledCompactRev'));
  const compactRev = Math.max(
    fin !== undefined ? bytesToRev(fin).main : -1,
    sch !== undefined ? bytesToRev(sch).main : -1,
  );
  let maxRev = 0;
  reader.scanReverse(KEY_BUCKET_NAME, revToBytes(0, 0), undefined, (k) => {
    maxRev = bytesToRev(k).main;
    return false;
  });
  return hashKV(reader, rev, Math.max(1, maxRev, compactRev), compactRev, format);
}
