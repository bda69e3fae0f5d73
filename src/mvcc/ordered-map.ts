/**
 * An ordered map from binary strings (one char per byte, so `<` is byte order) to values, kept as a
 * list of sorted chunks. A flat sorted array would make each insert O(n) memmove; chunks bound that
 * to O(chunk) while keeping scans cache-friendly. The key index of a million-key store lives here.
 */
const MAX_CHUNK = 512;

interface Chunk<V> {
  keys: string[];
  vals: V[];
}

function lowerBound(arr: readonly string[], key: string): number {
  let lo = 0;
  let hi = arr.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (arr[mid]! < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export class OrderedMap<V> {
  private chunks: Chunk<V>[] = [];
  private count = 0;

  get size(): number {
    return this.count;
  }

  /**
   * The chunk the last lookup landed in. Reopening walks history in revision order, which for most
   * workloads is near key order: checking this chunk and the next before a binary search makes
   * those lookups O(1).
   */
  private finger = 0;

  /** Index of the chunk that holds `key` or would hold it. */
  private chunkFor(key: string): number {
    const cs = this.chunks;
    const f = this.finger;
    if (f < cs.length && cs[f]!.keys[0]! <= key) {
      if (f + 1 === cs.length || cs[f + 1]!.keys[0]! > key) return f;
      if (f + 2 === cs.length || cs[f + 2]!.keys[0]! > key) return (this.finger = f + 1);
    }
    return (this.finger = this.searchChunk(key));
  }

  private searchChunk(key: string): number {
    const cs = this.chunks;
    let lo = 0;
    let hi = cs.length - 1;
    // the last chunk whose first key <= key
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (cs[mid]!.keys[0]! <= key) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /**
   * Where the last get() looked (chunk index and slot, hit or insertion point), so the set() of a
   * read-modify-write does not search again. Cleared by every insert or delete.
   */
  private lastKey: string | undefined;
  private lastChunk = 0;
  private lastSlot = 0;

  get(key: string): V | undefined {
    const cs = this.chunks;
    if (cs.length === 0) return undefined;
    let ci: number;
    let i: number;
    const next = this.nextSlot(key);
    if (next >= 0) {
      // a walk in key order (the overwrite pass of a reopen): the entry after the last one found
      ci = this.lastChunk;
      i = next;
      if (i === cs[ci]!.keys.length) {
        ci++;
        i = 0;
      }
    } else {
      const lastChunk = cs[cs.length - 1]!;
      if (lastChunk.keys[lastChunk.keys.length - 1]! < key) {
        // past the end (a load or a reopen in key order): no search
        ci = cs.length - 1;
        i = lastChunk.keys.length;
      } else {
        ci = this.chunkFor(key);
        i = lowerBound(cs[ci]!.keys, key);
      }
    }
    const c = cs[ci]!;
    this.lastKey = key;
    this.lastChunk = ci;
    this.lastSlot = i;
    return c.keys[i] === key ? c.vals[i] : undefined;
  }

  /**
   * The slot just after the last get's when `key` is the entry there (index may equal the chunk's
   * length: then it is the next chunk's first); -1 otherwise.
   */
  private nextSlot(key: string): number {
    if (this.lastKey === undefined || this.lastKey >= key) return -1;
    const c = this.chunks[this.lastChunk]!;
    const i = this.lastSlot + (c.keys[this.lastSlot] === this.lastKey ? 1 : 0);
    if (i < c.keys.length) return c.keys[i] === key ? i : -1;
    const n = this.chunks[this.lastChunk + 1];
    return n !== undefined && n.keys[0] === key ? i : -1;
  }

  set(key: string, val: V): void {
    if (this.chunks.length === 0) {
      this.chunks.push({ keys: [key], vals: [val] });
      this.count = 1;
      return;
    }
    let ci: number;
    let i: number;
    if (key === this.lastKey) {
      ci = this.lastChunk;
      i = this.lastSlot;
    } else {
      ci = this.chunkFor(key);
      i = lowerBound(this.chunks[ci]!.keys, key);
    }
    const c = this.chunks[ci]!;
    if (c.keys[i] === key) {
      c.vals[i] = val;
      return;
    }
    this.lastKey = undefined;
    if (i === c.keys.length) {
      c.keys.push(key);
      c.vals.push(val);
    } else {
      c.keys.splice(i, 0, key);
      c.vals.splice(i, 0, val);
    }
    this.count++;
    if (c.keys.length > MAX_CHUNK) {
      // Appending past the end of the map (a load or a reopen in key order) leaves the full chunk
      // full; anywhere else the chunk is halved. Both sides are exact-size copies: truncating an
      // array keeps its capacity, which left every chunk of a million-key map half empty.
      const at = ci === this.chunks.length - 1 && i === c.keys.length - 1 ? MAX_CHUNK : c.keys.length >>> 1;
      const right: Chunk<V> = { keys: c.keys.slice(at), vals: c.vals.slice(at) };
      c.keys = c.keys.slice(0, at);
      c.vals = c.vals.slice(0, at);
      this.chunks.splice(ci + 1, 0, right);
    }
  }

  delete(key: string): boolean {
    if (this.chunks.length === 0) return false;
    const ci = this.chunkFor(key);
    const c = this.chunks[ci]!;
    const i = lowerBound(c.keys, key);
    if (c.keys[i] !== key) return false;
    this.lastKey = undefined;
    c.keys.splice(i, 1);
    c.vals.splice(i, 1);
    this.count--;
    if (c.keys.length === 0) this.chunks.splice(ci, 1);
    return true;
  }

  /**
   * Visit entries with from <= key < to in ascending order (`to` undefined: no upper bound).
   * The visitor returns false to stop. The map must not be modified during the walk.
   */
  forEachInRange(from: string, to: string | undefined, fn: (key: string, val: V) => boolean | void): void {
    if (this.chunks.length === 0) return;
    let ci = this.chunkFor(from);
    let i = lowerBound(this.chunks[ci]!.keys, from);
    for (; ci < this.chunks.length; ci++, i = 0) {
      const c = this.chunks[ci]!;
      for (; i < c.keys.length; i++) {
        const k = c.keys[i]!;
        if (to !== undefined && k >= to) return;
        if (fn(k, c.vals[i]!) === false) return;
      }
    }
  }

  *entries(): IterableIterator<[string, V]> {
    for (const c of this.chunks) for (let i = 0; i < c.keys.length; i++) yield [c.keys[i]!, c.vals[i]!];
  }
}
