/**
 * What both freelists share: pending frees per txid (with the txid that allocated each run, so
 * releaseRange can free pages whose whole life fell between two open readers), the allocation
 * record, rollback, and the membership bitmaps behind the double-free check. Subclasses supply
 * only the index of free pages: how a run of n pages is found and how released runs are merged.
 *
 * Pending frees are kept as runs (start, length, allocating txid) rather than single pages: a
 * free of a node with overflow pages is one run, and the hashmap freelist merges per run.
 */
import { Panic } from '../errors.ts';
import type { Freelist } from './freelist.ts';
import { PageBitmap } from './page-bitmap.ts';
import { TxidTable } from './page-table.ts';

/** Pages freed by one txid, not yet reusable. Parallel arrays, one entry per freed run. */
interface TxPending {
  starts: number[];
  lengths: number[];
  /** Txid that allocated the run; 0 when unknown (allocated before this freelist was loaded). */
  allocTxids: number[];
  /** Last `begin` releaseRange ran with, so repeated calls with the same window skip this txid. */
  lastReleaseBegin: number;
}

/**
 * Shortest run a reservation looks for once no run of its full size is free: two pages in one
 * write still halve the syscalls (a one-put commit's four pages rarely find a free run of four
 * in a file that small commits have been rewriting for a while).
 */
const MIN_RESERVED_RUN = 2;

/** Largest page id and txid we accept: numbers are exact integers only up to here. */
const MAX_ID = Number.MAX_SAFE_INTEGER;

function checkTxid(txid: number, what: string): void {
  if (!Number.isSafeInteger(txid) || txid < 0) throw new Panic(`${what}: bad txid ${txid}`);
}

export abstract class FreelistBase implements Freelist {
  abstract readonly kind: 'hashmap' | 'array';

  /** Free pages. Subclasses keep it in step with their index (they add and remove the bits). */
  protected readonly freePages = new PageBitmap();
  /** Pages pending release, over all txids. */
  private readonly pendingPages = new PageBitmap();
  private readonly pending = new Map<number, TxPending>();
  /** Start page of each allocated run -> allocating txid (0: unknown), until the run is freed. */
  private readonly allocs = new TxidTable();
  /** Runs handed out to the most recent allocating txid (start, n pairs), for rollback. */
  private lastAllocTxid = -1;
  private lastAllocRuns: number[] = [];
  /**
   * The reserved run: [resNext, resEnd) is out of the free index but not yet handed out; it
   * belongs to nobody until allocate() carves it, so it is neither free nor allocated.
   */
  private resTxid = -1;
  private resNext = 0;
  private resEnd = 0;
  /** Pages of the reservation's estimate not handed out yet: the size of the next run, if one is needed. */
  private resLeft = 0;
  /** Length of the last run the reservation found: no longer run is free now, so searches start there. */
  private resLastRun = 0;
  /**
   * Whether a failed search for a run is cheap (an index lookup), so that a reservation may look
   * for smaller runs when no large one is free. The array freelist scans every free page instead.
   */
  protected readonly cheapRunSearch: boolean = false;

  /** Rebuild the free index from `this.freePages`, which holds exactly the free pages. */
  protected abstract rebuildIndex(): void;
  /**
   * Find n contiguous free pages, remove them from the index and from `this.freePages`, and return the
   * first id; 0 when no such run exists (nothing changes then).
   */
  protected abstract takeRun(n: number): number;
  /**
   * Add runs (none free or pending now, none overlapping) to the index and to `this.freePages`.
   * Runs arrive in no particular order.
   */
  protected abstract insertRuns(starts: readonly number[], lengths: readonly number[]): void;

  init(ids: Iterable<number>): void {
    this.freePages.clear();
    this.pendingPages.clear();
    this.pending.clear();
    this.allocs.clear();
    this.lastAllocTxid = -1;
    this.lastAllocRuns = [];
    this.resTxid = -1;
    this.resNext = this.resEnd = this.resLeft = 0;
    for (const id of ids) {
      if (!Number.isSafeInteger(id) || id < 2) {
        this.freePages.clear();
        this.rebuildIndex();
        throw new Panic(`freelist init: invalid page id ${id}`);
      }
      if (this.freePages.addRange(id, 1) === 0) {
        this.freePages.clear();
        this.rebuildIndex();
        throw new Panic(`freelist init: page ${id} listed twice`);
      }
    }
    this.rebuildIndex();
  }

