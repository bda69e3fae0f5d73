/**
 * Watch over the gateway against a real etcd 3.4 and boltkv serve: random watch sessions over a
 * one-body chunked HTTP stream and over WebSocket — creates on keys, ranges and empty ranges, from
 * past, compacted and future revisions, with prev_kv, filters, client-chosen (and duplicate) ids;
 * progress requests; cancels of live and unknown ids — then live writes. The answers must be the
 * same result objects (header ids and term aside): control answers (created, progress, cancel) in
 * order, and each watch's own responses in order. Skips loudly without etcd unless
 * BOLTKV_REQUIRE_INTEROP=1.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { requireEtcd, startEtcd } from '../support/etcd.ts';
import { b64, normalize, raw, startBoltkv, stream, WsSession } from './support.ts';
import { replayableRuns } from '../support/fc-replay.ts';

type Write = { put: string; value: string } | { del: string; end?: string };
interface Create {
  key: string;
  end?: string;
  start: 'none' | 'past' | 'compacted' | 'future';
  prevKv: boolean;
  filters: string[];
  watchId: number;
}
interface Scenario {
  prelude: Write[];
  compact: boolean;
  creates: Create[];
  progress: boolean;
  cancelUnknown: boolean;
  cancelFirst: boolean;
  live: Write[];
}

const key = fc.constantFrom('a', 'b', 'c');
const writeArb: fc.Arbitrary<Write> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ put: key, value: fc.constantFrom('1', '2', 'xyz') }) },
  { weight: 1, arbitrary: fc.record({ del: key, end: fc.constantFrom(undefined, 'd') }) },
);
const createArb: fc.Arbitrary<Create> = fc.record({
  key: fc.constantFrom('a', 'b', 'c'),
  end: fc.constantFrom(undefined, undefined, '\0', 'c', 'a'),
  start: fc.constantFrom('none', 'past', 'compacted', 'future'),
  prevKv: fc.boolean(),
  filters: fc.subarray(['NOPUT', 'NODELETE']),
  watchId: fc.constantFrom(0, 0, 0, 5, 7),
});
const scenarioArb: fc.Arbitrary<Scenario> = fc.record({
  prelude: fc.array(writeArb, { minLength: 3, maxLength: 10 }),
  compact: fc.boolean(),
  creates: fc.array(createArb, { minLength: 1, maxLength: 4 }),
  progress: fc.boolean(),
  cancelUnknown: fc.boolean(),
  cancelFirst: fc.boolean(),
  live: fc.array(writeArb, { minLength: 1, maxLength: 5 }),
});

async function write(base: string, w: Write): Promise<void> {
  const body =
    'put' in w
      ? JSON.stringify({ key: b64(w.put), value: b64(w.value), prev_kv: true })
      : JSON.stringify({ key: b64(w.del), ...(w.end !== undefined ? { range_end: b64(w.end) } : {}) });
  const r = await raw(base, 'put' in w ? '/v3/kv/put' : '/v3/kv/deleterange', body);
  assert.equal(r.status, 200, r.body);
}

async function revision(base: string): Promise<number> {
  const r = await raw(base, '/v3/kv/range', '{"key":"AA=="}');
  return Number((JSON.parse(r.body) as { header: { revision: string } }).header.revision);
}

function createBody(c: Create, cur: number, compactRev: number): string {
  const startRevision =
    c.start === 'past'
      ? Math.max(compactRev, cur - 2)
      : c.start === 'compacted' && compactRev > 1
        ? 1
        : c.start === 'future'
          ? cur + 2
          : 0;
  return JSON.stringify({
    create_request: {
      key: b64(c.key),
      ...(c.end !== undefined ? { range_end: b64(c.end) } : {}),
      ...(startRevision > 0 ? { start_revision: String(startRevision) } : {}),
      ...(c.prevKv ? { prev_kv: true } : {}),
      ...(c.filters.length > 0 ? { filters: c.filters } : {}),
      ...(c.watchId !== 0 ? { watch_id: c.watchId } : {}),
    },
  });
}

interface Grouped {
  control: unknown[];
  perWatch: Record<string, unknown[]>;
}

/** Control answers in order; each watch's event, progress and compaction answers in order. */
function group(messages: string[]): Grouped {
  const out: Grouped = { control: [], perWatch: {} };
  for (const m of messages) {
    const n = normalize(m) as { result?: Record<string, unknown> };
    const r = n.result;
    if (r === undefined) {
      out.control.push(n);
      continue;
    }
    const id = String(r.watch_id ?? '0');
    const isControl = r.created === true || id === '-1' || (r.canceled === true && r.compact_revision === undefined);
    if (isControl) out.control.push(r);
    else (out.perWatch[id] ??= []).push(r);
  }
  return out;
}

