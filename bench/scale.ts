/**
 * Scale benchmark: grows one boltkv file to a target size with a write mix whose deletes fragment
 * it, and at checkpoints (100 MB, 1 GB, 10 GB, ... and the target) measures on that same file,
 * reopened with each freelist configuration in turn:
 *   hashmap                    the default: commits write no freelist page, a clean close writes it
 *   array                      sorted ids, first-fit scan (bbolt's original freelist), same policy
 *   hashmap+commit             freelistWrite: 'commit': every commit rewrites the freelist page, as Go's bbolt does
 * and with the defaults once more after a crash: a child process opens the file, commits one
 * durable put and kills itself with SIGKILL, so the file's meta records no freelist and the timed
 * open rebuilds it by walking the trees (src/bolt/freelist-rebuild.ts).
 *
 *   node --import tsx --conditions=boltkv-source bench/scale.ts                 # 1 GB, a few minutes
 *   node --import tsx --conditions=boltkv-source bench/scale.ts --size 10GB     # long: see docs/benchmarks.md
 *   node --import tsx --conditions=boltkv-source bench/scale.ts --quick         # 250 MB, under a minute
 *   ... --dir DIR (default: the OS temp directory)  --keep (leave the file)  --seed N
 *   node --import tsx --conditions=boltkv-source bench/scale.ts --report bench/results/scale-10GB.json   # tables of a saved run
 *
 * Growth: transactions of 2,000 puts of new keys (values 200-1,000 bytes; 2% are 8-40 KiB, so
 * their overflow pages need contiguous runs) and 500 deletes of random live keys, committed with
 * noSync: growth is about the allocator and the tree, not the disk. At a checkpoint a quarter of
 * the live keys are deleted (as a compaction would), which leaves free runs scattered through the
 * file; then, per freelist configuration, the file is reopened and measured:
 *   get                random live key, one read txn, p50/p99
 *   put (noSync)       a write txn of one small put, begin to commit returned, p50/p99
 *   commit (noSync)    the tx.commit() part of those, p50/p99
 *   big put (noSync)   a write txn of one 24 KiB value (a 7-page run), p50/p99
 *   durable put        the small-put txn with fdatasync (reopened without noSync), p50/p99
 *   floor              after each durable put, one random page and page 0 of the same file
 *                      rewritten unchanged, each followed by fdatasync: what the disk alone costs
 *                      for a commit's two syncs at this file size (it is not flat either)
 * plus the free and pending page counts, the freelist page's size and the time to open the file
 * after a clean close, the process's RSS and heap, and for the growth phase before
 * the checkpoint, the commit time of its last growth transactions. Growth then resumes, and first
 * refills the holes the deletes left.
 *
 * The last table is the flat-cost check (issue 14): durable put p50/p99 at each checkpoint ÷ the
 * same at 100 MB, with default options, and the open times after a clean close and after a crash.
 *
 * Output: a progress bar on stderr, tables on stdout, bench/results/scale-<size>.json.
 */
import { spawnSync } from 'node:child_process';
import {
  closeSync,
  fdatasyncSync,
  fstatSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { open, type DB, type OpenOptions } from '../src/bolt/index.ts';
import { mulberry32 } from './lib/engine-workloads.ts';
import { printTable, writeResults, type Row } from './lib/report.ts';

const BUCKET = 'scale';
const PUTS_PER_TXN = 2000;
const DELETES_PER_TXN = 500;
const BIG_EVERY = 50; // 2% of puts carry an overflow value
const GROWTH_COMMITS_KEPT = 200;
const SWEEP_SHARE = 0.25;
const SWEEP_PER_TXN = 20_000;

interface Config {
  label: string;
  options: Pick<OpenOptions, 'freelist' | 'freelistWrite'>;
}
const CONFIGS: Config[] = [
  { label: 'hashmap', options: { freelist: 'hashmap' } },
  { label: 'array', options: { freelist: 'array' } },
  { label: 'hashmap+commit', options: { freelist: 'hashmap', freelistWrite: 'commit' } },
];
const DEFAULT_CONFIG = 'hashmap';

interface Args {
  size: number;
  sizeLabel: string;
  dir: string;
  keep: boolean;
  seed: number;
  quick: boolean;
  /** Operations per checkpoint measurement. */
  gets: number;
  puts: number;
  bigPuts: number;
  durablePuts: number;
}

/** "10GB", "500MB", "1.5GiB", "123456789" → bytes (KB/MB/GB/TB decimal, KiB/MiB/GiB/TiB binary). */
export function parseSize(s: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B?|B)?\s*$/i.exec(s);
  if (!m) throw new Error(`cannot read a size from ${JSON.stringify(s)} (try 1GB, 500MB, 10GiB)`);
  const unit = (m[2] ?? 'B').toUpperCase();
  const pow = { B: 0, K: 1, M: 2, G: 3, T: 4 }[unit[0] as 'B' | 'K' | 'M' | 'G' | 'T'];
  const base = unit.includes('I') ? 1024 : 1000;
  return Math.round(Number(m[1]) * base ** pow);
}

