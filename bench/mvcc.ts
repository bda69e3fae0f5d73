/**
 * Revision-layer benchmark: boltkv's in-process KV API over a bolt file, and the same requests
 * against a real etcd over its loopback JSON gateway, in the same run.
 *
 *   node --import tsx --conditions=boltkv-source bench/mvcc.ts                 # 1M keys (long)
 *   node --import tsx --conditions=boltkv-source bench/mvcc.ts --keys 200000   # any scale
 *   node --import tsx --conditions=boltkv-source bench/mvcc.ts --quick         # 20k keys, seconds
 *   ... --no-etcd                                                              # boltkv only
 *
 * Measured, for each system:
 * - put, single: one put at a time, each awaited until durable (fsync on both sides);
 * - put, group-committed: the N-key load with 1,000 puts in flight (boltkv commits a turn's puts
 *   together; etcd batches concurrent proposals);
 * - range of 1 key and of 1,000 keys out of N, and a 1-key range at an old revision (tinybench);
 * - reopen with N keys (2N revisions): close and open until the first read is answered;
 * - put, single p99: of the same single puts, the writer's tail with no compaction running;
 * - compaction of N revisions (every key overwritten once, compact at the newest revision,
 *   physical), with the latency and count of single puts issued back to back while it runs, and
 *   the CPU the working process used meanwhile (boltkv's process, which runs the writer too;
 *   etcd's server process, not the HTTP client here);
 * - memory: the resident set (RSS) of a process that holds only the store, after the load (N keys,
 *   N revisions) and after a restart (N keys, 2N revisions, the key index rebuilt from the file),
 *   each taken at once and again once settled while idle (nothing forced: V8 shrinks its heap when
 *   idle, Go returns freed spans; see SETTLE_MS). For etcd that is the etcd process. For boltkv it is a child
 *   process, bench/mvcc-memory.mjs, running the built package (dist/, plain `node`, no loader) as a
 *   user would: it opens a file, loads the same N keys with the same 1,000 puts in flight, and a
 *   second child opens the file again; the JS heap, Node's external memory, the engine's page cache
 *   (a budget, bolt option cacheSize, not a cost per key) and RSS by mapping are reported under it.
 *   The throughput rows run in this process, over tsx, and are not measured for memory;
 * - file: bytes of the data file in use after the load (etcd's dbSizeInUse on both sides).
 * The etcd side pays HTTP+JSON per request, which is what a user running etcd next to their
 * program pays too; that is the comparison this benchmark is for.
 *
 * Output: a table on stdout and bench/results/mvcc.json.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Bench } from 'tinybench';
import { BoltBackend, openStore, type KVStore } from '../src/api/index.ts';
import { etcdAvailable, startEtcd, type EtcdServer } from '../test/support/etcd.ts';
import { openFsyncFloor } from './lib/fsync-floor.ts';
import { printTable, writeResults, type Row } from './lib/report.ts';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const keysAt = args.indexOf('--keys');
const N = keysAt >= 0 ? Number(args[keysAt + 1]) : quick ? 20_000 : 1_000_000;
if (!Number.isSafeInteger(N) || N < 2000) throw new Error('--keys must be an integer >= 2000');
const withEtcd = !args.includes('--no-etcd');
const SINGLE = quick ? 200 : 1000;
const WINDOW = 1000;
const BENCH_MS = quick ? 300 : 1000;
/** fsyncFloor's run before and after each system's compaction phase. */
const FLOOR_MS = quick ? 300 : 1500;

const enc = new TextEncoder();
const keyOf = (i: number): string => `key/${String(i).padStart(8, '0')}`;
const VALUE = enc.encode('v'.repeat(64));
const MiB = 2 ** 20;

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/**
 * The longest a store process is left idle before its settled RSS is read. V8's memory reducer
 * shrank a 1M-key load's heap from 197 to 63 MiB 22-25 s after the last put in one run and not
 * within 30 s in another (Node 20), so the boltkv child waits until its heap has shrunk, up to
 * this; etcd is then left idle exactly as long as boltkv's child was in the same phase.
 */
const SETTLE_MS = Number(process.env.BOLTKV_BENCH_SETTLE_MS ?? 120_000);
/** How long boltkv's memory child waited per phase; etcd waits as long (2 s when boltkv did not run). */
const settledAfter: Record<'load' | 'reopen', number> = { load: 2000, reopen: 2000 };
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Memory of the process holding a store, in MiB: RSS at once and settled (after settleMs idle); the rest
 * (settled) only for boltkv, whose process we can look into.
 */
