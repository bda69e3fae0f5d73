/**
 * The client's use of the gateway codec (src/gateway): requests are encoded with it after a check
 * that every field is one etcd knows (a foreign field such as level's `prefix` must not silently
 * mean "no range"); answers are decoded with it and completed into boltkv's response objects (etcd
 * omits zero fields; boltkv's responses always carry them). A request the codec cannot express is
 * the caller's mistake: MvccError ERR_INVALID_ARGUMENT, as in process. An answer that does not fit
 * the message tables is ERR_BAD_RESPONSE.
 */
import { Buffer } from 'node:buffer';
import type {
  CompactionResponse,
  DeleteRangeResponse,
  KeyValue,
  LeaseGrantResponse,
  LeaseKeepAliveResponse,
  LeaseLeasesResponse,
  LeaseRevokeResponse,
  LeaseTimeToLiveResponse,
  PutResponse,
  RangeResponse,
  ResponseHeader,
  ResponseOp,
  StatusResponse,
  TxnResponse,
} from '../api/kv.ts';
import type { AlarmResponse, DefragmentResponse, HashKVResponse } from '../api/maintenance.ts';
import {
  ENUMS,
  MESSAGES,
  type Decoded,
  type FieldDef,
  JsonEncodeError,
  parseErrorBody,
  toEtcdJson,
} from '../gateway/index.ts';
import { MvccError } from '../mvcc/errors.ts';
import type { Event } from '../mvcc/types.ts';
import type { WatchRequest, WatchResponse } from '../watch/types.ts';
import { ClientError } from './errors.ts';
import { errorFromEtcd } from './etcd-errors.ts';

// ---- requests -----------------------------------------------------------------------------------

/** Refuses a field etcd's message `name` does not have, at any depth. */
function checkFields(name: string, v: unknown, path: string): void {
  const def = MESSAGES[name];
  if (def === undefined || v === null || typeof v !== 'object' || v instanceof Uint8Array) return;
  if (Array.isArray(v)) throw new MvccError('ERR_INVALID_ARGUMENT', `boltkv: ${path} must be an object`);
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    if (x === undefined) continue;
    const f = def.fields.find((d) => d.json === k);
    if (f === undefined) throw new MvccError('ERR_INVALID_ARGUMENT', `boltkv: unknown field "${k}" in ${path}`);
    if (f.kind !== 'message') continue;
    if (f.repeated && Array.isArray(x))
      x.forEach((item, i) => checkFields(f.ref as string, item, `${path}.${k}[${i}]`));
    else checkFields(f.ref as string, x, `${path}.${k}`);
  }
}

/** A boltkv request as the JSON text of etcd's message `name`. */
export function encode(name: string, req: unknown): string {
  if (req === null || typeof req !== 'object' || Array.isArray(req)) {
    throw new MvccError('ERR_INVALID_ARGUMENT', `boltkv: the ${name} must be an object`);
  }
  checkFields(name, req, name);
  try {
    return JSON.stringify(toEtcdJson(name, req));
  } catch (e) {
    if (e instanceof JsonEncodeError)
      throw new MvccError('ERR_INVALID_ARGUMENT', e.message.replace(/^gateway: /, 'boltkv: '));
    throw e;
  }
}

/** A watch create request (`startRevision` given separately when resuming). */
export function encodeWatchCreate(req: WatchRequest, startRevision: number): string {
  const { signal: _s, ...plain } = req;
  return encode('WatchRequest', { createRequest: { ...plain, startRevision } });
}

// ---- answers ------------------------------------------------------------------------------------

function bad(message: string, cause?: unknown): ClientError {
  return new ClientError('ERR_BAD_RESPONSE', `boltkv: etcd answered ${message}`, { cause });
}

/**
 * Answers are read with JSON.parse and then typed field by field from the gateway's message tables
 * (the same tables the codec uses): the codec's own reader reproduces Go's error texts, which a
 * server needs for requests, but is some twenty times slower than JSON.parse on a large range.
 * etcd quotes every int64, so JSON.parse loses nothing; an unquoted one beyond 2^53 is refused.
 */
