/**
 * Request checking and normalisation. Type errors (a number where bytes belong, an unknown enum)
 * become ERR_INVALID_ARGUMENT; then etcd's own gRPC-level checks run in etcd's order (empty key,
 * value/lease provided with ignore_*, too many ops, duplicate keys in a txn), so the same bad
 * request fails with the same message as against etcd.
 */
import { MvccError, etcdError } from './errors.ts';
import { bytesToByteString as bstr } from '../keys.ts';
import type {
  Compare,
  CompareResult,
  CompareTarget,
  DeleteRangeRequest,
  PutRequest,
  RangeRequest,
  RequestOp,
  SortOrder,
  SortTarget,
  TxnRequest,
} from './requests.ts';

/** etcd's default --max-txn-ops. */
export const MAX_TXN_OPS = 128;

export interface NRange {
  key: Uint8Array;
  rangeEnd: Uint8Array;
  limit: number;
  revision: number;
  sortOrder: SortOrder;
  sortTarget: SortTarget;
  keysOnly: boolean;
  countOnly: boolean;
  minModRevision: number;
  maxModRevision: number;
  minCreateRevision: number;
  maxCreateRevision: number;
}
export interface NPut {
  key: Uint8Array;
  value: Uint8Array;
  lease: bigint;
  prevKv: boolean;
  ignoreValue: boolean;
  ignoreLease: boolean;
}
export interface NDelete {
  key: Uint8Array;
  rangeEnd: Uint8Array;
  prevKv: boolean;
}
export interface NCompare {
  key: Uint8Array;
  rangeEnd: Uint8Array;
  target: CompareTarget;
  result: CompareResult;
  /** number for VERSION/CREATE/MOD, bigint for LEASE, bytes for VALUE. */
  operand: number | bigint | Uint8Array;
}
export type NOp =
  | { t: 'range'; r: NRange }
  | { t: 'put'; r: NPut }
  | { t: 'delete'; r: NDelete }
  | { t: 'txn'; r: NTxn }
  /** An op with no request set; rejected by checkTxn with etcd's "key not found". */
  | { t: 'empty' };
export interface NTxn {
  compare: NCompare[];
  success: NOp[];
  failure: NOp[];
}

const EMPTY = new Uint8Array(0);
const enc = new TextEncoder();

/** A field of the wrong type; `field` names it. */
function badField(field: string, must: string): MvccError {
  return new MvccError('ERR_INVALID_ARGUMENT', `boltkv: invalid request: ${field} ${must}`, { field });
}

function invalid(what: string): MvccError {
  return new MvccError('ERR_INVALID_ARGUMENT', `boltkv: invalid request: ${what}`);
}

function obj(v: unknown, what: string): Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw invalid(`${what} must be an object`);
  return v as Record<string, unknown>;
}

export function toBytes(v: unknown, what: string): Uint8Array {
  if (v === undefined || v === null) return EMPTY;
  if (v instanceof Uint8Array) return v;
  if (typeof v === 'string') return enc.encode(v);
  throw badField(what, `must be a Uint8Array or a string`);
}

const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;
const DECIMAL = /^-?[0-9]{1,20}$/;
/** 2^53: beyond every revision a store can reach, so "in the future" wherever a revision is compared. */
const BEYOND = 2 ** 53;

/** An int64 given as number, bigint or decimal string, exactly; undefined if it is none of those. */
function int64(v: unknown): bigint | undefined {
  let b: bigint;
  if (typeof v === 'bigint') b = v;
  else if (typeof v === 'number' && Number.isInteger(v))
    return Number.isSafeInteger(v) ? BigInt(v) : v > 0 ? INT64_MAX : INT64_MIN;
  else if (typeof v === 'string' && DECIMAL.test(v)) b = BigInt(v);
  else return undefined;
  return b >= INT64_MIN && b <= INT64_MAX ? b : undefined;
}

/**
 * A revision-like int64 (revision, version, limit) as a JS number. Values beyond ±2^53 become ±2^53:
 * every comparison with a real revision then answers as etcd's would with the exact value (a range or
 * compaction at such a revision is a future revision).
 */
export function int(v: unknown, what: string): number {
  if (v === undefined || v === null) return 0;
  if (typeof v === 'number' && Number.isSafeInteger(v)) return v;
  const b = int64(v);
  if (b === undefined) throw badField(what, `must be an integer (number, bigint or decimal string)`);
  return b > BigInt(BEYOND) ? BEYOND : b < -BigInt(BEYOND) ? -BEYOND : Number(b);
}

/** A lease ID, exactly. 0n means none. */
export function leaseId(v: unknown, what: string): bigint {
  if (v === undefined || v === null) return 0n;
  if (typeof v === 'number' && !Number.isSafeInteger(v))
    throw badField(what, `must be an int64: a safe-integer number, a bigint or a decimal string`);
  const b = int64(v);
  if (b === undefined) throw badField(what, `must be an int64: a safe-integer number, a bigint or a decimal string`);
  return b;
}

