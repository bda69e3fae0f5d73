// The memory side of bench/mvcc.ts: one process that holds only a revision store, run as a user
// runs the package (the built dist/, plain `node`, no loader, no forced GC), so its resident set
// compares with etcd's process, which also holds only its store. Plain JS for that reason.
//
//   node bench/mvcc-memory.mjs load   <file> <keys>   # load <keys> keys (1,000 puts in flight), report, overwrite each once, close
//   node bench/mvcc-memory.mjs reopen <file> <keys>   # open the file (index rebuilt), read one key, report, close
//
// Reports one JSON line on stdout: RSS and its parts (see memory() below) at once, and again once
// the process has settled while idle, as a long-running store is between bursts: V8's memory
// reducer gives back the young generation and the load's garbage 10-40 s after the last
// allocations (the allocation rate it samples must fall first). Settled means: a full collection
// has run since the process went idle and none has followed for 3 s (the reducer runs up to
// three, 0.5 s apart), or SETTLE_MS has passed.
import { readFileSync } from 'node:fs';
import { constants, PerformanceObserver } from 'node:perf_hooks';
import { getHeapSpaceStatistics } from 'node:v8';
import { BoltBackend, openStore } from 'boltkv';

const [phase, file, keysArg] = process.argv.slice(2);
const N = Number(keysArg);
if ((phase !== 'load' && phase !== 'reopen') || file === undefined || !Number.isSafeInteger(N)) {
  throw new Error('usage: mvcc-memory.mjs load|reopen <file> <keys>');
}
const SETTLE_MS = Number(process.env.BOLTKV_BENCH_SETTLE_MS ?? 120_000);
const MiB = 2 ** 20;
const WINDOW = 1000;
const VALUE = new TextEncoder().encode('v'.repeat(64));
const keyOf = (i) => `key/${String(i).padStart(8, '0')}`;

/** Resident MiB by kind of mapping, from /proc/self/smaps. */
function mappings() {
  const out = { code: 0, mallocHeap: 0, anonymous: 0, dataFile: 0, other: 0 };
  let kind = 'other';
  for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head !== null) {
      const name = head[1];
      if (name === '') kind = 'anonymous';
      else if (name === '[heap]') kind = 'mallocHeap';
      else if (name === file) kind = 'dataFile';
      else if (name.startsWith('/')) kind = 'code';
      else kind = 'other';
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss !== null) out[kind] += Number(rss[1]) / 1024;
  }
  return out;
}

/** RSS, V8's view (heap committed and live, per space), Node's external memory and the engine's cache. */
function memory(backend) {
  const m = process.memoryUsage();
  const spaces = {};
  for (const s of getHeapSpaceStatistics()) {
    if (s.space_size > 0) spaces[s.space_name] = { committed: s.space_size / MiB, used: s.space_used_size / MiB };
  }
  return {
    rss: m.rss / MiB,
    heapTotal: m.heapTotal / MiB,
    heapUsed: m.heapUsed / MiB,
    external: m.external / MiB,
    arrayBuffers: m.arrayBuffers / MiB,
    cache: backend.db.stats().cache.bytes / MiB,
    mappings: mappings(),
    spaces,
  };
}

async function load(kv) {
  for (let i = 0; i < N; i += WINDOW) {
    const batch = [];
    for (let j = i; j < Math.min(N, i + WINDOW); j++) batch.push(kv.put({ key: keyOf(j), value: VALUE }));
    await Promise.all(batch);
  }
}

const start = process.memoryUsage().rss / MiB;
// what openStore(file) does, with the backend kept for its cache figure
const t0 = performance.now();
const backend = BoltBackend.open(file);
const kv = await openStore({ backend, leaseCheckIntervalMs: 0 });
if (phase === 'load') await load(kv);
else await kv.range({ key: keyOf(0) });
const ms = performance.now() - t0;
const atOnce = process.memoryUsage().rss / MiB;
const idleFrom = performance.now();
let lastMajorGc = -1;
const gcs = new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    if (e.detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR && e.startTime >= idleFrom) lastMajorGc = e.startTime + e.duration;
  }
});
gcs.observe({ entryTypes: ['gc'] });
for (;;) {
  const now = performance.now();
  if (now - idleFrom >= SETTLE_MS || (lastMajorGc >= 0 && now - lastMajorGc >= 3000)) break;
  await new Promise((r) => setTimeout(r, 500));
}
gcs.disconnect();
const settleMs = performance.now() - idleFrom;
const settled = memory(backend);
process.stdout.write(`${JSON.stringify({ phase, keys: N, ms, startRss: start, rssAtOnce: atOnce, settleMs, ...settled })}\n`);
if (phase === 'load') await load(kv);
await kv.close();
