/**
 * A sparse set of page ids kept as bits, in chunks of 65,536 pages created when an id in their range
 * is first added. A chunk that empties stays (its 8 KiB, bounded by the id range ever used): the
 * pending set empties and refills on every commit, and recreating its chunk each time was a zeroed
 * allocation per commit. Enumerations skip empty chunks. The freelists use it where a hash set of ids would not scale: a JS Set holds at
 * most 2^24 entries and costs ~30 bytes per id, while a bit costs 1/8 byte and range updates go a
 * word (32 pages) at a time. Enumerating it yields ids already sorted, which is what the freelist
 * page needs, without a sort.
 *
 * Ids are non-negative safe integers; callers validate them.
 */

const CHUNK_SHIFT = 16;
const CHUNK_PAGES = 1 << CHUNK_SHIFT;
const WORDS_PER_CHUNK = CHUNK_PAGES >>> 5;

interface Chunk {
  readonly words: Uint32Array;
  /** Set bits in this chunk, so empty chunks can be skipped. */
  count: number;
}

/** Number of set bits in a 32-bit word. */
export function popcount32(x: number): number {
  x = x - ((x >>> 1) & 0x55555555);
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  x = (x + (x >>> 4)) & 0x0f0f0f0f;
  return Math.imul(x, 0x01010101) >>> 24;
}

/** Index of the lowest set bit of a non-zero word. */
export function lowestBit(x: number): number {
  return 31 - Math.clz32(x & -x);
}

function chunkOf(id: number): number {
  return id < 0x80000000 ? id >>> CHUNK_SHIFT : Math.floor(id / CHUNK_PAGES);
}

/** Mask of bits [lo, hi) within one word, 0 <= lo < hi <= 32. */
function maskRange(lo: number, hi: number): number {
  const upper = hi === 32 ? -1 : (1 << hi) - 1;
  return (upper & ~((1 << lo) - 1)) >>> 0;
}

export class PageBitmap {
  private readonly chunks = new Map<number, Chunk>();
  private total = 0;

  /** Number of ids in the set. */
  get size(): number {
    return this.total;
  }

  clear(): void {
    this.chunks.clear();
    this.total = 0;
  }

  has(id: number): boolean {
    const c = chunkOf(id);
    const chunk = this.chunks.get(c);
    if (chunk === undefined) return false;
    const off = id - c * CHUNK_PAGES;
    return (chunk.words[off >>> 5]! & (1 << (off & 31))) !== 0;
  }

  /** Add ids start..start+n-1; returns how many of them were not already present. */
  setRange(start: number, n: number): number {
    if (n === 1) return this.setOne(start);
    let added = 0;
    this.forEachSegment(start, n, true, (chunk, w, mask) => {
      const old = chunk.words[w]!;
      const fresh = mask & ~old;
      if (fresh !== 0) {
        const k = popcount32(fresh);
        chunk.words[w] = old | mask;
        chunk.count += k;
        added += k;
      }
    });
    this.total += added;
    return added;
  }

  /** Remove ids start..start+n-1; returns how many of them were present. */
  clearRange(start: number, n: number): number {
    if (n === 1) return this.clearOne(start);
    let removed = 0;
    this.forEachSegment(start, n, false, (chunk, w, mask) => {
      const old = chunk.words[w]!;
      const gone = mask & old;
      if (gone !== 0) {
        const k = popcount32(gone);
        chunk.words[w] = old & ~mask;
        chunk.count -= k;
        removed += k;
      }
    });
    this.total -= removed;
    return removed;
  }

  /** setRange of one id, without the segment walk and its closure: most frees are single pages. */
  private setOne(id: number): number {
    const c = chunkOf(id);
    let chunk = this.chunks.get(c);
    if (chunk === undefined) {
      chunk = { words: new Uint32Array(WORDS_PER_CHUNK), count: 0 };
      this.chunks.set(c, chunk);
    }
    const off = id - c * CHUNK_PAGES;
    const bit = 1 << (off & 31);
    const old = chunk.words[off >>> 5]!;
    if ((old & bit) !== 0) return 0;
    chunk.words[off >>> 5] = old | bit;
    chunk.count++;
    this.total++;
    return 1;
  }