function bool(v: unknown, what: string): boolean {
  if (v === undefined || v === null) return false;
  if (typeof v === 'boolean') return v;
  throw badField(what, `must be a boolean`);
}

function oneOf<T extends string>(v: unknown, allowed: readonly T[], dflt: T, what: string): T {
  if (v === undefined || v === null) return dflt;
  if (typeof v === 'string' && (allowed as readonly string[]).includes(v)) return v as T;
  throw badField(what, `must be one of ${allowed.join(', ')}`);
}

function arr(v: unknown, what: string): unknown[] {
  if (v === undefined || v === null) return [];
  if (Array.isArray(v)) return v;
  throw badField(what, `must be an array`);
}

export function normalizeRange(req: RangeRequest | unknown): NRange {
  const n = shapeRange(req);
  if (n.key.length === 0) throw etcdError('ERR_EMPTY_KEY');
  return n;
}

export function normalizePut(req: PutRequest | unknown): NPut {
  const n = shapePut(req);
  if (n.key.length === 0) throw etcdError('ERR_EMPTY_KEY');
  if (n.ignoreValue && n.value.length !== 0) throw etcdError('ERR_VALUE_PROVIDED');
  if (n.ignoreLease && n.lease !== 0n) throw etcdError('ERR_LEASE_PROVIDED');
  return n;
}

export function normalizeDelete(req: DeleteRangeRequest | unknown): NDelete {
  const n = shapeDelete(req);
  if (n.key.length === 0) throw etcdError('ERR_EMPTY_KEY');
  return n;
}

const RANGE_FIELDS = [
  'key',
  'rangeEnd',
  'limit',
  'revision',
  'sortOrder',
  'sortTarget',
  'serializable',
  'keysOnly',
  'countOnly',
  'minModRevision',
  'maxModRevision',
  'minCreateRevision',
  'maxCreateRevision',
] as const;
const PUT_FIELDS = ['key', 'value', 'lease', 'prevKv', 'ignoreValue', 'ignoreLease'] as const;
const DELETE_FIELDS = ['key', 'rangeEnd', 'prevKv'] as const;
const COMPARE_FIELDS = [
  'key',
  'rangeEnd',
  'target',
  'result',
  'version',
  'createRevision',
  'modRevision',
  'value',
  'lease',
] as const;
const TXN_FIELDS = ['compare', 'success', 'failure'] as const;
const OP_FIELDS = ['requestRange', 'requestPut', 'requestDeleteRange', 'requestTxn'] as const;

function normalizeCompare(c: Compare | unknown): NCompare {
  const r = obj(c, 'compare');
  noUnknownFields(r, COMPARE_FIELDS, 'compare');
  const target = oneOf(r.target, ['VERSION', 'CREATE', 'MOD', 'VALUE', 'LEASE'] as const, 'VERSION', 'compare.target');
  const result = oneOf(r.result, ['EQUAL', 'GREATER', 'LESS', 'NOT_EQUAL'] as const, 'EQUAL', 'compare.result');
  let operand: number | bigint | Uint8Array;
  switch (target) {
    case 'VALUE':
      operand = toBytes(r.value, 'compare.value');
      break;
    case 'VERSION':
      operand = int(r.version, 'compare.version');
      break;
    case 'CREATE':
      operand = int(r.createRevision, 'compare.createRevision');
      break;
    case 'MOD':
      operand = int(r.modRevision, 'compare.modRevision');
      break;
    case 'LEASE':
      operand = leaseId(r.lease, 'compare.lease');
      break;
  }
  return {
    key: toBytes(r.key, 'compare.key'),
    rangeEnd: toBytes(r.rangeEnd, 'compare.rangeEnd'),
    target,
    result,
    operand,
  };
}

/** Type-level normalisation of a txn, recursively. etcd's checks run separately (checkTxn). */
function normalizeTxnShape(req: TxnRequest | unknown): NTxn {
  const r = obj(req, 'txn request');
  noUnknownFields(r, TXN_FIELDS, 'txn request');
  const ops = (v: unknown, what: string): NOp[] => arr(v, what).map((o) => normalizeOpShape(o));
  return {
    compare: arr(r.compare, 'compare').map(normalizeCompare),
    success: ops(r.success, 'success'),
    failure: ops(r.failure, 'failure'),
  };
}