interface Memory {
  rssAtOnce: number;
  rss: number;
  /** ms idle before `rss` was read. */
  settleMs: number;
  heapTotal?: number;
  heapUsed?: number;
  external?: number;
  cache?: number;
  /** Resident MiB by mapping: code (the node binary and libraries), mallocHeap (glibc's [heap]), anonymous (V8's spaces, large buffers, thread arenas). */
  mappings?: Record<string, number>;
}

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Build dist/ (the memory child runs the package as a user gets it). */
function buildPackage(): void {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  execFileSync(process.execPath, [tsc, '-p', join(ROOT, 'tsconfig.build.json')], { stdio: 'inherit' });
}

/** One phase of bench/mvcc-memory.mjs in a fresh `node` process; its JSON report. */
function boltkvMemory(phase: 'load' | 'reopen', file: string): Memory & { ms: number } {
  const out = execFileSync(process.execPath, [join(ROOT, 'bench', 'mvcc-memory.mjs'), phase, file, String(N)], {
    cwd: ROOT,
    env: { ...process.env, BOLTKV_BENCH_SETTLE_MS: String(SETTLE_MS) },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 1 << 20,
  });
  return JSON.parse(out.trim().split('\n').pop()!) as Memory & { ms: number };
}

/** VmRSS of a process, from /proc. */
function rssOfPid(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (m === null) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) / 1024;
}

/** CPU time a process has used (user + system), in ms, from /proc (clock ticks of 10 ms). */
function cpuMsOfPid(pid: number): number {
  // the fields after the command name, which is in parentheses and may hold spaces
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) * 10;
}

/** The etcd process serving `dataDir` (startEtcd does not hand out its pid). */
function etcdPid(dataDir: string): number {
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const argv = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
      if (argv[0]?.endsWith('etcd') && argv.includes(dataDir)) return Number(d);
    } catch {
      // gone meanwhile
    }
  }
  throw new Error(`no etcd process for ${dataDir}`);
}

/** What both systems offer the benchmark. */
interface Sut {
  name: string;
  put(key: string): Promise<unknown>;
  range(key: string, rangeEnd?: string, revision?: number): Promise<unknown>;
  compactPhysical(rev: number): Promise<unknown>;
  /** CPU used so far by the process doing the work (boltkv: this one; etcd: its server), in ms. */
  cpuMs(): number;
  revision(): Promise<number>;
  /** Close and open again; resolves when a read is answered. */
  reopen(): Promise<void>;
  /** Memory of a process holding only this system's store, after the load and after the reopen. */
  memory(phase: 'load' | 'reopen'): Promise<Memory>;
  /** Bytes of the data file in use (etcd's dbSizeInUse). */
  fileInUse(): Promise<number>;
  close(): Promise<void>;
}

async function boltkvSut(dir: string): Promise<Sut> {
  const path = join(dir, 'bench.db');
  let backend = BoltBackend.open(path);
  let kv: KVStore = await openStore({ backend, leaseCheckIntervalMs: 0 });
  return {
    name: 'boltkv',
    put: (key) => kv.put({ key, value: VALUE }),
    range: (key, rangeEnd, revision) => kv.range({ key, rangeEnd, revision }),
    compactPhysical: (rev) => kv.compact({ revision: rev, physical: true }),
    cpuMs: () => {
      const u = process.cpuUsage();
      return (u.user + u.system) / 1000;
    },
    revision: async () => kv.revision(),
    reopen: async () => {
      await kv.close();
      // as a restarted process would: the closed store's index is garbage before the open starts
      kv = undefined as unknown as KVStore;
      backend = undefined as unknown as BoltBackend;
      gc();
      backend = BoltBackend.open(path);
      kv = await openStore({ backend, leaseCheckIntervalMs: 0 });
      await kv.range({ key: keyOf(0) });
    },
    memory: async (phase) => {
      const m = boltkvMemory(phase, join(dir, 'memory.db'));
      settledAfter[phase] = m.settleMs;
      return m;
    },
    fileInUse: async () => (await kv.status()).dbSizeInUse,
    close: () => kv.close(),
  };
}

