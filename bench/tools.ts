/**
 * Operating a file (issue 13): hot backup and copy-compaction throughput against a plain file copy
 * (the limit), and online defragmentation of a fragmented file while a writer commits — total time,
 * the longest commit latency the writer saw, writes completed during the run — beside a
 * stop-the-world defragmentation of the same file (what etcd does: its writers wait for the whole
 * copy, so its pause is the copy's duration).
 *
 * Then the same comparison between servers, against a REAL etcd 3.4: `boltkv serve` and etcd each
 * get the same keys and values through their JSON gateway, three keys in four deleted and the
 * history compacted (a fragmented file), then a writer puts through the gateway in a loop while
 * the member is defragmented (boltkv: POST /v3/maintenance/defragment; etcd: `etcdctl defrag`).
 * Both servers run as their own processes; this process is only the client.
 *
 * Run: node --import tsx --conditions=boltkv-source bench/tools.ts [--size-mb N] [--parts engine,servers]
 *      [--servers boltkv,etcd]
 *      BENCH_SIZE_MB=1024 (or --size-mb 1024) for the 1 GB figure (default 64), BENCH_QUICK=1 for a
 *      smoke run (16 MB). The servers part needs `etcd` and `etcdctl` on PATH (skipped otherwise).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { copyFileSync, createReadStream, createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { compact, open, type DB } from '../src/bolt/index.ts';
import { etcdAvailable, freePort, startEtcd } from '../test/support/etcd.ts';
import { printTable, writeResults, type Row } from './lib/report.ts';

function flag(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const quick = process.env.BENCH_QUICK === '1';
const SIZE_MB = Number(flag('size-mb') ?? process.env.BENCH_SIZE_MB ?? (quick ? 16 : 64));
if (!(SIZE_MB > 0)) throw new Error(`bad size: ${SIZE_MB} MB`);
const PARTS = new Set((flag('parts') ?? 'engine,servers').split(','));
/** Which servers the servers part measures (`--servers boltkv` skips etcd while working on boltkv). */
const SERVERS = new Set((flag('servers') ?? 'boltkv,etcd').split(','));
/** Extra node flags for the `boltkv serve` process, e.g. BENCH_SERVER_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof'. */
const SERVER_NODE_ARGS = (process.env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
const VALUE = 1000;

const dir = mkdtempSync(join(tmpdir(), 'boltkv-bench-tools-'));
const mb = (bytes: number): number => bytes / (1 << 20);

/** A file of about SIZE_MB of live data: keys in random order so pages are scattered. */
function build(path: string): DB {
  const db = open(path, { noSync: true });
  const n = Math.floor((SIZE_MB << 20) / (VALUE + 40));
  const value = Buffer.alloc(VALUE, 7);
  const perTx = 20_000;
  for (let start = 0; start < n; start += perTx) {
    db.update((tx) => {
      const b = tx.createBucketIfNotExists('data');
      for (let i = start; i < Math.min(n, start + perTx); i++) {
        const k = Buffer.alloc(8);
        k.writeUInt32BE((i * 2654435761) >>> 0, 0);
        k.writeUInt32BE(i, 4);
        b.put(k, value);
      }
    });
  }
  db.sync();
  return db;
}

async function timed<T>(fn: () => Promise<T> | T): Promise<[T, number]> {
  const t0 = performance.now();
  const r = await fn();
  return [r, performance.now() - t0];
}

async function engine(): Promise<Record<string, unknown>> {
  const src = join(dir, 'src.db');
  const db = build(src);
  const bytes = db.view((tx) => tx.size);
  const rows: Row[] = [];

  // The limit: copying the file.
  const [, copyMs] = await timed(() => copyFileSync(src, join(dir, 'copy.db')));
  const [, streamMs] = await timed(() =>
    pipeline(createReadStream(src, { highWaterMark: 1 << 20 }), createWriteStream(join(dir, 'stream.db'))),
  );
  const [, backupMs] = await timed(() => db.backup(join(dir, 'backup.db')));
  const [, compactMs] = await timed(async () => {
    const dst = open(join(dir, 'compact.db'), { noSync: true });
    await compact(db, dst, { txMaxSize: 4 << 20 });
    dst.sync();
    dst.close();
  });
  for (const [op, ms] of [
    ['fs.copyFile', copyMs],
    ['stream copy (1 MiB chunks)', streamMs],
    ['db.backup (hot, fsynced)', backupMs],
    ['compact (bbolt-style copy)', compactMs],
  ] as const) {
    rows.push({
      op,
      MB: Math.round(mb(bytes)),
      ms: Math.round(ms),
      'MB/s': mb(bytes) / (ms / 1000),
      'vs fs.copyFile': copyMs / ms,
    });
  }
  printTable(`Backup and compaction of a ${Math.round(mb(bytes))} MB file (higher MB/s is better)`, rows);
  for (const f of ['copy.db', 'stream.db', 'backup.db', 'compact.db']) rmSync(join(dir, f), { force: true });

  // Fragment: delete three records in four, scattered over the key space.
  db.update((tx) => {
    const b = tx.bucket('data')!;
    const c = b.cursor();
    let i = 0;
    for (let e = c.first(); e; i++) {
      if (i % 4 !== 0) c.delete();
      e = c.next();
    }
  });
  const fragmented = db.view((tx) => tx.size);

  // Stop-the-world, as etcd does it: writers wait for a whole compaction into a new file.
  let stwSize = 0;
  const [, stwMs] = await timed(async () => {
    const dst = open(join(dir, 'stw.db'), { noSync: true });
    await compact(db, dst, { txMaxSize: 4 << 20 });
    dst.sync();
    stwSize = dst.view((tx) => tx.size);
    dst.close();
  });
  rmSync(join(dir, 'stw.db'));

  // Online: a writer commits small transactions all along.
  let stop = false;
  let writes = 0;
  let maxLatency = 0;
  const latencies: number[] = [];
  const writer = (async () => {
    let i = 0;
    while (!stop) {
      const t0 = performance.now();
      await db.updateAsync((tx) => {
        tx.bucket('data')!.put(`w${i++}`, 'x'.repeat(100));
      });
      const l = performance.now() - t0;
      latencies.push(l);
      maxLatency = Math.max(maxLatency, l);
      writes++;
      await new Promise<void>((r) => setImmediate(r));
    }
  })();
  await new Promise((r) => setTimeout(r, 200));
  const before = { writes, max: maxLatency };
  writes = 0;
  maxLatency = 0;
  latencies.length = 0;
  const [r, totalMs] = await timed(() => db.defragment());
  const during = { writes, max: maxLatency, p99: percentile(latencies, 0.99) };
  stop = true;
  await writer;
  db.close();
  const defragRows: Row[] = [
    {
      method: 'boltkv db.defragment() (online)',
      'before MB': Math.round(mb(fragmented)),
      'after MB': mb(r.after),
      'total ms': Math.round(totalMs),
      'longest writer wait ms': during.max,
      'p99 commit ms': during.p99,
      'swap pause ms': r.pauseMs,
      'writes during': during.writes,
      'catch-up rounds': r.rounds,
    },
    {
      method: 'stop-the-world compact (etcd-style)',
      'before MB': Math.round(mb(fragmented)),
      'after MB': mb(stwSize),
      'total ms': Math.round(stwMs),
      'longest writer wait ms': stwMs,
      'p99 commit ms': null,
      'swap pause ms': stwMs,
      'writes during': 0,
      'catch-up rounds': null,
    },
  ];
  printTable(
    `Defragmentation of a fragmented file with a writer committing (baseline commit max ${before.max.toFixed(2)} ms)`,
    defragRows,
  );
  return { copy: rows, defrag: defragRows, writerBaselineMaxMs: before.max };
}

function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
}

