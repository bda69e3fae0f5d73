/**
 * connect() against fake servers that misbehave: garbage, truncated and oversized bodies, wrong
 * shapes, hangs, refused connections, a connection cut after the request arrived, etcd error bodies.
 * Every call ends with a typed error (or fails over and succeeds); none hangs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import { ClientError, connect } from '../../src/client/index.ts';
import { MvccError } from '../../src/mvcc/errors.ts';
import { GatewayError } from '../../src/gateway/index.ts';
import { freePort } from '../support/etcd.ts';

type Handler = (req: IncomingMessage, res: ServerResponse, body: string) => void;

async function fake(
  handler: Handler,
): Promise<{ url: string; server: Server; hits: () => number; close: () => Promise<void> }> {
  let hits = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      hits++;
      handler(req, res, Buffer.concat(chunks).toString());
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    server,
    hits: () => hits,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

const HEADER = { cluster_id: '1', member_id: '2', revision: '7', raft_term: '3' };
const okRange: Handler = (_req, res) => {
  res.setHeader('content-type', 'application/json');
  res.end(
    JSON.stringify({
      header: HEADER,
      kvs: [{ key: 'YQ==', create_revision: '5', mod_revision: '7', version: '2', value: 'MQ==' }],
      count: '1',
    }),
  );
};

function isClientError(code: string): (e: unknown) => boolean {
  return (e) => {
    assert.ok(e instanceof ClientError, `expected a ClientError ${code}, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    return true;
  };
}

test('garbage, wrong shapes, truncated and oversized bodies are ERR_BAD_RESPONSE', async () => {
  const cases: [string, Handler][] = [
    ['not JSON', (_q, r) => r.end('<html>hello</html>')],
    ['JSON but not an object', (_q, r) => r.end('[1,2,3]')],
    ['kvs not an array', (_q, r) => r.end(JSON.stringify({ header: HEADER, kvs: 'nope' }))],
    ['revision not a number', (_q, r) => r.end(JSON.stringify({ header: { revision: 'abc' } }))],
    ['bytes not base64', (_q, r) => r.end(JSON.stringify({ header: HEADER, kvs: [{ key: '!!!' }] }))],
    [
      'truncated with content-length',
      (_q, r) => {
        r.writeHead(200, { 'content-length': '1000', 'content-type': 'application/json' });
        r.write('{"header":{"revision":"7"},"kvs":[{"key":"YQ==');
        setTimeout(() => r.socket?.destroy(), 20);
      },
    ],
    [
      'truncated chunked',
      (_q, r) => {
        r.writeHead(200, { 'content-type': 'application/json' });
        r.write('{"header":{"revision":"7"},');
        setTimeout(() => r.socket?.destroy(), 20);
      },
    ],
    [
      'oversized',
      (_q, r) =>
        r.end(JSON.stringify({ header: HEADER, kvs: [{ key: 'YQ==', value: Buffer.alloc(8000).toString('base64') }] })),
    ],
    [
      '404 plain text',
      (_q, r) => {
        r.writeHead(404, { 'content-type': 'text/plain' });
        r.end('Not Found');
      },
    ],
    [
      '500 without an etcd body',
      (_q, r) => {
        r.writeHead(500);
        r.end('{"what":1}');
      },
    ],
  ];
  for (const [name, h] of cases) {
    const srv = await fake(h);
    const kv = connect({ endpoints: [srv.url], timeoutMs: 2000, maxResponseBytes: 4096 });
    try {
      await assert.rejects(kv.range({ key: 'a' }), isClientError('ERR_BAD_RESPONSE'), name);
      // A put answer has no kvs, so only the shape-independent cases apply to it.
      if (!name.startsWith('kvs') && !name.startsWith('bytes'))
        await assert.rejects(kv.put({ key: 'a', value: '1' }), isClientError('ERR_BAD_RESPONSE'), name);
    } finally {
      await kv.close();
      await srv.close();
    }
  }
});

test('a server that never answers: ERR_TIMEOUT by the deadline', async () => {
  const srv = await fake(() => {});
  const kv = connect({ endpoints: [srv.url], timeoutMs: 300 });
  try {
    const t0 = Date.now();
    await assert.rejects(kv.put({ key: 'a', value: '1' }), isClientError('ERR_TIMEOUT'));
    await assert.rejects(kv.range({ key: 'a' }), isClientError('ERR_TIMEOUT'));
    assert.ok(Date.now() - t0 < 2000);
  } finally {
    await kv.close();
    await srv.close();
  }
});

test('refused connections: ERR_UNAVAILABLE, or the next endpoint serves even a write', async () => {
  const dead = `http://127.0.0.1:${await freePort()}`;
  const lone = connect({ endpoints: [dead], timeoutMs: 1000 });
  await assert.rejects(lone.put({ key: 'a', value: '1' }), isClientError('ERR_UNAVAILABLE'));
  await lone.close();
  const srv = await fake(okRange);
  const kv = connect({ endpoints: [dead, srv.url], timeoutMs: 2000 });
  try {
    const r = await kv.range({ key: 'a' });
    assert.equal(r.kvs[0]!.modRevision, 7);
    // A write that never left may go elsewhere too.
    const p = await kv.put({ key: 'a', value: '1' });
    assert.equal(p.header.revision, 7);
    assert.equal(srv.hits(), 2);
  } finally {
    await kv.close();
    await srv.close();
  }
});

test('connection cut after the request arrived: writes fail ERR_CONNECTION_LOST, reads fail over', async () => {
  const cutter = await fake((_q, r) => r.socket?.destroy());
  const good = await fake(okRange);
  const kv = connect({ endpoints: [cutter.url, good.url], timeoutMs: 2000, failoverCooldownMs: 0 });
  try {
    await assert.rejects(kv.put({ key: 'a', value: '1' }), isClientError('ERR_CONNECTION_LOST'));
    assert.equal(good.hits(), 0, 'a write whose fate is unknown must not be sent again');
    const r = await kv.range({ key: 'a' });
    assert.equal(txt(r.kvs[0]!.value), '1');
    // A txn of ranges only is a read: it fails over too.
    const before = good.hits();
    await kv.txn({ success: [{ requestRange: { key: 'a' } }] }).catch(() => {});
    assert.equal(good.hits(), before + 1);
  } finally {
    await kv.close();
    await cutter.close();
    await good.close();
  }
});

const txt = (b: Uint8Array): string => Buffer.from(b).toString();

test("etcd error bodies: store codes, unavailable fails over, unknown codes keep etcd's", async () => {
  const err =
    (status: number, code: number, message: string): Handler =>
    (_q, r) => {
      r.writeHead(status, { 'content-type': 'application/json' });
      r.end(JSON.stringify({ error: message, message, code }));
    };
  const compacted = await fake(err(400, 11, 'etcdserver: mvcc: required revision has been compacted'));
  const unknown = await fake(err(500, 2, 'etcdserver: something new'));
  const noLeader = await fake(err(503, 14, 'etcdserver: no leader'));
  const good = await fake(okRange);
  try {
    const a = connect({ endpoints: [compacted.url, good.url] });
    await assert.rejects(
      a.range({ key: 'a', revision: 1 }),
      (e) => e instanceof MvccError && e.code === 'ERR_COMPACTED',
    );
    assert.equal(good.hits(), 0, 'an answer from etcd is final');
    await a.close();
    const b = connect({ endpoints: [unknown.url] });
    await assert.rejects(
      b.range({ key: 'a' }),
      (e) =>
        e instanceof GatewayError &&
        e.code === 'ERR_REMOTE' &&
        e.grpcCode === 2 &&
        e.httpStatus === 500 &&
        e.message === 'etcdserver: something new',
    );
    await b.close();
    const c = connect({ endpoints: [noLeader.url, good.url] });
    assert.equal((await c.range({ key: 'a' })).count, 1);
    await c.close();
    const d = connect({ endpoints: [noLeader.url], timeoutMs: 1000 });
    await assert.rejects(d.put({ key: 'a', value: '1' }), isClientError('ERR_UNAVAILABLE'));
    await d.close();
  } finally {
    await Promise.all([compacted.close(), unknown.close(), noLeader.close(), good.close()]);
  }
});

test('a watch stream that receives garbage ends with a typed error', async () => {
  const port = await freePort();
  const wss = new WebSocketServer({ host: '127.0.0.1', port, path: '/v3/watch' });
  wss.on('connection', (ws) => ws.on('message', () => ws.send('this is not json')));
  const kv = connect({ endpoints: [`http://127.0.0.1:${port}`], watchReconnectTimeoutMs: 300 });
  try {
    const w = kv.watch({ key: 'a' });
    await assert.rejects(
      (async () => {
        for await (const _ of w) {
          /* nothing valid arrives */
        }
      })(),
      isClientError('ERR_BAD_RESPONSE'),
    );
    assert.equal(w.canceled, true);
  } finally {
    await kv.close();
    for (const c of wss.clients) c.terminate();
    await new Promise<void>((r) => wss.close(() => r()));
  }
});