async function etcdSut(dir: string): Promise<Sut> {
  const dataDir = join(dir, 'etcd');
  const extraArgs = ['--quota-backend-bytes', String(8 * 2 ** 30)];
  let server: EtcdServer = await startEtcd({ dataDir, keepAlive: true, extraArgs });
  const b = (s: string): Uint8Array => enc.encode(s);
  return {
    name: 'etcd',
    put: (key) => server.gateway.put({ key: b(key), value: VALUE }),
    range: (key, rangeEnd, revision) =>
      server.gateway.range({ key: b(key), rangeEnd: rangeEnd === undefined ? undefined : b(rangeEnd), revision }),
    compactPhysical: (rev) => server.gateway.compact({ revision: rev, physical: true }),
    cpuMs: () => cpuMsOfPid(etcdPid(dataDir)),
    revision: async () => {
      const r = (await server.gateway.range({ key: b(keyOf(0)) })) as { header: { revision: number } };
      return r.header.revision;
    },
    reopen: async () => {
      await server.stop();
      server = await startEtcd({ dataDir, keepAlive: true, extraArgs, timeoutMs: 600_000 });
    },
    memory: async (phase) => {
      const pid = etcdPid(dataDir);
      const rssAtOnce = rssOfPid(pid);
      const settleMs = settledAfter[phase];
      await sleep(settleMs);
      return { rssAtOnce, rss: rssOfPid(pid), settleMs };
    },
    fileInUse: async () => {
      const st = (await server.gateway.call('/v3/maintenance/status', {})) as { dbSizeInUse: string | number };
      return Number(st.dbSizeInUse);
    },
    close: () => server.stop(),
  };
}

function describe(m: Memory): string {
  const f = (x: number | undefined): string => (x === undefined ? '-' : x.toFixed(0));
  const parts =
    m.mappings === undefined
      ? ''
      : ` (${Object.entries(m.mappings)
          .map(([k, v]) => `${k} ${f(v)}`)
          .join(', ')})`;
  const rss = `RSS ${f(m.rssAtOnce)} MiB at once, ${f(m.rss)} MiB after ${(m.settleMs / 1000).toFixed(1)} s idle`;
  if (m.heapTotal === undefined) return rss;
  return `${rss}${parts}, JS heap ${f(m.heapTotal)} committed / ${f(m.heapUsed)} used, external ${f(m.external)}, page cache ${f(m.cache)} MiB`;
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]!;
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

/**
 * The disk's floor under any durable commit in the same minutes as a system's timed puts: two
 * (write 4 KiB + fdatasync) on a preallocated file, back to back for `ms`; sorted latencies in ms.
 * p99s move with the disk's load, so each system's put p99 is reported beside the floor measured
 * around its own compaction phase.
 */
function fsyncFloor(dir: string, ms: number): number[] {
  const floor = openFsyncFloor(dir);
  try {
    const lat: number[] = [];
    const end = performance.now() + ms;
    while (performance.now() < end) {
      const t = performance.now();
      floor.step();
      lat.push(performance.now() - t);
    }
    return lat.sort((a, b) => a - b);
  } finally {
    floor.close();
  }
}

/** Load keys [from, to) with WINDOW puts in flight; returns puts/s. */
async function load(s: Sut, from: number, to: number): Promise<number> {
  const t = performance.now();
  for (let i = from; i < to; i += WINDOW) {
    const batch: Promise<unknown>[] = [];
    for (let j = i; j < Math.min(to, i + WINDOW); j++) batch.push(s.put(keyOf(j)));
    await Promise.all(batch);
  }
  return ((to - from) / (performance.now() - t)) * 1000;
}

interface Figures {
  putSingleOps: number;
  putSingleP50Ms: number;
  /** Of the SINGLE one-at-a-time puts, before compaction: the writer's p99 with nothing else running. */
  putSingleP99Ms: number;
  putGroupOps: number;
  range1Ops: number;
  range1000Ops: number;
  rangeOldOps: number;
  reopenMs: number;
  compactMs: number;
  compactRevisions: number;
  putDuringCompactP50Ms: number;
  putDuringCompactP99Ms: number;
  putDuringCompactMaxMs: number;
  putsDuringCompact: number;
  /** The fdatasync floor (fsyncFloor) around the compaction phase: before it and after it, pooled. */
  floorP50Ms: number;
  floorP99Ms: number;
  floorSamples: number;
  /** CPU of the process doing the work during the compaction (boltkv's includes the writer's side). */
  compactCpuMs: number;
  /** MiB after the load (N keys, N revisions). */
  rssLoadMiB: number;
  rssLoadAtOnceMiB: number;
  heapLoadMiB?: number;
  mallocLoadMiB?: number;
  cacheLoadMiB?: number;
  /** MiB after the reopen (N keys, 2N revisions), in a fresh process. */
  rssReopenMiB: number;
  rssReopenAtOnceMiB: number;
  heapReopenMiB?: number;
  mallocReopenMiB?: number;
  cacheReopenMiB?: number;
  /** Everything the memory probes reported. */
  memory: { load: Memory; reopen: Memory };
  fileInUseMiB: number;
}

