/**
 * connect() overhead over raw HTTP, against a real etcd 3.4 started for the run (issue 11).
 *
 * The same operations go to the same etcd two ways: a bare node:http POST of a pre-encoded JSON
 * body on a keep-alive agent with JSON.parse of the answer (the least any client must do), and
 * connect() (request validation, the gateway codec both ways, complete response objects, deadline
 * and failover bookkeeping). Reported as ops/s and the ratio raw/connect (1.00 = no overhead),
 * one call in flight and 64 in flight. Writes bench/results/connect.json.
 *
 * Run: node --import tsx --conditions=boltkv-source bench/connect.ts   (BENCH_QUICK=1: short run)
 */
import { Agent, request } from 'node:http';
import { Bench } from 'tinybench';
import { connect } from '../src/client/index.ts';
import { startEtcd } from '../test/support/etcd.ts';
import { printTable, writeResults } from './lib/report.ts';

const quick = process.env.BENCH_QUICK === '1';
const TIME_MS = quick ? 300 : 2000;
const CONCURRENCY = 64;

const etcd = await startEtcd({ extraArgs: ['--quota-backend-bytes', String(4 * 2 ** 30)] });
const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });

function raw(path: string, body: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${etcd.url}${path}`,
      { method: 'POST', agent, headers: { 'content-type': 'application/json' } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          try {
            resolve(JSON.parse(Buffer.concat(chunks).toString()));
          } catch (e) {
            reject(e);
          }
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const kv = connect({ endpoints: [etcd.url] });
const b64 = (s: string): string => Buffer.from(s).toString('base64');
const value = 'x'.repeat(100);
// 1,000 keys under r/ for the range of many keys.
for (let i = 0; i < 1000; i += 50) {
  await Promise.all(
    Array.from({ length: 50 }, (_, j) => kv.put({ key: `r/${String(i + j).padStart(4, '0')}`, value })),
  );
}
await kv.put({ key: 'one', value });

console.error('seeded');
let seq = 0;
const ops: Record<string, { raw: () => Promise<unknown>; client: () => Promise<unknown> }> = {
  put: {
    raw: () => raw('/v3/kv/put', `{"key":"${b64(`p/${seq++ % 1000}`)}","value":"${b64(value)}"}`),
    client: () => kv.put({ key: `p/${seq++ % 1000}`, value }),
  },
  'range 1 key': {
    raw: () => raw('/v3/kv/range', `{"key":"${b64('one')}"}`),
    client: () => kv.range({ key: 'one' }),
  },
  'range 1,000 keys': {
    raw: () => raw('/v3/kv/range', `{"key":"${b64('r/')}","range_end":"${b64('r0')}"}`),
    client: () => kv.range({ key: 'r/', rangeEnd: 'r0' }),
  },
};

interface Result {
  op: string;
  inFlight: number;
  rawOpsPerSec: number;
  connectOpsPerSec: number;
  /** raw ops/s ÷ connect() ops/s: 1.00 means no overhead. */
  ratio: number;
}
const rows: Result[] = [];

async function measure(fn: () => Promise<unknown>, inFlight: number): Promise<number> {
  const bench = new Bench({ time: TIME_MS, iterations: 10, warmupTime: quick ? 50 : 300, warmupIterations: 2 });
  bench.add('x', inFlight === 1 ? fn : () => Promise.all(Array.from({ length: inFlight }, fn)));
  await bench.run();
  const t = bench.tasks[0]!.result;
  const hz = t !== undefined && 'throughput' in t ? t.throughput.mean : 0;
  return hz * inFlight;
}

for (const [op, f] of Object.entries(ops)) {
  for (const inFlight of [1, CONCURRENCY]) {
    // Alternate raw and client runs so drift in etcd (compactions, fsync jitter) hits both.
    console.error(`${op}, ${inFlight} in flight`);
    const r1 = await measure(f.raw, inFlight);
    const c1 = await measure(f.client, inFlight);
    const r2 = await measure(f.raw, inFlight);
    const c2 = await measure(f.client, inFlight);
    const rawHz = (r1 + r2) / 2;
    const clientHz = (c1 + c2) / 2;
    rows.push({
      op,
      inFlight,
      rawOpsPerSec: Math.round(rawHz),
      connectOpsPerSec: Math.round(clientHz),
      ratio: Math.round((rawHz / clientHz) * 100) / 100,
    });
  }
}

printTable(
  `connect() vs raw HTTP against etcd ${(await kv.status()).version} (ops/s; ratio = raw / connect)`,
  rows.map((r) => ({ ...r })),
);
const path = writeResults('connect', { etcd: (await kv.status()).version, timeMs: TIME_MS, rows });
console.log(`\nwrote ${path}`);
await kv.close();
agent.destroy();
await etcd.stop();