test('options and a closed client give typed errors', async () => {
  assert.throws(() => connect({ endpoints: [] }), isClientError('ERR_INVALID_OPTION'));
  assert.throws(() => connect({ endpoints: ['ftp://x'] }), isClientError('ERR_INVALID_OPTION'));
  assert.throws(() => connect({ endpoints: ['http://127.0.0.1:1/path'] }), isClientError('ERR_INVALID_OPTION'));
  assert.throws(
    () => connect({ endpoints: ['http://127.0.0.1:1'], timeoutMs: -1 }),
    isClientError('ERR_INVALID_OPTION'),
  );
  const kv = connect({ endpoints: ['127.0.0.1:1'] });
  assert.deepEqual(kv.endpoints, ['http://127.0.0.1:1']);
  await assert.rejects(
    kv.put({ key: 'a', value: 1 as never }),
    (e) => e instanceof MvccError && e.code === 'ERR_INVALID_ARGUMENT',
  );
  await assert.rejects(
    kv.range({ key: 'a', revision: 1.5 }),
    (e) => e instanceof MvccError && e.code === 'ERR_INVALID_ARGUMENT',
  );
  await kv.close();
  await kv.close();
  await assert.rejects(kv.range({ key: 'a' }), isClientError('ERR_CLOSED'));
  assert.throws(() => kv.watch({ key: 'a' }), isClientError('ERR_CLOSED'));
});