// ---- servers: boltkv serve and a real etcd 3.4, through their JSON gateways -------------------

const agent = new Agent({ keepAlive: true, maxSockets: 32 });
const b64 = (s: string | Buffer): string => Buffer.from(s).toString('base64');

/** POST JSON to a gateway; the parsed answer, or an error with etcd's message. */
function post(url: string, path: string, body: unknown): Promise<Record<string, unknown>> {
  const payload = Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = request(
      `${url}${path}`,
      { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': payload.length } },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (c: Buffer) => parts.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(parts).toString();
          if (res.statusCode !== 200)
            return reject(new Error(`${path}: HTTP ${res.statusCode}: ${text.slice(0, 200)}`));
          resolve(JSON.parse(text) as Record<string, unknown>);
        });
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

const keyOf = (i: number): string => `k/${String(i).padStart(9, '0')}`;
const TXN_OPS = 128; // etcd's default --max-txn-ops, boltkv's fixed limit

/** Runs `count` jobs with `width` in flight. */
async function parallel(count: number, width: number, job: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < count) await job(next++);
    }),
  );
}

async function dbSize(url: string): Promise<number> {
  return Number((await post(url, '/v3/maintenance/status', {})).dbSize);
}

/** The same data on either server: n keys of VALUE bytes, three in four deleted, history compacted. */
async function loadAndFragment(
  url: string,
  n: number,
): Promise<{ loadedMB: number; fragmentedMB: number; loadMs: number }> {
  const value = b64(Buffer.alloc(VALUE, 'v'));
  const t0 = performance.now();
  await parallel(Math.ceil(n / TXN_OPS), 8, async (b) => {
    const ops = [];
    for (let i = b * TXN_OPS; i < Math.min(n, (b + 1) * TXN_OPS); i++)
      ops.push({ request_put: { key: b64(keyOf(i)), value } });
    await post(url, '/v3/kv/txn', { success: ops });
  });
  const loadMs = performance.now() - t0;
  const loadedMB = mb(await dbSize(url));
  // Delete keys 4g+1..4g+3 of every group of four: one range op each, scattered over the file.
  const groups = Math.ceil(n / 4);
  let rev = 0;
  await parallel(Math.ceil(groups / TXN_OPS), 8, async (b) => {
    const ops = [];
    for (let g = b * TXN_OPS; g < Math.min(groups, (b + 1) * TXN_OPS); g++) {
      ops.push({ request_delete_range: { key: b64(keyOf(4 * g + 1)), range_end: b64(keyOf(4 * g + 4)) } });
    }
    const r = await post(url, '/v3/kv/txn', { success: ops });
    rev = Math.max(rev, Number((r.header as { revision: string }).revision));
  });
  await post(url, '/v3/kv/compaction', { revision: String(rev), physical: true });
  return { loadedMB, fragmentedMB: mb(await dbSize(url)), loadMs };
}