function parse(name: string, text: string): Decoded {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw bad(`a body that is not JSON: ${JSON.stringify(text.slice(0, 80))}`);
  }
  return typed(name, v, name);
}

const DECIMAL = /^-?(0|[1-9][0-9]*)$/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function typed(name: string, v: unknown, path: string): Decoded {
  const def = MESSAGES[name];
  if (def === undefined) throw new Error(`boltkv: no gateway message ${name}`);
  if (v === null || v === undefined) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw bad(`${path} that is not an object`);
  const src = v as Record<string, unknown>;
  const out: Decoded = {};
  for (const f of def.fields) {
    let x = src[f.proto];
    if (x === undefined && f.json !== f.proto) x = src[f.json];
    if (x === undefined || x === null) continue;
    const at = `${path}.${f.proto}`;
    if (f.repeated) {
      if (!Array.isArray(x)) throw bad(`${at} that is not a list`);
      out[f.json] = x.map((item: unknown) => field(f, item, at));
    } else {
      out[f.json] = field(f, x, at);
    }
  }
  return out;
}

function field(f: FieldDef, x: unknown, at: string): unknown {
  switch (f.kind) {
    case 'message':
      return typed(f.ref as string, x, at);
    case 'bytes':
      if (typeof x !== 'string' || x.length % 4 !== 0 || !BASE64.test(x)) throw bad(`${at} that is not base64`);
      return Buffer.from(x, 'base64');
    case 'bool':
      if (typeof x !== 'boolean') throw bad(`${at} that is not a boolean`);
      return x;
    case 'string':
      if (typeof x !== 'string') throw bad(`${at} that is not a string`);
      return x;
    case 'enum': {
      const names = ENUMS[f.ref as string]?.names ?? [];
      if (typeof x === 'string' && names.includes(x)) return x;
      if (typeof x === 'number' && names[x] !== undefined) return names[x];
      throw bad(`${at} of unknown value ${String(x)}`);
    }
    default: {
      let b: bigint;
      if (typeof x === 'string' && DECIMAL.test(x)) b = BigInt(x);
      else if (typeof x === 'number' && Number.isSafeInteger(x)) b = BigInt(x);
      else throw bad(`${at} that is not an exact integer`);
      if (f.kind === 'id64' || f.kind === 'uid64') return b;
      return Number(b);
    }
  }
}

