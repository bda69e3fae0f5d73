/**
 * A pure model of small commits on a large tree, for weighing allocation policies without I/O:
 * every commit rewrites one random leaf's path (leaf, each branch level, the root bucket's leaf),
 * frees the old pages (pending until the next commit begins, as with no open readers) and takes
 * new ones from an allocator. Counted per commit: how many contiguous runs its pages form (what
 * the pager writes as separate extents) and how large the file is.
 *
 * The allocator is either the engine's own freelist (through the `Freelist` contract, so the
 * figures are the engine's) or the model's bitmap policies used to explore before porting.
 */
import type { Freelist } from '../../src/bolt/freelist/freelist.ts';
import { mulberry32 } from './engine-workloads.ts';

/** Shape of the tree: leaves and branch fan-out (levels are derived), plus the root bucket's leaf. */
export interface TreeShape {
  leaves: number;
  fanout: number;
}

/** What the model needs from an allocator. Page ids start at 2 (0 and 1 are the metas). */
export interface SimAllocator {
  /** Start of txid t: pages freed by t - 1 become reusable. */
  begin(t: number): void;
  /**
   * n pages for txid t, in the order spill asks for them (leaf first, the root bucket's leaf last);
   * the first `longLived` of them are leaves among many, which outlive the rest by far (spill's hint).
   */
  alloc(t: number, n: number, longLived: number): number[];
  free(t: number, id: number): void;
  /** High-water mark: the file's size in pages. */
  size(): number;
  freePages(): number;
  /** A file of `size` pages (ids 2..size-1 usable) whose free pages are `free`; the rest are in use. */
  init(size: number, free: readonly number[]): void;
}

/** Levels' node counts, leaves first, then the root bucket's leaf (one node). */
export function levelsOf(shape: TreeShape): number[] {
  const levels = [shape.leaves];
  while (levels[levels.length - 1]! > 1) levels.push(Math.ceil(levels[levels.length - 1]! / shape.fanout));
  levels.push(1);
  return levels;
}

export interface SimResult {
  commits: number;
  /** Mean runs per commit over the last `window` commits. */
  runsPerCommit: number;
  /** Share of the last window's commits written as one run. */
  oneRun: number;
  fileStart: number;
  fileEnd: number;
  /** File pages at checkpoints (every commits/10). */
  fileAt: number[];
  runsAt: number[];
  freeEnd: number;
  live: number;
}

/** Deterministic floats in [0, 1): the engine bench's mulberry32 scaled. */
export function rng(seed: number): () => number {
  const next = mulberry32(seed);
  return () => next() / 4294967296;
}

/** Contiguous runs among ids (any order): what the pager writes as separate extents. */
export function countRuns(ids: readonly number[]): number {
  const s = [...ids].sort((a, b) => a - b);
  let runs = s.length > 0 ? 1 : 0;
  for (let i = 1; i < s.length; i++) if (s[i] !== s[i - 1]! + 1) runs++;
  return runs;
}

/** Run `commits` one-put commits on `shape` with `alloc`; the initial tree is laid out shuffled. */
export function simulate(
  shape: TreeShape,
  alloc: SimAllocator,
  commits: number,
  opts: { seed?: number; window?: number; initialFree?: number } = {},
): SimResult {
  const seed = opts.seed ?? 1;
  const window = opts.window ?? 0;
  const levels = levelsOf(shape);
  const offsets: number[] = [];
  let live = 0;
  for (const n of levels) {
    offsets.push(live);
    live += n;
  }
  const rand = rng(seed);
  // pageOf[node] for every node of every level; the initial layout is a random permutation.
  // The initial file holds the tree and `initialFree` of its pages free, all shuffled.
  const total = Math.round(live / (1 - (opts.initialFree ?? 0)));
  const perm = new Float64Array(total);
  for (let i = 0; i < total; i++) perm[i] = 2 + i;
  for (let i = total - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const x = perm[i]!;
    perm[i] = perm[j]!;
    perm[j] = x;
  }
  const pageOf = perm.subarray(0, live);
  alloc.init(2 + total, Array.from(perm.subarray(live)));
  const fileStart = alloc.size();
  const win = window > 0 ? window : Math.max(1, Math.floor(commits / 4));
  let runSum = 0;
  let oneRun = 0;
  const fileAt: number[] = [];
  const runsAt: number[] = [];
  let cpRuns = 0;
  const cp = Math.max(1, Math.floor(commits / 10));
  const path: number[] = new Array(levels.length);
  // The leaf of a tree with more than one leaf is long-lived; the root bucket's leaf is not.
  const longLived = shape.leaves > 1 ? 1 : 0;
  // Pages in use, to catch an allocator that hands out a live page or one twice.
  let used = new Uint8Array(2 * (2 + total));
  used[0] = used[1] = 1;
  for (const id of pageOf) used[id] = 1;
  for (let c = 0; c < commits; c++) {
    const t = c + 2;
    alloc.begin(t);
    let idx = Math.floor(rand() * shape.leaves);
    for (let l = 0; l < levels.length; l++) {
      path[l] = offsets[l]! + (l === levels.length - 1 ? 0 : idx);
      idx = Math.floor(idx / shape.fanout);
    }
    const ids = alloc.alloc(t, path.length, longLived);
    for (const id of ids) {
      if (id >= used.length) {
        const grown = new Uint8Array(2 * id);
        grown.set(used);
        used = grown;
      }
      if (used[id] !== 0) throw new Error(`commit ${t}: page ${id} handed out while in use`);
      used[id] = 1;
    }
    for (let l = 0; l < path.length; l++) {
      const old = pageOf[path[l]!]!;
      used[old] = 0;
      alloc.free(t, old);
      pageOf[path[l]!] = ids[l]!;
    }
    const runs = countRuns(ids);
    cpRuns += runs;
    if (c >= commits - win) {
      runSum += runs;
      if (runs === 1) oneRun++;
    }
    if ((c + 1) % cp === 0) {
      fileAt.push(alloc.size());
      runsAt.push(cpRuns / cp);
      cpRuns = 0;
    }
  }
  return {
    commits,
    runsPerCommit: runSum / win,
    oneRun: oneRun / win,
    fileStart,
    fileEnd: alloc.size(),
    fileAt,
    runsAt,
    freeEnd: alloc.freePages(),
    live,
  };
}

