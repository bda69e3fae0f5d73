/**
 * The gateway codec: etcd JSON ↔ boltkv objects in both directions, Go's error texts (each expected
 * string below is what a real etcd 3.4.23 answered for the same body), and gRPC/HTTP error mapping.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  boltkvCodeOf,
  decodeMessage,
  decodeRequestStream,
  decodeStreamResult,
  encodeMessage,
  encodeStreamResult,
  errorBody,
  etcdStatusOf,
  GrpcCode,
  httpStatusFromGrpc,
  JsonDecodeError,
  parseErrorBody,
  streamErrorBody,
} from '../../src/gateway/index.ts';
import { MvccError } from '../../src/mvcc/errors.ts';

const b = (s: string) => Buffer.from(s);

function decodeError(name: string, body: string): string {
  try {
    decodeMessage(name, body);
  } catch (e) {
    assert.ok(e instanceof JsonDecodeError, `not a JsonDecodeError: ${String(e)}`);
    assert.equal(e.code, 'ERR_BAD_JSON');
    return e.message;
  }
  assert.fail(`no error for ${body}`);
}

test('encode: proto names, int64 as strings, base64, zero fields omitted, declaration order', () => {
  const json = encodeMessage('RangeResponse', {
    header: { revision: 3, clusterId: 15118495548433857066n, memberId: 0n, raftTerm: 2 },
    kvs: [{ key: b('foo'), createRevision: 2, modRevision: 3, version: 2, value: b('bar2'), lease: 0n }],
    more: false,
    count: 1,
    internalThing: 'never printed',
  });
  assert.equal(
    json,
    '{"header":{"cluster_id":"15118495548433857066","revision":"3","raft_term":"2"},' +
      '"kvs":[{"key":"Zm9v","create_revision":"2","mod_revision":"3","version":"2","value":"YmFyMg=="}],"count":"1"}',
  );
  assert.equal(
    encodeMessage('RangeResponse', { header: { revision: 5 }, kvs: [], more: false, count: 0 }),
    '{"header":{"revision":"5"}}',
  );
  // Enums by name, the zero value omitted; a DELETE event shows its type, a PUT does not.
  assert.equal(
    encodeMessage('WatchResponse', {
      header: { revision: 4 },
      watchId: 0,
      created: true,
      events: [
        { type: 'PUT', kv: { key: 'a', createRevision: 4, modRevision: 4, version: 1, value: '', lease: 7n } },
        { type: 'DELETE', kv: { key: 'a', modRevision: 5 } },
      ],
    }),
    '{"header":{"revision":"4"},"created":true,"events":[{"kv":{"key":"YQ==","create_revision":"4","mod_revision":"4","version":"1","lease":"7"}},{"type":"DELETE","kv":{"key":"YQ==","mod_revision":"5"}}]}',
  );
  // Names declared in camel/upper case stay as declared; uint32 is a number.
  assert.equal(
    encodeMessage('LeaseTimeToLiveResponse', {
      header: { revision: 3 },
      ID: 12345n,
      TTL: 29,
      grantedTTL: 30,
      keys: [b('lk')],
    }),
    '{"header":{"revision":"3"},"ID":"12345","TTL":"29","grantedTTL":"30","keys":["bGs="]}',
  );
  assert.equal(
    encodeMessage('HashResponse', { header: { revision: 5 }, hash: 832480087 }),
    '{"header":{"revision":"5"},"hash":832480087}',
  );
  // A nested message present but empty prints as {} (etcd's nested txn header).
  assert.equal(
    encodeMessage('TxnResponse', {
      header: { revision: 4 },
      succeeded: true,
      responses: [{ responseTxn: { header: {}, succeeded: true, responses: [] } }],
    }),
    '{"header":{"revision":"4"},"succeeded":true,"responses":[{"response_txn":{"header":{},"succeeded":true}}]}',
  );
  // A lease id above 2^53 survives.
  assert.equal(
    encodeMessage('LeaseGrantResponse', { header: { revision: 1 }, ID: 4111120260275974155n, TTL: 2 }),
    '{"header":{"revision":"1"},"ID":"4111120260275974155","TTL":"2"}',
  );
});

test('decode: proto and lowerCamel names, enums by name or number, int64 as string or number, unknown fields ignored', () => {
  const r = decodeMessage(
    'RangeRequest',
    '{"key":"Zm9v","rangeEnd":"Zm9w","limit":"10","revision":3,"sortOrder":"DESCEND","sort_target":2,"keys_only":true,"bogus":{"x":[1]}}',
  );
  assert.deepEqual(r, {
    key: b('foo'),
    rangeEnd: b('fop'),
    limit: 10,
    revision: 3,
    sortOrder: 'DESCEND',
    sortTarget: 'CREATE',
    keysOnly: true,
  });
  // The proto name wins over the camel name when both are present.
  assert.deepEqual(decodeMessage('DeleteRangeRequest', '{"range_end":"AA==","rangeEnd":"AQ=="}'), {
    rangeEnd: b('\0'),
  });
  // Lease ids: bigint, lossless.
  assert.deepEqual(decodeMessage('PutRequest', '{"key":"YQ==","lease":"4111120260275974155"}'), {
    key: b('a'),
    lease: 4111120260275974155n,
  });
  assert.deepEqual(decodeMessage('LeaseGrantRequest', '{"TTL":30,"ID":12345}'), { TTL: 30, ID: 12345n });
  // `ttl`/`id` are neither the proto nor the JSON name: ignored, as etcd ignores them.
  assert.deepEqual(decodeMessage('LeaseGrantRequest', '{"ttl":"30","id":"999"}'), {});
  // Nested txn with oneofs and a request_txn.
  const t = decodeMessage(
    'TxnRequest',
    '{"compare":[{"key":"Zm9v","target":"VALUE","result":"EQUAL","value":"YmFy"}],"success":[{"request_put":{"key":"Zm9v","value":"Yg=="}},{"requestRange":{"key":"Zm9v"}},{"request_txn":{}}],"failure":[]}',
  );
  assert.deepEqual(t, {
    compare: [{ result: 'EQUAL', target: 'VALUE', key: b('foo'), value: b('bar') }],
    success: [
      { requestPut: { key: b('foo'), value: b('b') } },
      { requestRange: { key: b('foo') } },
      { requestTxn: {} },
    ],
    failure: [],
  });
  // An unknown enum number is kept (Go keeps it); null means absent; a quoted "null" too.
  assert.deepEqual(decodeMessage('RangeRequest', '{"key":null,"sort_order":7,"limit":"null"}'), { sortOrder: 7 });
  // Empty and whitespace bodies are empty requests; bytes after the first value are ignored.
  assert.deepEqual(decodeMessage('RangeRequest', ''), {});
  assert.deepEqual(decodeMessage('RangeRequest', ' \n'), {});
  assert.deepEqual(decodeMessage('RangeRequest', 'null'), {});
  assert.deepEqual(decodeMessage('RangeRequest', '{"key":"Zm9v"} trailing garbage'), { key: b('foo') });
  // Go also fills bytes from an array of numbers, and skips CR/LF inside base64.
  assert.deepEqual(decodeMessage('RangeRequest', '{"key":[102,111]}'), { key: b('fo') });
  assert.deepEqual(decodeMessage('RangeRequest', '{"key":"Zm9v\\nYmFy"}'), { key: b('foobar') });
  assert.deepEqual(decodeMessage('RangeRequest', '{"key":"\\u0041AAA"}'), { key: Buffer.from([0, 0, 0]) });
  // A revision beyond 2^53 stays exact (the store answers "future revision").
  assert.deepEqual(decodeMessage('RangeRequest', '{"revision":"9007199254740993"}'), { revision: 9007199254740993n });
});

test("decode errors: Go's messages, as etcd 3.4 returns them", () => {
  const cases: [string, string, string][] = [
    ['RangeRequest', '{"key":"Zm9v","limit":"abc"}', "invalid character 'a' looking for beginning of value"],
    ['RangeRequest', '{"key":"Zm9v","limit":1.5}', 'json: cannot unmarshal number 1.5 into Go value of type int64'],
    ['RangeRequest', '{"key":1}', 'json: cannot unmarshal number into Go value of type []uint8'],
    ['RangeRequest', '{"key":"@@@"}', 'illegal base64 data at input byte 0'],
    ['RangeRequest', 'notjson', "invalid character 'o' in literal null (expecting 'u')"],
    [
      'RangeRequest',
      '{"key":"Zm9v","revision":"99999999999999999999"}',
      'json: cannot unmarshal number 99999999999999999999 into Go value of type int64',
    ],
    ['RangeRequest', '{"key":"Zm9v","keys_only":"true"}', 'json: cannot unmarshal string into Go value of type bool'],
    ['RangeRequest', '{"key":"Zm9v","keys_only":1}', 'json: cannot unmarshal number into Go value of type bool'],
    ['RangeRequest', '[1]', 'json: cannot unmarshal array into Go value of type map[string]json.RawMessage'],
    [
      'TxnRequest',
      '{"compare":[{"key":"Zm9v","target":"BOGUS"}]}',
      'unknown value "BOGUS" for enum etcdserverpb.Compare_CompareTarget',
    ],
    ['RangeRequest', '{"key":"Zm9"}', 'illegal base64 data at input byte 0'],
    ['RangeRequest', '{"key":"Zg="}', 'illegal base64 data at input byte 3'],
    ['RangeRequest', '{"key":"Z==="}', 'illegal base64 data at input byte 1'],
    ['RangeRequest', '{"key":"Zm9vYg==x"}', 'illegal base64 data at input byte 8'],
    ['RangeRequest', '{"key":"Zm9v Yg"}', 'illegal base64 data at input byte 4'],
    ['RangeRequest', '{"key":"="}', 'illegal base64 data at input byte 0'],
    ['RangeRequest', '{"key":"Zm=v"}', 'illegal base64 data at input byte 2'],
    ['RangeRequest', '{"key":"Zm9v","limit":"1 2"}', "invalid character '2' after top-level value"],
    ['RangeRequest', '{"key":"Zm9v","limit":""}', 'unexpected end of JSON input'],
    ['RangeRequest', '{"key":"Zm9v","limit":"true"}', 'json: cannot unmarshal bool into Go value of type int64'],
    ['RangeRequest', '{"key":"Zm9v","limit":1e2}', 'json: cannot unmarshal number 1e2 into Go value of type int64'],
    [
      'RangeRequest',
      '{"key":"Zm9v","sort_order":1.5}',
      'json: cannot unmarshal number 1.5 into Go value of type etcdserverpb.RangeRequest_SortOrder',
    ],
    [
      'RangeRequest',
      '{"key":"Zm9v","sort_order":"1"}',
      'unknown value "1" for enum etcdserverpb.RangeRequest_SortOrder',
    ],
    [
      'RangeRequest',
      '{"key":"Zm9v","sort_order":true}',
      'json: cannot unmarshal bool into Go value of type etcdserverpb.RangeRequest_SortOrder',
    ],
    ['RangeRequest', '{"key":', 'unexpected EOF'],
    ['RangeRequest', '{"key" 1}', "invalid character '1' after object key"],
    ['RangeRequest', '{"key":"a" "b"}', "invalid character '\"' after object key:value pair"],
    ['RangeRequest', '{1}', "invalid character '1' looking for beginning of object key string"],
    ['RangeRequest', '[1 2]', "invalid character '2' after array element"],
    ['RangeRequest', '{"key":"\\x"}', "invalid character 'x' in string escape code"],
    ['RangeRequest', '{"key":"\\u12"}', "invalid character '\"' in \\u hexadecimal character escape"],
    ['RangeRequest', '-x', "invalid character 'x' in numeric literal"],
    ['RangeRequest', '1.', 'unexpected EOF'],
    ['RangeRequest', '1e', 'unexpected EOF'],
    ['RangeRequest', 'tx', "invalid character 'x' in literal true (expecting 'r')"],
    ['RangeRequest', '{"key":"Zm9v","limit":{}}', 'json: cannot unmarshal object into Go value of type int64'],
    ['RangeRequest', '{"key":"Zm9v","limit":[]}', 'json: cannot unmarshal array into Go value of type int64'],
    ['RangeRequest', '{"key":{}}', 'json: cannot unmarshal object into Go value of type []uint8'],
    ['RangeRequest', '"s"', 'json: cannot unmarshal string into Go value of type map[string]json.RawMessage'],
    ['RangeRequest', '123', 'json: cannot unmarshal number into Go value of type map[string]json.RawMessage'],
    ['RangeRequest', '{"key":"Zm9v","rangeEnd":"@"}', 'illegal base64 data at input byte 0'],
    ['RangeRequest', '{"key":"Zm9v","limit":"\'"}', "invalid character '\\'' looking for beginning of value"],
    ['TxnRequest', '{"compare":{}}', 'json: cannot unmarshal object into Go value of type []json.RawMessage'],
    ['TxnRequest', '{"compare":[1]}', 'json: cannot unmarshal number into Go value of type map[string]json.RawMessage'],
    [
      'TxnRequest',
      '{"success":[{"request_put":5}]}',
      'json: cannot unmarshal number into Go value of type map[string]json.RawMessage',
    ],
    [
      'PutRequest',
      '{"key":"Zm9v","lease":"99999999999999999999"}',
      'json: cannot unmarshal number 99999999999999999999 into Go value of type int64',
    ],
  ];
  for (const [name, body, want] of cases) assert.equal(decodeError(name, body), want, body);
});

const bytesArb = fc.uint8Array({ maxLength: 12 }).map((u) => Buffer.from(u));
const kvArb = fc.record({
  key: bytesArb,
  createRevision: fc.nat(),
  modRevision: fc.nat(),
  version: fc.nat(),
  value: bytesArb,
  lease: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
});

const ZERO_ENUM: Record<string, string> = {
  sortOrder: 'NONE',
  sortTarget: 'KEY',
  result: 'EQUAL',
  target: 'VERSION',
  type: 'PUT',
};

/** What a decoder gives back for an encoded object: zero fields are gone. */
function withoutZeros(o: unknown): unknown {
  if (Array.isArray(o)) return o.map(withoutZeros);
  if (o instanceof Uint8Array || o === null || typeof o !== 'object') return o;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) {
    if (v === 0 || v === 0n || v === false || v === '' || v === ZERO_ENUM[k]) continue;
    if (v instanceof Uint8Array && v.length === 0) continue;
    if (Array.isArray(v) && v.length === 0) continue;
    out[k] = withoutZeros(v);
  }
  return out;
}

