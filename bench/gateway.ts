/**
 * Gateway benchmark: the same raw HTTP/JSON and WebSocket requests against `boltkv serve` (a child
 * process running runServe on a temp data dir, fsync on) and a real etcd 3.4, in the same run.
 *
 *   node --import tsx --conditions=boltkv-source bench/gateway.ts            # full
 *   node --import tsx --conditions=boltkv-source bench/gateway.ts --quick    # seconds
 *
 * Measured, for each server:
 * - put, 1 in flight: puts one after another, each answered once durable;
 * - put, 1000 in flight: a closed loop keeping 1,000 puts outstanding (keep-alive connections);
 * - range of 1 key, and of 1,000 keys (a prefix holding 1,000 keys), one in flight;
 * - watch fan-out: 1,000 WebSocket watchers on one key; per put, the time until every watcher has
 *   its event (mean and p99 over the puts), and events delivered per second.
 * Ratios are boltkv / etcd in throughput (above 1: boltkv serves more) and etcd / boltkv in latency.
 * Output: a table on stdout and bench/results/gateway.json.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { etcdAvailable, freePort, startEtcd } from '../test/support/etcd.ts';
import { printTable, writeResults, type Row } from './lib/report.ts';

const quick = process.argv.includes('--quick');
const SINGLE_PUTS = quick ? 200 : 1000;
const WINDOW_PUTS = quick ? 5000 : 20000;
const WINDOW = 1000;
const RANGE_MS = quick ? 1000 : 3000;
const WATCHERS = 1000;
const FAN_PUTS = quick ? 10 : 30;

const b64 = (s: string): string => Buffer.from(s).toString('base64');

function post(agent: Agent, base: string, path: string, body: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const u = new URL(path, base);
    const req = request(
      {
        host: u.hostname,
        port: u.port,
        path: u.pathname,
        method: 'POST',
        agent,
        headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          if (res.statusCode !== 200) reject(new Error(`${res.statusCode} ${text}`));
          else resolve(text);
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

interface Target {
  name: string;
  url: string;
  stop(): Promise<void>;
}

async function startBoltkvServe(): Promise<Target> {
  const dir = mkdtempSync(join(tmpdir(), 'boltkv-gw-bench-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child: ChildProcess = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      '--conditions=boltkv-source',
      join(import.meta.dirname, '..', 'test', 'server', 'serve-child.ts'),
      '--data-dir',
      dir,
      '--listen-client-urls',
      url,
      '--log-level',
      'error',
    ],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  const agent = new Agent({ keepAlive: true });
  for (let i = 0; ; i++) {
    try {
      await post(agent, url, '/v3/kv/range', '{"key":"AA=="}');
      break;
    } catch (e) {
      if (i > 200) throw e;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  agent.destroy();
  return {
    name: 'boltkv serve',
    url,
    async stop() {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? NaN;
}

interface Measures {
  put1OpsPerSec: number;
  put1P50Ms: number;
  put1000OpsPerSec: number;
  range1OpsPerSec: number;
  range1000OpsPerSec: number;
  fanoutMeanMs: number;
  fanoutP99Ms: number;
  fanoutEventsPerSec: number;
}

async function measure(t: Target): Promise<Measures> {
  const agent = new Agent({ keepAlive: true, maxSockets: WINDOW });
  const put = (k: string): Promise<string> =>
    post(agent, t.url, '/v3/kv/put', `{"key":"${b64(k)}","value":"${b64('v'.repeat(64))}"}`);

  const lat: number[] = [];
  let t0 = performance.now();
  for (let i = 0; i < SINGLE_PUTS; i++) {
    const s = performance.now();
    await put(`single/${i}`);
    lat.push(performance.now() - s);
  }
  const put1OpsPerSec = SINGLE_PUTS / ((performance.now() - t0) / 1000);
  lat.sort((a, b) => a - b);

  let next = 0;
  t0 = performance.now();
  await Promise.all(
    Array.from({ length: WINDOW }, async () => {
      while (next < WINDOW_PUTS) await put(`window/${next++}`);
    }),
  );
  const put1000OpsPerSec = WINDOW_PUTS / ((performance.now() - t0) / 1000);

  // 1,000 keys under r/ for the ranges (txns of 100 puts).
  for (let i = 0; i < 10; i++) {
    const ops = Array.from({ length: 100 }, (_, j) => ({
      request_put: { key: b64(`r/${String(i * 100 + j).padStart(4, '0')}`), value: b64('v'.repeat(64)) },
    }));
    await post(agent, t.url, '/v3/kv/txn', JSON.stringify({ success: ops }));
  }
  const rangeRate = async (body: string): Promise<number> => {
    let n = 0;
    const start = performance.now();
    while (performance.now() - start < RANGE_MS) {
      await post(agent, t.url, '/v3/kv/range', body);
      n++;
    }
    return n / ((performance.now() - start) / 1000);
  };
  const range1OpsPerSec = await rangeRate(`{"key":"${b64('r/0500')}"}`);
  const range1000OpsPerSec = await rangeRate(`{"key":"${b64('r/')}","range_end":"${b64('r0')}"}`);

  // Watch fan-out over WebSocket.
  const sockets: WebSocket[] = [];
  const seen = new Map<number, number>(); // revision -> watchers that got it
  const lastAt = new Map<number, number>();
  let created = 0;
  for (let i = 0; i < WATCHERS; i++) {
    const ws = new WebSocket(`${t.url.replace('http', 'ws')}/v3/watch`);
    await new Promise((r, j) => {
      ws.once('open', r);
      ws.once('error', j);
    });
    ws.on('message', (d) => {
      const r = (
        JSON.parse(d.toString()) as { result: { created?: boolean; events?: { kv: { mod_revision: string } }[] } }
      ).result;
      if (r.created === true) created++;
      for (const ev of r.events ?? []) {
        const rev = Number(ev.kv.mod_revision);
        const n = (seen.get(rev) ?? 0) + 1;
        seen.set(rev, n);
        if (n === WATCHERS) lastAt.set(rev, performance.now());
      }
    });
    ws.send(JSON.stringify({ create_request: { key: b64('fan') } }));
    sockets.push(ws);
  }
  while (created < WATCHERS) await new Promise((r) => setTimeout(r, 10));
  const fan: number[] = [];
  const fanStart = performance.now();
  for (let i = 0; i < FAN_PUTS; i++) {
    const s = performance.now();
    const resp = JSON.parse(
      await post(agent, t.url, '/v3/kv/put', `{"key":"${b64('fan')}","value":"${b64(String(i))}"}`),
    ) as { header: { revision: string } };
    const rev = Number(resp.header.revision);
    while (!lastAt.has(rev)) await new Promise((r) => setTimeout(r, 1));
    fan.push((lastAt.get(rev) as number) - s);
  }
  const fanoutEventsPerSec = (FAN_PUTS * WATCHERS) / ((performance.now() - fanStart) / 1000);
  for (const ws of sockets) ws.terminate();
  agent.destroy();
  fan.sort((a, b) => a - b);
  return {
    put1OpsPerSec,
    put1P50Ms: percentile(lat, 0.5),
    put1000OpsPerSec,
    range1OpsPerSec,
    range1000OpsPerSec,
    fanoutMeanMs: fan.reduce((a, b) => a + b, 0) / fan.length,
    fanoutP99Ms: percentile(fan, 0.99),
    fanoutEventsPerSec,
  };
}

const targets: Target[] = [await startBoltkvServe()];
if (etcdAvailable()) {
  const etcd = await startEtcd({ keepAlive: true });
  targets.push({ name: 'etcd 3.4', url: etcd.url, stop: () => etcd.stop() });
} else {
  console.warn('*** etcd not installed: boltkv serve only, no ratios ***');
}

const results: Record<string, Measures> = {};
try {
  for (const t of targets) {
    console.error(`measuring ${t.name} ...`);
    results[t.name] = await measure(t);
  }
} finally {
  for (const t of targets) await t.stop();
}

const b = results['boltkv serve'] as Measures;
const e = results['etcd 3.4'];
const rows: Row[] = [
  ['put, 1 in flight (ops/s)', 'put1OpsPerSec', true],
  ['put, 1 in flight p50 (ms)', 'put1P50Ms', false],
  ['put, 1000 in flight (ops/s)', 'put1000OpsPerSec', true],
  ['range, 1 key (ops/s)', 'range1OpsPerSec', true],
  ['range, 1,000 keys (ops/s)', 'range1000OpsPerSec', true],
  ['watch fan-out to 1,000 WS: mean (ms)', 'fanoutMeanMs', false],
  ['watch fan-out to 1,000 WS: p99 (ms)', 'fanoutP99Ms', false],
  ['watch fan-out: events/s', 'fanoutEventsPerSec', true],
].map(([label, k, higherBetter]) => {
  const bv = b[k as keyof Measures];
  const ev = e?.[k as keyof Measures];
  return {
    workload: label as string,
    'boltkv serve': bv,
    'etcd 3.4': ev ?? null,
    'boltkv vs etcd': ev === undefined ? null : higherBetter ? bv / ev : ev / bv,
  };
});
printTable(
  `Gateway: boltkv serve vs etcd 3.4, raw HTTP/JSON and WebSocket on loopback (${quick ? 'quick' : 'full'}; ratio > 1: boltkv better)`,
  rows,
);
const path = writeResults('gateway', {
  quick,
  params: { SINGLE_PUTS, WINDOW_PUTS, WINDOW, RANGE_MS, WATCHERS, FAN_PUTS },
  results,
  rows,
});
console.log(`\nwritten: ${path}`);
