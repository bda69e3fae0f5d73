/**
 * A u32 value per page id, stored directly addressed in 4096-page chunks created on first write.
 *
 * The hashmap freelist uses two of these as its "start → length" and "end → length" maps (boundary
 * tags written at both ends of each free span, plus the span's slot in its length class). Direct
 * addressing makes every lookup O(1) with no hashing, and memory follows the id range that free
 * spans ever touched (at most 16 KiB per 4096 pages of file), where a JS Map of 10M entries costs
 * over a gigabyte. Only entries that were written are meaningful; callers read a page's entry
 * only where they know they wrote one.
 */

const CHUNK_PAGES = 4096;

export class PageTable {
  private chunks = new Map<number, Uint32Array>();
  private lastKey = -1;
  private lastChunk: Uint32Array | null = null;

  clear(): void {
    this.chunks.clear();
    this.lastKey = -1;
    this.lastChunk = null;
  }

  get(id: number): number {
    const key = Math.floor(id / CHUNK_PAGES);
    let c = this.lastChunk;
    if (key !== this.lastKey || c === null) {
      c = this.chunks.get(key) ?? null;
      if (c === null) return 0;
      this.lastKey = key;
      this.lastChunk = c;
    }
    return c[id - key * CHUNK_PAGES]!;
  }

  set(id: number, value: number): void {
    const key = Math.floor(id / CHUNK_PAGES);
    let c = this.lastChunk;
    if (key !== this.lastKey || c === null) {
      c = this.chunks.get(key) ?? null;
      if (c === null) {
        c = new Uint32Array(CHUNK_PAGES);
        this.chunks.set(key, c);
      }
      this.lastKey = key;
      this.lastChunk = c;
    }
    c[id - key * CHUNK_PAGES] = value;
  }

  /** Chunks allocated: for memory introspection in tests and benchmarks. */
  chunkCount(): number {
    return this.chunks.size;
  }
}

/**
 * A txid per page id (0: none), directly addressed like {@link PageTable} but in float64, since
 * txids run past 2^32. The freelists keep the txid that allocated each run here: one entry per
 * allocation and free on every commit, where a Map of the runs alive since open (a large tree's
 * leaves live for tens of thousands of commits) paid for its growth and rehashing on each.
 */
export class TxidTable {
  private chunks = new Map<number, Float64Array>();
  private lastKey = -1;
  private lastChunk: Float64Array | null = null;

  clear(): void {
    this.chunks.clear();
    this.lastKey = -1;
    this.lastChunk = null;
  }

  get(id: number): number {
    const key = Math.floor(id / CHUNK_PAGES);
    let c = this.lastChunk;
    if (key !== this.lastKey || c === null) {
      c = this.chunks.get(key) ?? null;
      if (c === null) return 0;
      this.lastKey = key;
      this.lastChunk = c;
    }
    return c[id - key * CHUNK_PAGES]!;
  }

  set(id: number, txid: number): void {
    const key = Math.floor(id / CHUNK_PAGES);
    let c = this.lastChunk;
    if (key !== this.lastKey || c === null) {
      c = this.chunks.get(key) ?? null;
      if (c === null) {
        if (txid === 0) return;
        c = new Float64Array(CHUNK_PAGES);
        this.chunks.set(key, c);
      }
      this.lastKey = key;
      this.lastChunk = c;
    }
    c[id - key * CHUNK_PAGES] = txid;
  }
}
