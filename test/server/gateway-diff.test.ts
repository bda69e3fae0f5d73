/**
 * Gateway differential: the same random request sequences, as raw HTTP bodies, to a real etcd 3.4
 * and to boltkv's server; status codes and JSON bodies must be identical, the header's cluster_id,
 * member_id and raft_term aside. Requests come in several JSON spellings (proto or lowerCamel
 * names, int64 as strings or numbers, enums by name or number), with malformed bodies, wrong types,
 * unknown paths and methods, and writes around --max-request-bytes (set low on both so the
 * boundary is cheap to reach). Skips loudly without etcd unless BOLTKV_REQUIRE_INTEROP=1.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { encodeMessage } from '../../src/gateway/codec.ts';
import { requireEtcd, startEtcd } from '../support/etcd.ts';
import { resolveRange, stepArb, type Step } from '../mvcc/gen.ts';
import { normalize, raw, startBoltkv, stream } from './support.ts';
import { replayableRuns } from '../support/fc-replay.ts';

const MAX_REQUEST_BYTES = 10_000;

const varintLen = (n: number): number => (n < 0x80 ? 1 : n < 0x4000 ? 2 : 3);
const field = (len: number): number => 1 + varintLen(len) + len;

/**
 * etcd measures a write as the InternalRaftRequest it proposes, whose header holds a request ID that
 * starts with the member ID's low 16 bits: its varint takes 7 to 10 bytes depending on the member.
 * The two servers have different member IDs, so a value whose verdict flips within that range is
 * left out of the comparison (each server is exact for some ID; the diff can't be).
 */
function bigVerdictDependsOnMemberId(size: number, txn: boolean): boolean {
  const put = field(3) + field(size); // key "big", value
  const body = txn ? field(field(put)) : put; // TxnRequest{success: [RequestOp{requestPut}]}
  const total = (idLen: number): number => 2 + 1 + (1 + idLen) + field(body);
  return total(7) > MAX_REQUEST_BYTES !== total(10) > MAX_REQUEST_BYTES;
}

type Style = { camel: boolean; numbers: boolean; enumNumbers: boolean };

type GStep =
  | Exclude<Step, { t: 'reopen' }>
  | { t: 'grant'; id: number; ttl: number }
  | { t: 'revoke'; id: number; alias: boolean }
  | { t: 'leasePut'; key: string; id: number }
  | { t: 'ttl'; id: number; alias: boolean }
  | { t: 'leases'; alias: boolean }
  | { t: 'keepalive'; ids: number[] }
  | { t: 'big'; size: number; txn: boolean }
  | { t: 'bad'; path: string; body: string }
  | { t: 'method'; path: string; method: string };

const leaseId = fc.constantFrom(1, 2, 3);
const BAD_BODIES = [
  'notjson',
  '{"key":',
  '[1]',
  '"s"',
  '123',
  '{"key":1}',
  '{"key":"@@@"}',
  '{"key":"Zm9"}',
  '{"key":"Zg="}',
  '{"key":"YQ==","limit":"abc"}',
  '{"key":"YQ==","limit":1.5}',
  '{"key":"YQ==","limit":true}',
  '{"key":"YQ==","keys_only":"true"}',
  '{"key":"YQ==","sort_order":"BOGUS"}',
  '{"key":"YQ==","sort_order":1.5}',
  '{"key":"YQ==","revision":"99999999999999999999"}',
  '{"key":"YQ==","revision":"9007199254740993"}',
  '{"key":"YQ==","value":{}}',
  '{"compare":{}}',
  '{"compare":[1]}',
  '{"success":[{"request_put":5}]}',
  '{"compare":[{"key":"YQ==","target":"BOGUS"}]}',
  '{"key":"YQ=="} trailing',
  '',
  '{"key":[97,98]}',
  '{"key":"YQ==","lease":"-1"}',
  '{"ID":"x"}',
  '{"TTL":"1 2"}',
  '{"key":"YQ==","unknown":{"x":[1,2]}}',
  '{"key":"\\u0061"}',
  '{"key":"YQ==","bogus":1',
  '{1}',
  '{"key" 1}',
  '[1 2]',
  '-x',
  'tx',
  '{"key":"\\x"}',
];
// Not /v3/lease/grant: a body it accepts would grant a lease with a server-chosen ID.
const PATHS = [
  '/v3/kv/range',
  '/v3/kv/put',
  '/v3/kv/deleterange',
  '/v3/kv/txn',
  '/v3/kv/compaction',
  '/v3/lease/revoke',
  '/v3/lease/timetolive',
  '/v3/kv/lease/timetolive',
  '/v3beta/kv/range',
  '/v3/nope',
  '/v3/kv',
  '/',
];

