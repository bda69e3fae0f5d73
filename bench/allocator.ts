/**
 * Allocator benchmark: the two freelists side by side as the free list grows from 1k to 10M pages.
 *
 *   node --import tsx --conditions=boltkv-source bench/allocator.ts          # full, a few minutes
 *   node --import tsx --conditions=boltkv-source bench/allocator.ts --quick  # 1k..100k, seconds
 *
 * Operations (each measured on a freelist of the given size, which is restored after every sample
 * outside the measured time):
 * - allocate(n), n in {1, 2, 8, 64}: a batch of allocations, reported per call;
 * - release: 64 single pages pending for one txid are released (merged back), reported per
 *   release() call, which is what a commit pays;
 * - serialize: ids() + encodeFreelistPage() at 4 KiB pages, the freelist page a commit writes.
 *
 * Layouts: "contiguous" is one run of free pages; "fragmented" is runs of 1-3 free pages
 * separated by 1-3 pages in use (seeded, so every run sees the same list), with a contiguous tail
 * of free pages at the end of the file (1% of the list, at least 512). Only the tail holds 4 or
 * more consecutive pages, which is where first fit pays: it walks the whole fragmented part first.
 *
 * Sampling is bounded so the run ends in a few minutes: allocations are timed in batches of 32
 * (fewer where a small list cannot supply that many runs), each task gets a 500 ms budget (60 ms with --quick) and at least 5 samples at 1M
 * pages and above (10 below). At 10M pages the array freelist's slow operations therefore get
 * only those 5 samples. Figures are medians of the samples: orders of magnitude are solid, single
 * digit percentages are not (the machine is shared).
 *
 * Output: tables on stdout, bench/results/allocator.json and bench/results/allocator.svg (ns/op
 * against free pages, log-log, one panel per operation, one line per freelist type and layout).
 */
import { loadavg } from 'node:os';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Bench } from 'tinybench';
import { ArrayFreelist, HashmapFreelist, encodeFreelistPage } from 'boltkv/freelist';
import type { Freelist } from 'boltkv/freelist';
import { formatNs, printTable, writeArtifact, writeResults } from './lib/report.ts';

type Kind = 'hashmap' | 'array';
type Layout = 'contiguous' | 'fragmented';
type Op = 'allocate(1)' | 'allocate(2)' | 'allocate(8)' | 'allocate(64)' | 'release' | 'serialize';

interface Result {
  type: Kind;
  layout: Layout;
  op: Op;
  freePages: number;
  /** Median over samples of the per-op time (samples are batch means for allocate). */
  nsPerOp: number;
  meanNs: number;
  /** Relative margin of error of the mean, percent. */
  rme: number;
  samples: number;
  /** Operations per sample (allocate batches). */
  batch: number;
}

const quick = process.argv.includes('--quick');
/** `--sizes=1e6,1e7` runs only those list sizes (for a closer look at one end of the curve). */
const sizesArg = process.argv.find((a) => a.startsWith('--sizes='));
const SIZES = sizesArg
  ? sizesArg
      .slice(8)
      .split(',')
      .map((x) => {
        const n = Number(x);
        if (!Number.isSafeInteger(n) || n < 1000) throw new Error(`--sizes: ${x} is not an integer >= 1000`);
        return n;
      })
  : quick
    ? [1_000, 10_000, 100_000]
    : [1_000, 10_000, 100_000, 1_000_000, 10_000_000];
/** `--gc-between-samples`: collect garbage (untimed) after each sample of a list of 1M pages or more. */
const gcBetween = process.argv.includes('--gc-between-samples');
const KINDS: Kind[] = ['hashmap', 'array'];
const LAYOUTS: Layout[] = ['contiguous', 'fragmented'];
const OPS: Op[] = ['allocate(1)', 'allocate(2)', 'allocate(8)', 'allocate(64)', 'release', 'serialize'];
const PAGE_SIZE = 4096;
const RELEASE_RUNS = 64;
/**
 * Allocations per sample. Fixed for every size so first fit is compared on equal terms: each call
 * in a batch finds the low runs taken by the calls before it, so its cost depends on the batch.
 */