async function measure(s: Sut, dir: string): Promise<Figures> {
  const log = (m: string): void => console.error(`[${s.name}] ${m}`);
  log(`loading ${N.toLocaleString()} keys`);
  const putGroupOps = await load(s, 0, N);
  const oldRev = await s.revision();
  const fileInUseMiB = (await s.fileInUse()) / MiB;
  log(`file in use ${fileInUseMiB.toFixed(0)} MiB; memory after the load`);
  const atLoad = await s.memory('load');
  log(`after load: ${describe(atLoad)}`);
  log('overwriting every key once');
  await load(s, 0, N);

  log('single puts');
  const lat: number[] = [];
  for (let i = 0; i < SINGLE; i++) lat.push(await timed(() => s.put(keyOf(i))));
  lat.sort((a, b) => a - b);
  const putSingleOps = (SINGLE / lat.reduce((a, b) => a + b, 0)) * 1000;

  log('ranges');
  let x = 12345;
  const rnd = (): number => {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    return x % (N - 1000);
  };
  const bench = new Bench({ time: BENCH_MS, warmupTime: 100 });
  bench.add('range1', async () => {
    await s.range(keyOf(rnd()));
  });
  bench.add('range1000', async () => {
    const i = rnd();
    await s.range(keyOf(i), keyOf(i + 1000));
  });
  bench.add('rangeOld', async () => {
    await s.range(keyOf(rnd()), undefined, oldRev);
  });
  await bench.run();
  const ops = (name: string): number => {
    const r = bench.tasks.find((t) => t.name === name)!.result;
    if (r.state !== 'completed') throw new Error(`${name}: ${r.state}`);
    return r.throughput.mean;
  };

  log('reopen');
  const reopenMs = await timed(() => s.reopen());
  log(`reopened in ${reopenMs.toFixed(0)} ms; memory after a restart`);
  const atReopen = await s.memory('reopen');
  log(`after reopen: ${describe(atReopen)}`);

  const floorBefore = fsyncFloor(dir, FLOOR_MS);
  log('compaction with concurrent writes');
  const rev = await s.revision();
  let compacting = true;
  const cpu0 = s.cpuMs();
  const t0 = performance.now();
  const compaction = s.compactPhysical(rev).then(() => {
    compacting = false;
  });
  const during: number[] = [];
  let i = 0;
  while (compacting) during.push(await timed(() => s.put(`during/${i++}`)));
  await compaction;
  const compactMs = performance.now() - t0;
  const compactCpuMs = s.cpuMs() - cpu0;
  during.sort((a, b) => a - b);
  const floor = [...floorBefore, ...fsyncFloor(dir, FLOOR_MS)].sort((a, b) => a - b);
  log(
    `put during compaction p50 / p99 / max ${pct(during, 50).toFixed(2)} / ${pct(during, 99).toFixed(2)} / ${during[during.length - 1]!.toFixed(2)} ms (${during.length} puts); floor p50 / p99 ${pct(floor, 50).toFixed(2)} / ${pct(floor, 99).toFixed(2)} ms (${floor.length})`,
  );
  return {
    putSingleOps,
    putSingleP50Ms: pct(lat, 50),
    putSingleP99Ms: pct(lat, 99),
    putGroupOps,
    range1Ops: ops('range1'),
    range1000Ops: ops('range1000'),
    rangeOldOps: ops('rangeOld'),
    reopenMs,
    compactMs,
    compactRevisions: N,
    putDuringCompactP50Ms: pct(during, 50),
    putDuringCompactP99Ms: pct(during, 99),
    putDuringCompactMaxMs: during[during.length - 1]!,
    putsDuringCompact: during.length,
    floorP50Ms: pct(floor, 50),
    floorP99Ms: pct(floor, 99),
    floorSamples: floor.length,
    compactCpuMs,
    rssLoadMiB: atLoad.rss,
    rssLoadAtOnceMiB: atLoad.rssAtOnce,
    heapLoadMiB: atLoad.heapTotal,
    mallocLoadMiB: atLoad.mappings?.mallocHeap,
    cacheLoadMiB: atLoad.cache,
    rssReopenMiB: atReopen.rss,
    rssReopenAtOnceMiB: atReopen.rssAtOnce,
    heapReopenMiB: atReopen.heapTotal,
    mallocReopenMiB: atReopen.mappings?.mallocHeap,
    cacheReopenMiB: atReopen.cache,
    memory: { load: atLoad, reopen: atReopen },
    fileInUseMiB,
  };
}

