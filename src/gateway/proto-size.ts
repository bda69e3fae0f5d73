/**
 * Protobuf wire sizes of decoded etcd requests. etcd's size limits are on protobuf bytes, not JSON
 * bytes: gRPC refuses a message above max-request-bytes + 512 KiB ("grpc: received message larger
 * than max"), and the server refuses a raft proposal above max-request-bytes ("request is too
 * large"). To refuse exactly what etcd refuses, a gateway server measures the same bytes.
 */
import { type FieldDef, MESSAGES, type MessageDef } from './messages.ts';

/** gRPC's allowance on top of --max-request-bytes (etcd's grpcOverheadBytes). */
export const GRPC_OVERHEAD_BYTES = 512 * 1024;

function varintSize(v: bigint): number {
  if (v < 0n) return 10;
  let n = 1;
  while (v >= 0x80n) {
    v >>= 7n;
    n++;
  }
  return n;
}

/** Field numbers follow declaration order in every message served here, with one exception. */
function fieldNumber(def: MessageDef, index: number): number {
  if (def.goName === 'etcdserverpb.Compare' && def.fields[index]?.proto === 'range_end') return 64;
  return index + 1;
}

function bytesLength(v: unknown): number {
  if (typeof v === 'string') return Buffer.byteLength(v, 'utf8');
  if (v instanceof Uint8Array) return v.length;
  return 0;
}

function intValue(v: unknown): bigint {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number' && Number.isFinite(v)) return BigInt(Math.trunc(v));
  if (typeof v === 'string' && /^-?[0-9]+$/.test(v)) return BigInt(v);
  return 0n;
}

function valueSize(f: FieldDef, v: unknown): number | undefined {
  switch (f.kind) {
    case 'bytes':
    case 'string': {
      const n = bytesLength(v);
      return n === 0 && !f.repeated ? undefined : varintSize(BigInt(n)) + n;
    }
    case 'bool':
      return v === true ? 1 : undefined;
    case 'message': {
      if (v === null || typeof v !== 'object') return undefined;
      const n = messageSize(MESSAGES[f.ref as string] as MessageDef, v as Record<string, unknown>);
      return varintSize(BigInt(n)) + n;
    }
    case 'enum': {
      if (typeof v === 'number') return v === 0 ? undefined : varintSize(BigInt(v));
      return undefined; // names: the decoder turned known numbers into names; size below
    }
    default: {
      const i = intValue(v);
      return i === 0n ? undefined : varintSize(i);
    }
  }
}

function enumNameSize(f: FieldDef, v: unknown): number | undefined {
  if (f.kind !== 'enum' || typeof v !== 'string') return undefined;
  const names = enumNames(f);
  const i = names.indexOf(v);
  return i <= 0 ? undefined : varintSize(BigInt(i));
}

function enumNames(f: FieldDef): readonly string[] {
  const m: Record<string, readonly string[]> = {
    SortOrder: ['NONE', 'ASCEND', 'DESCEND'],
    SortTarget: ['KEY', 'VERSION', 'CREATE', 'MOD', 'VALUE'],
    CompareResult: ['EQUAL', 'GREATER', 'LESS', 'NOT_EQUAL'],
    CompareTarget: ['VERSION', 'CREATE', 'MOD', 'VALUE', 'LEASE'],
    FilterType: ['NOPUT', 'NODELETE'],
  };
  return m[f.ref as string] ?? [];
}

function messageSize(def: MessageDef, obj: Record<string, unknown>): number {
  let total = 0;
  def.fields.forEach((f, i) => {
    const v = obj[f.json];
    if (v === undefined || v === null) return;
    const tag = varintSize(BigInt(fieldNumber(def, i) << 3));
    const items = f.repeated && Array.isArray(v) ? v : [v];
    for (const item of items) {
      const s = f.kind === 'enum' && typeof item === 'string' ? enumNameSize(f, item) : valueSize(f, item);
      if (s !== undefined) total += tag + s;
      else if (f.repeated) total += tag + 1; // a zero element still takes a tag and a zero byte
    }
  });
  return total;
}

/** Protobuf size of a decoded request of message `name`. */
export function protoSize(name: string, decoded: Record<string, unknown>): number {
  const def = MESSAGES[name];
  if (def === undefined) throw new Error(`gateway: no message ${name}`);
  return messageSize(def, decoded);
}

/** InternalRaftRequest field numbers of the writes etcd proposes through raft. */
const RAFT_FIELD: Readonly<Record<string, number>> = {
  PutRequest: 4,
  DeleteRangeRequest: 5,
  TxnRequest: 6,
  CompactionRequest: 7,
  LeaseGrantRequest: 8,
  LeaseRevokeRequest: 9,
};

/**
 * Size of the raft proposal etcd would build for a write: the request inside an InternalRaftRequest
 * with a header holding a request ID (etcd's IDs take 9 varint bytes). Undefined for requests that
 * are not proposed (reads).
 */
export function raftRequestSize(name: string, decoded: Record<string, unknown>): number | undefined {
  const field = RAFT_FIELD[name];
  if (field === undefined) return undefined;
  const inner = protoSize(name, decoded);
  const header = 1 + 9; // RequestHeader{ID}: tag + 9-byte varint
  return 2 + varintSize(BigInt(header)) + header + 1 + varintSize(BigInt(inner)) + inner;
}