const gstepArb: fc.Arbitrary<GStep> = fc.oneof(
  { weight: 12, arbitrary: stepArb(false) as fc.Arbitrary<GStep> },
  {
    weight: 1,
    arbitrary: fc.record({ t: fc.constant('grant' as const), id: leaseId, ttl: fc.constantFrom(0, 1, 100, 200) }),
  },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('revoke' as const), id: leaseId, alias: fc.boolean() }) },
  {
    weight: 1,
    arbitrary: fc.record({ t: fc.constant('leasePut' as const), key: fc.constantFrom('a', 'b', 'l1'), id: leaseId }),
  },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('ttl' as const), id: leaseId, alias: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('leases' as const), alias: fc.boolean() }) },
  {
    weight: 1,
    arbitrary: fc.record({
      t: fc.constant('keepalive' as const),
      ids: fc.array(leaseId, { minLength: 1, maxLength: 3 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc
      .record({
        t: fc.constant('big' as const),
        size: fc.integer({ min: MAX_REQUEST_BYTES - 40, max: MAX_REQUEST_BYTES + 10 }),
        txn: fc.boolean(),
      })
      .filter((b) => !bigVerdictDependsOnMemberId(b.size, b.txn)),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      t: fc.constant('bad' as const),
      path: fc.constantFrom(...PATHS),
      body: fc.constantFrom(...BAD_BODIES),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      t: fc.constant('method' as const),
      path: fc.constantFrom(...PATHS),
      method: fc.constantFrom('GET', 'PUT', 'DELETE'),
    }),
  },
);
const styleArb: fc.Arbitrary<Style> = fc.record({
  camel: fc.boolean(),
  numbers: fc.boolean(),
  enumNumbers: fc.boolean(),
});

const ENUM_NUMBERS: Record<string, Record<string, number>> = {
  sort_order: { NONE: 0, ASCEND: 1, DESCEND: 2 },
  sort_target: { KEY: 0, VERSION: 1, CREATE: 2, MOD: 3, VALUE: 4 },
  result: { EQUAL: 0, GREATER: 1, LESS: 2, NOT_EQUAL: 3 },
  target: { VERSION: 0, CREATE: 1, MOD: 2, VALUE: 3, LEASE: 4 },
};

/** The same request in another legal spelling. */
function restyle(v: unknown, s: Style, key = ''): unknown {
  if (Array.isArray(v)) return v.map((x) => restyle(x, s, key));
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      const name = s.camel ? k.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase()) : k;
      out[name] = restyle(x, s, k);
    }
    return out;
  }
  if (typeof v === 'string' && s.enumNumbers && ENUM_NUMBERS[key]?.[v] !== undefined) return ENUM_NUMBERS[key]?.[v];
  if (
    typeof v === 'string' &&
    s.numbers &&
    /^-?[0-9]{1,15}$/.test(v) &&
    key !== 'key' &&
    key !== 'value' &&
    key !== 'range_end'
  )
    return Number(v);
  return v;
}

/** gen.ts writes string keys; the codec wants bytes for byte fields. */
function bytesDeep(v: unknown, key = ''): unknown {
  if (typeof v === 'string' && ['key', 'value', 'rangeEnd'].includes(key)) return Buffer.from(v, 'latin1');
  if (Array.isArray(v)) return v.map((x) => bytesDeep(x, key));
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = bytesDeep(x, k);
    return out;
  }
  return v;
}

function body(message: string, req: unknown, s: Style): string {
  return JSON.stringify(restyle(JSON.parse(encodeMessage(message, bytesDeep(req))), s));
}

interface Req {
  path: string;
  body: string;
  method?: string;
  stream?: boolean;
  ttl?: boolean;
  leases?: boolean;
}

/**
 * Lease lists compared as sets: etcd lists soonest expiry first, boltkv (until its lessor orders
 * them) by ID; see docs/api.md.
 */
function leasesSorted(v: unknown): unknown {
  const o = v as { leases?: { ID: string }[] };
  if (!Array.isArray(o?.leases)) return v;
  return { ...o, leases: [...o.leases].sort((x, y) => (BigInt(x.ID) < BigInt(y.ID) ? -1 : 1)) };
}