buildPackage();
const dir = mkdtempSync(join(tmpdir(), 'boltkv-bench-mvcc-'));
const results: Record<string, Figures> = {};
try {
  const b = await boltkvSut(dir);
  try {
    results.boltkv = await measure(b, dir);
  } finally {
    await b.close();
  }
  if (withEtcd && etcdAvailable()) {
    const e = await etcdSut(dir);
    try {
      results.etcd = await measure(e, dir);
    } finally {
      await e.close();
    }
  } else if (withEtcd) {
    console.warn('*** etcd is not installed: boltkv figures only ***');
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

// "higher is better" metrics compare boltkv/etcd, "lower is better" ones etcd/boltkv: >1 = boltkv ahead
// 'none': context (the disk's floor in each system's minutes), not a comparison
const metrics: [Exclude<keyof Figures, 'memory'>, string, 'higher' | 'lower' | 'none'][] = [
  ['putSingleOps', 'put, single (ops/s)', 'higher'],
  ['putSingleP50Ms', 'put, single p50 (ms)', 'lower'],
  ['putSingleP99Ms', `put, single p99 (ms, of ${SINGLE})`, 'lower'],
  ['putGroupOps', `put, group-committed, ${WINDOW} in flight (ops/s)`, 'higher'],
  ['range1Ops', `range 1 key of ${N.toLocaleString()} (ops/s)`, 'higher'],
  ['range1000Ops', `range 1,000 keys of ${N.toLocaleString()} (ops/s)`, 'higher'],
  ['rangeOldOps', 'range 1 key at an old revision (ops/s)', 'higher'],
  ['reopenMs', `reopen with ${N.toLocaleString()} keys, ${(2 * N).toLocaleString()} revisions (ms)`, 'lower'],
  ['compactMs', `compaction of ${N.toLocaleString()} revisions (ms)`, 'lower'],
  ['putDuringCompactP50Ms', 'put p50 during compaction (ms)', 'lower'],
  ['putDuringCompactP99Ms', 'put p99 during compaction (ms)', 'lower'],
  ['putDuringCompactMaxMs', 'put max during compaction (ms)', 'lower'],
  ['putsDuringCompact', 'puts (one at a time) during compaction', 'higher'],
  ['floorP50Ms', '  disk floor around it: 2x (write 4 KiB + fdatasync) p50 (ms)', 'none'],
  ['floorP99Ms', '  the same, p99 (ms)', 'none'],
  ['floorSamples', '  the same, samples', 'none'],
  ['compactCpuMs', 'CPU during compaction (ms; boltkv: its process incl. the writer; etcd: its server)', 'lower'],
  ['rssLoadMiB', `RSS with ${N.toLocaleString()} keys, ${N.toLocaleString()} revisions, settled (MiB)`, 'lower'],
  ['rssLoadAtOnceMiB', '  the same at once after the load (MiB)', 'lower'],
  ['heapLoadMiB', '  of which JS heap committed (MiB)', 'lower'],
  ['mallocLoadMiB', '  of which malloc heap (MiB)', 'lower'],
  ['cacheLoadMiB', '  of which page cache (MiB)', 'lower'],
  ['rssReopenMiB', `RSS after a restart, ${(2 * N).toLocaleString()} revisions, settled (MiB)`, 'lower'],
  ['rssReopenAtOnceMiB', '  the same at once after the open (MiB)', 'lower'],
  ['heapReopenMiB', '  of which JS heap committed (MiB)', 'lower'],
  ['mallocReopenMiB', '  of which malloc heap (MiB)', 'lower'],
  ['cacheReopenMiB', '  of which page cache (MiB)', 'lower'],
  ['fileInUseMiB', `file in use with ${N.toLocaleString()} keys (MiB)`, 'lower'],
];
const rows: Row[] = metrics.map(([k, label, better]) => {
  const bk = results.boltkv![k] ?? Number.NaN;
  const et = results.etcd?.[k];
  const row: Row = { metric: label, boltkv: bk };
  if (et !== undefined) {
    row.etcd = et;
    if (better !== 'none') row['boltkv advantage'] = `${(better === 'higher' ? bk / et : et / bk).toFixed(2)}x`;
  }
  return row;
});
printTable(`MVCC layer, ${N.toLocaleString()} keys${quick ? ' (--quick)' : ''}`, rows);
const file = writeResults('mvcc', { keys: N, quick, singlePuts: SINGLE, window: WINDOW, results, rows });
console.log(`wrote ${file}`);