function normalizeOpShape(op: RequestOp | unknown): NOp {
  const o = obj(op, 'request op');
  noUnknownFields(o, OP_FIELDS, 'request op');
  const set = ['requestRange', 'requestPut', 'requestDeleteRange', 'requestTxn'].filter(
    (k) => o[k] !== undefined && o[k] !== null,
  );
  if (set.length > 1)
    throw invalid('a request op must set exactly one of requestRange/requestPut/requestDeleteRange/requestTxn');
  if (set.length === 0) return { t: 'empty' };
  // Field-level etcd checks are deferred to checkTxn so they run in etcd's order.
  if (o.requestRange !== undefined && o.requestRange !== null) return { t: 'range', r: shapeRange(o.requestRange) };
  if (o.requestPut !== undefined && o.requestPut !== null) return { t: 'put', r: shapePut(o.requestPut) };
  if (o.requestDeleteRange !== undefined && o.requestDeleteRange !== null)
    return { t: 'delete', r: shapeDelete(o.requestDeleteRange) };
  return { t: 'txn', r: normalizeTxnShape(o.requestTxn) };
}

function shapeRange(req: unknown): NRange {
  const r = obj(req, 'range request');
  noUnknownFields(r, RANGE_FIELDS, 'range request');
  bool(r.serializable, 'serializable');
  return {
    key: toBytes(r.key, 'key'),
    rangeEnd: toBytes(r.rangeEnd, 'rangeEnd'),
    limit: int(r.limit, 'limit'),
    revision: int(r.revision, 'revision'),
    sortOrder: oneOf(r.sortOrder, ['NONE', 'ASCEND', 'DESCEND'] as const, 'NONE', 'sortOrder'),
    sortTarget: oneOf(r.sortTarget, ['KEY', 'VERSION', 'CREATE', 'MOD', 'VALUE'] as const, 'KEY', 'sortTarget'),
    keysOnly: bool(r.keysOnly, 'keysOnly'),
    countOnly: bool(r.countOnly, 'countOnly'),
    minModRevision: int(r.minModRevision, 'minModRevision'),
    maxModRevision: int(r.maxModRevision, 'maxModRevision'),
    minCreateRevision: int(r.minCreateRevision, 'minCreateRevision'),
    maxCreateRevision: int(r.maxCreateRevision, 'maxCreateRevision'),
  };
}
function shapePut(v: unknown): NPut {
  const r = obj(v, 'put request');
  noUnknownFields(r, PUT_FIELDS, 'put request');
  return {
    key: toBytes(r.key, 'key'),
    value: toBytes(r.value, 'value'),
    lease: leaseId(r.lease, 'lease'),
    prevKv: bool(r.prevKv, 'prevKv'),
    ignoreValue: bool(r.ignoreValue, 'ignoreValue'),
    ignoreLease: bool(r.ignoreLease, 'ignoreLease'),
  };
}
function shapeDelete(v: unknown): NDelete {
  const r = obj(v, 'deleteRange request');
  noUnknownFields(r, DELETE_FIELDS, 'deleteRange request');
  return { key: toBytes(r.key, 'key'), rangeEnd: toBytes(r.rangeEnd, 'rangeEnd'), prevKv: bool(r.prevKv, 'prevKv') };
}

/** Normalise a txn and run etcd's checks on it (checkTxnRequest, then checkIntervals per branch). */
export function normalizeTxn(req: TxnRequest | unknown): NTxn {
  const t = normalizeTxnShape(req);
  checkTxn(t, MAX_TXN_OPS);
  checkIntervals(t.success);
  checkIntervals(t.failure);
  return t;
}

function checkTxn(t: NTxn, maxOps: number): void {
  const opc = Math.max(t.compare.length, t.success.length, t.failure.length);
  if (opc > maxOps) throw etcdError('ERR_TOO_MANY_OPS');
  for (const c of t.compare) if (c.key.length === 0) throw etcdError('ERR_EMPTY_KEY');
  for (const op of t.success) checkOp(op, maxOps - opc);
  for (const op of t.failure) checkOp(op, maxOps - opc);
}

function checkOp(op: NOp, maxOps: number): void {
  switch (op.t) {
    case 'empty':
      throw etcdError('ERR_KEY_NOT_FOUND');
    case 'range':
      if (op.r.key.length === 0) throw etcdError('ERR_EMPTY_KEY');
      return;
    case 'put':
      if (op.r.key.length === 0) throw etcdError('ERR_EMPTY_KEY');
      if (op.r.ignoreValue && op.r.value.length !== 0) throw etcdError('ERR_VALUE_PROVIDED');
      if (op.r.ignoreLease && op.r.lease !== 0n) throw etcdError('ERR_LEASE_PROVIDED');
      return;
    case 'delete':
      if (op.r.key.length === 0) throw etcdError('ERR_EMPTY_KEY');
      return;
    case 'txn':
      checkTxn(op.r, maxOps);
      return;
  }
}

// --- duplicate-key detection, mirroring etcd's checkIntervals -------------------------------------

