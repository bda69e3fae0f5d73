/**
 * Watch benchmarks (issue 5).
 *
 *  - fan-out: 1 / 1k / 10k watchers all matching the written key (single-key or prefix); one write
 *    per iteration, the iteration ends when every consumer's `for await` has received it. Reports
 *    deliveries/s and write→last-consumer latency.
 *  - spread: 1k / 10k watchers on distinct keys (or distinct prefixes); each write matches one.
 *    Shows the per-write cost does not grow with the number of watchers (map / interval index).
 *  - catch-up: a watcher starting 1M revisions back, on computed history (SyntheticSource) and,
 *    for 100k revisions, on the real MvccStore over the memory backend.
 *  - memory per idle watcher (single-key, prefix, on a stream).
 *
 * Delivery benches use the in-memory fake source, so they measure the watch layer alone.
 * Run: node --import tsx --conditions=boltkv-source bench/watch.ts   (BENCH_QUICK=1 for a smoke run)
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Bench } from 'tinybench';
import { WatchHub } from '../src/watch/hub.ts';
import { MvccStore } from '../src/mvcc/store.ts';
import { MemoryBackend } from '../src/mvcc/backend/memory.ts';
import { FakeSource } from '../test/watch/support/fake-source.ts';
import { SyntheticSource } from '../test/watch/support/synthetic-source.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const quick = process.env.BENCH_QUICK === '1';
const TIME_MS = quick ? 100 : 600;

interface Row {
  name: string;
  watchers: number;
  /** Deliveries (events received by consumers) per second. */
  deliveriesPerSec?: number;
  writesPerSec?: number;
  latencyP50Ms?: number;
  latencyP99Ms?: number;
  events?: number;
  seconds?: number;
  eventsPerSec?: number;
  bytesPerWatcher?: number;
  source: string;
}
const rows: Row[] = [];

/** Starts one consuming `for await` loop per watcher; returns a way to await a delivery count. */
function consumers(
  hub: WatchHub,
  reqs: { key: string; rangeEnd?: string }[],
): { waitFor(n: number): Promise<void>; received(): number } {
  let received = 0;
  let target = Infinity;
  let wake: (() => void) | undefined;
  for (const req of reqs) {
    const w = hub.watch(req);
    void (async () => {
      for await (const r of w) {
        received += r.events.length;
        if (received >= target && wake !== undefined) {
          const f = wake;
          wake = undefined;
          f();
        }
      }
    })();
  }
  return {
    received: () => received,
    waitFor(n: number): Promise<void> {
      target = n;
      if (received >= n) return Promise.resolve();
      return new Promise((resolve) => {
        wake = resolve;
      });
    },
  };
}

async function fanOut(): Promise<void> {
  const bench = new Bench({ name: 'watch fan-out', time: TIME_MS, warmup: true });
  const setups: { name: string; w: number; prefix: boolean }[] = [];
  for (const w of [1, 1000, 10000])
    for (const prefix of [false, true])
      setups.push({ name: `fan-out ${prefix ? 'prefix' : 'single-key'} x${w}`, w, prefix });
  const teardown: (() => void)[] = [];
  for (const s of setups) {
    const src = new FakeSource();
    src.keepFullLog = false;
    const hub = new WatchHub(src);
    teardown.push(() => hub.close());
    const reqs = Array.from({ length: s.w }, () => (s.prefix ? { key: 'job/', rangeEnd: 'job0' } : { key: 'job/1' }));
    const c = consumers(hub, reqs);
    bench.add(s.name, async () => {
      const want = c.received() + s.w;
      src.put('job/1', 'v');
      await c.waitFor(want);
    });
  }
  await bench.run();
  for (const [i, t] of bench.tasks.entries()) {
    const r = t.result;
    if (r === undefined || !('latency' in r)) continue;
    const s = setups[i]!;
    rows.push({
      name: s.name,
      watchers: s.w,
      writesPerSec: Math.round(r.throughput.mean),
      deliveriesPerSec: Math.round(r.throughput.mean * s.w),
      latencyP50Ms: +(r.latency.p50 ?? 0).toFixed(4),
      latencyP99Ms: +(r.latency.p99 ?? 0).toFixed(4),
      source: 'fake',
    });
  }
  for (const f of teardown) f();
}

