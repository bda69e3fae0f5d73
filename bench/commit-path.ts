/**
 * Commit-path benchmark: what a one-put commit costs on a large tree, split into CPU and disk.
 * In rounds that alternate (so every row sees the same disk weather): boltkv's one-put commit
 * without fdatasync (CPU and two page-cache writes), the same commit durable, and fdatasync floors
 * for the shapes of write a commit can make: one page then the meta (the engine bench's floor),
 * five contiguous pages then the meta, five scattered pages then the meta (a one-put commit on a
 * large tree writes about five pages, in as many places as the free runs it finds): the last two
 * rows say what contiguity is worth on this disk. CPU is the process's (all threads, the
 * collector's included), per commit.
 *
 * With `--slack X` a copy of the file opened with `allocationSlack: X` runs beside the defaults.
 * With `--baseline DIR` a copy runs on the engine of another checkout (DIR/src/bolt/index.ts, e.g.
 * `git archive <commit> src | tar -x -C DIR`), so old and new code meet the same disk weather.
 *
 *   node --import tsx --conditions=boltkv-source bench/commit-path.ts [--keys N] [--commits N] [--rounds N]
 *     [--slack X] [--baseline DIR] [--warm N] [--dir DIR]
 */
import { closeSync, copyFileSync, fdatasyncSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { open } from '../src/bolt/index.ts';
import { below, keyOf, mulberry32, shuffledOrder, valueOf } from './lib/engine-workloads.ts';
import { printTable, type Row, writeResults } from './lib/report.ts';

const args = process.argv.slice(2);
const value = (flag: string): string | undefined => {
  const i = args.indexOf(flag);
  return i >= 0 ? args[i + 1] : undefined;
};
const int = (flag: string, dflt: number): number => {
  const v = value(flag);
  const n = v === undefined ? dflt : Number(v);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`${flag} wants a positive integer`);
  return n;
};
const KEYS = int('--keys', 200_000);
const COMMITS = int('--commits', 400);
const ROUNDS = int('--rounds', 5);
/** allocationSlack of the second variant; 0 (the default) measures only the defaults. */
const SLACK = Number(value('--slack') ?? 0);
if (!(SLACK >= 0 && SLACK <= 0.9)) throw new Error('--slack wants a number from 0 to 0.9');
/** Untimed one-put commits before the rounds: about three leaf lifetimes (~25 keys per leaf). */
const WARM = int('--warm', Math.ceil((3 * KEYS) / 25));
/** The engine of another checkout, run beside this one's on a copy of the file. */
const BASELINE = value('--baseline');
const baseOpen: typeof open | null =
  BASELINE === undefined
    ? null
    : ((await import(pathToFileURL(resolve(BASELINE, 'src/bolt/index.ts')).href)) as { open: typeof open }).open;
const dir = mkdtempSync(join(resolve(value('--dir') ?? tmpdir()), 'boltkv-commit-path-'));