function label(bytes: number): string {
  if (bytes >= 1e9) return `${+(bytes / 1e9).toFixed(2)}GB`;
  return `${+(bytes / 1e6).toFixed(1)}MB`;
}

function parseArgs(argv: readonly string[]): Args {
  const value = (f: string): string | undefined => {
    const i = argv.indexOf(f);
    if (i < 0) return undefined;
    const v = argv[i + 1];
    if (v === undefined || v.startsWith('--')) throw new Error(`${f} needs a value`);
    return v;
  };
  const quick = argv.includes('--quick');
  const size = parseSize(value('--size') ?? (quick ? '250MB' : '1GB'));
  if (size < 20e6) throw new Error('--size must be at least 20MB');
  const seed = Number(value('--seed') ?? 7);
  if (!Number.isSafeInteger(seed)) throw new Error('--seed must be an integer');
  return {
    size,
    sizeLabel: label(size),
    dir: resolve(value('--dir') ?? tmpdir()),
    keep: argv.includes('--keep'),
    seed,
    quick,
    gets: quick ? 5000 : 20000,
    puts: quick ? 150 : 400,
    bigPuts: quick ? 60 : 150,
    durablePuts: quick ? 30 : 300,
  };
}

/** Checkpoints: decades from 100 MB up to the target, and the target itself. */
function checkpoints(size: number): number[] {
  const out: number[] = [];
  for (let c = 100e6; c < size; c *= 10) out.push(c);
  out.push(size);
  return out;
}

// ---- keys, values, live set ----