/** A delete's interval; `end` '' means unbounded above (etcd's affine "infinity"). */
interface Interval {
  begin: string;
  end: string | null; // null: a single point
}

function intersects(dels: Interval[], k: string): boolean {
  for (const d of dels) {
    if (d.end === null) {
      if (d.begin === k) return true;
    } else if (d.begin <= k && (d.end === '' || k < d.end)) return true;
  }
  return false;
}

/** Returns this level's puts and deletes; throws on a put that collides with another put or a delete. */
function checkIntervals(ops: NOp[]): { puts: Set<string>; dels: Interval[] } {
  const dels: Interval[] = [];
  for (const op of ops) {
    if (op.t !== 'delete') continue;
    dels.push(
      op.r.rangeEnd.length !== 0
        ? { begin: bstr(op.r.key), end: bstr(op.r.rangeEnd) }
        : { begin: bstr(op.r.key), end: null },
    );
  }
  const puts = new Set<string>();
  for (const op of ops) {
    if (op.t !== 'txn') continue;
    const then = checkIntervals(op.r.success);
    const els = checkIntervals(op.r.failure);
    for (const k of then.puts) {
      if (puts.has(k) || intersects(dels, k)) throw etcdError('ERR_DUPLICATE_KEY');
      puts.add(k);
    }
    for (const k of els.puts) {
      // the same key in both branches of one nested txn is fine: only one branch runs
      if (puts.has(k) && !then.puts.has(k)) throw etcdError('ERR_DUPLICATE_KEY');
      if (intersects(dels, k)) throw etcdError('ERR_DUPLICATE_KEY');
      puts.add(k);
    }
    dels.push(...then.dels, ...els.dels);
  }
  for (const op of ops) {
    if (op.t !== 'put') continue;
    const k = bstr(op.r.key);
    if (puts.has(k) || intersects(dels, k)) throw etcdError('ERR_DUPLICATE_KEY');
    puts.add(k);
  }
  return { puts, dels };
}

// --- compaction and lease requests ---------------------------------------------------------------

export function parseCompaction(req: unknown): { rev: number; physical: boolean } {
  const r = obj(req, 'compaction request');
  noUnknownFields(r, ['revision', 'physical'], 'compaction request');
  return { rev: int(r.revision, 'revision'), physical: bool(r.physical, 'physical') };
}

export function parseGrant(req: unknown): { ttl: number; id: bigint } {
  const r = obj(req, 'lease grant request');
  noUnknownFields(r, ['TTL', 'ID'], 'lease grant request');
  return { ttl: int(r.TTL, 'TTL'), id: leaseId(r.ID, 'ID') };
}

export function parseLeaseId(req: unknown): bigint {
  const r = obj(req, 'lease request');
  noUnknownFields(r, ['ID'], 'lease request');
  return leaseId(r.ID, 'ID');
}

export function parseTimeToLive(req: unknown): { id: bigint; keys: boolean } {
  const r = obj(req, 'lease timeToLive request');
  noUnknownFields(r, ['ID', 'keys'], 'lease timeToLive request');
  return { id: leaseId(r.ID, 'ID'), keys: bool(r.keys, 'keys') };
}

// --- options ---------------------------------------------------------------------------------------

/** Refuse fields a request or option object does not have: a typo must not silently mean "unset". */
export function noUnknownFields(r: Record<string, unknown>, known: readonly string[], what: string): void {
  for (const k of Object.keys(r)) {
    if (!known.includes(k) && r[k] !== undefined) {
      throw new MvccError('ERR_UNKNOWN_FIELD', `boltkv: ${what} has no field "${k}" (known: ${known.join(', ')})`, {
        field: k,
      });
    }
  }
}

function badOption(name: string, want: string): MvccError {
  return new MvccError('ERR_INVALID_ARGUMENT', `boltkv: option ${name} must be ${want}`, { field: name });
}

/** An optional option that must be an integer in [min, max]. */
export function intOption(v: unknown, name: string, dflt: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max)
    badOptionThrow(name, `an integer from ${min} to ${max}`);
  return v as number;
}

function badOptionThrow(name: string, want: string): never {
  throw badOption(name, want);
}

export function boolOption(v: unknown, name: string, dflt: boolean): boolean {
  if (v === undefined) return dflt;
  if (typeof v !== 'boolean') badOptionThrow(name, 'a boolean');
  return v as boolean;
}

export function fnOption<F extends (...args: never[]) => unknown>(v: unknown, name: string, dflt: F): F {
  if (v === undefined) return dflt;
  if (typeof v !== 'function') badOptionThrow(name, 'a function');
  return v as F;
}

export function objOption(v: unknown, name: string): Record<string, unknown> {
  if (v === undefined) return {};
  if (v === null || typeof v !== 'object' || Array.isArray(v)) badOptionThrow(name, 'an object');
  return v as Record<string, unknown>;
}