const BATCH = 32;
const TIME_BUDGET_MS = quick ? 60 : 500;

// Optional collection between samples (untimed). Off by default: a full collection right before
// a batch of 32 cheap calls leaves caches cold and inflates them more than the garbage it avoids.
setFlagsFromString('--expose-gc');
const collect = runInNewContext('gc') as () => void;

/** Free page ids of the layout, ascending, deterministic. */
function layoutIds(layout: Layout, size: number): number[] {
  const ids = new Array<number>(size);
  if (layout === 'contiguous') {
    for (let i = 0; i < size; i++) ids[i] = 2 + i;
    return ids;
  }
  const tail = Math.min(Math.floor(size / 2), Math.max(512, Math.floor(size / 100)));
  let seed = 0x2545f491;
  const rnd3 = (): number => {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    return 1 + ((seed >>> 16) % 3);
  };
  let k = 0;
  let page = 2;
  while (k < size - tail) {
    const run = Math.min(rnd3(), size - tail - k);
    for (let j = 0; j < run; j++) ids[k++] = page + j;
    page += run + rnd3();
  }
  page += 1;
  while (k < size) ids[k++] = page++;
  return ids;
}

function make(kind: Kind): Freelist {
  return kind === 'hashmap' ? new HashmapFreelist() : new ArrayFreelist();
}

let nextTxid = 10;

/** Time `batch` allocations of n, then give them back (untimed). Returns ms for the batch. */
function allocateBatch(fl: Freelist, n: number, batch: number): number {
  const txid = nextTxid++;
  const t0 = performance.now();
  for (let i = 0; i < batch; i++) {
    if (fl.allocate(txid, n) === 0) throw new Error(`benchmark layout ran out of runs of ${n}`);
  }
  const ms = performance.now() - t0;
  fl.rollback(txid);
  return ms;
}

/** How many runs of n the layout can hand out in one batch without running dry. */
function batchCap(layout: Layout, size: number, n: number): number {
  const tail = Math.min(Math.floor(size / 2), Math.max(512, Math.floor(size / 100)));
  const pool = layout === 'contiguous' || n === 1 ? size / 4 : n <= 2 ? size / 16 : tail;
  return Math.max(1, Math.min(4096, Math.floor(pool / (2 * n))));
}

async function measure(fl: Freelist, layout: Layout, size: number, op: Op): Promise<Result> {
  const bench = new Bench({
    time: TIME_BUDGET_MS,
    iterations: size >= 1_000_000 ? 5 : 10,
    warmup: true,
    warmupIterations: 1,
    warmupTime: 0,
  });
  let batch = 1;
  if (op.startsWith('allocate')) {
    const n = Number(op.slice(9, -1));
    batch = Math.min(BATCH, batchCap(layout, size, n));
    bench.add(op, () => {
      const t0 = performance.now();
      const ms = allocateBatch(fl, n, batch);
      if (gcBetween && size >= 1_000_000) collect();
      return { overriddenDuration: ms / batch, overriddenIterationCost: performance.now() - t0 };
    });
  } else if (op === 'release') {
    bench.add(op, () => {
      const t0 = performance.now();
      const born = nextTxid++;
      const freer = nextTxid++;
      const pages: number[] = [];
      for (let i = 0; i < RELEASE_RUNS; i++) pages.push(fl.allocate(born, 1));
      for (const p of pages) fl.free(freer, p, 0);
      const t1 = performance.now();
      fl.release(freer);
      const ms = performance.now() - t1;
      if (gcBetween && size >= 1_000_000) collect();
      return { overriddenDuration: ms, overriddenIterationCost: performance.now() - t0 };
    });
  } else {
    bench.add(op, () => {
      const t0 = performance.now();
      const bytes = encodeFreelistPage(3, fl.ids(), PAGE_SIZE);
      const ms = performance.now() - t0;
      if (bytes.length < 16) throw new Error('empty page');
      if (gcBetween && size >= 1_000_000) collect();
      return { overriddenDuration: ms, overriddenIterationCost: performance.now() - t0 };
    });
  }
  await bench.run();
  const task = bench.tasks[0]!;
  const r = task.result;
  if (r.state !== 'completed') {
    throw new Error(`${op} did not complete: ${r.state === 'errored' ? String(r.error) : r.state}`);
  }
  return {
    type: fl.kind,
    layout,
    op,
    freePages: size,
    nsPerOp: r.latency.p50 * 1e6,
    meanNs: r.latency.mean * 1e6,
    rme: r.latency.rme,
    samples: r.latency.samplesCount,
    batch,
  };
}