test('property: decode(encode(x)) is x less its zero fields, for responses and requests', () => {
  fc.assert(
    fc.property(
      fc.record({
        header: fc.record({ revision: fc.nat(), raftTerm: fc.nat() }),
        kvs: fc.array(kvArb, { maxLength: 3 }),
        more: fc.boolean(),
        count: fc.nat(),
      }),
      (resp) => {
        assert.deepEqual(decodeMessage('RangeResponse', encodeMessage('RangeResponse', resp)), withoutZeros(resp));
      },
    ),
  );
  const rangeArb = fc.record(
    {
      key: bytesArb,
      rangeEnd: bytesArb,
      limit: fc.nat(),
      revision: fc.nat(),
      sortOrder: fc.constantFrom('NONE', 'ASCEND', 'DESCEND'),
      sortTarget: fc.constantFrom('KEY', 'VERSION', 'CREATE', 'MOD', 'VALUE'),
      serializable: fc.boolean(),
      keysOnly: fc.boolean(),
      countOnly: fc.boolean(),
      minModRevision: fc.nat(),
      maxModRevision: fc.nat(),
      minCreateRevision: fc.nat(),
      maxCreateRevision: fc.nat(),
    },
    { requiredKeys: ['key'] },
  );
  const opArb = fc.oneof(
    rangeArb.map((r) => ({ requestRange: r })),
    fc
      .record({
        key: bytesArb,
        value: bytesArb,
        lease: fc.bigInt({ min: 0n, max: 2n ** 63n - 1n }),
        prevKv: fc.boolean(),
      })
      .map((p) => ({ requestPut: p })),
    fc.record({ key: bytesArb, rangeEnd: bytesArb, prevKv: fc.boolean() }).map((d) => ({ requestDeleteRange: d })),
  );
  const txnArb = fc.record({
    compare: fc.array(
      fc.record({
        key: bytesArb,
        target: fc.constantFrom('VERSION', 'CREATE', 'MOD', 'VALUE', 'LEASE'),
        result: fc.constantFrom('EQUAL', 'GREATER', 'LESS', 'NOT_EQUAL'),
        modRevision: fc.nat(),
      }),
      { maxLength: 3 },
    ),
    success: fc.array(opArb, { maxLength: 3 }),
    failure: fc.array(
      fc.oneof(
        opArb,
        fc.record({ success: fc.array(opArb, { maxLength: 2 }) }).map((t) => ({ requestTxn: t })),
      ),
      { maxLength: 3 },
    ),
  });
  fc.assert(
    fc.property(txnArb, (txn) => {
      assert.deepEqual(decodeMessage('TxnRequest', encodeMessage('TxnRequest', txn)), withoutZeros(txn));
    }),
  );
});