/** A streamed answer (`{"result":…}`), or the error the stream carried. */
function parseStream(name: string, text: string): Decoded {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw bad(`a stream frame that is not JSON: ${JSON.stringify(text.slice(0, 80))}`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw bad('a stream frame that is not an object');
  const frame = v as Record<string, unknown>;
  if (frame.result !== undefined) return typed(name, frame.result, name);
  const s = frame.error === undefined ? undefined : parseErrorBody(text);
  if (s === undefined) throw bad('a stream frame with neither result nor an etcd error');
  throw errorFromEtcd(s, 200, undefined);
}

const EMPTY = Buffer.alloc(0);

function num(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  return 0;
}
function big(v: unknown): bigint {
  return typeof v === 'bigint' ? v : typeof v === 'number' ? BigInt(v) : 0n;
}
function bytes(v: unknown): Uint8Array {
  return v instanceof Uint8Array ? v : EMPTY;
}
function rec(v: unknown): Decoded {
  return v !== null && typeof v === 'object' ? (v as Decoded) : {};
}
function list(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

function header(v: unknown): ResponseHeader {
  const h = rec(v);
  const out: ResponseHeader = { revision: num(h.revision) };
  if (h.clusterId !== undefined) out.clusterId = big(h.clusterId);
  if (h.memberId !== undefined) out.memberId = big(h.memberId);
  if (h.raftTerm !== undefined) out.raftTerm = num(h.raftTerm);
  return out;
}

function kv(v: unknown): KeyValue {
  const k = rec(v);
  return {
    key: bytes(k.key),
    createRevision: num(k.createRevision),
    modRevision: num(k.modRevision),
    version: num(k.version),
    value: bytes(k.value),
    lease: big(k.lease),
  };
}

function range(d: Decoded): RangeResponse {
  return { header: header(d.header), kvs: list(d.kvs).map(kv), more: d.more === true, count: num(d.count) };
}
function put(d: Decoded): PutResponse {
  const out: PutResponse = { header: header(d.header) };
  if (d.prevKv !== undefined) out.prevKv = kv(d.prevKv);
  return out;
}
function deleteRange(d: Decoded): DeleteRangeResponse {
  return { header: header(d.header), deleted: num(d.deleted), prevKvs: list(d.prevKvs).map(kv) };
}
function responseOp(v: unknown): ResponseOp {
  const r = rec(v);
  if (r.responseRange !== undefined) return { responseRange: range(rec(r.responseRange)) };
  if (r.responsePut !== undefined) return { responsePut: put(rec(r.responsePut)) };
  if (r.responseDeleteRange !== undefined) return { responseDeleteRange: deleteRange(rec(r.responseDeleteRange)) };
  if (r.responseTxn !== undefined) return { responseTxn: txn(rec(r.responseTxn)) };
  throw bad('a txn response op of no known kind');
}
function txn(d: Decoded): TxnResponse {
  return { header: header(d.header), succeeded: d.succeeded === true, responses: list(d.responses).map(responseOp) };
}

export const decodeRange = (t: string): RangeResponse => range(parse('RangeResponse', t));
export const decodePut = (t: string): PutResponse => put(parse('PutResponse', t));
export const decodeDeleteRange = (t: string): DeleteRangeResponse => deleteRange(parse('DeleteRangeResponse', t));
export const decodeTxn = (t: string): TxnResponse => txn(parse('TxnResponse', t));
export const decodeCompaction = (t: string): CompactionResponse => ({
  header: header(parse('CompactionResponse', t).header),
});
export const decodeLeaseRevoke = (t: string): LeaseRevokeResponse => ({
  header: header(parse('LeaseRevokeResponse', t).header),
});

export function decodeLeaseGrant(t: string): LeaseGrantResponse {
  const d = parse('LeaseGrantResponse', t);
  if (typeof d.error === 'string' && d.error !== '')
    throw errorFromEtcd({ grpcCode: 2, message: d.error }, 200, undefined);
  return { header: header(d.header), ID: big(d.ID), TTL: num(d.TTL) };
}

export function decodeTimeToLive(t: string): LeaseTimeToLiveResponse {
  const d = parse('LeaseTimeToLiveResponse', t);
  return {
    header: header(d.header),
    ID: big(d.ID),
    TTL: num(d.TTL),
    grantedTTL: num(d.grantedTTL),
    keys: list(d.keys).map(bytes),
  };
}

/** The gateway's keepalive is a stream: one `{"result":…}` for a one-request body. */
export function decodeKeepAlive(t: string): LeaseKeepAliveResponse {
  const d = parseStream('LeaseKeepAliveResponse', t);
  return { header: header(d.header), ID: big(d.ID), TTL: num(d.TTL) };
}

export function decodeLeases(t: string): LeaseLeasesResponse {
  const d = parse('LeaseLeasesResponse', t);
  return { header: header(d.header), leases: list(d.leases).map((l) => ({ ID: big(rec(l).ID) })) };
}

export function decodeStatus(t: string): StatusResponse {
  const d = parse('StatusResponse', t);
  const out: StatusResponse = {
    header: header(d.header),
    version: typeof d.version === 'string' ? d.version : '',
    dbSize: num(d.dbSize),
    dbSizeInUse: num(d.dbSizeInUse),
    errors: list(d.errors).filter((e): e is string => typeof e === 'string'),
  };
  if (d.leader !== undefined) out.leader = big(d.leader);
  if (d.raftIndex !== undefined) out.raftIndex = num(d.raftIndex);
  if (d.raftTerm !== undefined) out.raftTerm = num(d.raftTerm);
  if (d.raftAppliedIndex !== undefined) out.raftAppliedIndex = num(d.raftAppliedIndex);
  if (d.isLearner !== undefined) out.isLearner = d.isLearner === true;
  return out;
}

/** etcd's cluster Member. */
export interface Member {
  ID: bigint;
  name: string;
  peerURLs: string[];
  clientURLs: string[];
  isLearner: boolean;
}

export interface MemberListResponse {
  header: ResponseHeader;
  members: Member[];
}

function member(m: unknown): Member {
  const o = rec(m);
  const strs = (v: unknown): string[] => list(v).filter((s): s is string => typeof s === 'string');
  return {
    ID: big(o.ID),
    name: typeof o.name === 'string' ? o.name : '',
    peerURLs: strs(o.peerURLs),
    clientURLs: strs(o.clientURLs),
    isLearner: o.isLearner === true,
  };
}

export function decodeMemberList(t: string): MemberListResponse {
  const d = parse('MemberListResponse', t);
  return { header: header(d.header), members: list(d.members).map(member) };
}

/** etcd's MemberAddResponse: the new member (its id) and the members now. */
export interface MemberAddResponse extends MemberListResponse {
  member: Member;
}

export function decodeMemberAdd(t: string): MemberAddResponse {
  const d = parse('MemberAddResponse', t);
  if (d.member === undefined) throw bad('a member add without the member');
  return { header: header(d.header), member: member(d.member), members: list(d.members).map(member) };
}

/** MemberRemove, MemberUpdate and MemberPromote answer the members after the change. */
export const decodeMembers =
  (name: string) =>
  (t: string): MemberListResponse => {
    const d = parse(name, t);
    return { header: header(d.header), members: list(d.members).map(member) };
  };

// ---- maintenance ------------------------------------------------------------------------------

export function decodeHashKV(t: string): HashKVResponse {
  const d = parse('HashKVResponse', t);
  return { header: header(d.header), hash: num(d.hash), compactRevision: num(d.compactRevision) };
}

export function decodeAlarm(t: string): AlarmResponse {
  const d = parse('AlarmResponse', t);
  const out: AlarmResponse = {
    alarms: list(d.alarms).map((a) => {
      const o = rec(a);
      if (o.alarm !== 'NOSPACE' && o.alarm !== 'CORRUPT')
        throw bad(`an alarm boltkv does not know: ${String(o.alarm ?? 'NONE')}`);
      return { memberId: big(o.memberID), alarm: o.alarm };
    }),
  };
  if (d.header !== undefined) out.header = header(d.header);
  return out;
}

export function decodeDefragment(t: string): DefragmentResponse {
  const d = parse('DefragmentResponse', t);
  return d.header === undefined ? {} : { header: header(d.header) };
}

/** One line of the snapshot stream: the blob and the image bytes still to come after it. */
export function decodeSnapshotFrame(t: string): { remainingBytes: number; blob: Uint8Array } {
  const d = parseStream('SnapshotResponse', t);
  return { remainingBytes: num(d.remainingBytes), blob: bytes(d.blob) };
}

/** A watch answer with etcd's stream bookkeeping (`created`, the server's watch id) kept aside. */
export interface WireWatchResponse {
  watchId: number;
  created: boolean;
  response: WatchResponse;
}

function event(v: unknown): Event {
  const e = rec(v);
  if (e.type !== undefined && e.type !== 'PUT' && e.type !== 'DELETE') throw bad('an event of unknown type');
  const out: Event = { type: e.type === 'DELETE' ? 'DELETE' : 'PUT', kv: kv(e.kv) };
  if (e.prevKv !== undefined) out.prevKv = kv(e.prevKv);
  return out;
}

/** One WebSocket message of the watch stream. */
export function decodeWatchMessage(text: string): WireWatchResponse {
  const d = parseStream('WatchResponse', text);
  const response: WatchResponse = {
    header: { revision: num(rec(d.header).revision) },
    events: list(d.events).map(event),
  };
  if (d.compactRevision !== undefined) response.compactRevision = num(d.compactRevision);
  if (d.canceled === true) response.canceled = true;
  if (typeof d.cancelReason === 'string' && d.cancelReason !== '') response.cancelReason = d.cancelReason;
  if (d.fragment === true) response.fragment = true;
  return { watchId: num(d.watchId), created: d.created === true, response };
}