/** Key of id: 4 scrambled bytes first (random tree positions), then the id itself (uniqueness). */
function keyOf(id: number): Uint8Array {
  let h = Math.imul(id ^ 0x9e3779b9, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  const k = new Uint8Array(8);
  const dv = new DataView(k.buffer);
  dv.setUint32(0, h >>> 0);
  dv.setUint32(4, id >>> 0);
  return k;
}

const POOL = (() => {
  const next = mulberry32(99);
  const b = new Uint8Array(1 << 20);
  const dv = new DataView(b.buffer);
  for (let i = 0; i < b.length; i += 4) dv.setUint32(i, next(), true);
  return b;
})();

function bytes(next: () => number, n: number): Uint8Array {
  const off = next() % (POOL.length - n);
  return POOL.subarray(off, off + n);
}

/** Ids ever put, and which are still live: deletes pick random live ids. */
class LiveSet {
  private live = new Uint8Array(1 << 20);
  private list = new Uint32Array(1 << 20);
  private pos = new Uint32Array(1 << 20);
  count = 0;
  nextId = 0;

  add(): number {
    const id = this.nextId++;
    if (id >= this.live.length) this.growTo(id * 2);
    this.live[id] = 1;
    this.pos[id] = this.count;
    if (this.count >= this.list.length) {
      const l = new Uint32Array(this.list.length * 2);
      l.set(this.list);
      this.list = l;
    }
    this.list[this.count++] = id;
    return id;
  }

  /** A random live id, removed from the set. */
  take(next: () => number): number {
    const i = next() % this.count;
    const id = this.list[i]!;
    const last = this.list[--this.count]!;
    this.list[i] = last;
    this.pos[last] = i;
    this.live[id] = 0;
    return id;
  }

  /** A random live id, left in the set. */
  pick(next: () => number): number {
    return this.list[next() % this.count]!;
  }

  private growTo(n: number): void {
    const l = new Uint8Array(n);
    l.set(this.live);
    this.live = l;
    const p = new Uint32Array(n);
    p.set(this.pos);
    this.pos = p;
  }
}

// ---- measurement helpers ----

function pct(samples: number[], p: number): number {
  if (samples.length === 0) return NaN;
  const s = Float64Array.from(samples).sort();
  return s[Math.floor(p * (s.length - 1))]!;
}

const us = (ms: number): number => Math.round(ms * 10_000) / 10; // ms → µs, one decimal

function fileBytes(db: DB): number {
  return db.stats().pgid * db.pageSize;
}

/** Progress bar on stderr: redrawn in place on a terminal; otherwise a line per 5% or per 10 s. */
class Bar {
  private lastDraw = 0;
  private lastPct = -1;
  private readonly tty = process.stderr.isTTY === true;
  constructor(private readonly target: number) {}

  draw(done: number, text: string, force = false): void {
    const now = performance.now();
    const frac = Math.min(1, done / this.target);
    const p = Math.floor(frac * 100);
    if (this.tty) {
      if (!force && now - this.lastDraw < 200) return;
      const width = 30;
      const fill = Math.round(frac * width);
      process.stderr.write(
        `\r[${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${String(p).padStart(3)}% ${text}\x1b[K`,
      );
    } else {
      if (!force && p < this.lastPct + 5 && now - this.lastDraw < 10_000) return;
      process.stderr.write(`[${String(p).padStart(3)}%] ${text}\n`);
      this.lastPct = p;
    }
    this.lastDraw = now;
  }

  line(text: string): void {
    if (this.tty) process.stderr.write('\r\x1b[K');
    process.stderr.write(`${text}\n`);
  }
}

// ---- the run ----

interface CheckpointRow {
  checkpoint: string;
  config: string;
  fileBytes: number;
  liveKeys: number;
  freePages: number;
  pendingPages: number;
  freelistPageBytes: number;
  openMs: number;
  getP50Us: number;
  getP99Us: number;
  putP50Us: number;
  putP99Us: number;
  commitP50Us: number;
  commitP99Us: number;
  bigPutP50Us: number;
  bigPutP99Us: number;
  durablePutP50Us: number;
  durablePutP99Us: number;
  /**
   * The disk's floor on this same file at this size: rewrite one random existing page unchanged and
   * fdatasync, then page 0 unchanged and fdatasync (a commit's two syncs), one sample after each
   * durable put. Absent in results saved before it was measured.
   */
  floorP50Us?: number;
  floorP99Us?: number;
  rssMiB: number;
  heapMiB: number;
}

interface CrashRow {
  checkpoint: string;
  fileBytes: number;
  /** Open of the file a SIGKILLed writer left (no freelist on disk): the rebuild walk. */
  openAfterCrashMs: number;
  /** Free pages the rebuild found. */
  freePages: number;
}

interface GrowthRow {
  checkpoint: string;
  fileBytes: number;
  seconds: number;
  /** null when the file had already passed this checkpoint (the deletes grow it too). */
  putsPerSec: number | null;
  growthCommits: number;
  commitP50Ms: number | null;
  commitP99Ms: number | null;
  freelistPages: number;
}

function measure(path: string, cp: string, cfg: Config, keys: LiveSet, a: Args, rng: () => number): CheckpointRow {
  let db = open(path, { ...cfg.options, noSync: true });
  const pageSize = db.pageSize;
  try {
    // Gets, one read transaction.
    const gets: number[] = [];
    db.view((tx) => {
      const b = tx.bucket(BUCKET)!;
      for (let i = 0; i < a.gets; i++) {
        const k = keyOf(keys.pick(rng));
        const t0 = performance.now();
        const v = b.get(k);
        gets.push(performance.now() - t0);
        if (v === undefined) throw new Error(`scale: a live key is missing at ${cp}`);
      }
    });
    // Small and big single-put transactions, noSync: the CPU cost of a write, commit included.
    const puts: number[] = [];
    const commits: number[] = [];
    const bigs: number[] = [];
    const onePut = (value: Uint8Array, into: number[], commitInto: number[] | null): void => {
      const id = keys.add();
      const t0 = performance.now();
      const tx = db.begin(true);
      tx.bucket(BUCKET)!.put(keyOf(id), value);
      const c0 = performance.now();
      tx.commit();
      const t1 = performance.now();
      into.push(t1 - t0);
      commitInto?.push(t1 - c0);
    };
    for (let i = 0; i < a.puts; i++) onePut(bytes(rng, 200 + (rng() % 800)), puts, commits);
    for (let i = 0; i < a.bigPuts; i++) onePut(bytes(rng, 24 << 10), bigs, null);
    const st = db.stats();
    db.close();
    // The freelist page as the close (or, for 'commit', the last commit) left it.
    const freelistPageBytes = freelistPageSize(path, cfg);

    // Durable single puts: the same options without noSync. This second open is the one timed:
    // the open after a clean close, which reads the freelist page.
    const o1 = performance.now();
    db = open(path, { ...cfg.options });
    const openMs = performance.now() - o1;
    // Flush what the noSync writes left in the OS cache, so the first durable commit does not pay it.
    db.sync();
    const durable: number[] = [];
    const floor: number[] = [];
    const fd = openSync(path, 'r+');
    try {
      const filePages = Math.floor(fstatSync(fd).size / pageSize);
      const scratch = Buffer.alloc(pageSize);
      const rewrite = (pgid: number): void => {
        readSync(fd, scratch, 0, pageSize, pgid * pageSize);
        writeSync(fd, scratch, 0, pageSize, pgid * pageSize);
        fdatasyncSync(fd);
      };
      for (let i = 0; i < a.durablePuts; i++) {
        const id = keys.add();
        const v = bytes(rng, 200 + (rng() % 800));
        const t0 = performance.now();
        db.update((tx) => tx.bucket(BUCKET)!.put(keyOf(id), v));
        durable.push(performance.now() - t0);
        // The same bytes go back where they were, while no transaction is open: the file is unchanged.
        const f0 = performance.now();
        rewrite(2 + (rng() % (filePages - 2)));
        rewrite(0);
        floor.push(performance.now() - f0);
      }
    } finally {
      closeSync(fd);
    }
    return {
      checkpoint: cp,
      config: cfg.label,
      fileBytes: st.pgid * pageSize,
      liveKeys: keys.count,
      freePages: st.freePageN,
      pendingPages: st.pendingPageN,
      freelistPageBytes,
      openMs: Math.round(openMs * 10) / 10,
      getP50Us: us(pct(gets, 0.5)),
      getP99Us: us(pct(gets, 0.99)),
      putP50Us: us(pct(puts, 0.5)),
      putP99Us: us(pct(puts, 0.99)),
      commitP50Us: us(pct(commits, 0.5)),
      commitP99Us: us(pct(commits, 0.99)),
      bigPutP50Us: us(pct(bigs, 0.5)),
      bigPutP99Us: us(pct(bigs, 0.99)),
      durablePutP50Us: us(pct(durable, 0.5)),
      durablePutP99Us: us(pct(durable, 0.99)),
      floorP50Us: us(pct(floor, 0.5)),
      floorP99Us: us(pct(floor, 0.99)),
      ...memory(),
    };
  } finally {
    db.close();
  }
}

function memory(): { rssMiB: number; heapMiB: number } {
  const m = process.memoryUsage();
  return { rssMiB: Math.round(m.rss / 2 ** 20), heapMiB: Math.round(m.heapUsed / 2 ** 20) };
}

/** Bytes of the freelist page the file's meta points at (0 when it records none). */
function freelistPageSize(path: string, cfg: Config): number {
  const db = open(path, { ...cfg.options, readOnly: true });
  try {
    db.stats(); // loads the freelist page, which sets its overflow count
    return (db.freelistOverflow + 1) * db.pageSize;
  } finally {
    db.close();
  }
}

/**
 * A crash: a child process opens the file with the defaults, commits one durable put (its meta now
 * records no freelist) and SIGKILLs itself. Then the timed open rebuilds the freelist by walking
 * the trees; its close writes the freelist again.
 */
function crashOpen(path: string, cp: string, id: number): CrashRow {
  const child = spawnSync(
    process.execPath,
    [...process.execArgv, fileURLToPath(import.meta.url), '--crash-child', path, String(id)],
    {
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );
  if (child.signal !== 'SIGKILL')
    throw new Error(`scale: the crashing child ended with ${child.signal ?? `status ${child.status}`}`);
  const t0 = performance.now();
  const db = open(path);
  const ms = performance.now() - t0;
  try {
    if (db.view((tx) => tx.bucket(BUCKET)!.get(keyOf(id))) === undefined)
      throw new Error('scale: the crashed put is missing');
    const st = db.stats();
    return {
      checkpoint: cp,
      fileBytes: st.pgid * st.pageSize,
      openAfterCrashMs: Math.round(ms * 10) / 10,
      freePages: st.freePageN,
    };
  } finally {
    db.close();
  }
}

/** The crashing child: one durable put, then SIGKILL before any close can write the freelist. */
function crashChild(path: string, id: number): void {
  const db = open(path);
  db.update((tx) => tx.bucket(BUCKET)!.put(keyOf(id), new Uint8Array(100)));
  process.kill(process.pid, 'SIGKILL');
}

async function main(): Promise<void> {
  if (process.argv[2] === '--crash-child') return crashChild(process.argv[3]!, Number(process.argv[4]));
  if (process.argv[2] === '--report') {
    // Print the tables of a saved run (a stopped one included) from its JSON.
    const saved = JSON.parse(readFileSync(process.argv[3]!, 'utf8')) as {
      growth: GrowthRow[];
      checkpoints: CheckpointRow[];
      crashes: CrashRow[];
    };
    return printTables(saved.growth, saved.checkpoints, saved.crashes);
  }
  const a = parseArgs(process.argv.slice(2));
  const cps = checkpoints(a.size);
  const dir = mkdtempSync(join(a.dir, 'boltkv-scale-'));
  const path = join(dir, 'scale.db');
  const bar = new Bar(a.size);
  const rng = mulberry32(a.seed);
  const keys = new LiveSet();
  const growth: GrowthRow[] = [];
  const rows: CheckpointRow[] = [];
  const crashes: CrashRow[] = [];
  bar.line(`scale: growing ${path} to ${a.sizeLabel}; checkpoints ${cps.map(label).join(', ')}`);
  try {
    let db = open(path, { noSync: true });
    db.update((tx) => tx.createBucketIfNotExists(BUCKET));
    let segStart = performance.now();
    let segPuts = 0;
    let commits: number[] = [];
    const started = performance.now();
    for (const cp of cps) {
      while (fileBytes(db) < cp) {
        const tx = db.begin(true);
        const b = tx.bucket(BUCKET)!;
        for (let i = 0; i < PUTS_PER_TXN; i++) {
          const big = rng() % BIG_EVERY === 0;
          b.put(keyOf(keys.add()), bytes(rng, big ? (8 << 10) + (rng() % (32 << 10)) : 200 + (rng() % 800)));
        }
        for (let i = 0; i < DELETES_PER_TXN && keys.count > PUTS_PER_TXN; i++) b.delete(keyOf(keys.take(rng)));
        const c0 = performance.now();
        tx.commit();
        commits.push(performance.now() - c0);
        if (commits.length > GROWTH_COMMITS_KEPT * 2) commits = commits.slice(-GROWTH_COMMITS_KEPT);
        segPuts += PUTS_PER_TXN;
        const st = db.stats();
        const elapsed = (performance.now() - started) / 1000;
        bar.draw(
          st.pgid * st.pageSize,
          `${label(st.pgid * st.pageSize)} / ${a.sizeLabel} · ${keys.count.toLocaleString('en-US')} keys · freelist ${(st.freePageN + st.pendingPageN).toLocaleString('en-US')} pages · ${elapsed.toFixed(0)} s`,
        );
      }
      const secs = (performance.now() - segStart) / 1000;
      const st = db.stats();
      const last = commits.slice(-GROWTH_COMMITS_KEPT);
      growth.push({
        checkpoint: label(cp),
        fileBytes: st.pgid * st.pageSize,
        seconds: Math.round(secs * 10) / 10,
        putsPerSec: segPuts > 0 ? Math.round(segPuts / secs) : null,
        growthCommits: last.length,
        commitP50Ms: last.length > 0 ? Math.round(pct(last, 0.5) * 100) / 100 : null,
        commitP99Ms: last.length > 0 ? Math.round(pct(last, 0.99) * 100) / 100 : null,
        freelistPages: st.freePageN + st.pendingPageN,
      });
      // Fragment: delete a quarter of the live keys, as a compaction would. Leaves are rewritten
      // (copy on write) and the deleted overflow values leave runs of free pages all over the file.
      const sweep = Math.floor(keys.count * SWEEP_SHARE);
      for (let done = 0; done < sweep; ) {
        const n = Math.min(SWEEP_PER_TXN, sweep - done);
        db.update((tx) => {
          const b = tx.bucket(BUCKET)!;
          for (let i = 0; i < n; i++) b.delete(keyOf(keys.take(rng)));
        });
        done += n;
        bar.draw(
          cp,
          `checkpoint ${label(cp)}: deleting ${sweep.toLocaleString('en-US')} keys (${done.toLocaleString('en-US')})`,
        );
      }
      db.close();
      bar.draw(cp, `checkpoint ${label(cp)}: measuring ${CONFIGS.map((c) => c.label).join(', ')}`, true);
      bar.line('');
      for (const cfg of CONFIGS) {
        const r = measure(path, label(cp), cfg, keys, a, rng);
        rows.push(r);
        bar.line(
          `  ${label(cp)} ${cfg.label}: open ${r.openMs} ms, put p50 ${r.putP50Us} µs, commit p50 ${r.commitP50Us} µs, ` +
            `big put p50 ${r.bigPutP50Us} µs, durable p50 ${r.durablePutP50Us} µs, free ${r.freePages} pages, rss ${r.rssMiB} MiB`,
        );
      }
      const crash = crashOpen(path, label(cp), keys.add());
      crashes.push(crash);
      bar.line(
        `  ${label(cp)} after a crash: open ${crash.openAfterCrashMs} ms (rebuilt ${crash.freePages} free pages)`,
      );
      saveResults(a, cps, growth, rows, crashes, false);
      db = open(path, { noSync: true });
      segStart = performance.now();
      segPuts = 0;
      commits = [];
    }
    db.close();
    bar.line(
      `scale: done in ${((performance.now() - started) / 1000).toFixed(0)} s; file ${label(statSync(path).size)} on disk`,
    );
  } finally {
    if (a.keep) bar.line(`scale: kept ${path}`);
    else rmSync(dir, { recursive: true, force: true });
  }

  printTables(growth, rows, crashes);
  console.log(`\nwrote ${saveResults(a, cps, growth, rows, crashes, true)}`);
}

function printTables(growth: GrowthRow[], rows: CheckpointRow[], crashes: CrashRow[]): void {
  printTable(
    `growth (noSync commits of ${PUTS_PER_TXN} puts + ${DELETES_PER_TXN} deletes, hashmap freelist): segment ending at each checkpoint`,
    growth.map(
      (g): Row => ({
        'up to': g.checkpoint,
        seconds: g.seconds,
        'puts/s': g.putsPerSec,
        [`commit p50 ms (last ${GROWTH_COMMITS_KEPT})`]: g.commitP50Ms,
        'commit p99 ms': g.commitP99Ms,
        file: label(g.fileBytes),
        'freelist pages': g.freelistPages,
      }),
    ),
  );
  printTable(
    'at each checkpoint, same file reopened per freelist config (µs; put/commit/big put with noSync, durable put with fdatasync)',
    rows.map(
      (r): Row => ({
        at: r.checkpoint,
        freelist: r.config,
        'free pages': r.freePages,
        pending: r.pendingPages,
        'freelist page KiB': Math.round(r.freelistPageBytes / 1024),
        'open ms': r.openMs,
        'get p50': r.getP50Us,
        'get p99': r.getP99Us,
        'put p50': r.putP50Us,
        'put p99': r.putP99Us,
        'commit p50': r.commitP50Us,
        'commit p99': r.commitP99Us,
        'big put p50': r.bigPutP50Us,
        'big put p99': r.bigPutP99Us,
        'durable p50': r.durablePutP50Us,
        'durable p99': r.durablePutP99Us,
        'floor p50': r.floorP50Us ?? null,
        'RSS MiB': r.rssMiB,
        'heap MiB': r.heapMiB,
      }),
    ),
  );
  // The flat-cost check: default options at each checkpoint against the first (100 MB).
  const defaults = rows.filter((r) => r.config === DEFAULT_CONFIG);
  const base = defaults[0]!;
  const ratio = (x: number, y: number): number => Math.round((x / y) * 100) / 100;
  printTable(
    `flat cost, default options (hashmap, freelist written at close): each checkpoint ÷ ${base.checkpoint}; open times`,
    defaults.map((r): Row => {
      const c = crashes.find((x) => x.checkpoint === r.checkpoint);
      return {
        at: r.checkpoint,
        'durable p50 µs': r.durablePutP50Us,
        'durable p99 µs': r.durablePutP99Us,
        [`p50 ÷ ${base.checkpoint}`]: ratio(r.durablePutP50Us, base.durablePutP50Us),
        [`p99 ÷ ${base.checkpoint}`]: ratio(r.durablePutP99Us, base.durablePutP99Us),
        'floor p50 µs (2 page writes + 2 fdatasyncs)': r.floorP50Us ?? null,
        [`floor p50 ÷ ${base.checkpoint}`]:
          r.floorP50Us && base.floorP50Us ? ratio(r.floorP50Us, base.floorP50Us) : null,
        'durable p50 ÷ floor': r.floorP50Us ? ratio(r.durablePutP50Us, r.floorP50Us) : null,
        'commit p50 µs (noSync)': r.commitP50Us,
        [`commit p50 ÷ ${base.checkpoint}`]: ratio(r.commitP50Us, base.commitP50Us),
        'open after clean close ms': r.openMs,
        'open after crash ms': c?.openAfterCrashMs ?? null,
        'crash open GB/s of file': c ? Math.round((c.fileBytes / 1e9 / (c.openAfterCrashMs / 1000)) * 100) / 100 : null,
        'RSS MiB': r.rssMiB,
        'heap MiB': r.heapMiB,
      };
    }),
  );
}

/** Written after every checkpoint too, so a long run that is stopped early still leaves its figures. */
function saveResults(
  a: Args,
  cps: number[],
  growth: GrowthRow[],
  rows: CheckpointRow[],
  crashes: CrashRow[],
  complete: boolean,
): string {
  return writeResults(`scale-${a.sizeLabel}`, {
    options: {
      size: a.size,
      checkpoints: cps,
      putsPerTxn: PUTS_PER_TXN,
      deletesPerTxn: DELETES_PER_TXN,
      smallValueBytes: [200, 999],
      bigValueBytes: [8 << 10, (40 << 10) - 1],
      bigValueShare: 1 / BIG_EVERY,
      growthSync: 'noSync',
      measured: { gets: a.gets, puts: a.puts, bigPuts: a.bigPuts, bigPutBytes: 24 << 10, durablePuts: a.durablePuts },
      seed: a.seed,
    },
    growth,
    checkpoints: rows,
    crashes,
    complete,
  });
}

main().catch((err: unknown) => {
  // A bad argument gets its message alone; anything else keeps its stack.
  console.error(
    err instanceof Error && /^(--|cannot read a size)/.test(err.message) ? `scale bench: ${err.message}` : err,
  );
  process.exitCode = 1;
});