  allocate(txid: number, n: number, apart = false): number {
    checkTxid(txid, 'allocate');
    if (!Number.isSafeInteger(n) || n < 1) throw new Panic(`allocate: bad page count ${n}`);
    let start = 0;
    if (txid === this.resTxid && !apart) {
      if (this.resEnd - this.resNext < n && this.cheapRunSearch) this.nextReservedRun(n);
      if (this.resEnd - this.resNext >= n) {
        start = this.resNext;
        this.resNext += n;
        this.resLeft -= n;
      }
    }
    if (start === 0) {
      start = this.takeRun(n);
      if (start === 0) return 0;
    }
    this.allocs.set(start, txid);
    if (txid !== this.lastAllocTxid) {
      this.lastAllocTxid = txid;
      this.lastAllocRuns = [];
    }
    this.lastAllocRuns.push(start, n);
    return start;
  }

  reserve(txid: number, n: number, minRun = MIN_RESERVED_RUN): number {
    checkTxid(txid, 'reserve');
    if (!Number.isSafeInteger(n) || n < 1) throw new Panic(`reserve: bad page count ${n}`);
    if (!Number.isSafeInteger(minRun) || minRun < 1) throw new Panic(`reserve: bad minimum run ${minRun}`);
    if (this.resTxid >= 0) throw new Panic(`reserve(${txid}): txid ${this.resTxid} holds a reservation`);
    let m = n;
    let start = this.takeRun(m);
    // No run that long: a fragmented file may still have shorter runs (a batch's thousand pages
    // then go out as a few dozen writes instead of a thousand).
    while (start === 0 && this.cheapRunSearch && m >= 2 * minRun) {
      m >>= 1;
      start = this.takeRun(m);
    }
    if (start === 0) return 0;
    this.resTxid = txid;
    this.resNext = start;
    this.resEnd = start + m;
    this.resLeft = n;
    this.resLastRun = m;
    return start;
  }

  /**
   * The current reserved run cannot hold an allocation of n pages: give back its rest and take
   * the next run for what the estimate has left (at least n pages, halving while none is free).
   * Leaves the reservation empty when no run of at least max(n, MIN_RESERVED_RUN) pages is free.
   */
  private nextReservedRun(n: number): void {
    const rest = this.resEnd - this.resNext;
    if (rest > 0) this.makeFree([this.resNext], [rest]);
    this.resNext = this.resEnd = 0;
    const floor = Math.max(n, MIN_RESERVED_RUN);
    let m = Math.max(Math.min(this.resLeft, this.resLastRun), n);
    while (m >= floor) {
      const start = this.takeRun(m);
      if (start !== 0) {
        this.resNext = start;
        this.resEnd = start + m;
        this.resLastRun = m;
        return;
      }
      if (m === floor) break;
      m = Math.max(floor, m >> 1);
    }
  }

  /** The reservation's run not yet handed out, [next, end), or null. For tests. */
  debugReservation(): [number, number] | null {
    return this.resTxid < 0 ? null : [this.resNext, this.resEnd];
  }

  endReservation(): void {
    if (this.resTxid < 0) return;
    const rest = this.resEnd - this.resNext;
    const start = this.resNext;
    this.resTxid = -1;
    this.resNext = this.resEnd = this.resLeft = 0;
    if (rest > 0) this.makeFree([start], [rest]);
  }

  free(txid: number, id: number, overflow: number): void {
    checkTxid(txid, 'free');
    if (!Number.isSafeInteger(id) || id < 2) throw new Panic(`free: cannot free page ${id}`);
    if (!Number.isSafeInteger(overflow) || overflow < 0 || id + overflow > MAX_ID) {
      throw new Panic(`free: bad overflow ${overflow} for page ${id}`);
    }
    const n = overflow + 1;
    if (this.freePages.countRange(id, n) !== 0 || this.pendingPages.countRange(id, n) !== 0) {
      throw new Panic(`free: page run ${id}..${id + overflow} is already free or pending`);
    }
    let txp = this.pending.get(txid);
    if (txp === undefined) {
      txp = { starts: [], lengths: [], allocTxids: [], lastReleaseBegin: -1 };
      this.pending.set(txid, txp);
    }
    const allocTxid = this.allocs.get(id);
    if (allocTxid !== 0) this.allocs.set(id, 0);
    txp.starts.push(id);
    txp.lengths.push(n);
    txp.allocTxids.push(allocTxid);
    this.pendingPages.addRange(id, n);
  }

  release(txid: number): void {
    const starts: number[] = [];
    const lengths: number[] = [];
    for (const [tid, txp] of this.pending) {
      if (tid > txid) continue;
      for (let i = 0; i < txp.starts.length; i++) {
        starts.push(txp.starts[i]!);
        lengths.push(txp.lengths[i]!);
      }
      this.pending.delete(tid);
    }
    this.makeFree(starts, lengths);
  }