  /** clearRange of one id. */
  private clearOne(id: number): number {
    const c = chunkOf(id);
    const chunk = this.chunks.get(c);
    if (chunk === undefined) return 0;
    const off = id - c * CHUNK_PAGES;
    const bit = 1 << (off & 31);
    const old = chunk.words[off >>> 5]!;
    if ((old & bit) === 0) return 0;
    chunk.words[off >>> 5] = old & ~bit;
    chunk.count--;
    this.total--;
    return 1;
  }

  /** Same as setRange: add ids start..start+n-1, returning how many were new. */
  addRange(start: number, n: number): number {
    return this.setRange(start, n);
  }

  /** Same as clearRange: remove ids start..start+n-1, returning how many were present. */
  deleteRange(start: number, n: number): number {
    return this.clearRange(start, n);
  }

  /** How many of start..start+n-1 are present. */
  countRange(start: number, n: number): number {
    if (n === 1) return this.has(start) ? 1 : 0;
    let k = 0;
    this.forEachSegment(start, n, false, (chunk, w, mask) => {
      const bits = chunk.words[w]! & mask;
      if (bits !== 0) k += popcount32(bits);
    });
    return k;
  }

  /** Call visit(start, length) for each maximal run of present ids, ascending. */
  forEachRun(visit: (start: number, length: number) => void): void {
    const keys = Float64Array.from(this.chunks.keys()).sort();
    let runStart = -1;
    let runLen = 0;
    for (const c of keys) {
      const chunk = this.chunks.get(c)!;
      if (chunk.count === 0) continue;
      const words = chunk.words;
      const base = c * CHUNK_PAGES;
      for (let w = 0; w < WORDS_PER_CHUNK; w++) {
        let bits = words[w]!;
        if (bits === 0) continue;
        const wordBase = base + (w << 5);
        if (bits === -1 || bits === 0xffffffff) {
          if (runLen > 0 && runStart + runLen === wordBase) runLen += 32;
          else {
            if (runLen > 0) visit(runStart, runLen);
            runStart = wordBase;
            runLen = 32;
          }
          continue;
        }
        while (bits !== 0) {
          const low = bits & -bits;
          const id = wordBase + (31 - Math.clz32(low));
          bits ^= low;
          if (runLen > 0 && runStart + runLen === id) runLen++;
          else {
            if (runLen > 0) visit(runStart, runLen);
            runStart = id;
            runLen = 1;
          }
        }
      }
    }
    if (runLen > 0) visit(runStart, runLen);
  }

  /** True if any of start..start+n-1 is present. */
  anyInRange(start: number, n: number): boolean {
    let found = false;
    this.forEachSegment(start, n, false, (chunk, w, mask) => {
      if ((chunk.words[w]! & mask) !== 0) found = true;
    });
    return found;
  }

  /** Smallest id in [from, limit) that is present, or -1. */
  nextSet(from: number, limit: number): number {
    let id = from;
    while (id < limit) {
      const c = chunkOf(id);
      const base = c * CHUNK_PAGES;
      const chunk = this.chunks.get(c);
      const chunkEnd = base + CHUNK_PAGES;
      if (chunk !== undefined && chunk.count > 0) {
        const off = id - base;
        let w = off >>> 5;
        let bits = (chunk.words[w]! & (-1 << (off & 31))) >>> 0;
        while (bits === 0 && ++w < WORDS_PER_CHUNK) bits = chunk.words[w]!;
        if (bits !== 0) {
          const hit = base + (w << 5) + lowestBit(bits);
          return hit < limit ? hit : -1;
        }
      }
      id = chunkEnd;
    }
    return -1;
  }

