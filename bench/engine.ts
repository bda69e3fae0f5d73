/**
 * Engine benchmark: boltkv's B+tree engine on the workloads of bench/lib/engine-workloads.ts, and
 * in the same run the same workloads against lmdb, classic-level and better-sqlite3 (when
 * `npm --prefix bench/peers install` has been run) and Go's bbolt (when `go` and Debian's bbolt
 * source are present), with ratios. The cost of two fdatasyncs of a 4 KiB page (what any durable
 * commit with a separate meta write must pay) is measured in the same run, before and after.
 *
 *   node --import tsx --conditions=boltkv-source bench/engine.ts             # 1M keys, a few minutes
 *   node --import tsx --conditions=boltkv-source bench/engine.ts --quick     # 50k keys, well under a minute
 *   ... --keys N --time MS --batch-puts N --callers N --chunk N
 *   ... --no-peers | --require-peers   --no-go   --only boltkv,lmdb   --no-load1   --dir DIR
 *   ... --cache-mib N   boltkv's page cache (default: an eighth of memory, 128 MiB..2 GiB)
 *
 * Output: tables on stdout (progress on stderr), bench/results/engine.json
 * (engine-quick.json for --quick, so a quick run never overwrites the full figures).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { open } from '../src/bolt/index.ts';
import { defaultCacheSize } from '../src/bolt/pager.ts';
import { openFsyncFloor } from './lib/fsync-floor.ts';
import { GO_SETTINGS, GO_SYSTEM, buildGoBench, runGoBench } from './go/bbolt.ts';
import {
  type EngineHandle,
  type EngineResult,
  type EngineUnderTest,
  type WorkloadId,
  type WorkloadOptions,
  keyOf,
  progress,
  runWorkloads,
  timeOps,
  valueOf,
  workloadName,
} from './lib/engine-workloads.ts';
import { printTable, writeResults, type Row } from './lib/report.ts';

const BUCKET = 'bench';

function defaultCacheMiB(): number {
  return Math.round(defaultCacheSize() / 2 ** 20);
}

/**
 * boltkv with its defaults (hashmap freelist, fdatasync on every commit, default page cache), or
 * another page-cache size: the cache decides whether a random read is a memory lookup or a pread.
 */
/**
 * Keeps the range visitor's reads from being optimised away. Summed as a 32-bit integer, as Go's
 * int sink is: a plain `+=` grows past V8's small integers within the run, and every later add then
 * allocated a heap number (100 per range, and the collections they cause), a cost of the harness
 * that the Go side does not pay.
 */
let sink = 0;
export function readSink(): number {
  return sink;
}

export function boltkvSystem(cacheMiB: number | null): EngineUnderTest {
  const cacheSize = cacheMiB === null ? undefined : cacheMiB * 2 ** 20;
  return {
    name: 'boltkv',
    settings: `${cacheMiB === null ? 'defaults: ' : ''}hashmap freelist, fdatasync on commit (data, then meta), ${cacheMiB ?? defaultCacheMiB()} MiB page cache${cacheMiB === null ? ' (an eighth of memory, 128 MiB..2 GiB)' : ''}, fill 50%`,
    apis: {
      load1: 'db.update',
      loadChunk: 'db.update',
      get: 'bucket.get in one view txn (the value view is returned and checked defined, its bytes not read)',
      range:
        "bucket.scan({gte, limit}, visitor) in one view txn: the visitor reads each entry's key's last byte and value length (no views built), as Go's loop does",
      putDurable: 'db.update (sync fdatasync)',
      putBatched: 'await db.batch (one commit per event-loop turn, max 1000)',
    },
    async open(dir: string): Promise<EngineHandle> {
      const db = open(join(dir, 'bench.db'), { cacheSize });
      db.update((tx) => tx.createBucketIfNotExists(BUCKET));
      return {
        putTxn(order, lo, hi) {
          db.update((tx) => {
            const b = tx.bucket(BUCKET)!;
            for (let i = lo; i < hi; i++) {
              const k = order[i]!;
              b.put(keyOf(k), valueOf(k));
            }
          });
        },
        reader() {
          const tx = db.begin(false);
          const b = tx.bucket(BUCKET)!;
          return {
            get: (k) => b.get(k),
            range(start, n) {
              // As Go's loop: each entry's key's last byte and value length are read.
              return b.scan({ gte: start, limit: n }, (e) => {
                sink = (sink + e.keyBuffer[e.keyOffset + e.keyLength - 1]! + e.valueLength) | 0;
              });
            },
            end: () => tx.rollback(),
          };
        },
        putDurable(k, v) {
          db.update((tx) => tx.bucket(BUCKET)!.put(k, v));
        },
        putBatched: (k, v) => db.batch((tx) => tx.bucket(BUCKET)!.put(k, v)),
        close: () => db.close(),
      };
    },
  };
}