  releaseRange(begin: number, end: number): void {
    if (!(begin <= end)) return;
    const starts: number[] = [];
    const lengths: number[] = [];
    for (const [tid, txp] of this.pending) {
      if (tid < begin || tid > end) continue;
      // Same window as last time: nothing new can qualify (pending only grows for the writer).
      if (txp.lastReleaseBegin === begin) continue;
      let kept = 0;
      for (let i = 0; i < txp.starts.length; i++) {
        const atx = txp.allocTxids[i]!;
        if (atx >= begin && atx <= end) {
          starts.push(txp.starts[i]!);
          lengths.push(txp.lengths[i]!);
          continue;
        }
        txp.starts[kept] = txp.starts[i]!;
        txp.lengths[kept] = txp.lengths[i]!;
        txp.allocTxids[kept] = atx;
        kept++;
      }
      txp.starts.length = kept;
      txp.lengths.length = kept;
      txp.allocTxids.length = kept;
      txp.lastReleaseBegin = begin;
      if (kept === 0) this.pending.delete(tid);
    }
    this.makeFree(starts, lengths);
  }

  rollback(txid: number): void {
    if (txid === this.resTxid) this.endReservation();
    const starts: number[] = [];
    const lengths: number[] = [];
    const haveAllocRuns = txid === this.lastAllocTxid;
    if (haveAllocRuns) {
      const runs = this.lastAllocRuns;
      for (let i = 0; i < runs.length; i += 2) {
        if (this.freePages.countRange(runs[i]!, runs[i + 1]!) !== 0) {
          throw new Panic(`rollback(${txid}): run ${runs[i]}+${runs[i + 1]} it allocated is already free`);
        }
      }
    }
    const txp = this.pending.get(txid);
    if (txp !== undefined) {
      this.pending.delete(txid);
      for (let i = 0; i < txp.starts.length; i++) {
        const start = txp.starts[i]!;
        const n = txp.lengths[i]!;
        const atx = txp.allocTxids[i]!;
        this.pendingPages.deleteRange(start, n);
        if (atx === txid) {
          // Born and freed in txid: free again below with txid's allocations, or here when we no
          // longer have those.
          if (!haveAllocRuns) {
            starts.push(start);
            lengths.push(n);
          }
        } else if (atx !== 0) {
          // The free is undone: the run is in use again and remembers who allocated it.
          this.allocs.set(start, atx);
        }
      }
    }
    if (haveAllocRuns) {
      const runs = this.lastAllocRuns;
      for (let i = 0; i < runs.length; i += 2) {
        this.allocs.set(runs[i]!, 0);
        starts.push(runs[i]!);
        lengths.push(runs[i + 1]!);
      }
      this.lastAllocTxid = -1;
      this.lastAllocRuns = [];
    }
    this.makeFree(starts, lengths);
  }

  private makeFree(starts: number[], lengths: number[]): void {
    if (starts.length === 0) return;
    // Cheap (a word per 32 pages) and it turns a misuse, such as rolling back a txid whose pages
    // were already released, into a Panic instead of a page handed out twice later.
    for (let i = 0; i < starts.length; i++) {
      if (this.freePages.countRange(starts[i]!, lengths[i]!) !== 0) {
        throw new Panic(`freelist: run ${starts[i]}+${lengths[i]} would be freed twice`);
      }
    }
    for (let i = 0; i < starts.length; i++) this.pendingPages.deleteRange(starts[i]!, lengths[i]!);
    this.insertRuns(starts, lengths);
  }

  freed(id: number): boolean {
    return this.freePages.has(id) || this.pendingPages.has(id);
  }

  freeCount(): number {
    return this.freePages.size;
  }

  pendingCount(): number {
    return this.pendingPages.size;
  }

  count(): number {
    return this.freePages.size + this.pendingPages.size;
  }

  abstract ids(): number[];

  pendingIds(): number[] {
    return this.pendingPages.toArray();
  }

  copyAll(): number[] {
    return mergeSorted(this.ids(), this.pendingIds());
  }
}

/** Merge two fresh ascending arrays with no common element (may return one of them). */
export function mergeSorted(a: number[], b: number[]): number[] {
  if (b.length === 0) return a;
  if (a.length === 0) return b;
  const out = new Array<number>(a.length + b.length);
  let i = 0;
  let j = 0;
  let k = 0;
  while (i < a.length && j < b.length) out[k++] = a[i]! < b[j]! ? a[i++]! : b[j++]!;
  while (i < a.length) out[k++] = a[i++]!;
  while (j < b.length) out[k++] = b[j++]!;
  return out;
}
