/**
 * A deliberately naive reference freelist (a Set of free pages, pending frees page by page) used
 * as the oracle in the property tests, and an engine-like driver that runs one random scenario
 * against a real freelist and the model, checking after every step.
 *
 * The driver follows the engine's protocol (one writer at a time, readers pinned to the last
 * committed txid, bbolt's release/releaseRange calls at each writer start) and tracks each page's
 * life (born at txid a, freed at txid f) on its own, so "nothing a reader can still see is handed
 * out" is checked independently of how either freelist does its bookkeeping.
 */
import assert from 'node:assert/strict';
import type { Freelist } from 'boltkv/freelist';
import { HashmapFreelist } from 'boltkv/freelist';

interface PendingPage {
  id: number;
  allocTxid: number;
}

export class ModelFreelist {
  readonly free = new Set<number>();
  readonly pending = new Map<number, PendingPage[]>();
  readonly allocs = new Map<number, number>();
  /** Pages set aside by reserve() and not yet handed out: neither free nor in use. */
  readonly reserved = new Set<number>();
  private lastTxid = -1;
  private lastRuns: Array<[number, number]> = [];

  init(ids: Iterable<number>): void {
    this.free.clear();
    this.pending.clear();
    this.allocs.clear();
    this.lastTxid = -1;
    this.lastRuns = [];
    this.reserved.clear();
    for (const id of ids) this.free.add(id);
  }

  sortedFree(): number[] {
    return [...this.free].sort((a, b) => a - b);
  }

  sortedPending(): number[] {
    const out: number[] = [];
    for (const list of this.pending.values()) for (const p of list) out.push(p.id);
    return out.sort((a, b) => a - b);
  }

  isFreed(id: number): boolean {
    if (this.free.has(id)) return true;
    for (const list of this.pending.values()) if (list.some((p) => p.id === id)) return true;
    return false;
  }

  /** Lowest start of n consecutive free pages, 0 if none: first fit. */
  firstFit(n: number): number {
    const ids = this.sortedFree();
    let runStart = 0;
    let prev = -1;
    for (const id of ids) {
      if (id !== prev + 1) runStart = id;
      if (id - runStart + 1 === n) return runStart;
      prev = id;
    }
    return 0;
  }

  /** Length of the smallest maximal free span of at least n pages, 0 if none: what best fit takes from. */
  bestFitLength(n: number): number {
    let best = 0;
    let runStart = 0;
    let prev = -1;
    const ids = this.sortedFree();
    const close = (end: number): void => {
      const len = end - runStart + 1;
      if (len >= n && (best === 0 || len < best)) best = len;
    };
    for (const id of ids) {
      if (id !== prev + 1) {
        if (prev >= 0) close(prev);
        runStart = id;
      }
      prev = id;
    }
    if (prev >= 0) close(prev);
    return best;
  }

  /** Length of the maximal free span starting at start (0 if start is not a span's first page). */
  spanAt(start: number): number {
    if (!this.free.has(start) || this.free.has(start - 1)) return 0;
    let n = 0;
    while (this.free.has(start + n)) n++;
    return n;
  }

  runIsFree(start: number, n: number): boolean {
    for (let p = start; p < start + n; p++) if (!this.free.has(p)) return false;
    return true;
  }

  reserveAt(start: number, n: number): void {
    assert.ok(this.runIsFree(start, n), `model: reserved ${start}+${n} is not free`);
    for (let p = start; p < start + n; p++) {
      this.free.delete(p);
      this.reserved.add(p);
    }
  }

  /** Reserved pages not handed out become free again. */
  endReservation(): void {
    for (const p of this.reserved) this.free.add(p);
    this.reserved.clear();
  }

  /** Record pages start..start+n (already taken out of free or reserved) as allocated by txid. */
  recordAlloc(txid: number, start: number, n: number): void {
    for (let p = start; p < start + n; p++)
      assert.ok(!this.free.has(p) && !this.reserved.has(p), `model: ${p} still free or reserved`);
    this.allocs.set(start, txid);
    if (txid !== this.lastTxid) {
      this.lastTxid = txid;
      this.lastRuns = [];
    }
    this.lastRuns.push([start, n]);
  }

  freeRun(txid: number, id: number, overflow: number): void {
    const allocTxid = this.allocs.get(id) ?? 0;
    this.allocs.delete(id);
    const list = this.pending.get(txid) ?? [];
    this.pending.set(txid, list);
    for (let p = id; p <= id + overflow; p++) {
      assert.ok(!this.isFreed(p), `model: double free of ${p}`);
      list.push({ id: p, allocTxid });
    }
  }