test('property: any byte string round-trips through base64 the way Go reads it', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), (u) => {
      const back = decodeMessage('PutRequest', JSON.stringify({ key: Buffer.from(u).toString('base64') })).key;
      assert.deepEqual(back ?? Buffer.alloc(0), Buffer.from(u));
    }),
  );
});

test('stream framing: result objects, request streams', () => {
  assert.equal(
    encodeStreamResult('LeaseKeepAliveResponse', { header: { revision: 3 }, ID: 1n, TTL: 0 }),
    '{"result":{"header":{"revision":"3"},"ID":"1"}}',
  );
  assert.deepEqual(decodeStreamResult('WatchResponse', '{"result":{"header":{"revision":"2"},"created":true}}'), {
    header: { revision: 2 },
    created: true,
  });
  assert.equal(decodeStreamResult('WatchResponse', '{"error":{"grpc_code":14,"message":"x"}}'), undefined);
  assert.throws(() => decodeStreamResult('WatchResponse', '{"other":1}'), JsonDecodeError);
  assert.throws(() => decodeStreamResult('WatchResponse', '{"result":'), JsonDecodeError);
  assert.deepEqual(
    decodeRequestStream(
      'WatchRequest',
      '{"create_request":{"key":"YQ==","filters":["NOPUT",1]}} {"progress_request":{}}\n{"cancel_request":{"watch_id":"3"}}',
    ),
    {
      requests: [
        { createRequest: { key: b('a'), filters: ['NOPUT', 'NODELETE'] } },
        { progressRequest: {} },
        { cancelRequest: { watchId: 3 } },
      ],
    },
  );
  const partial = decodeRequestStream('WatchRequest', '{"create_request":{}} {"cancel_request":{"watch_id":true}} {}');
  assert.deepEqual(partial.requests, [{ createRequest: {} }]);
  assert.equal(partial.error?.message, 'json: cannot unmarshal bool into Go value of type int64');
  const bad = decodeRequestStream('WatchRequest', 'garbage');
  assert.deepEqual(bad.requests, []);
  assert.equal(bad.error?.message, "invalid character 'g' looking for beginning of value");
});