/** How tx.ts's prepareCommit places a commit's pages; the engine's defaults unless said. */
export interface EnginePolicy {
  /**
   * As the engine's `allocationSlack` option: while free pages are under that share of the file,
   * a small commit that finds no free run of its whole size grows the file instead.
   */
  slack?: number;
  /**
   * Placement by lifetime (the engine's default for commits of at most 16 pages): long-lived pages
   * apart, by best fit, and the rest in one run reserved whole; false: one reservation for all.
   */
  byLifetime?: boolean;
}

/** As tx.ts: commits of at most this many pages are placed by lifetime (or grown by the slack). */
const SMALL_COMMIT_PAGES = 16;
/** As tx.ts: with at least this share of the file free, a small commit first tries one whole run. */
const WHOLE_RUN_FREE_SHARE = 0.6;

/**
 * The engine's freelist behind the model, driven as tx.ts drives it: a reservation sized by the
 * previous commit, pages taken one by one in spill's order, growth at the end when it has nothing.
 */
export class EngineAllocator implements SimAllocator {
  private hw = 2;
  private last = 0;
  private lastRun = 0;
  private readonly slack: number;
  private readonly byLifetime: boolean;
  constructor(
    private readonly fl: Freelist,
    policy: EnginePolicy = {},
  ) {
    this.slack = policy.slack ?? 0;
    this.byLifetime = policy.byLifetime ?? true;
  }
  init(size: number, free: readonly number[]): void {
    this.fl.init(free);
    this.hw = size;
  }
  begin(t: number): void {
    this.fl.release(t - 1);
  }
  alloc(t: number, n: number, longLived: number): number[] {
    const hint = this.last;
    const want = hint + (hint >> 3);
    const small = hint <= SMALL_COMMIT_PAGES;
    let grow = false;
    let place = false;
    if (hint > 1 && small && this.slack > 0 && this.fl.freeCount() < this.slack * this.hw) {
      grow = this.fl.reserve(t, want, want) === 0;
    } else if (this.byLifetime && hint >= 1 && small) {
      const roomy = this.fl.freeCount() >= WHOLE_RUN_FREE_SHARE * this.hw;
      if (!(hint > 1 && roomy && this.fl.reserve(t, want, want) !== 0)) {
        place = true;
        if (this.lastRun > 1) this.fl.reserve(t, this.lastRun, this.lastRun);
      }
    } else if (hint > 1) this.fl.reserve(t, want);
    const out: number[] = [];
    try {
      for (let i = 0; i < n; i++) {
        let id = grow ? 0 : this.fl.allocate(t, 1, place && i < longLived);
        if (id === 0) id = this.hw++;
        out.push(id);
      }
    } finally {
      this.fl.endReservation();
    }
    this.last = n;
    this.lastRun = n - Math.min(n, longLived);
    return out;
  }
  free(t: number, id: number): void {
    this.fl.free(t, id, 0);
  }
  size(): number {
    return this.hw;
  }
  freePages(): number {
    return this.fl.freeCount();
  }
}

export type Orientation = 'front' | 'alternate' | 'neighbour' | 'pair';

