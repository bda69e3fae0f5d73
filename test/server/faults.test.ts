/**
 * Server faults: malformed and mistyped bodies, huge bodies, slow bodies and headers, oversized
 * headers, watch clients that never read or vanish, hundreds of idle watch connections. Each gets
 * a typed answer (or a closed connection), memory stays bounded, and writes are unaffected.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { openStore } from '../../src/api/index.ts';
import { serve } from '../../src/server/serve.ts';
import { b64, raw, startBoltkv, stream, WsSession } from './support.ts';

/** Writes raw bytes on a fresh connection; resolves with what came back before it closed or `ms`. */
function rawSocket(url: string, send: (s: Socket) => void, ms: number): Promise<string> {
  const u = new URL(url);
  return new Promise((resolve) => {
    const s = connect(Number(u.port), u.hostname);
    let got = '';
    const timer = setTimeout(() => {
      s.destroy();
      resolve(got);
    }, ms);
    s.on('data', (d) => {
      got += d.toString('latin1');
    });
    s.on('close', () => {
      clearTimeout(timer);
      resolve(got);
    });
    s.on('error', () => undefined);
    s.on('connect', () => send(s));
  });
}

test('malformed and mistyped bodies get InvalidArgument with Go decoder text, never a 500', async () => {
  const b = await startBoltkv();
  try {
    for (const [body, msg] of [
      ['{', 'unexpected EOF'],
      ['{"key":true}', 'json: cannot unmarshal bool into Go value of type []uint8'],
      ['{"key":"YQ==","limit":{"a":1}}', 'json: cannot unmarshal object into Go value of type int64'],
      [
        '{"key":"YQ==","sort_order":"SIDEWAYS"}',
        'unknown value "SIDEWAYS" for enum etcdserverpb.RangeRequest_SortOrder',
      ],
      ['\u0000', "invalid character '\\x00' looking for beginning of value"],
      ['{"key":"YQ==","revision":-1e999}', 'json: cannot unmarshal number -1e999 into Go value of type int64'],
    ] as const) {
      const r = await raw(b.url, '/v3/kv/range', body);
      assert.equal(r.status, 400, body);
      assert.deepEqual(JSON.parse(r.body), { error: msg, message: msg, code: 3 }, body);
    }
    // Deeply nested JSON is refused as a type error, not a stack overflow.
    const deep = `{"compare":${'['.repeat(5000)}${']'.repeat(5000)}}`;
    const r = await raw(b.url, '/v3/kv/txn', deep);
    assert.equal(r.status, 400);
    assert.equal(JSON.parse(r.body).code, 3);
  } finally {
    await b.close();
  }
});

test('a huge body is refused once the limit is passed, without buffering the rest', async () => {
  const b = await startBoltkv({ maxRequestBytes: 64 * 1024 });
  try {
    const heapBefore = process.memoryUsage().heapUsed;
    const total = 64 * 1024 * 1024;
    const answer = await rawSocket(
      b.url,
      (s) => {
        s.write(
          `POST /v3/kv/put HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${total}\r\n\r\n{"key":"YQ==","value":"`,
        );
        const chunk = Buffer.alloc(1024 * 1024, 0x41);
        let sent = 0;
        const pump = (): void => {
          while (sent < total - 64) {
            sent += chunk.length;
            if (!s.write(chunk)) {
              s.once('drain', pump);
              return;
            }
          }
        };
        pump();
      },
      10_000,
    );
    assert.match(answer, /^HTTP\/1\.1 429 /);
    assert.match(answer, /grpc: received message larger than max/);
    assert.ok(process.memoryUsage().heapUsed - heapBefore < 32 * 1024 * 1024, 'the body was not buffered');
    // The server still answers.
    assert.equal((await raw(b.url, '/v3/kv/put', JSON.stringify({ key: b64('k'), value: b64('v') }))).status, 200);
  } finally {
    await b.close();
  }
});

test('slow bodies and slow headers time out; oversized headers are refused', async () => {
  const b = await startBoltkv({ bodyTimeoutMs: 300 });
  try {
    const t0 = Date.now();
    const slowBody = await rawSocket(
      b.url,
      (s) => {
        s.write('POST /v3/kv/put HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"key":');
        // ...and nothing more
      },
      5000,
    );
    assert.match(slowBody, /^HTTP\/1\.1 408 /);
    assert.ok(Date.now() - t0 < 4000);
    // Headers that never finish: refused once the head is overdue.
    const slowHeaders = await rawSocket(
      b.url,
      (s) => {
        s.write('POST /v3/kv/put HTTP/1.1\r\nHost: x\r\n');
      },
      5000,
    );
    assert.match(slowHeaders, /^HTTP\/1\.1 408 /);
    const bigHeader = await rawSocket(
      b.url,
      (s) => {
        s.write(
          `POST /v3/kv/range HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(64 * 1024)}\r\nContent-Length: 2\r\n\r\n{}`,
        );
      },
      5000,
    );
    assert.match(bigHeader, /^HTTP\/1\.1 431 /);
    assert.equal((await raw(b.url, '/v3/kv/range', '{"key":"YQ=="}')).status, 200);
  } finally {
    await b.close();
  }
});