async function spread(): Promise<void> {
  const bench = new Bench({ name: 'watch spread', time: TIME_MS, warmup: true });
  const setups: { name: string; w: number; prefix: boolean }[] = [];
  for (const w of [1000, 10000])
    for (const prefix of [false, true])
      setups.push({ name: `spread ${prefix ? 'prefix' : 'single-key'} x${w}`, w, prefix });
  const teardown: (() => void)[] = [];
  for (const s of setups) {
    const src = new FakeSource();
    src.keepFullLog = false;
    const hub = new WatchHub(src);
    teardown.push(() => hub.close());
    const name = (i: number): string => `svc/${String(i).padStart(6, '0')}`;
    const reqs = Array.from({ length: s.w }, (_, i) =>
      s.prefix ? { key: `${name(i)}/`, rangeEnd: `${name(i)}0` } : { key: name(i) },
    );
    const c = consumers(hub, reqs);
    let n = 0;
    bench.add(s.name, async () => {
      const i = (n++ * 7919) % s.w;
      const want = c.received() + 1;
      src.put(s.prefix ? `${name(i)}/x` : name(i), 'v');
      await c.waitFor(want);
    });
  }
  await bench.run();
  for (const [i, t] of bench.tasks.entries()) {
    const r = t.result;
    if (r === undefined || !('latency' in r)) continue;
    const s = setups[i]!;
    rows.push({
      name: s.name,
      watchers: s.w,
      writesPerSec: Math.round(r.throughput.mean),
      deliveriesPerSec: Math.round(r.throughput.mean),
      latencyP50Ms: +(r.latency.p50 ?? 0).toFixed(4),
      latencyP99Ms: +(r.latency.p99 ?? 0).toFixed(4),
      source: 'fake',
    });
  }
  for (const f of teardown) f();
}

async function catchUpSynthetic(): Promise<void> {
  const N = quick ? 100_000 : 1_000_000;
  for (const prefix of [true, false]) {
    const src = new SyntheticSource(100);
    src.advanceSilently(N);
    const hub = new WatchHub(src);
    const w = hub.watch(prefix ? { key: 'k', rangeEnd: 'l', startRevision: 2 } : { key: 'k42', startRevision: 2 });
    const t0 = performance.now();
    let events = 0;
    w.requestProgress();
    for await (const r of w) {
      events += r.events.length;
      if (r.events.length === 0) break; // the bookmark: caught up
    }
    const s = (performance.now() - t0) / 1000;
    rows.push({
      name: `catch-up ${prefix ? 'all keys' : 'single key (1 in 100 revs)'} from ${N} revs back`,
      watchers: 1,
      events,
      seconds: +s.toFixed(3),
      eventsPerSec: Math.round(events / s),
      source: 'synthetic (computed history)',
    });
    hub.close();
  }
}

async function catchUpStore(): Promise<void> {
  const N = quick ? 10_000 : 100_000;
  const store = MvccStore.open({ backend: new MemoryBackend(), leaseCheckIntervalMs: 0 });
  for (let i = 0; i < N; i += 1000) {
    const ps: Promise<unknown>[] = [];
    for (let j = i; j < i + 1000 && j < N; j++) ps.push(store.put({ key: `k${j % 100}`, value: 'vvvvvvvv' }));
    await Promise.all(ps);
  }
  const hub = new WatchHub(store);
  const w = hub.watch({ key: 'k', rangeEnd: 'l', startRevision: 2 });
  const t0 = performance.now();
  let events = 0;
  w.requestProgress();
  for await (const r of w) {
    events += r.events.length;
    if (r.events.length === 0) break;
  }
  const s = (performance.now() - t0) / 1000;
  rows.push({
    name: `catch-up all keys from ${N} revs back`,
    watchers: 1,
    events,
    seconds: +s.toFixed(3),
    eventsPerSec: Math.round(events / s),
    source: 'MvccStore + MemoryBackend',
  });
  hub.close();
  await store.close();
}

function heap(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

function memoryPerWatcher(): void {
  const N = quick ? 2000 : 20000;
  for (const kind of ['single-key', 'prefix', 'stream'] as const) {
    const src = new FakeSource();
    const hub = new WatchHub(src);
    const keep: unknown[] = [];
    const before = heap();
    const stream = kind === 'stream' ? hub.stream() : undefined;
    for (let i = 0; i < N; i++) {
      const key = `svc/${String(i).padStart(6, '0')}`;
      if (stream !== undefined) stream.create({ key });
      else keep.push(hub.watch(kind === 'prefix' ? { key: `${key}/`, rangeEnd: `${key}0` } : { key }));
    }
    const per = (heap() - before) / N;
    rows.push({
      name: `memory per idle ${kind} watcher (${N} watchers)`,
      watchers: N,
      bytesPerWatcher: Math.round(per),
      source: 'fake',
    });
    keep.length = 0;
    hub.close();
  }
}

memoryPerWatcher();
await fanOut();
await spread();
await catchUpSynthetic();
await catchUpStore();

console.table(rows.map((r) => Object.fromEntries(Object.entries(r).filter(([, v]) => v !== undefined))));
mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
writeFileSync(
  new URL('./results/watch.json', import.meta.url),
  JSON.stringify({ bench: 'watch', date: new Date().toISOString(), node: process.version, quick, rows }, null, 2),
);