function requestsOf(s: Scenario, cur: number, compactRev: number): string[] {
  const reqs = s.creates.map((c) => createBody(c, cur, compactRev));
  if (s.progress) reqs.push('{"progress_request":{}}');
  if (s.cancelUnknown) reqs.push('{"cancel_request":{"watch_id":"77"}}');
  return reqs;
}

async function prepare(base: string, s: Scenario): Promise<number> {
  for (const w of s.prelude) await write(base, w);
  let compactRev = 0;
  if (s.compact) {
    compactRev = (await revision(base)) - 1;
    if (compactRev > 0) {
      const r = await raw(base, '/v3/kv/compaction', JSON.stringify({ revision: String(compactRev), physical: true }));
      assert.equal(r.status, 200, r.body);
    }
  }
  return compactRev;
}

async function overHttp(base: string, s: Scenario, compactRev: number): Promise<Grouped> {
  const cur = await revision(base);
  const body = requestsOf(s, cur, compactRev).join('');
  // Timing-free: writes start once every control answer is in and the stream went quiet (so
  // catch-up is over on both servers); the stream is read until quiet again after the writes.
  const controls = requestsOf(s, cur, compactRev).length - (s.cancelUnknown ? 1 : 0);
  let seen = 0;
  let writesDone = false;
  let caughtUp!: () => void;
  const settled = new Promise<void>((r) => {
    caughtUp = r;
  });
  let quietTimer: NodeJS.Timeout | undefined;
  const onLine = (): void => {
    seen++;
    clearTimeout(quietTimer);
    if (seen >= controls) quietTimer = setTimeout(caughtUp, 500);
  };
  const session = stream(base, '/v3/watch', body, { forMs: 20_000, quietMs: 800, ready: () => writesDone, onLine });
  await Promise.race([settled, new Promise((r) => setTimeout(r, 5000))]);
  for (const w of s.live) await write(base, w);
  writesDone = true;
  const res = await session;
  assert.equal(res.status, 200);
  return group(res.lines);
}

async function overWs(base: string, s: Scenario, compactRev: number): Promise<Grouped> {
  const cur = await revision(base);
  const ws = await WsSession.open(base);
  try {
    for (const r of requestsOf(s, cur, compactRev)) ws.send(r);
    await ws.quiet(500);
    for (const w of s.live) await write(base, w);
    await ws.quiet(500);
    if (s.cancelFirst) ws.send('{"cancel_request":{"watch_id":"0"}}');
    ws.send('{"progress_request":{}}');
    return group(await ws.quiet(700));
  } finally {
    ws.close();
  }
}

const RUNS = process.env.BOLTKV_STRESS === '1' ? 60 : 5;

test('watch differential: HTTP streams and WebSocket sessions get the same results from etcd and boltkv serve', {
  timeout: 300_000,
}, async (t) => {
  if (!requireEtcd(t)) return;
  await fc.assert(
    fc.asyncProperty(scenarioArb, async (s) => {
      const etcd = await startEtcd();
      const boltkv = await startBoltkv();
      try {
        const compactA = await prepare(etcd.url, s);
        const compactB = await prepare(boltkv.url, s);
        assert.equal(compactB, compactA);
        const [httpA, httpB] = await Promise.all([overHttp(etcd.url, s, compactA), overHttp(boltkv.url, s, compactB)]);
        assert.deepEqual(httpB, httpA, 'HTTP stream');
        const [wsA, wsB] = await Promise.all([overWs(etcd.url, s, compactA), overWs(boltkv.url, s, compactB)]);
        assert.deepEqual(wsB, wsA, 'WebSocket');
      } finally {
        await boltkv.close();
        await etcd.stop();
      }
    }),
    replayableRuns(RUNS),
  );
});

