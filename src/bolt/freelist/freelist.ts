/**
 * The contract both freelists keep. Page ids and txids are JS numbers (exact up to 2^53).
 *
 * Life of a page: `allocate` hands out a run of free pages to txid t (remembered so a rollback can
 * take it back, and so a later free knows when the page was born). `free(t, id, overflow)` makes the
 * run pending for t: still visible to readers older than t. `release(t)` moves every run pending
 * for txids <= t to free. `releaseRange(a, b)` frees runs pending for txids in [a, b] whose pages
 * were allocated at or after a: their whole life fell between two open readers, so nobody sees them.
 * `rollback(t)` undoes txid t: its pending frees are dropped and what it allocated becomes free.
 *
 * Cores that decide take no I/O: serialization to the freelist page lives in the engine.
 */
export interface Freelist {
  readonly kind: 'hashmap' | 'array';
  /** Replace all state with these free page ids (any order, no duplicates). Pending is cleared. */
  init(ids: Iterable<number>): void;
  /**
   * Start id of n contiguous free pages, now owned by txid; 0 when no run is long enough. With
   * `apart`, the pages come from the free index and never from txid's reservation: a page that
   * will live much longer than the rest of its commit (a leaf of a large tree) goes into a hole of
   * its own, so it does not pin the middle of a run the short-lived pages free again together.
   */
  allocate(txid: number, n: number, apart?: boolean): number;
  /**
   * Set aside a run of n free pages for txid's next allocations, so a commit's pages are
   * contiguous on disk and go out in one write. `allocate(txid, k)` takes from its front while it
   * fits; `endReservation()` (or `rollback(txid)`) makes what is left free again. Returns the
   * run's first id, or 0 (and nothing changes) when no run of n pages is free. One at a time.
   * Where failed searches are cheap (hashmap) a reservation with no run of n pages settles for a
   * shorter one, halving down to `minRun` (default 2); `minRun = n` asks for the whole run or none.
   */
  reserve(txid: number, n: number, minRun?: number): number;
  /** Return the unused rest of the reservation to the free pages; a no-op without one. */
  endReservation(): void;
  /** Mark pages id..id+overflow pending for txid. Throws Panic on a double free or id < 2. */
  free(txid: number, id: number, overflow: number): void;
  /** Move every run pending for a txid <= txid to free. */
  release(txid: number): void;
  /** Move runs pending for txids in [begin, end] whose pages were allocated at or after begin. */
  releaseRange(begin: number, end: number): void;
  /** Forget txid: its pending frees are dropped, pages it allocated are free again. */
  rollback(txid: number): void;
  /** True if the page is free or pending. */
  freed(id: number): boolean;
  freeCount(): number;
  pendingCount(): number;
  /** freeCount() + pendingCount(): what the freelist page must hold. */
  count(): number;
  /** Free page ids, sorted ascending. */
  ids(): number[];
  /** Pending page ids, sorted ascending. */
  pendingIds(): number[];
  /** Free and pending ids merged and sorted: the content of the freelist page. */
  copyAll(): number[];
}
