/**
 * The size etcd gives a write request when it checks --max-request-bytes: the length of the
 * protobuf-encoded InternalRaftRequest it would propose (request header plus the request). Computed
 * from the normalized request without encoding it. The header's request ID is a varint whose length
 * depends on the member ID; we count the longest (10 bytes), so a request within a byte or two of
 * the limit may be refused here and accepted by etcd.
 */
import type { NCompare, NDelete, NOp, NPut, NRange, NTxn } from './validate.ts';

/** etcd's default --max-request-bytes: 1.5 MiB. */
export const DEFAULT_MAX_REQUEST_BYTES = 1.5 * 1024 * 1024;

function varint(n: number | bigint): number {
  let v = typeof n === 'bigint' ? BigInt.asUintN(64, n) : n < 0 ? BigInt.asUintN(64, BigInt(n)) : n;
  let len = 1;
  if (typeof v === 'bigint') {
    while (v >= 0x80n) {
      v >>= 7n;
      len++;
    }
    return len;
  }
  while (v >= 0x80) {
    v = Math.floor(v / 128);
    len++;
  }
  return len;
}

/** A field with a 1-byte tag (field numbers below 16) or 2-byte tag (below 2048). */
const tag = (field: number): number => (field < 16 ? 1 : 2);
const bytesField = (field: number, len: number): number => (len === 0 ? 0 : tag(field) + varint(len) + len);
const intField = (field: number, n: number | bigint): number => (n === 0 || n === 0n ? 0 : tag(field) + varint(n));
const boolField = (field: number, b: boolean): number => (b ? tag(field) + 1 : 0);
const msgField = (field: number, len: number): number => tag(field) + varint(len) + len;

const SORT_ORDER = { NONE: 0, ASCEND: 1, DESCEND: 2 } as const;
const SORT_TARGET = { KEY: 0, VERSION: 1, CREATE: 2, MOD: 3, VALUE: 4 } as const;
const CMP_RESULT = { EQUAL: 0, GREATER: 1, LESS: 2, NOT_EQUAL: 3 } as const;
const CMP_TARGET = { VERSION: 0, CREATE: 1, MOD: 2, VALUE: 3, LEASE: 4 } as const;

function rangeSize(r: NRange): number {
  return (
    bytesField(1, r.key.length) +
    bytesField(2, r.rangeEnd.length) +
    intField(3, r.limit) +
    intField(4, r.revision) +
    intField(5, SORT_ORDER[r.sortOrder]) +
    intField(6, SORT_TARGET[r.sortTarget]) +
    boolField(8, r.keysOnly) +
    boolField(9, r.countOnly) +
    intField(10, r.minModRevision) +
    intField(11, r.maxModRevision) +
    intField(12, r.minCreateRevision) +
    intField(13, r.maxCreateRevision)
  );
}

export function putSize(p: NPut): number {
  return (
    bytesField(1, p.key.length) +
    bytesField(2, p.value.length) +
    intField(3, p.lease) +
    boolField(4, p.prevKv) +
    boolField(5, p.ignoreValue) +
    boolField(6, p.ignoreLease)
  );
}

export function deleteSize(d: NDelete): number {
  return bytesField(1, d.key.length) + bytesField(2, d.rangeEnd.length) + boolField(3, d.prevKv);
}

function compareSize(c: NCompare): number {
  // the target's operand is a oneof: set even when zero
  const operand =
    c.target === 'VALUE'
      ? tag(7) + varint((c.operand as Uint8Array).length) + (c.operand as Uint8Array).length
      : tag(4) + varint(c.operand as number | bigint);
  return (
    intField(1, CMP_RESULT[c.result]) +
    intField(2, CMP_TARGET[c.target]) +
    bytesField(3, c.key.length) +
    operand +
    bytesField(64, c.rangeEnd.length)
  );
}

function opSize(op: NOp): number {
  switch (op.t) {
    case 'range':
      return msgField(1, rangeSize(op.r));
    case 'put':
      return msgField(2, putSize(op.r));
    case 'delete':
      return msgField(3, deleteSize(op.r));
    case 'txn':
      return msgField(4, txnSize(op.r));
    case 'empty':
      return 0;
  }
}

export function txnSize(t: NTxn): number {
  let n = 0;
  for (const c of t.compare) n += msgField(1, compareSize(c));
  for (const op of t.success) n += msgField(2, opSize(op));
  for (const op of t.failure) n += msgField(3, opSize(op));
  return n;
}

/** The InternalRaftRequest around a request of `body` bytes in field `field` (put 4, delete 5, txn 6). */
export function raftRequestSize(field: number, body: number): number {
  const header = tag(1) + 10; // RequestHeader{ID}: the longest varint
  return msgField(100, header) + msgField(field, body);
}