test('watch differential: malformed watch bodies and messages', { timeout: 60_000 }, async (t) => {
  if (!requireEtcd(t)) return;
  const etcd = await startEtcd();
  const boltkv = await startBoltkv();
  try {
    for (const body of [
      'garbage',
      '{"create_request":{"key":1}}',
      '{"create_request":{"key":"YQ=="}}garbage',
      '{"create_request":{"key":"YQ=="}}{"cancel_request":{"watch_id":true}}',
    ]) {
      const [a, b] = await Promise.all([
        stream(etcd.url, '/v3/watch', body, { forMs: 800 }),
        stream(boltkv.url, '/v3/watch', body, { forMs: 800 }),
      ]);
      assert.deepEqual(
        { status: b.status, lines: b.lines.map(normalize), ended: b.ended },
        { status: a.status, lines: a.lines.map(normalize), ended: a.ended },
        body,
      );
    }
    // A WebSocket message with garbage drops the connection (after answering what came before).
    const [wa, wb] = await Promise.all([WsSession.open(etcd.url), WsSession.open(boltkv.url)]);
    for (const ws of [wa, wb]) ws.send('{"create_request":{"key":"YQ=="}}{"progress_request":{}}');
    await Promise.all([wa.waitFor(2), wb.waitFor(2)]);
    for (const ws of [wa, wb]) ws.send('garbage');
    await Promise.all([wa.waitFor(99, 1500), wb.waitFor(99, 1500)]);
    assert.equal(wb.closed, wa.closed);
    assert.deepEqual(group(wb.messages), group(wa.messages));
  } finally {
    await boltkv.close();
    await etcd.stop();
  }
});

test('watch differential: fragmented catch-up over HTTP, and lease keepalive over WebSocket', {
  timeout: 60_000,
}, async (t) => {
  if (!requireEtcd(t)) return;
  // etcd fragments at max-request-bytes + 512 KiB: 64 KiB + 512 KiB here.
  const max = 64 * 1024;
  const etcd = await startEtcd({ extraArgs: ['--max-request-bytes', String(max)] });
  const boltkv = await startBoltkv({ maxRequestBytes: max });
  try {
    for (const base of [etcd.url, boltkv.url]) {
      for (let i = 0; i < 24; i++) await write(base, { put: `f${i % 3}`, value: 'x'.repeat(30_000 + i * 100) });
    }
    const body = JSON.stringify({
      create_request: { key: b64('f'), range_end: b64('g'), start_revision: '1', prev_kv: true, fragment: true },
    });
    const [a, b] = await Promise.all([
      stream(etcd.url, '/v3/watch', body, { forMs: 1200 }),
      stream(boltkv.url, '/v3/watch', body, { forMs: 1200 }),
    ]);
    const fragments = a.lines.filter((l) => l.includes('"fragment":true')).length;
    assert.ok(fragments > 0, 'etcd fragmented the catch-up response');
    assert.deepEqual(b.lines.map(normalize), a.lines.map(normalize));

    for (const base of [etcd.url, boltkv.url]) {
      assert.equal((await raw(base, '/v3/lease/grant', '{"ID":5,"TTL":60}')).status, 200);
    }
    const [ka, kb] = await Promise.all([
      WsSession.open(etcd.url, '/v3/lease/keepalive'),
      WsSession.open(boltkv.url, '/v3/lease/keepalive'),
    ]);
    for (const ws of [ka, kb]) {
      ws.send('{"ID":5}');
      ws.send('{"ID":"6"}{"ID":5}');
    }
    const [ma, mb] = await Promise.all([ka.waitFor(3), kb.waitFor(3)]);
    ka.close();
    kb.close();
    assert.equal(ma.length, 3);
    assert.deepEqual(mb.map(normalize), ma.map(normalize));
  } finally {
    await boltkv.close();
    await etcd.stop();
  }
});