  release(txid: number): void {
    for (const [tid, list] of [...this.pending]) {
      if (tid > txid) continue;
      for (const p of list) this.free.add(p.id);
      this.pending.delete(tid);
    }
  }

  releaseRange(begin: number, end: number): void {
    if (begin > end) return;
    for (const [tid, list] of [...this.pending]) {
      if (tid < begin || tid > end) continue;
      const keep = list.filter((p) => p.allocTxid < begin || p.allocTxid > end);
      for (const p of list) if (!keep.includes(p)) this.free.add(p.id);
      if (keep.length === 0) this.pending.delete(tid);
      else this.pending.set(tid, keep);
    }
  }

  rollback(txid: number): void {
    this.endReservation();
    const have = txid === this.lastTxid;
    const list = this.pending.get(txid) ?? [];
    this.pending.delete(txid);
    for (const p of list) {
      if (p.allocTxid === txid) {
        if (!have) this.free.add(p.id);
      } else if (p.allocTxid !== 0) {
        this.allocs.set(p.id, p.allocTxid);
      }
    }
    if (have) {
      for (const [s, n] of this.lastRuns) {
        this.allocs.delete(s);
        for (let p = s; p < s + n; p++) this.free.add(p);
      }
      this.lastTxid = -1;
      this.lastRuns = [];
    }
  }
}

export type Step =
  | { op: 'begin' }
  | { op: 'alloc'; n: number; apart?: boolean }
  | { op: 'reserve'; n: number; whole?: boolean }
  | { op: 'endReservation' }
  | { op: 'free'; pick: number }
  | { op: 'commit' }
  | { op: 'rollback' }
  | { op: 'openReader' }
  | { op: 'closeReader'; pick: number };

export interface Scenario {
  /** Pages 2..highWater-1 exist; these of them start free, the rest in use. */
  highWater: number;
  initiallyFree: number[];
  steps: Step[];
}

interface Run {
  n: number;
  born: number;
}

const MAX_TXID = Number.MAX_SAFE_INTEGER;

/** The freelist's reservation not yet handed out, [next, end), or null (FreelistBase exposes it for tests). */
function reservationOf(fl: Freelist): [number, number] | null {
  return (fl as unknown as { debugReservation(): [number, number] | null }).debugReservation();
}

/** Check the maximal-span invariant of a hashmap freelist from the outside. */
export function assertSpansMaximal(fl: HashmapFreelist, freeIds: readonly number[]): void {
  fl.debugCheck();
  const spans = fl.debugSpans();
  const expanded: number[] = [];
  for (let i = 0; i < spans.length; i++) {
    const [s, n] = spans[i]!;
    assert.ok(n >= 1, `span ${s} has length ${n}`);
    if (i > 0) {
      const [ps, pn] = spans[i - 1]!;
      assert.ok(ps + pn < s, `spans ${ps}+${pn} and ${s}+${n} touch or overlap: not merged`);
    }
    for (let p = s; p < s + n; p++) expanded.push(p);
  }
  assert.deepEqual(expanded, freeIds, 'spans cover exactly the free pages');
}

/**
 * Runs one scenario against `fl` and a fresh model, asserting after every step. Returns counts of
 * what happened so callers can check the generators exercise the interesting paths.
 */