// ---------------------------------------------------------------------------------------------
// SVG plot, written by hand (no dependency): one panel per operation, log-log axes.

const COLORS: Record<Kind, string> = { hashmap: '#1b7837', array: '#b2182b' };
const DASH: Record<Layout, string> = { contiguous: '', fragmented: '6 4' };

function svgPlot(results: readonly Result[]): string {
  const panelW = 360;
  const panelH = 250;
  const margin = { left: 62, right: 14, top: 30, bottom: 40 };
  const cols = 3;
  const rows = Math.ceil(OPS.length / cols);
  const width = cols * panelW;
  const height = rows * panelH + 60;
  const xs = results.map((r) => r.freePages);
  const xMin = Math.log10(Math.min(...xs));
  const xMax = Math.log10(Math.max(...xs));
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${width / 2}" y="20" text-anchor="middle" font-size="15">boltkv freelists: time per operation vs free pages (log-log)</text>`,
  );
  OPS.forEach((op, idx) => {
    const ox = (idx % cols) * panelW;
    const oy = 30 + Math.floor(idx / cols) * panelH;
    const plotW = panelW - margin.left - margin.right;
    const plotH = panelH - margin.top - margin.bottom;
    const mine = results.filter((r) => r.op === op);
    const ys = mine.map((r) => Math.max(r.nsPerOp, 1));
    const yMin = Math.floor(Math.log10(Math.min(...ys)));
    const yMax = Math.max(yMin + 1, Math.ceil(Math.log10(Math.max(...ys))));
    const px = (x: number): number => ox + margin.left + ((Math.log10(x) - xMin) / (xMax - xMin || 1)) * plotW;
    const py = (y: number): number =>
      oy + margin.top + plotH - ((Math.log10(Math.max(y, 1)) - yMin) / (yMax - yMin)) * plotH;
    out.push(
      `<text x="${ox + margin.left + plotW / 2}" y="${oy + margin.top - 10}" text-anchor="middle" font-size="13">${op}</text>`,
      `<rect x="${ox + margin.left}" y="${oy + margin.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#999"/>`,
    );
    for (let e = Math.ceil(xMin); e <= Math.floor(xMax); e++) {
      const x = px(10 ** e);
      out.push(
        `<line x1="${x}" y1="${oy + margin.top}" x2="${x}" y2="${oy + margin.top + plotH}" stroke="#eee"/>`,
        `<text x="${x}" y="${oy + margin.top + plotH + 14}" text-anchor="middle">${e >= 6 ? `${10 ** (e - 6)}M` : e >= 3 ? `${10 ** (e - 3)}k` : 10 ** e}</text>`,
      );
    }
    for (let e = yMin; e <= yMax; e++) {
      const y = py(10 ** e);
      out.push(
        `<line x1="${ox + margin.left}" y1="${y}" x2="${ox + margin.left + plotW}" y2="${y}" stroke="#eee"/>`,
        `<text x="${ox + margin.left - 4}" y="${y + 4}" text-anchor="end">${formatNs(10 ** e)}</text>`,
      );
    }
    out.push(
      `<text x="${ox + margin.left + plotW / 2}" y="${oy + panelH - 8}" text-anchor="middle" fill="#555">free pages</text>`,
    );
    for (const kind of KINDS) {
      for (const layout of LAYOUTS) {
        const pts = mine
          .filter((r) => r.type === kind && r.layout === layout)
          .sort((a, b) => a.freePages - b.freePages);
        if (pts.length === 0) continue;
        const d = pts.map((r, i) => `${i === 0 ? 'M' : 'L'}${px(r.freePages).toFixed(1)},${py(r.nsPerOp).toFixed(1)}`);
        out.push(
          `<path d="${d.join(' ')}" fill="none" stroke="${COLORS[kind]}" stroke-width="2" stroke-dasharray="${DASH[layout]}"><title>${kind} ${layout} ${op}</title></path>`,
        );
        for (const r of pts) {
          out.push(
            `<circle cx="${px(r.freePages).toFixed(1)}" cy="${py(r.nsPerOp).toFixed(1)}" r="2.5" fill="${COLORS[kind]}"><title>${kind} ${layout} ${op} @ ${r.freePages}: ${formatNs(r.nsPerOp)}</title></circle>`,
          );
        }
      }
    }
  });
  const ly = height - 18;
  let lx = 20;
  for (const kind of KINDS) {
    for (const layout of LAYOUTS) {
      out.push(
        `<line x1="${lx}" y1="${ly}" x2="${lx + 30}" y2="${ly}" stroke="${COLORS[kind]}" stroke-width="2" stroke-dasharray="${DASH[layout]}"/>`,
        `<text x="${lx + 36}" y="${ly + 4}">${kind}, ${layout}</text>`,
      );
      lx += 190;
    }
  }
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const started = performance.now();
  const loadBefore = loadavg();
  const results: Result[] = [];
  for (const size of SIZES) {
    for (const layout of LAYOUTS) {
      const ids = layoutIds(layout, size);
      for (const kind of KINDS) {
        const fl = make(kind);
        const t0 = performance.now();
        fl.init(ids);
        const initMs = performance.now() - t0;
        for (const op of OPS) {
          const r = await measure(fl, layout, size, op);
          if (fl.freeCount() !== size || fl.pendingCount() !== 0) {
            throw new Error(`${kind} ${layout} ${op}: the list was not restored`);
          }
          results.push(r);
        }
        process.stderr.write(
          `${kind.padEnd(7)} ${layout.padEnd(10)} ${String(size).padStart(8)} pages: init ${initMs.toFixed(0)} ms, ` +
            `${results
              .slice(-OPS.length)
              .map((r) => `${r.op} ${formatNs(r.nsPerOp)}`)
              .join(', ')}\n`,
        );
      }
    }
  }

  for (const op of OPS) {
    const rows = KINDS.flatMap((type) =>
      LAYOUTS.map((layout) => {
        const row: Record<string, string> = { type, layout };
        for (const size of SIZES) {
          const r = results.find((x) => x.op === op && x.type === type && x.layout === layout && x.freePages === size);
          row[size.toLocaleString('en-US')] = r === undefined ? '' : formatNs(r.nsPerOp);
        }
        return row;
      }),
    );
    printTable(
      `${op}: median time per ${op === 'release' ? `release() of ${RELEASE_RUNS} pending runs` : op === 'serialize' ? 'ids() + encodeFreelistPage()' : 'call'} (columns: free pages)`,
      rows,
    );
  }
  const seconds = (performance.now() - started) / 1000;
  console.log(
    `\nallocator benchmark took ${seconds.toFixed(0)} s${quick ? ' (--quick)' : ''}; ` +
      `load average ${loadBefore[0]!.toFixed(1)} before, ${loadavg()[0]!.toFixed(1)} after`,
  );

  const json = writeResults('allocator', {
    quick,
    pageSize: PAGE_SIZE,
    releaseRuns: RELEASE_RUNS,
    seconds: Math.round(seconds),
    // 1-minute load average before and after: figures from a busy shared machine are noisier.
    loadAverage: { before: loadBefore[0], after: loadavg()[0] },
    gcBetweenSamples: gcBetween,
    results: results.map((r) => ({
      ...r,
      nsPerOp: Math.round(r.nsPerOp * 10) / 10,
      meanNs: Math.round(r.meanNs * 10) / 10,
      rme: Math.round(r.rme * 10) / 10,
    })),
  });
  const svg = writeArtifact('allocator.svg', svgPlot(results));
  console.log(`wrote ${json} and ${svg}`);
}

await main();