test('a watch client that never reads costs bounded memory and does not hold up writes', {
  timeout: 60_000,
}, async () => {
  const kv = await openStore({ inMemory: true, leaseCheckIntervalMs: 0, watch: { maxBufferedEvents: 256 } });
  const server = await serve({
    kv,
    listen: 'http://127.0.0.1:0',
    logLevel: 'error',
    watchBufferBytes: 256 * 1024,
    closeKv: true,
  });
  const url = server.urls[0] as string;
  const u = new URL(url);
  // Ten clients that watch everything and then never read a byte.
  const stuck: Socket[] = [];
  for (let i = 0; i < 10; i++) {
    const s = connect(Number(u.port), u.hostname);
    await new Promise((r) => s.once('connect', r));
    const body = JSON.stringify({ create_request: { key: b64('\0'), range_end: b64('\0'), prev_kv: true } });
    s.write(`POST /v3/watch HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    s.pause();
    stuck.push(s);
  }
  try {
    await new Promise((r) => setTimeout(r, 200));
    const heapBefore = process.memoryUsage().heapUsed;
    const value = b64('v'.repeat(8 * 1024));
    const t0 = Date.now();
    for (let batch = 0; batch < 40; batch++) {
      const puts = [];
      for (let i = 0; i < 50; i++) puts.push(raw(url, '/v3/kv/put', `{"key":"${b64(`k${i}`)}","value":"${value}"}`));
      for (const r of await Promise.all(puts)) assert.equal(r.status, 200);
    }
    const elapsed = Date.now() - t0;
    // 2,000 writes of 8 KiB, each sent to 10 watchers with its previous value: ~320 MiB of watch
    // output had the clients read it. Unread, it must not pile up in the server.
    if (typeof global.gc === 'function') global.gc();
    const grown = process.memoryUsage().heapUsed - heapBefore;
    assert.ok(grown < 96 * 1024 * 1024, `heap grew by ${Math.round(grown / 1048576)} MiB`);
    assert.ok(elapsed < 30_000, `writes took ${elapsed} ms`);
    assert.equal(server.stats().watchSessions, 10);
  } finally {
    for (const s of stuck) s.destroy();
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(server.stats().watchSessions, 0, 'vanished clients release their watch sessions');
    await server.close();
  }
});

test('hundreds of idle watch connections (HTTP and WebSocket): every one gets its event, writes unaffected', {
  timeout: 60_000,
}, async () => {
  const b = await startBoltkv();
  const N = 200;
  const sessions: WsSession[] = [];
  const streams: Promise<{ lines: string[] }>[] = [];
  try {
    for (let i = 0; i < N; i++) {
      const ws = await WsSession.open(b.url);
      ws.send({ create_request: { key: b64('hot') } });
      sessions.push(ws);
      streams.push(
        stream(b.url, '/v3/watch', JSON.stringify({ create_request: { key: b64('hot') } }), {
          forMs: 15_000,
          until: (l) => l.length >= 2,
        }),
      );
    }
    await Promise.all(sessions.map((s) => s.waitFor(1)));
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(b.server.stats().watchSessions, 2 * N);
    const t0 = Date.now();
    const put = await raw(b.url, '/v3/kv/put', JSON.stringify({ key: b64('hot'), value: b64('1') }));
    assert.equal(put.status, 200);
    assert.ok(Date.now() - t0 < 5000);
    for (const ws of sessions) {
      const msgs = await ws.waitFor(2);
      const ev = JSON.parse(msgs[1] as string) as { result: { events: { kv: { key: string } }[] } };
      assert.equal(ev.result.events[0]?.kv.key, b64('hot'));
    }
    for (const s of await Promise.all(streams)) {
      assert.equal(s.lines.length, 2);
      assert.match(s.lines[1] as string, /"events":\[\{"kv":\{"key":"aG90"/);
    }
  } finally {
    for (const s of sessions) s.close();
    await b.close();
  }
});

test('closing the server: in-flight writes finish, later requests are refused, nothing hangs', async () => {
  const b = await startBoltkv();
  const ws = await WsSession.open(b.url);
  ws.send({ create_request: { key: b64('x') } });
  await ws.waitFor(1);
  const puts = Array.from({ length: 50 }, (_, i) =>
    raw(b.url, '/v3/kv/put', JSON.stringify({ key: b64(`x${i}`), value: b64('1') })).catch((e: Error) => e),
  );
  await new Promise((r) => setTimeout(r, 5));
  await b.close();
  const results = await Promise.all(puts);
  for (const r of results) {
    if (r instanceof Error) continue; // refused at the socket: never acknowledged
    assert.ok(r.status === 200 || r.status === 503, `${r.status} ${r.body}`);
    if (r.status === 503)
      assert.deepEqual(JSON.parse(r.body), {
        error: 'etcdserver: server stopped',
        message: 'etcdserver: server stopped',
        code: 14,
      });
  }
  await ws.waitFor(99, 1000);
  assert.equal(ws.closed, true, 'watch sockets are closed on stop');
  assert.match(b.logs.join(''), /"msg":"stopped serving client traffic"/);
});

test('serve() options are checked: typed errors', async () => {
  const kv = await openStore({ inMemory: true });
  try {
    await assert.rejects(serve({ kv, listen: 'https://127.0.0.1:0' }), { code: 'ERR_INVALID_OPTION' });
    await assert.rejects(serve({ kv, listen: 'not a url' }), { code: 'ERR_INVALID_OPTION' });
    await assert.rejects(serve({ kv, maxRequestBytes: -1 }), { code: 'ERR_INVALID_OPTION' });
    await assert.rejects(serve({ kv, logLevel: 'loud' as never }), { code: 'ERR_INVALID_OPTION' });
    await assert.rejects(serve(undefined as never), { code: 'ERR_INVALID_OPTION' });
    // Loopback by default, and a port in use is a typed error.
    const s = await serve({ kv, listen: 'http://localhost:0', logLevel: 'error' });
    assert.match(s.urls[0] as string, /^http:\/\/localhost:\d+$/);
    await assert.rejects(serve({ kv, listen: s.urls[0], logLevel: 'error' }), { code: 'ERR_INVALID_OPTION' });
    await s.close();
  } finally {
    await kv.close();
  }
});