interface Series {
  us: number[];
  cpuUs: number;
  /** Data writes (pwrite or pwritev calls other than the meta's) over the series' commits. */
  writes: number;
}
const series = new Map<string, Series>();
function record(name: string, us: number, cpuUs = 0): void {
  let s = series.get(name);
  if (!s) series.set(name, (s = { us: [], cpuUs: 0, writes: 0 }));
  s.us.push(us);
  s.cpuUs += cpuUs;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

try {
  const path = join(dir, 'tree.db');
  {
    // Random order, 10k keys per transaction, as the engine bench loads.
    const db = open(path, { noSync: true });
    db.update((tx) => tx.createBucket('b'));
    const order = shuffledOrder(KEYS);
    for (let lo = 0; lo < KEYS; lo += 10_000) {
      db.update((tx) => {
        const b = tx.bucket('b')!;
        for (let i = lo; i < Math.min(KEYS, lo + 10_000); i++) b.put(keyOf(order[i]!), valueOf(order[i]!));
      });
    }
    db.sync();
    db.close();
  }
  const durable = open(path);
  const floorPath = join(dir, 'floor.bin');
  const fd = openSync(floorPath, 'w+');
  const page = new Uint8Array(4096).fill(7);
  const five = new Uint8Array(5 * 4096).fill(9);
  // A file as large as the tree's, written once, so the floors write over allocated blocks.
  const floorPages = Math.max(4096, Math.ceil(KEYS / 8));
  for (let p = 0; p < floorPages; p += 64) writeSync(fd, new Uint8Array(64 * 4096), 0, 64 * 4096, p * 4096);
  fdatasyncSync(fd);
  const rnd = mulberry32(5);
  let spot = 0;
  const floors: Record<string, () => void> = {
    'floor: 1 page, then meta': () => {
      writeSync(fd, page, 0, 4096, 4096 * 2);
      fdatasyncSync(fd);
      writeSync(fd, page, 0, 4096, 0);
      fdatasyncSync(fd);
    },
    'floor: 5 contiguous pages, then meta': () => {
      spot = (spot + 5) % (floorPages - 10);
      writeSync(fd, five, 0, five.length, (2 + spot) * 4096);
      fdatasyncSync(fd);
      writeSync(fd, page, 0, 4096, 0);
      fdatasyncSync(fd);
    },
    'floor: 5 scattered pages, then meta': () => {
      for (let j = 0; j < 5; j++) writeSync(fd, page, 0, 4096, (2 + below(rnd, floorPages - 2)) * 4096);
      fdatasyncSync(fd);
      writeSync(fd, page, 0, 4096, 0);
      fdatasyncSync(fd);
    },
  };
  const writes = mulberry32(11);
  const put = (db: ReturnType<typeof open>): void => {
    const k = below(writes, KEYS);
    db.update((tx) => tx.bucket('b')!.put(keyOf(k), valueOf(k + 1)));
  };
  // Count the data writes of a DB's commits: every pwrite/pwritev but the meta page's (offset
  // below two pages). Wraps the DB's file object, as the pager calls it.
  let dataWrites = 0;
  const countWrites = (db: ReturnType<typeof open>): void => {
    const file = db.pager.file;
    const write = file.write.bind(file);
    const writev = file.writev.bind(file);
    file.write = (buf, position) => {
      if (position >= 2 * db.pageSize) dataWrites++;
      return write(buf, position);
    };
    file.writev = (bufs, position) => {
      dataWrites++;
      return writev(bufs, position);
    };
  };
  const fileRows: Row[] = [];
  const fileState = (db: ReturnType<typeof open>, when: string): void => {
    const st = db.stats();
    fileRows.push({
      when,
      'file pages': st.pgid,
      'free pages': st.freePageN,
      'pending pages': st.pendingPageN,
      'free share': Math.round((st.freePageN / st.pgid) * 1000) / 1000,
      'RSS MiB': Math.round(process.memoryUsage().rss / 2 ** 20),
      'heap MiB': Math.round(process.memoryUsage().heapUsed / 2 ** 20),
    });
  };
  const timeLoop = (name: string, n: number, op: () => void): void => {
    const w0 = dataWrites;
    for (let i = 0; i < n; i++) {
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      op();
      const t1 = performance.now();
      const c = process.cpuUsage(c0);
      record(name, (t1 - t0) * 1000, c.user + c.system);
    }
    series.get(name)!.writes += dataWrites - w0;
  };
  fileState(durable, 'after the load');
  durable.close();
  // The variants: the defaults, and (with --slack X) the same file copied, opened with
  // allocationSlack X. Each first runs --warm one-put noSync commits so its freelist reaches the
  // steady state of this workload (a few leaf lifetimes), then all alternate.
  // Every variant runs on a copy: the loaded file itself, grown piece by piece, measured ~50 µs
  // slower per noSync commit than a copy of it under the same code (the copy is laid out anew).
  const defaultPath = join(dir, 'tree-default.db');
  copyFileSync(path, defaultPath);
  const variants: Array<{ label: string; path: string; opts: { allocationSlack?: number }; open: typeof open }> = [
    { label: '', path: defaultPath, opts: {}, open },
  ];
  if (baseOpen !== null) {
    const basePath = join(dir, 'tree-baseline.db');
    copyFileSync(path, basePath);
    variants.push({ label: ', baseline engine', path: basePath, opts: {}, open: baseOpen });
  }
  if (SLACK > 0) {
    const slackPath = join(dir, 'tree-slack.db');
    copyFileSync(path, slackPath);
    variants.push({ label: `, allocationSlack ${SLACK}`, path: slackPath, opts: { allocationSlack: SLACK }, open });
  }
  for (const v of variants) {
    const ns = v.open(v.path, { noSync: true, ...v.opts });
    for (let i = 0; i < WARM; i++) put(ns);
    fileState(ns, `after ${WARM.toLocaleString('en-US')} warm-up commits${v.label}`);
    ns.close();
    // Warm the page cache and the code paths of the durable handle too.
    const d = v.open(v.path, v.opts);
    for (let i = 0; i < 200; i++) put(d);
    d.close();
  }
  for (let r = 0; r < ROUNDS; r++) {
    // Each round starts with the next variant, so none always follows the floors' fdatasyncs.
    for (let j = 0; j < variants.length; j++) {
      const v = variants[(r + j) % variants.length]!;
      const ns = v.open(v.path, { noSync: true, ...v.opts });
      countWrites(ns);
      timeLoop(`boltkv one-put commit, noSync${v.label}`, COMMITS * 4, () => put(ns));
      ns.close();
      const db = v.open(v.path, v.opts);
      countWrites(db);
      timeLoop(`boltkv one-put commit, durable${v.label}`, COMMITS, () => put(db));
      if (r === ROUNDS - 1) fileState(db, `after the timed commits${v.label}`);
      db.close();
    }
    for (const [name, op] of Object.entries(floors)) timeLoop(name, COMMITS, op);
  }
  closeSync(fd);

  const floorP50 = (() => {
    const s = [...series.get('floor: 1 page, then meta')!.us].sort((a, b) => a - b);
    return percentile(s, 0.5);
  })();
  const rows: Row[] = [];
  const out: Record<string, unknown>[] = [];
  for (const [name, s] of series) {
    const sorted = [...s.us].sort((a, b) => a - b);
    const mean = s.us.reduce((a, b) => a + b, 0) / s.us.length;
    const p50 = percentile(sorted, 0.5);
    const row = {
      what: name,
      n: s.us.length,
      'p50 µs': Math.round(p50 * 10) / 10,
      'mean µs': Math.round(mean * 10) / 10,
      'p99 µs': Math.round(percentile(sorted, 0.99)),
      'process CPU µs/op': name.startsWith('boltkv') ? Math.round((s.cpuUs / s.us.length) * 10) / 10 : null,
      'data writes/commit': name.startsWith('boltkv') ? Math.round((s.writes / s.us.length) * 100) / 100 : null,
      '÷ floor p50': Math.round((p50 / floorP50) * 100) / 100,
    };
    rows.push(row);
    out.push(row);
  }
  printTable(
    `One-put commits on a ${KEYS.toLocaleString('en-US')}-key tree (8-byte keys, 100-byte values), ${ROUNDS} alternating rounds`,
    rows,
  );
  printTable('The file (pages of 4 KiB)', fileRows);
  console.log(
    `\nwrote ${writeResults('commit-path', { keys: KEYS, commits: COMMITS, rounds: ROUNDS, slack: SLACK, baseline: BASELINE ?? null, warm: WARM, rows: out, file: fileRows })}`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