export function runScenario(
  fl: Freelist,
  sc: Scenario,
): { allocated: number; failed: number; released: number; reservedAllocs: number; apartBesideReservation: number } {
  const model = new ModelFreelist();
  const stats = { allocated: 0, failed: 0, released: 0, reservedAllocs: 0, apartBesideReservation: 0 };
  /** The writer's reservation: [next, end) not yet handed out. */
  let res: { next: number; end: number } | null = null;
  let highWater = sc.highWater;
  fl.init(sc.initiallyFree);
  model.init(sc.initiallyFree);

  const inUse = new Map<number, Run>();
  const initFree = new Set(sc.initiallyFree);
  for (let p = 2; p < highWater; p++) if (!initFree.has(p)) inUse.set(p, { n: 1, born: 0 });
  /** Life of pages freed and not yet handed out again. */
  const ghosts = new Map<number, { born: number; freedBy: number }>();
  let committed = 1;
  const readers: number[] = [];
  let writer: {
    txid: number;
    highWater: number;
    allocated: number[];
    grown: number[];
    freed: Array<[number, Run]>;
  } | null = null;

  const check = (where: string): void => {
    const free = model.sortedFree();
    const pending = model.sortedPending();
    assert.deepEqual(fl.ids(), free, `${where}: ids()`);
    assert.deepEqual(fl.pendingIds(), pending, `${where}: pendingIds()`);
    assert.deepEqual(
      fl.copyAll(),
      [...free, ...pending].sort((a, b) => a - b),
      `${where}: copyAll()`,
    );
    assert.equal(fl.freeCount(), free.length, `${where}: freeCount()`);
    assert.equal(fl.pendingCount(), pending.length, `${where}: pendingCount()`);
    assert.equal(fl.count(), free.length + pending.length, `${where}: count()`);
    let used = 0;
    for (const r of inUse.values()) used += r.n;
    assert.equal(model.reserved.size, res === null ? 0 : res.end - res.next, `${where}: reserved pages`);
    assert.equal(free.length + pending.length + used + model.reserved.size, highWater - 2, `${where}: pages conserved`);
    for (let p = 0; p < highWater + 2; p++) {
      assert.equal(fl.freed(p), model.isFreed(p), `${where}: freed(${p})`);
    }
    if (fl instanceof HashmapFreelist) assertSpansMaximal(fl, free);
  };

  const releasePending = (): void => {
    // The engine's call pattern at the start of every write transaction (bbolt's freePages).
    const sorted = [...readers].sort((a, b) => a - b);
    let minid = sorted.length > 0 ? sorted[0]! : MAX_TXID;
    const before = fl.pendingCount();
    if (minid > 0) {
      fl.release(minid - 1);
      model.release(minid - 1);
    }
    for (const t of sorted) {
      fl.releaseRange(minid, t - 1);
      model.releaseRange(minid, t - 1);
      minid = t + 1;
    }
    fl.releaseRange(minid, MAX_TXID);
    model.releaseRange(minid, MAX_TXID);
    stats.released += before - fl.pendingCount();
  };

  sc.steps.forEach((step, i) => {
    const where = `step ${i} ${JSON.stringify(step)}`;
    switch (step.op) {
      case 'begin': {
        if (writer !== null) return;
        releasePending();
        writer = { txid: committed + 1, highWater, allocated: [], grown: [], freed: [] };
        break;
      }
      case 'alloc': {
        if (writer === null) return;
        const { txid } = writer;
        const before = res;
        const firstFit = model.firstFit(step.n);
        const bestFit = model.bestFitLength(step.n);
        const spanAtStart = (id: number): number => model.spanAt(id);
        const start = fl.allocate(txid, step.n, step.apart === true);
        const after = reservationOf(fl);
        if (step.apart === true) {
          // Apart: from the free pages by the freelist's own policy; the reservation is untouched.
          assert.deepEqual(
            after,
            before === null ? null : [before.next, before.end],
            `${where}: apart kept the reservation`,
          );
          if (start !== 0 && before !== null) stats.apartBesideReservation++;
          if (start !== 0) {
            if (fl.kind === 'array') assert.equal(start, firstFit, `${where}: array freelist places apart first fit`);
            else assert.equal(spanAtStart(start), bestFit, `${where}: hashmap places apart by best fit`);
          }
        } else if (before !== null && before.end - before.next >= step.n) {
          assert.equal(start, before.next, `${where}: allocation that fits the reservation comes from its front`);
          stats.reservedAllocs++;
        }
        assert.equal(after !== null, before !== null, `${where}: an allocation neither starts nor ends a reservation`);
        // The reservation may have moved to a new run: its old rest went back to free, and the
        // new run (and the pages handed out) came from free pages or from the old run.
        const oldReserved = new Set(model.reserved);
        const nowReserved = new Set<number>();
        if (after !== null) for (let p = after[0]; p < after[1]; p++) nowReserved.add(p);
        const handed = new Set<number>();
        if (start !== 0) for (let p = start; p < start + step.n; p++) handed.add(p);
        for (const p of handed) {
          assert.ok(
            oldReserved.has(p) || model.free.has(p),
            `${where}: handed out page ${p}, neither free nor reserved`,
          );
          assert.ok(!nowReserved.has(p), `${where}: page ${p} handed out and still reserved`);
        }
        for (const p of nowReserved) {
          if (!oldReserved.has(p)) assert.ok(model.free.has(p), `${where}: reserved page ${p} was not free`);
        }
        for (const p of oldReserved) if (!nowReserved.has(p) && !handed.has(p)) model.free.add(p);
        for (const p of nowReserved) model.free.delete(p);
        for (const p of handed) model.free.delete(p);
        model.reserved.clear();
        for (const p of nowReserved) model.reserved.add(p);
        res = after === null ? null : { next: after[0], end: after[1] };
        if (start === 0) {
          assert.equal(model.firstFit(step.n), 0, `${where}: 0 returned though a run of ${step.n} is free`);
          stats.failed++;
          // The engine grows the file instead; the freelist never hears of these pages.
          inUse.set(highWater, { n: step.n, born: txid });
          writer.grown.push(highWater);
          highWater += step.n;
          break;
        }
        if (fl.kind === 'array' && before === null && step.apart !== true) {
          assert.equal(start, firstFit, `${where}: array freelist is first fit`);
        }
        for (let p = start; p < start + step.n; p++) {
          const g = ghosts.get(p);
          if (g === undefined) continue;
          for (const r of readers) {
            assert.ok(
              !(g.born <= r && r < g.freedBy),
              `${where}: page ${p} (born ${g.born}, freed ${g.freedBy}) handed out while reader ${r} sees it`,
            );
          }
          ghosts.delete(p);
        }
        model.recordAlloc(txid, start, step.n);
        inUse.set(start, { n: step.n, born: txid });
        writer.allocated.push(start);
        stats.allocated++;
        break;
      }
      case 'reserve': {
        if (writer === null || res !== null) return;
        // whole: the run of n or nothing (allocationSlack's request), else a shorter run may do.
        const start = step.whole ? fl.reserve(writer.txid, step.n, step.n) : fl.reserve(writer.txid, step.n);
        const got = reservationOf(fl);
        if (start === 0) {
          assert.equal(got, null, `${where}: a failed reserve holds a reservation`);
          assert.equal(model.firstFit(step.n), 0, `${where}: reserve failed though a run of ${step.n} is free`);
          break;
        }
        assert.ok(
          got !== null && got[0] === start && got[1] > start && got[1] - start <= step.n,
          `${where}: reservation ${got}`,
        );
        const len = got[1] - start;
        if (step.whole) assert.equal(len, step.n, `${where}: a whole-run reserve took ${len} of ${step.n}`);
        if (len < step.n)
          assert.equal(model.firstFit(step.n), 0, `${where}: reserved a shorter run though ${step.n} are free`);
        assert.ok(model.runIsFree(start, len), `${where}: reserved ${start}+${len}, not all free`);
        if (fl.kind === 'array')
          assert.equal(start, model.firstFit(step.n), `${where}: array freelist reserves first fit`);
        for (let p = start; p < start + len; p++) {
          const g = ghosts.get(p);
          if (g === undefined) continue;
          for (const r of readers) {
            assert.ok(!(g.born <= r && r < g.freedBy), `${where}: page ${p} reserved while reader ${r} sees it`);
          }
        }
        model.reserveAt(start, len);
        res = { next: start, end: got[1] };
        break;
      }
      case 'endReservation': {
        if (res === null) return;
        fl.endReservation();
        model.endReservation();
        res = null;
        break;
      }
      case 'free': {
        if (writer === null || inUse.size === 0) return;
        const starts = [...inUse.keys()];
        const start = starts[step.pick % starts.length]!;
        const run = inUse.get(start)!;
        fl.free(writer.txid, start, run.n - 1);
        model.freeRun(writer.txid, start, run.n - 1);
        inUse.delete(start);
        writer.freed.push([start, run]);
        for (let p = start; p < start + run.n; p++) ghosts.set(p, { born: run.born, freedBy: writer.txid });
        break;
      }
      case 'commit': {
        if (writer === null) return;
        // The engine ends its reservation before the commit's freelist work.
        fl.endReservation();
        model.endReservation();
        res = null;
        committed = writer.txid;
        writer = null;
        break;
      }
      case 'rollback': {
        if (writer === null) return;
        const w = writer;
        fl.rollback(w.txid);
        model.rollback(w.txid);
        res = null;
        const allocated = new Set(w.allocated);
        const grown = new Set(w.grown);
        for (const [start, run] of w.freed) {
          if (allocated.has(start) || grown.has(start)) continue;
          inUse.set(start, run);
          for (let p = start; p < start + run.n; p++) ghosts.delete(p);
        }
        for (const start of w.allocated) {
          const run = inUse.get(start) ?? w.freed.find(([s]) => s === start)![1];
          inUse.delete(start);
          // Born and dead inside an aborted txid: no reader ever saw it.
          for (let p = start; p < start + run.n; p++) ghosts.set(p, { born: w.txid, freedBy: w.txid });
        }
        for (const start of w.grown) {
          const run = inUse.get(start) ?? w.freed.find(([s]) => s === start)![1];
          inUse.delete(start);
          for (let p = start; p < start + run.n; p++) ghosts.delete(p);
        }
        highWater = w.highWater;
        writer = null;
        break;
      }
      case 'openReader':
        readers.push(committed);
        break;
      case 'closeReader':
        if (readers.length > 0) readers.splice(step.pick % readers.length, 1);
        break;
    }
    check(where);
  });
  return stats;
}