function requestOf(step: GStep, style: Style, current: number): Req {
  switch (step.t) {
    case 'range':
      return { path: '/v3/kv/range', body: body('RangeRequest', resolveRange(step.r, current), style) };
    case 'put':
      return { path: '/v3/kv/put', body: body('PutRequest', step.r, style) };
    case 'delete':
      return { path: '/v3/kv/deleterange', body: body('DeleteRangeRequest', step.r, style) };
    case 'txn':
      return { path: '/v3/kv/txn', body: body('TxnRequest', step.r, style) };
    case 'compact':
      return { path: '/v3/kv/compaction', body: body('CompactionRequest', { revision: current - step.back }, style) };
    case 'grant':
      return { path: '/v3/lease/grant', body: body('LeaseGrantRequest', { ID: step.id, TTL: step.ttl }, style) };
    case 'revoke':
      return {
        path: step.alias ? '/v3/kv/lease/revoke' : '/v3/lease/revoke',
        body: body('LeaseRevokeRequest', { ID: step.id }, style),
      };
    case 'leasePut':
      return { path: '/v3/kv/put', body: body('PutRequest', { key: step.key, value: 'L', lease: step.id }, style) };
    case 'ttl':
      return {
        path: step.alias ? '/v3/kv/lease/timetolive' : '/v3/lease/timetolive',
        body: body('LeaseTimeToLiveRequest', { ID: step.id, keys: true }, style),
        ttl: true,
      };
    case 'leases':
      return { path: step.alias ? '/v3/kv/lease/leases' : '/v3/lease/leases', body: '{}', leases: true };
    case 'keepalive':
      return {
        path: '/v3/lease/keepalive',
        body: step.ids.map((id) => body('LeaseKeepAliveRequest', { ID: id }, style)).join(''),
        stream: true,
      };
    case 'big': {
      const put = { key: 'big', value: 'v'.repeat(step.size) };
      return step.txn
        ? { path: '/v3/kv/txn', body: body('TxnRequest', { success: [{ requestPut: put }] }, style) }
        : { path: '/v3/kv/put', body: body('PutRequest', put, style) };
    }
    case 'bad':
      return { path: step.path, body: step.body };
    case 'method':
      return { path: step.path, body: '', method: step.method };
  }
}

/** TimeToLive's remaining seconds depend on timing; everything else must match. */
function ttlComparable(v: unknown): unknown {
  if (v === null || typeof v !== 'object') return v;
  const r = { ...(v as Record<string, unknown>) };
  if (typeof r.TTL === 'string' && Number(r.TTL) > 0) r.TTL = 'positive';
  if (Array.isArray(r.keys)) r.keys = [...(r.keys as string[])].sort();
  return r;
}

async function answer(base: string, r: Req): Promise<unknown> {
  if (r.stream === true) {
    const s = await stream(base, r.path, r.body, {
      forMs: 3000,
      until: (l) => l.length >= (r.body.match(/\}\{|\}$/g)?.length ?? 1),
    });
    return {
      status: s.status,
      lines: s.lines.map(normalize).map((l) => {
        const o = l as { result?: unknown };
        return o.result === undefined ? l : { result: ttlComparable(o.result) };
      }),
    };
  }
  const res = await raw(base, r.path, r.body, r.method ?? 'POST');
  const n = r.leases === true ? leasesSorted(normalize(res.body)) : normalize(res.body);
  return { status: res.status, body: r.ttl === true ? ttlComparable(n) : n };
}

async function currentRevision(base: string): Promise<number> {
  const r = await raw(base, '/v3/kv/range', '{"key":"AA=="}');
  return Number((JSON.parse(r.body) as { header: { revision: string } }).header.revision);
}

const RUNS = process.env.BOLTKV_STRESS === '1' ? 100 : 6;

test('gateway differential: random request sequences get the same status and body from etcd and boltkv serve', {
  timeout: 300_000,
}, async (t) => {
  if (!requireEtcd(t)) return;
  await fc.assert(
    fc.asyncProperty(fc.array(fc.tuple(gstepArb, styleArb), { minLength: 10, maxLength: 60 }), async (steps) => {
      const etcd = await startEtcd({ extraArgs: ['--max-request-bytes', String(MAX_REQUEST_BYTES)] });
      const boltkv = await startBoltkv({ maxRequestBytes: MAX_REQUEST_BYTES });
      try {
        for (const [i, [step, style]] of steps.entries()) {
          const cur = await currentRevision(etcd.url);
          assert.equal(await currentRevision(boltkv.url), cur, `revisions diverged before step ${i}`);
          const req = requestOf(step, style, cur);
          const a = await answer(etcd.url, req);
          const b = await answer(boltkv.url, req);
          assert.deepEqual(b, a, `step ${i}: ${req.method ?? 'POST'} ${req.path} ${req.body.slice(0, 300)}`);
        }
        const all = { path: '/v3/kv/range', body: '{"key":"AA==","range_end":"AA=="}' };
        assert.deepEqual(await answer(boltkv.url, all), await answer(etcd.url, all), 'final state');
      } finally {
        await boltkv.close();
        await etcd.stop();
      }
    }),
    replayableRuns(RUNS),
  );
});