/**
 * Exploration model: page states in a byte array (0 free, 1 in use, 2 pending). A commit's run is
 * the first free run of at least n pages at or after a cursor (the end of the previous commit's
 * run), wrapping once; with none, the file grows while free pages are under `slack` of the file,
 * and otherwise the commit takes the first runs it meets (scattered, as a full file forces).
 * `orientation` says which end of the run the long-lived pages (those spill asks for first) go.
 */
export class CursorModel implements SimAllocator {
  private st = new Uint8Array(1 << 16);
  private born = new Float64Array(1 << 16);
  private hw = 2;
  private cursor = 2;
  private nfree = 0;
  private pending: number[] = [];
  private flip = false;
  private lastEnd = -1;
  private lastReversed = false;
  constructor(
    private readonly orientation: Orientation,
    private readonly slack = Number.POSITIVE_INFINITY,
    private readonly fromStart = false,
  ) {}
  init(size: number, free: readonly number[]): void {
    this.ensure(size);
    this.st.fill(1, 0, size);
    for (const id of free) this.st[id] = 0;
    this.nfree = free.length;
    this.hw = size;
  }
  private ensure(n: number): void {
    if (n <= this.st.length) return;
    let cap = this.st.length;
    while (cap < n) cap *= 2;
    const st = new Uint8Array(cap);
    st.set(this.st);
    this.st = st;
    const born = new Float64Array(cap);
    born.set(this.born);
    this.born = born;
  }
  begin(_t: number): void {
    for (const id of this.pending) this.st[id] = 0;
    this.nfree += this.pending.length;
    this.pending = [];
  }
  /** First free run of >= n pages starting in [from, to); its start, or -1. */
  private scan(from: number, to: number, n: number): number {
    const st = this.st;
    let runStart = -1;
    for (let p = from; p < this.hw; p++) {
      if (st[p] === 0) {
        if (runStart < 0) {
          if (p >= to) return -1;
          runStart = p;
        }
        if (p - runStart + 1 >= n) return runStart;
      } else runStart = -1;
    }
    return -1;
  }
  alloc(t: number, n: number, _longLived: number): number[] {
    const from = this.fromStart ? 2 : this.cursor;
    let a = this.scan(from, this.hw, n);
    if (a < 0 && from > 2) a = this.scan(2, from, n);
    let ids: number[];
    if (a >= 0) {
      ids = this.orient(t, a, n);
      this.nfree -= n;
      this.cursor = a + n;
    } else if (this.nfree < this.slack * this.hw) {
      a = this.hw;
      this.ensure(this.hw + n);
      this.hw += n;
      ids = this.orient(t, a, n);
      this.cursor = a + n;
    } else {
      // Scattered: first free pages from the cursor on, then grow if none.
      ids = [];
      for (let m = n - 1; m >= 1 && ids.length < n; ) {
        const need = n - ids.length;
        const len = Math.min(m, need);
        let b = this.scan(this.cursor, this.hw, len);
        if (b < 0) b = this.scan(2, this.cursor, len);
        if (b < 0) {
          m--;
          continue;
        }
        for (let i = 0; i < len; i++) {
          ids.push(b + i);
          this.st[b + i] = 1;
        }
        this.cursor = b + len;
        if (len < m) m = len;
      }
      this.nfree -= ids.length;
      this.ensure(this.hw + n);
      while (ids.length < n) ids.push(this.hw++);
      this.cursor = ids[ids.length - 1]! + 1;
    }
    for (const id of ids) {
      this.st[id] = 1;
      this.born[id] = t;
    }
    return ids;
  }
  /** Page ids for a run at [a, a+n) in spill order, long-lived first, at the end chosen. */
  private orient(t: number, a: number, n: number): number[] {
    let reverse = false;
    if (this.orientation === 'alternate') {
      this.flip = !this.flip;
      reverse = this.flip;
    } else if (this.orientation === 'pair') {
      // Continuing right after the previous run: mirror it, so short-lived pages meet short-lived
      // ones and long-lived ones meet long-lived ones. After a jump: long-lived against the old
      // page below, short-lived toward the rest of the span.
      reverse = a === this.lastEnd && !this.lastReversed;
      this.lastReversed = reverse;
      this.lastEnd = a + n;
    } else if (this.orientation === 'neighbour') {
      // Short-lived pages (asked for last) go next to a page that is or soon will be free.
      const soon = (p: number): boolean => p >= this.hw || this.st[p] !== 1 || (this.born[p] ?? 0) >= t - 1;
      const hi = soon(a + n);
      const lo = a > 2 && soon(a - 1);
      reverse = lo && !hi;
    }
    const ids: number[] = [];
    for (let i = 0; i < n; i++) ids.push(reverse ? a + n - 1 - i : a + i);
    return ids;
  }
  free(_t: number, id: number): void {
    this.st[id] = 2;
    this.pending.push(id);
  }
  size(): number {
    return this.hw;
  }
  freePages(): number {
    return this.nfree;
  }
}