interface WriterRun {
  writes: number;
  maxMs: number;
  p99Ms: number;
}

/** Puts through the gateway one after another while `during` runs; what the writer saw. */
async function writeDuring(
  url: string,
  during: () => Promise<void>,
): Promise<{ ms: number; before: WriterRun; while: WriterRun }> {
  const value = b64('x'.repeat(100));
  let stop = false;
  let lat: number[] = [];
  const writer = (async () => {
    for (let i = 0; !stop; i++) {
      const t0 = performance.now();
      await post(url, '/v3/kv/put', { key: b64(`w/${i % 1000}`), value });
      lat.push(performance.now() - t0);
    }
  })();
  await new Promise((r) => setTimeout(r, 1000));
  const run = (xs: number[]): WriterRun => ({
    writes: xs.length,
    maxMs: Math.max(0, ...xs),
    p99Ms: percentile(xs, 0.99),
  });
  const before = run(lat);
  lat = [];
  const t0 = performance.now();
  await during();
  const ms = performance.now() - t0;
  const whileRun = run(lat);
  stop = true;
  await writer;
  return { ms, before, while: whileRun };
}

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

/** `boltkv serve` in a process of its own, as etcd runs in its own. */
async function startBoltkv(dataDir: string): Promise<{ url: string; stop: () => Promise<void> }> {
  const url = `http://127.0.0.1:${await freePort()}`;
  const child: ChildProcess = spawn(
    process.execPath,
    [
      ...SERVER_NODE_ARGS,
      '--import',
      'tsx',
      '--conditions=boltkv-source',
      join(ROOT, 'src/cli/main.ts'),
      'serve',
      '--data-dir',
      dataDir,
      '--listen-client-urls',
      url,
      '--advertise-client-urls',
      url,
      '--quota-backend-bytes',
      String(8 * 2 ** 30),
      '--log-level',
      'error',
    ],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  for (let i = 0; ; i++) {
    try {
      await post(url, '/v3/maintenance/status', {});
      break;
    } catch (e) {
      if (i > 300 || child.exitCode !== null) throw new Error(`boltkv serve did not come up: ${String(e)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    url,
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

function etcdctlDefrag(url: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const c = spawn('etcdctl', ['--endpoints', url, '--command-timeout', '60m', 'defrag'], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, ETCDCTL_API: '3' },
    });
    let err = '';
    c.stderr?.on('data', (d: Buffer) => void (err += d.toString()));
    c.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`etcdctl defrag exited ${code}: ${err}`))));
  });
}

async function servers(): Promise<Record<string, unknown> | undefined> {
  if (!etcdAvailable()) {
    console.log('\n(servers part skipped: etcd is not installed)');
    return undefined;
  }
  const n = Math.floor((SIZE_MB * 2 ** 20) / (VALUE + 60));
  const rows: Row[] = [];
  const measure = async (name: string, url: string, defrag: () => Promise<void>): Promise<void> => {
    const frag = await loadAndFragment(url, n);
    const r = await writeDuring(url, defrag);
    rows.push({
      server: name,
      keys: n,
      'loaded MB': frag.loadedMB,
      'fragmented MB': frag.fragmentedMB,
      'after MB': mb(await dbSize(url)),
      'defrag ms': Math.round(r.ms),
      'longest writer pause ms': r.while.maxMs,
      'p99 put ms': r.while.p99Ms,
      'writes during': r.while.writes,
      'writes/s during': r.while.writes / (r.ms / 1000),
      'writes in 1 s before': r.before.writes,
      'load ms': Math.round(frag.loadMs),
    });
  };
  if (SERVERS.has('boltkv')) {
    const bolt = await startBoltkv(join(dir, 'boltkv-serve'));
    try {
      await measure(
        'boltkv serve (online defrag)',
        bolt.url,
        async () => void (await post(bolt.url, '/v3/maintenance/defragment', {})),
      );
    } finally {
      await bolt.stop();
    }
    rmSync(join(dir, 'boltkv-serve'), { recursive: true, force: true });
  }
  if (SERVERS.has('etcd')) {
    const etcd = await startEtcd({ extraArgs: ['--quota-backend-bytes', String(8 * 2 ** 30)], timeoutMs: 60_000 });
    try {
      await measure('etcd 3.4 (etcdctl defrag)', etcd.url, () => etcdctlDefrag(etcd.url));
    } finally {
      await etcd.stop();
    }
  }
  const [b, e] = rows;
  const ratios: Row[] =
    rows.length < 2 || b === undefined || e === undefined
      ? []
      : [
          {
            'boltkv / etcd': 'ratio',
            'defrag time': (b['defrag ms'] as number) / (e['defrag ms'] as number),
            'longest writer pause': (b['longest writer pause ms'] as number) / (e['longest writer pause ms'] as number),
            'writes during':
              (e['writes during'] as number) === 0
                ? null
                : (b['writes during'] as number) / (e['writes during'] as number),
            'file after': (b['after MB'] as number) / (e['after MB'] as number),
          },
        ];
  printTable(
    `Defragmenting a server's ${SIZE_MB} MB of data, fragmented, while a client puts through the gateway in a loop`,
    rows,
  );
  if (ratios.length > 0) printTable('boltkv serve against etcd 3.4 (below 1: boltkv is shorter / smaller)', ratios);
  return { keys: n, valueBytes: VALUE, rows, ratios };
}

try {
  const results: Record<string, unknown> = { sizeMB: SIZE_MB };
  if (PARTS.has('servers')) results.servers = await servers();
  if (PARTS.has('engine')) Object.assign(results, await engine());
  const path = writeResults('tools', results);
  console.log(`\nresults: ${path}`);
} finally {
  agent.destroy();
  rmSync(dir, { recursive: true, force: true });
}
