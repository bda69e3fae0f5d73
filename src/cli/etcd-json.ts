/**
 * etcdctl's `-w json`: the Go structs of etcd's API marshalled by encoding/json — protobuf field
 * names (snake_case, except the messages etcd declared in camelCase), bytes as base64, 64-bit
 * integers as plain numbers, zero values omitted (omitempty), oneofs wrapped as Go sees them.
 */

/** Fields declared camelCase in etcd's rpc.proto (or upper case), outside the response header. */
const KEEP = new Set([
  'dbSize',
  'raftIndex',
  'raftTerm',
  'raftAppliedIndex',
  'dbSizeInUse',
  'isLearner',
  'grantedTTL',
  'ID',
  'TTL',
  'memberID',
  'Endpoint',
  'Status',
  'HashKV',
  'peerURLs',
  'clientURLs',
  'Response',
  'ResponsePut',
  'ResponseRange',
  'ResponseDeleteRange',
  'ResponseTxn',
  'totalKey',
  'totalSize',
]);

const ALARMS: Record<string, number> = { NONE: 0, NOSPACE: 1, CORRUPT: 2 };

function snake(k: string): string {
  return k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

function isEmpty(v: unknown): boolean {
  return (
    v === undefined ||
    v === null ||
    v === false ||
    v === 0 ||
    v === 0n ||
    v === '' ||
    (Array.isArray(v) && v.length === 0) ||
    (v instanceof Uint8Array && v.length === 0)
  );
}

/** A response op (oneof) as encoding/json writes it. */
function responseOp(op: Record<string, unknown>): Record<string, unknown> {
  const [name, body] = Object.entries(op)[0] ?? [];
  if (name === undefined) return {};
  return { Response: { [name.charAt(0).toUpperCase() + name.slice(1)]: body } };
}

export function etcdJson(v: unknown, inHeader = false, field = ''): string {
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : '0';
  if (typeof v === 'string') return field === 'alarm' && v in ALARMS ? String(ALARMS[v]) : JSON.stringify(v);
  if (typeof v === 'boolean') return String(v);
  if (v instanceof Uint8Array) return JSON.stringify(Buffer.from(v).toString('base64'));
  if (Array.isArray(v)) {
    return `[${v.map((x) => etcdJson(field === 'responses' ? responseOp(x as Record<string, unknown>) : x, inHeader, '')).join(',')}]`;
  }
  if (v === null || v === undefined) return 'null';
  const parts: string[] = [];
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    if (isEmpty(x) && k !== 'Endpoint') continue;
    const header = k === 'header' || inHeader;
    const name = KEEP.has(k) && !header ? k : k === 'memberId' && !inHeader ? 'memberID' : snake(k);
    parts.push(`${JSON.stringify(name)}:${etcdJson(x, header, k)}`);
  }
  return `{${parts.join(',')}}`;
}