test('errors: gRPC → HTTP as grpc-gateway v1, bodies, boltkv ↔ etcd codes', () => {
  assert.deepEqual(
    [
      GrpcCode.InvalidArgument,
      GrpcCode.OutOfRange,
      GrpcCode.NotFound,
      GrpcCode.FailedPrecondition,
      GrpcCode.ResourceExhausted,
      GrpcCode.Unavailable,
      GrpcCode.Unknown,
      GrpcCode.Unimplemented,
    ].map(httpStatusFromGrpc),
    [400, 400, 404, 412, 429, 503, 500, 501],
  );
  const s = etcdStatusOf(new MvccError('ERR_LEASE_EXISTS'));
  assert.deepEqual(s, { grpcCode: 9, message: 'etcdserver: lease already exists' });
  assert.equal(
    errorBody(s),
    '{"error":"etcdserver: lease already exists","message":"etcdserver: lease already exists","code":9}',
  );
  assert.equal(
    streamErrorBody({ grpcCode: 14, message: 'm' }),
    '{"error":{"grpc_code":14,"http_code":503,"message":"m","http_status":"Service Unavailable"}}',
  );
  assert.deepEqual(etcdStatusOf(new JsonDecodeError('unexpected EOF')), { grpcCode: 3, message: 'unexpected EOF' });
  assert.equal(etcdStatusOf(new TypeError('boom')).grpcCode, GrpcCode.Unknown);
  // Client direction: an etcd body back to boltkv's code.
  const parsed = parseErrorBody(errorBody(etcdStatusOf(new MvccError('ERR_COMPACTED'))));
  assert.deepEqual(parsed, { grpcCode: 11, message: 'etcdserver: mvcc: required revision has been compacted' });
  assert.equal(boltkvCodeOf(parsed!), 'ERR_COMPACTED');
  assert.equal(boltkvCodeOf({ grpcCode: 3, message: 'etcdserver: request is too large' }), 'ERR_REQUEST_TOO_LARGE');
  assert.equal(boltkvCodeOf({ grpcCode: 2, message: 'something else' }), undefined);
  assert.deepEqual(parseErrorBody(streamErrorBody({ grpcCode: 14, message: 'gone' })), {
    grpcCode: 14,
    message: 'gone',
  });
  assert.equal(parseErrorBody('<html>'), undefined);
  assert.equal(parseErrorBody('{"code":"x"}'), undefined);
});