/** Process memory when an engine's read workloads end (its database open, its reader live). */
export interface MemorySnapshot {
  system: string;
  rssMiB: number;
  heapUsedMiB: number;
  externalMiB: number | null;
  arrayBuffersMiB: number | null;
}

function memoryNow(system: string): MemorySnapshot {
  const m = process.memoryUsage();
  const mib = (n: number): number => Math.round((n / 2 ** 20) * 10) / 10;
  return {
    system,
    rssMiB: mib(m.rss),
    heapUsedMiB: mib(m.heapUsed),
    externalMiB: mib(m.external),
    arrayBuffersMiB: mib(m.arrayBuffers),
  };
}

/** sys, recording the process's memory into `sink` just before its reader ends. */
function withMemory(sys: EngineUnderTest, sink: MemorySnapshot[]): EngineUnderTest {
  return {
    ...sys,
    async open(dir) {
      const h = await sys.open(dir);
      return {
        ...h,
        reader() {
          const r = h.reader();
          return {
            get: (k) => r.get(k),
            range: (start, n) => r.range(start, n),
            end() {
              sink.push(memoryNow(sys.name));
              r.end();
            },
          };
        },
      };
    },
  };
}

export interface SuiteOptions extends WorkloadOptions {
  quick: boolean;
  peers: 'auto' | 'required' | 'off';
  go: boolean;
  goLoad1CapS: number;
  /** Parent directory for the database files (default: the OS temp directory). */
  dir: string;
  /** Run only these systems (names as printed). */
  only: string[] | null;
  /** boltkv's page cache in MiB; null: the default (see defaultCacheSize). */
  cacheMiB: number | null;
}

export function parseSuiteArgs(argv: readonly string[]): SuiteOptions {
  const has = (f: string): boolean => argv.includes(f);
  const value = (f: string): string | undefined => {
    const i = argv.indexOf(f);
    if (i < 0) return undefined;
    const v = argv[i + 1];
    if (v === undefined || v.startsWith('--')) throw new Error(`${f} needs a value`);
    return v;
  };
  const int = (f: string, dflt: number, min: number): number => {
    const v = value(f);
    if (v === undefined) return dflt;
    const n = Number(v.replace(/_/g, ''));
    if (!Number.isSafeInteger(n) || n < min) throw new Error(`${f} must be an integer >= ${min}, got ${v}`);
    return n;
  };
  const quick = has('--quick');
  const keys = int('--keys', quick ? 50_000 : 1_000_000, 1000);
  return {
    quick,
    keys,
    chunk: int('--chunk', 10_000, 1),
    timeMs: int('--time', quick ? 300 : 2000, 10),
    callers: int('--callers', 1000, 1),
    batchPuts: int('--batch-puts', quick ? 5000 : 50_000, 1),
    skipLoad1: has('--no-load1'),
    peers: has('--no-peers') ? 'off' : has('--require-peers') ? 'required' : 'auto',
    go: !has('--no-go'),
    goLoad1CapS: int('--go-load1-cap', quick ? 10 : 60, 1),
    dir: resolve(value('--dir') ?? tmpdir()),
    only:
      value('--only')
        ?.split(',')
        .map((s) => s.trim()) ?? null,
    cacheMiB: value('--cache-mib') === undefined ? null : int('--cache-mib', 128, 1),
  };
}

/** Two (write 4 KiB + fdatasync) on a preallocated file: the floor under any durable commit. */
async function fsyncFloor(dir: string, timeMs: number): Promise<EngineResult> {
  const floor = openFsyncFloor(dir);
  try {
    const m = await timeOps('2x fdatasync', () => floor.step(), timeMs);
    return {
      system: 'filesystem',
      workload: '2x (write 4 KiB + fdatasync)',
      id: 'floor',
      ...m,
      note: 'floor for a durable commit',
    };
  } finally {
    floor.close();
  }
}

const ORDER: WorkloadId[] = ['load1', 'loadChunk', 'get', 'range', 'putDurable', 'putBatched'];