test('gateway differential: hand-picked requests', { timeout: 60_000 }, async (t) => {
  if (!requireEtcd(t)) return;
  const etcd = await startEtcd({ extraArgs: ['--max-request-bytes', String(MAX_REQUEST_BYTES)] });
  const boltkv = await startBoltkv({ maxRequestBytes: MAX_REQUEST_BYTES });
  const reqs: Req[] = [
    { path: '/v3/kv/put', body: '{"key":"Zm9v","value":"YmFy"}' },
    { path: '/v3/kv/put', body: '{"key":"Zm9v","value":"YmFyMg==","prev_kv":true}' },
    { path: '/v3/kv/range', body: '{"key":"Zm9v","sortOrder":"DESCEND","sort_target":2,"bogus":1}' },
    {
      path: '/v3/kv/txn',
      body: '{"compare":[{"key":"Zm9v","target":"VALUE","result":"EQUAL","value":"YmFyMg=="}],"success":[{"request_put":{"key":"Zm9v","value":"Yg=="}},{"requestRange":{"key":"Zm9v"}},{"request_txn":{}}],"failure":[]}',
    },
    {
      path: '/v3/kv/txn',
      body: '{"success":[{"request_txn":{"success":[{"request_put":{"key":"bg==","value":"MQ=="}},{"request_range":{"key":"bg=="}}]}}]}',
    },
    {
      path: '/v3/kv/txn',
      body: '{"compare":[{"key":"Zm9v","target":1,"result":"GREATER","version":"0"}],"success":[{"request_delete_range":{"key":"eHg="}}]}',
    },
    { path: '/v3/kv/deleterange', body: '{"key":"Zm9v","prev_kv":true}' },
    { path: '/v3/kv/compaction', body: '{"revision":"3"}' },
    { path: '/v3/kv/compaction', body: '{"revision":"3"}' },
    { path: '/v3/kv/compaction', body: '{"revision":"300"}' },
    { path: '/v3/kv/range', body: '{"key":"Zm9v","revision":2}' },
    { path: '/v3/kv/range', body: '{"key":"Zm9v","revision":"9007199254740993"}' },
    { path: '/v3/lease/grant', body: '{"TTL":30,"ID":12345}' },
    { path: '/v3/lease/grant', body: '{"TTL":30,"ID":12345}' },
    { path: '/v3/kv/put', body: '{"key":"bGs=","value":"eA==","lease":"12345"}' },
    { path: '/v3/lease/timetolive', body: '{"ID":12345,"keys":true}', ttl: true },
    { path: '/v3/kv/lease/timetolive', body: '{"ID":1}' },
    { path: '/v3/lease/keepalive', body: '{"ID":12345}{"ID":1}', stream: true },
    { path: '/v3/lease/revoke', body: '{"ID":1}' },
    { path: '/v3/lease/revoke', body: '{"ID":"12345"}' },
    { path: '/v3/maintenance/alarm', body: '{}' },
    { path: '/v3/maintenance/alarm', body: '{"action":"GET"}' },
    { path: '/v3/watch', body: 'garbage', stream: true },
    { path: '/v3/lease/keepalive', body: 'x', stream: true },
    {
      path: '/v3/kv/put',
      body: JSON.stringify({ key: 'YQ==', value: Buffer.alloc(MAX_REQUEST_BYTES + 600 * 1024).toString('base64') }),
    },
    { path: '/v3/kv/range', body: '{"key":"Zm9v"}', method: 'GET' },
    { path: '/v3/nope', body: '{}', method: 'GET' },
    { path: '/v3/nope', body: '{}' },
  ];
  try {
    for (const r of reqs) {
      assert.deepEqual(
        await answer(boltkv.url, r),
        await answer(etcd.url, r),
        `${r.method ?? 'POST'} ${r.path} ${r.body.slice(0, 200)}`,
      );
    }
    // member list: one member, the same shape (ids and URLs are the server's own)
    const ml = JSON.parse((await raw(boltkv.url, '/v3/cluster/member/list', '{}')).body) as {
      header: Record<string, string>;
      members: Record<string, unknown>[];
    };
    assert.equal(ml.members.length, 1);
    assert.equal(ml.members[0]?.ID, ml.header.member_id);
    assert.deepEqual(ml.members[0]?.clientURLs, [boltkv.url]);
    assert.equal(ml.header.revision, undefined); // etcd's member list header has no revision
    const st = JSON.parse((await raw(boltkv.url, '/v3/maintenance/status', '{}')).body) as Record<string, unknown> & {
      header: Record<string, string>;
    };
    assert.equal(st.leader, st.header.member_id); // a lone member leads
    assert.match(String(st.version), /^3\.4\./);
  } finally {
    await boltkv.close();
    await etcd.stop();
  }
});