  /** Largest id in [floor, from] that is present, or -1. */
  prevSet(from: number, floor: number): number {
    let id = from;
    while (id >= floor && id >= 0) {
      const c = chunkOf(id);
      const base = c * CHUNK_PAGES;
      const chunk = this.chunks.get(c);
      if (chunk !== undefined && chunk.count > 0) {
        const off = id - base;
        let w = off >>> 5;
        const b = off & 31;
        let bits = (chunk.words[w]! & (b === 31 ? -1 : (1 << (b + 1)) - 1)) >>> 0;
        while (bits === 0 && --w >= 0) bits = chunk.words[w]!;
        if (bits !== 0) {
          const hit = base + (w << 5) + (31 - Math.clz32(bits));
          return hit >= floor ? hit : -1;
        }
      }
      id = base - 1;
    }
    return -1;
  }

  /** All ids, ascending. Preallocated and without union's per-word merge: the freelist page path. */
  toArray(): number[] {
    const out = new Array<number>(this.total);
    if (this.total === 0) return out;
    const sorted = Float64Array.from(this.chunks.keys()).sort();
    let k = 0;
    for (const c of sorted) {
      const chunk = this.chunks.get(c)!;
      if (chunk.count === 0) continue;
      const words = chunk.words;
      const base = c * CHUNK_PAGES;
      for (let w = 0; w < WORDS_PER_CHUNK; w++) {
        let bits = words[w]!;
        if (bits === 0) continue;
        const wordBase = base + (w << 5);
        if (bits === -1 || bits === 0xffffffff) {
          for (let b = 0; b < 32; b++) out[k++] = wordBase + b;
          continue;
        }
        while (bits !== 0) {
          const low = bits & -bits;
          out[k++] = wordBase + (31 - Math.clz32(low));
          bits ^= low;
        }
      }
    }
    return out;
  }

  /** The ids present in any of the given bitmaps, ascending, each once. */
  static union(maps: readonly PageBitmap[]): number[] {
    const keys = new Set<number>();
    let upper = 0;
    for (const m of maps) {
      upper += m.total;
      for (const [k, chunk] of m.chunks) if (chunk.count > 0) keys.add(k);
    }
    const sorted = Float64Array.from(keys).sort();
    const out: number[] = [];
    if (upper === 0) return out;
    const parts: (Uint32Array | undefined)[] = new Array(maps.length);
    for (const c of sorted) {
      for (let i = 0; i < maps.length; i++) parts[i] = maps[i]!.chunks.get(c)?.words;
      const base = c * CHUNK_PAGES;
      for (let w = 0; w < WORDS_PER_CHUNK; w++) {
        let bits = 0;
        for (let i = 0; i < parts.length; i++) {
          const p = parts[i];
          if (p !== undefined) bits |= p[w]!;
        }
        while (bits !== 0) {
          const low = bits & -bits;
          out.push(base + (w << 5) + (31 - Math.clz32(low)));
          bits ^= low;
        }
      }
    }
    return out;
  }

  /**
   * Visit the words covering start..start+n-1 with the mask of the covered bits. With create,
   * missing chunks are made; otherwise they are skipped (they hold no bits).
   */
  private forEachSegment(
    start: number,
    n: number,
    create: boolean,
    visit: (chunk: Chunk, word: number, mask: number) => void,
  ): void {
    let id = start;
    const end = start + n;
    while (id < end) {
      const c = chunkOf(id);
      const base = c * CHUNK_PAGES;
      const stop = Math.min(end, base + CHUNK_PAGES);
      let chunk = this.chunks.get(c);
      if (chunk === undefined && create) {
        chunk = { words: new Uint32Array(WORDS_PER_CHUNK), count: 0 };
        this.chunks.set(c, chunk);
      }
      if (chunk !== undefined) {
        let off = id - base;
        const offEnd = stop - base;
        while (off < offEnd) {
          const w = off >>> 5;
          const lo = off & 31;
          const hi = Math.min(32, offEnd - (w << 5));
          visit(chunk, w, maskRange(lo, hi));
          off = (w << 5) + hi;
        }
      }
      id = stop;
    }
  }
}