function round(n: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

function systemTable(name: string, settings: string, rows: readonly EngineResult[]): void {
  printTable(
    `${name} — ${settings}`,
    rows.map((r) => ({
      workload: r.workload,
      'ops/s': Math.round(r.opsPerSec),
      'p50 µs': r.p50Us === null ? null : round(r.p50Us, 1),
      'p99 µs': r.p99Us === null ? null : round(r.p99Us, 1),
      ops: r.ops,
      note: r.note,
    })),
  );
}

/** ops/s side by side, then boltkv's ops/s divided by each peer's (above 1: boltkv is faster). */
function comparisonTables(o: WorkloadOptions, results: readonly EngineResult[], systems: readonly string[]): void {
  const by = (sys: string, id: WorkloadId): EngineResult | undefined =>
    results.find((r) => r.system === sys && r.id === id);
  const opsRows: Row[] = [];
  const ratioRows: Row[] = [];
  const p50Rows: Row[] = [];
  for (const id of ORDER) {
    const name = workloadName(id, o);
    const ops: Row = { workload: name };
    const ratio: Row = { workload: name };
    const p50: Row = { workload: name };
    const mine = by('boltkv', id);
    let any = false;
    for (const s of systems) {
      const r = by(s, id);
      ops[s] = r ? Math.round(r.opsPerSec) : null;
      p50[s] = r && r.p50Us !== null ? round(r.p50Us, 1) : null;
      if (r) any = true;
      if (s !== 'boltkv') ratio[`boltkv ÷ ${s}`] = r && mine ? round(mine.opsPerSec / r.opsPerSec, 2) : null;
    }
    if (!any) continue;
    opsRows.push(ops);
    ratioRows.push(ratio);
    if (id !== 'load1' && id !== 'loadChunk') p50Rows.push(p50);
  }
  printTable('ops/s by engine (higher is better)', opsRows);
  printTable('p50 latency by engine, µs (lower is better)', p50Rows);
  if (systems.length > 1) printTable('boltkv ops/s ÷ peer ops/s (above 1: boltkv faster)', ratioRows);
}

/**
 * Issue 14's read targets as time ratios (boltkv's time ÷ the peer's; at or below the target is
 * met): random get ≤ 1.0× lmdb and ≤ 2× Go's bbolt, a range of 100 ≤ 2.5× Go's bbolt. Mean time is
 * 1 / ops/s (what the ops/s table shows); p50 is also given, since a few slow samples move the mean.
 */
function readTargetRows(results: readonly EngineResult[]): Row[] {
  const by = (sys: string, id: WorkloadId): EngineResult | undefined =>
    results.find((r) => r.system === sys && r.id === id);
  const targets: Array<{ id: WorkloadId; peer: string; target: number }> = [
    { id: 'get', peer: 'lmdb', target: 1.0 },
    { id: 'get', peer: GO_SYSTEM, target: 2.0 },
    { id: 'range', peer: GO_SYSTEM, target: 2.5 },
  ];
  const rows: Row[] = [];
  for (const t of targets) {
    const mine = by('boltkv', t.id);
    const peer = by(t.peer, t.id);
    if (!mine || !peer) continue;
    const meanRatio = peer.opsPerSec / mine.opsPerSec;
    const p50Ratio = mine.p50Us !== null && peer.p50Us !== null ? mine.p50Us / peer.p50Us : null;
    rows.push({
      what: `${mine.workload}: boltkv ÷ ${t.peer}`,
      'boltkv mean µs': round(1e6 / mine.opsPerSec, 2),
      'peer mean µs': round(1e6 / peer.opsPerSec, 2),
      'mean ratio': round(meanRatio, 2),
      'p50 ratio': p50Ratio === null ? null : round(p50Ratio, 2),
      target: `≤ ${t.target.toFixed(1)}`,
      met: meanRatio <= t.target ? 'yes' : p50Ratio !== null && p50Ratio <= t.target ? 'p50 only' : 'no',
    });
  }
  return rows;
}

function readTargetTable(results: readonly EngineResult[]): void {
  const rows = readTargetRows(results);
  if (rows.length > 0)
    printTable('read targets (issue 14): boltkv time ÷ peer time (at or below the target: met)', rows);
}

export async function runEngineSuite(o: SuiteOptions): Promise<void> {
  const want = (name: string): boolean => o.only === null || o.only.includes(name);
  const systems: EngineUnderTest[] = [];
  if (want('boltkv')) systems.push(boltkvSystem(o.cacheMiB));
  const skipped: Array<{ system: string; reason: string }> = [];
  if (o.peers !== 'off') {
    const { loadPeers } = await import('./peers/adapters.ts');
    const peers = await loadPeers();
    for (const m of peers.missing) {
      if (o.peers === 'required') {
        throw new Error(`peer ${m.name} is not available (${m.reason}); run: npm --prefix bench/peers install`);
      }
      console.warn(
        `engine bench: skipping peer ${m.name}: ${m.reason} (install with: npm --prefix bench/peers install)`,
      );
      skipped.push({ system: m.name, reason: m.reason });
    }
    systems.push(...peers.systems.filter((s) => want(s.name)));
  }
  let goBin: string | null = null;
  if (o.go && want(GO_SYSTEM)) {
    const built = buildGoBench();
    if ('bin' in built) goBin = built.bin;
    else {
      console.warn(`engine bench: skipping Go's bbolt: ${built.skip}`);
      skipped.push({ system: GO_SYSTEM, reason: built.skip });
    }
  }

  const root = mkdtempSync(join(o.dir, 'boltkv-engine-bench-'));
  const results: EngineResult[] = [];
  const floors: EngineResult[] = [];
  const memory: MemorySnapshot[] = [memoryNow('(process at start)')];
  try {
    progress('fdatasync floor (before)');
    floors.push({ ...(await fsyncFloor(root, Math.min(o.timeMs, 1000))), note: 'measured before the engines' });
    for (const sys of systems) {
      const rows = await runWorkloads(withMemory(sys, memory), root, o);
      results.push(...rows);
      systemTable(sys.name, sys.settings, rows);
    }
    if (goBin) {
      progress(`${GO_SYSTEM}: all workloads (one-transaction load capped at ${o.goLoad1CapS} s)`);
      const rows = await runGoBench(goBin, join(root, 'go'), o, o.goLoad1CapS, (r) =>
        progress(`${GO_SYSTEM}: ${r.workload} done`),
      );
      results.push(...rows);
      systemTable(GO_SYSTEM, GO_SETTINGS, rows);
      const m = /rss ([\d.]+) MiB, heap in use ([\d.]+) MiB/.exec(rows.find((r) => r.id === 'range')?.note ?? '');
      if (m)
        memory.push({
          system: `${GO_SYSTEM} (own process)`,
          rssMiB: Number(m[1]),
          heapUsedMiB: Number(m[2]),
          externalMiB: null,
          arrayBuffersMiB: null,
        });
    }
    progress('fdatasync floor (after)');
    floors.push({ ...(await fsyncFloor(root, Math.min(o.timeMs, 1000))), note: 'measured after the engines' });
  } finally {
    rmSync(root, { recursive: true, force: true });
  }

  const names = [...systems.map((s) => s.name), ...(goBin ? [GO_SYSTEM] : [])];
  comparisonTables(o, results, names);

  readTargetTable(results);
  printTable(
    "process memory when each engine's reads end, MiB (Node engines share one process and run one after another)",
    memory.map((m) => ({
      system: m.system,
      rss: m.rssMiB,
      'heap used': m.heapUsedMiB,
      external: m.externalMiB,
      'array buffers': m.arrayBuffersMiB,
    })),
  );

  const floorP50 = Math.min(...floors.map((f) => f.p50Us ?? Infinity));
  printTable("2x fdatasync floor, and each engine's durable single-put commit against it", [
    ...floors.map((f) => ({
      what: `${f.workload}, ${f.note}`,
      'ops/s': Math.round(f.opsPerSec),
      'p50 µs': round(f.p50Us ?? NaN, 1),
      'p99 µs': round(f.p99Us ?? NaN, 1),
      'p50 ÷ floor p50': null,
    })),
    ...results
      .filter((r) => r.id === 'putDurable')
      .map((r) => ({
        what: `${r.system}: ${r.workload}`,
        'ops/s': Math.round(r.opsPerSec),
        'p50 µs': round(r.p50Us ?? NaN, 1),
        'p99 µs': round(r.p99Us ?? NaN, 1),
        'p50 ÷ floor p50': round((r.p50Us ?? NaN) / floorP50, 2),
      })),
  ]);

  const path = writeResults(o.quick ? 'engine-quick' : 'engine', {
    options: {
      keys: o.keys,
      keySize: 8,
      valueSize: 100,
      chunk: o.chunk,
      timeMs: o.timeMs,
      callers: o.callers,
      batchPuts: o.batchPuts,
      goLoad1CapS: o.goLoad1CapS,
      boltkvCacheMiB: o.cacheMiB ?? defaultCacheMiB(),
    },
    systems: [
      ...systems.map((s) => ({ name: s.name, settings: s.settings, apis: s.apis })),
      ...(goBin ? [{ name: GO_SYSTEM, settings: GO_SETTINGS }] : []),
    ],
    skipped,
    memory,
    readTargets: readTargetRows(results),
    floor: floors,
    results,
  });
  console.log(`\nwrote ${path}`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  Promise.resolve()
    .then(() => runEngineSuite(parseSuiteArgs(process.argv.slice(2))))
    .catch((err: unknown) => {
      // A bad argument gets its message alone; anything else keeps its stack.
      console.error(
        err instanceof Error && /^(--|cannot read a size)/.test(err.message) ? `engine bench: ${err.message}` : err,
      );
      process.exitCode = 1;
    });
}
