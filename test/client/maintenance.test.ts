/**
 * The client's Maintenance calls against a stand-in gateway that answers as told: the snapshot
 * stream is checked as it arrives (counts, digest, end, stalls, etcd errors in the stream), HashKV's
 * missing route on etcd 3.4 is a typed refusal, alarms decode, and a real `boltkv serve` round-trips.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect } from '../../src/client/index.ts';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

async function withServer(handler: Handler, fn: (url: string) => Promise<void>): Promise<void> {
  const srv = createServer((req, res) => {
    req.resume();
    req.on('end', () => handler(req, res));
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
  try {
    await fn(url);
  } finally {
    srv.closeAllConnections();
    await new Promise<void>((r) => srv.close(() => r()));
  }
}

const frame = (blob: Buffer, remaining: number): string =>
  `${JSON.stringify({ result: { blob: blob.toString('base64'), remaining_bytes: String(remaining) } })}\n`;

/** etcd's snapshot lines for `image`: 1 KiB blobs counting down, then the digest. */
function lines(image: Buffer, digest = createHash('sha256').update(image).digest()): string[] {
  const out: string[] = [];
  for (let at = 0; at < image.length; at += 1024) {
    const blob = image.subarray(at, at + 1024);
    out.push(frame(blob, image.length - at - blob.length));
  }
  out.push(frame(digest, 0));
  return out;
}

async function collect(it: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of it) parts.push(Buffer.from(c));
  return Buffer.concat(parts);
}

const IMAGE = Buffer.from(Array.from({ length: 5000 }, (_, i) => (i * 7) % 251));

test('snapshot: the image then its digest, checked; split lines are joined', async () => {
  await withServer(
    (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      // Cut the text at odd places, so lines arrive in pieces.
      const text = lines(IMAGE).join('');
      for (let at = 0; at < text.length; at += 777) res.write(text.slice(at, at + 777));
      res.end();
    },
    async (url) => {
      await using c = connect({ endpoints: [url] });
      const got = await collect(c.snapshot());
      assert.ok(got.subarray(0, IMAGE.length).equals(IMAGE));
      assert.ok(got.subarray(IMAGE.length).equals(createHash('sha256').update(IMAGE).digest()));
    },
  );
});

test('snapshot: a broken stream fails with a typed error, never ends as if whole', async () => {
  const good = lines(IMAGE);
  const cases: Array<[string, (res: ServerResponse) => void, RegExp]> = [
    ['wrong digest', (res) => res.end(lines(IMAGE, Buffer.alloc(32)).join('')), /does not match its SHA-256/],
    ['cut before the digest', (res) => res.end(good.slice(0, -1).join('')), /ended before the digest/],
    ['cut mid-image', (res) => res.end(good.slice(0, 2).join('')), /ended before the digest/],
    ['miscounted', (res) => res.end([good[0], good[2], ...good.slice(3)].join('')), /counts its remaining bytes wrong/],
    ['garbage', (res) => res.end('not json\n'), /not JSON/],
    [
      'an etcd error in the stream',
      (res) =>
        res.end(
          `${good[0]}{"error":{"grpc_code":14,"http_code":503,"message":"etcdserver: server stopped","http_status":"Service Unavailable"}}\n`,
        ),
      /server stopped/,
    ],
    ['a line over the limit', (res) => res.end(`{"result":{"blob":"${'A'.repeat(300_000)}`), /longer than/],
  ];
  for (const [name, send, msg] of cases) {
    await withServer(
      (_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        send(res);
      },
      async (url) => {
        await using c = connect({ endpoints: [url], maxResponseBytes: 200_000 });
        await assert.rejects(collect(c.snapshot()), (e: Error & { code?: string }) => {
          assert.match(e.message, msg, name);
          assert.match(e.code ?? '', /^ERR_/, `${name}: ${e.code}`);
          return true;
        });
      },
    );
  }
});

test("snapshot: a stalled stream times out, an abort stops it, an HTTP error is etcd's", async () => {
  await withServer(
    (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write(lines(IMAGE)[0]!); // then nothing
    },
    async (url) => {
      await using c = connect({ endpoints: [url], timeoutMs: 300 });
      await assert.rejects(collect(c.snapshot()), { code: 'ERR_TIMEOUT' });
      const ctl = new AbortController();
      const s = c.snapshot({ signal: ctl.signal });
      setTimeout(() => ctl.abort(), 50);
      await assert.rejects(collect(s), { code: 'ERR_ABORTED' });
    },
  );
  await withServer(
    (_req, res) => {
      res.writeHead(503, { 'content-type': 'application/json' });
      res.end('{"error":"etcdserver: server stopped","code":14,"message":"etcdserver: server stopped"}');
    },
    async (url) => {
      await using c = connect({ endpoints: [url] });
      await assert.rejects(collect(c.snapshot()), /server stopped/);
    },
  );
  // Nobody listening: the next endpoint is tried, then ERR_UNAVAILABLE.
  await withServer(
    (_req, res) => {
      res.writeHead(200);
      res.end(lines(IMAGE).join(''));
    },
    async (url) => {
      const dead = url.replace(/:\d+$/, ':1');
      await using c = connect({ endpoints: [dead, url] });
      assert.equal((await collect(c.snapshot())).length, IMAGE.length + 32);
      await using d = connect({ endpoints: [dead] });
      await assert.rejects(collect(d.snapshot()), { code: 'ERR_UNAVAILABLE' });
    },
  );
});

test("hashKV, alarms, defragment decode etcd's answers; etcd 3.4's missing HashKV route is ERR_UNSUPPORTED", async () => {
  const seen: string[] = [];
  await withServer(
    (req, res) => {
      seen.push(req.url ?? '');
      if (req.url === '/v3/maintenance/alarm') {
        res.writeHead(200);
        res.end('{"alarms":[{"memberID":"18446744073709551615","alarm":"NOSPACE"}]}');
      } else if (req.url === '/v3/maintenance/defragment') {
        res.writeHead(200);
        res.end('{}');
      } else {
        res.writeHead(404, { 'content-type': 'text/plain' });
        res.end('Not Found');
      }
    },
    async (url) => {
      await using c = connect({ endpoints: [url] });
      await assert.rejects(c.hashKV(), { code: 'ERR_UNSUPPORTED' });
      assert.deepEqual(await c.alarmList(), { alarms: [{ memberId: 2n ** 64n - 1n, alarm: 'NOSPACE' }] });
      assert.deepEqual(await c.defragment(), {});
      // disarm: each raised alarm deactivated.
      seen.length = 0;
      assert.equal((await c.alarmDisarm()).alarms.length, 1);
      assert.deepEqual(seen, ['/v3/maintenance/alarm', '/v3/maintenance/alarm']);
      await c.close();
      await assert.rejects(c.hashKV(), { code: 'ERR_CLOSED' });
      assert.throws(() => c.snapshot(), { code: 'ERR_CLOSED' });
    },
  );
  await withServer(
    (_req, res) => {
      res.writeHead(200);
      res.end('{"header":{"revision":"7"},"hash":123,"compact_revision":"-1"}');
    },
    async (url) => {
      await using c = connect({ endpoints: [url] });
      assert.deepEqual(await c.hashKV(7), { header: { revision: 7 }, hash: 123, compactRevision: -1 });
    },
  );
});
