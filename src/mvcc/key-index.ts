/**
 * The in-memory key index (etcd's treeIndex of keyIndexes): for every user key, its generations
 * (create … puts … tombstone), holding only revisions, never values. It answers "which revision of
 * key K is live at revision R" without touching storage, and decides what a compaction keeps. Pure
 * and I/O-free: the store rebuilds it from the `key` bucket on open.
 *
 * Keys are binary strings (one char per byte, latin1) so JS string order is byte order.
 *
 * Memory is the point of the layout (a million keys live here): a key's whole history is one
 * exact-size array of numbers, or a bare number in the commonest case, instead of an object per
 * generation and a growing array per revision list (which cost ~500 bytes per key).
 *
 * A record is either
 * - a number `m` > 0: one open generation holding one put at revision (m, 0), created at m, version 1;
 * - a number `-p` < 0: one open generation of two plain puts, (a, 0) and (b, 0), created at a,
 *   version 2, with p = a·2^23 + (b − a) (when a < 2^30 and 0 < b − a < 2^23; otherwise the array
 *   form). A key put twice is the common case after a load and an overwrite, and a reopen of such a
 *   store rebuilds a million of them: as an array that record cost 88 bytes of heap, as one number 16;
 * - a number[]: the generations oldest first, each laid out as its revision entries oldest first,
 *   then the header `created, ver, n`. |n| is the number of entries; n < 0 means the generation
 *   ended with a tombstone, which is then its last entry. An entry is `main` for (main, 0) and the
 *   pair `-main, -sub` otherwise, so entries read unambiguously in both directions. The header at
 *   the end puts the live generation, the one nearly every request asks about, at O(1).
 */
import { OrderedMap } from './ordered-map.ts';
import { Panic } from '../errors.ts';

type Rec = number | number[];

/** The two-put record packing: first revision below PAIR_FIRST_LIMIT, distance below PAIR_SPAN. */
const PAIR_SPAN = 2 ** 23;
const PAIR_FIRST_LIMIT = 2 ** 30;

/** Puts (a, 0) then (b, 0) as one number, or undefined when they do not fit. */
function packPair(a: number, b: number): number | undefined {
  const d = b - a;
  return a > 0 && a < PAIR_FIRST_LIMIT && d > 0 && d < PAIR_SPAN ? -(a * PAIR_SPAN + d) : undefined;
}

/** The first revision of a packed pair `r` (< 0). */
function pairFirst(r: number): number {
  return Math.floor(-r / PAIR_SPAN);
}

/** The second revision of a packed pair `r` (< 0). */
function pairSecond(r: number): number {
  const p = -r;
  const a = Math.floor(p / PAIR_SPAN);
  return a + (p - a * PAIR_SPAN);
}

/** Arrays up to this length are replaced by an exact-size copy on change; longer ones grow in place. */
const COPY_LIMIT = 32;

/** A live revision of one key. */
export interface IndexEntry {
  key: string;
  main: number;
  sub: number;
}

/**
 * Revisions ≤ the compaction revision that must survive. Sub-revision 0 (every plain put and
 * delete) is kept as a number, so a million-key compaction allocates no string per revision.
 */
export class KeepSet {
  /**
   * Sub-revision-0 mains in an open-addressing table (0 = empty: revisions start at 1), sized
   * up front from the key count, which bounds what one compaction keeps. A Set of a million
   * numbers rehashed all at once as it doubled: 10-30 ms of CPU on the event loop at 262k and
   * 524k entries, a writer's put waiting behind it.
   */
  #table: Float64Array;
  #mask: number;
  #mainCount = 0;
  readonly #others = new Set<string>();

  /** `expected`: how many revisions will be kept, about (the key count); the table grows past it. */
  constructor(expected = 0) {
    let cap = 16;
    while (cap < expected * 2) cap *= 2;
    this.#table = new Float64Array(cap);
    this.#mask = cap - 1;
  }

  add(main: number, sub: number): void {
    if (sub !== 0) {
      this.#others.add(revKeyId(main, sub));
      return;
    }
    if (this.#insert(this.#table, this.#mask, main)) {
      this.#mainCount++;
      if (this.#mainCount * 2 > this.#mask + 1) this.#grow();
    }
  }

  has(main: number, sub: number): boolean {
    if (sub !== 0) return this.#others.has(revKeyId(main, sub));
    const t = this.#table;
    const mask = this.#mask;
    for (let i = slotOf(main, mask); ; i = (i + 1) & mask) {
      const v = t[i]!;
      if (v === main) return true;
      if (v === 0) return false;
    }
  }

  get size(): number {
    return this.#mainCount + this.#others.size;
  }

  /** The kept revisions as `revKeyId` strings (for tests and diagnostics). */
  *[Symbol.iterator](): IterableIterator<string> {
    for (const m of this.#table) if (m !== 0) yield revKeyId(m, 0);
    yield* this.#others;
  }

  /** True when `main` was not there yet. */
  #insert(t: Float64Array, mask: number, main: number): boolean {
    for (let i = slotOf(main, mask); ; i = (i + 1) & mask) {
      const v = t[i]!;
      if (v === main) return false;
      if (v === 0) {
        t[i] = main;
        return true;
      }
    }
  }

  #grow(): void {
    const old = this.#table;
    const t = new Float64Array(old.length * 2);
    const mask = t.length - 1;
    for (const m of old) if (m !== 0) this.#insert(t, mask, m);
    this.#table = t;
    this.#mask = mask;
  }
}

/** A revision's home slot: its low and high 32 bits mixed (Fibonacci hashing), masked. */
function slotOf(main: number, mask: number): number {
  return (Math.imul((main | 0) ^ ((main / 4294967296) | 0), 0x9e3779b1) >>> 0) & mask;
}

export function revKeyId(main: number, sub: number): string {
  return `${main}_${sub}`;
}

// Decoded-entry registers: reading an entry sets these instead of allocating a result.
let eMain = 0;
let eSub = 0;

/** Read the entry ending just before `end`; returns where it starts. */
function entryBefore(a: readonly number[], end: number): number {
  const x = a[end - 1]!;
  if (x > 0) {
    eMain = x;
    eSub = 0;
    return end - 1;
  }
  eMain = -a[end - 2]!;
  eSub = -x;
  return end - 2;
}

/** Read the entry starting at `at`; returns where the next one starts. */
function entryAt(a: readonly number[], at: number): number {
  const x = a[at]!;
  if (x > 0) {
    eMain = x;
    eSub = 0;
    return at + 1;
  }
  eMain = -x;
  eSub = -a[at + 1]!;
  return at + 2;
}

function pushEntry(out: number[], main: number, sub: number): void {
  if (sub === 0) out.push(main);
  else out.push(-main, -sub);
}

/** Where the generation whose header ends at `end` starts (its first entry). */
function genStart(a: readonly number[], end: number): number {
  let n = Math.abs(a[end - 1]!);
  let p = end - 3;
  while (n-- > 0) p = entryBefore(a, p);
  return p;
}

/** Insert `items` before position `at` of `a`: a fresh exact-size array when small, else in place. */
function insert(a: number[], at: number, items: readonly number[]): number[] {
  if (a.length < COPY_LIMIT) {
    // preallocated, then filled by index: push or slice would leave spare capacity (16+ slots)
    const k = items.length;
    const out = new Array<number>(a.length + k);
    for (let i = 0; i < at; i++) out[i] = a[i]!;
    for (let i = 0; i < k; i++) out[at + i] = items[i]!;
    for (let i = at; i < a.length; i++) out[i + k] = a[i]!;
    return out;
  }
  a.splice(at, 0, ...items);
  return a;
}

function toArray(r: Rec): number[] {
  if (typeof r !== 'number') return r;
  if (r > 0) return [r, r, 1, 1];
  const a = pairFirst(r);
  return [a, pairSecond(r), a, 2, 2];
}

function entryItems(main: number, sub: number): number[] {
  return sub === 0 ? [main] : [-main, -sub];
}

/** A generation of one entry with its header, as an exact-size array. */
function oneEntryGen(main: number, sub: number, created: number, ver: number, n: number): number[] {
  const out = new Array<number>(sub === 0 ? 4 : 5);
  let i = 0;
  if (sub === 0) out[i++] = main;
  else {
    out[i++] = -main;
    out[i++] = -sub;
  }
  out[i++] = created;
  out[i++] = ver;
  out[i] = n;
  return out;
}

/** An exact-size copy (arrays built by push keep spare capacity). */
function exact(a: readonly number[]): number[] {
  const out = new Array<number>(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]!;
  return out;
}

/**
 * The put revision live at `rev` in record `r`: true with (eMain, eSub) set, or false. Walks from
 * the newest generation back, so reads at the current revision cost O(1) per key.
 */
function liveAt(r: Rec, rev: number): boolean {
  if (typeof r === 'number') {
    let m = r;
    if (r < 0) {
      m = pairSecond(r);
      if (m > rev) m = pairFirst(r);
    }
    if (m > rev) return false;
    eMain = m;
    eSub = 0;
    return true;
  }
  let end = r.length;
  while (end > 0) {
    const n = r[end - 1]!;
    let count = Math.abs(n);
    let p = end - 3;
    if (n < 0) {
      p = entryBefore(r, p);
      count--;
      if (eMain <= rev) return false; // deleted at or before rev, and no newer generation began by then
    }
    for (; count > 0; count--) {
      p = entryBefore(r, p);
      if (eMain <= rev) return true;
    }
    end = p;
  }
  return false;
}

export class KeyIndex {
  private readonly keys = new OrderedMap<Rec>();

  /** Number of keys with any retained history (live or not). */
  get size(): number {
    return this.keys.size;
  }

  /** Record a put. `created`/`ver` are the KeyValue's createRevision/version. */
  put(key: string, main: number, sub: number, created: number, ver: number): void {
    const r = this.keys.get(key);
    if (r === undefined) {
      if (sub === 0 && created === main && ver === 1) this.keys.set(key, main);
      else this.keys.set(key, oneEntryGen(main, sub, created, ver, 1));
      return;
    }
    if (typeof r === 'number' && r > 0 && sub === 0) {
      // the commonest second put (an overwrite): one number when it fits, else
      // [r, main, created, ver, 2] in one exact allocation
      const pair = created === r && ver === 2 ? packPair(r, main) : undefined;
      if (pair !== undefined) {
        this.keys.set(key, pair);
        return;
      }
      const out = new Array<number>(5);
      out[0] = r;
      out[1] = main;
      out[2] = r;
      out[3] = ver;
      out[4] = 2;
      this.keys.set(key, out);
      return;
    }
    const a = toArray(r);
    const n = a[a.length - 1]!;
    if (n < 0) {
      // the last generation ended: a new one starts
      this.keys.set(key, insert(a, a.length, oneEntryGen(main, sub, created, ver, 1)));
      return;
    }
    const out = insert(a, a.length - 3, entryItems(main, sub));
    out[out.length - 2] = ver;
    out[out.length - 1] = n + 1;
    if (out !== r) this.keys.set(key, out);
  }

  /** Record a delete of a live key. */
  tombstone(key: string, main: number, sub: number): void {
    const r = this.keys.get(key);
    if (r === undefined) throw new Panic('tombstone of a key that is not live');
    const a = toArray(r);
    const n = a[a.length - 1]!;
    if (n < 0) throw new Panic('tombstone of a key that is not live');
    const out = insert(a, a.length - 3, entryItems(main, sub));
    out[out.length - 1] = -(n + 1);
    if (out !== r) this.keys.set(key, out);
  }

  /**
   * On restore: a tombstone whose puts were already compacted away. Kept as a tombstone-only
   * generation so a compaction resumed at exactly its revision still keeps it.
   */
  restoreTombstone(key: string, main: number, sub: number): void {
    const r = this.keys.get(key);
    if (r !== undefined && (typeof r === 'number' || r[r.length - 1]! > 0)) {
      // a live key (a number is always an open generation)
      this.tombstone(key, main, sub);
      return;
    }
    const gen = oneEntryGen(main, sub, 0, 0, -1);
    this.keys.set(key, r === undefined ? gen : insert(r, r.length, gen));
  }

  /** The live generation's create revision and version, if the key exists now. */
  current(key: string): { created: number; ver: number } | undefined {
    const r = this.keys.get(key);
    if (r === undefined) return undefined;
    if (typeof r === 'number') return r > 0 ? { created: r, ver: 1 } : { created: pairFirst(r), ver: 2 };
    const n = r[r.length - 1]!;
    return n < 0 ? undefined : { created: r[r.length - 3]!, ver: r[r.length - 2]! };
  }

  /** The put revision of `key` live at revision `rev`, if any. */
  get(key: string, rev: number): { main: number; sub: number } | undefined {
    const r = this.keys.get(key);
    return r !== undefined && liveAt(r, rev) ? { main: eMain, sub: eSub } : undefined;
  }

  /**
   * Visit live keys in [from, to) at revision `rev` in key order (`to` undefined: unbounded).
   * The visitor returns false to stop.
   */
  range(from: string, to: string | undefined, rev: number, fn: (e: IndexEntry) => boolean | void): void {
    this.keys.forEachInRange(from, to, (key, r) => {
      if (!liveAt(r, rev)) return true;
      return fn({ key, main: eMain, sub: eSub });
    });
  }

  /**
   * Drop history below `atRev` and return the revisions ≤ atRev that must stay in storage. Per key:
   * the newest put ≤ atRev and everything newer stays; a generation whose tombstone is < atRev goes
   * entirely; a tombstone exactly at atRev stays (alone) so a watch from atRev still sees it.
   */
  compact(atRev: number): KeepSet {
    const keep = new KeepSet(this.size);
    let from: string | undefined = '';
    while (from !== undefined) from = this.compactChunk(atRev, from, 4096, keep);
    return keep;
  }

  /**
   * One bounded step of compact(): keys ≥ `from`, at most `maxKeys` of them, adding to `keep`.
   * Returns where the next step starts, or undefined when done. Writes may run between steps: they
   * only add revisions above atRev, which compaction never touches.
   */
  compactChunk(atRev: number, from: string, maxKeys: number, keep: KeepSet): string | undefined {
    const emptied: string[] = [];
    const replacedKeys: string[] = [];
    const replacedRecs: Rec[] = [];
    let seen = 0;
    let last: string | undefined;
    this.keys.forEachInRange(from, undefined, (key, r) => {
      if (seen >= maxKeys) return false;
      seen++;
      last = key;
      if (typeof r === 'number') {
        if (r > 0) {
          if (r <= atRev) keep.add(r, 0);
          return true;
        }
        // A packed pair (a, b), the commonest record after an overwrite: compacted here with one
        // allocation instead of the general path's five (the index phase's garbage is what the
        // scavenges landing on a writer's put during compaction collect).
        const a = pairFirst(r);
        const b = pairSecond(r);
        if (b <= atRev) {
          keep.add(b, 0);
          replacedKeys.push(key);
          replacedRecs.push(oneEntryGen(b, 0, a, 2, 1));
        } else if (a <= atRev) keep.add(a, 0);
        return true;
      }
      const next = compactRecord(r, atRev, keep);
      if (next === undefined) emptied.push(key);
      else if (next !== r) {
        replacedKeys.push(key);
        replacedRecs.push(next);
      }
      return true;
    });
    for (let i = 0; i < replacedKeys.length; i++) this.keys.set(replacedKeys[i]!, replacedRecs[i]!);
    for (const k of emptied) this.keys.delete(k);
    // the smallest binary string greater than `last`
    return seen < maxKeys || last === undefined ? undefined : `${last}\u0000`;
  }
}

/** One key's record compacted at `atRev` (adding what it keeps), `r` itself if unchanged, undefined if nothing is left. */
function compactRecord(r: number[], atRev: number, keep: KeepSet): Rec | undefined {
  // generation boundaries, oldest first
  const ends: number[] = [];
  for (let end = r.length; end > 0; end = genStart(r, end)) ends.push(end);
  ends.reverse();
  const out: number[] = [];
  let start = 0;
  for (const end of ends) {
    const n = r[end - 1]!;
    const created = r[end - 3]!;
    const ver = r[end - 2]!;
    const entriesEnd = end - 3;
    const genFrom = start;
    start = end;
    let tombMain = -1;
    let tombSub = 0;
    let putsEnd = entriesEnd;
    if (n < 0) {
      putsEnd = entryBefore(r, entriesEnd);
      tombMain = eMain;
      tombSub = eSub;
    }
    if (tombMain >= 0 && tombMain < atRev) continue; // the whole generation ended before atRev
    if (tombMain === atRev) {
      keep.add(tombMain, tombSub);
      pushEntry(out, tombMain, tombSub);
      out.push(created, ver, -1);
      continue;
    }
    // keep the newest put ≤ atRev and everything after it
    let firstKept = genFrom;
    let kept = Math.abs(n);
    for (let p = genFrom; p < putsEnd; ) {
      const q = entryAt(r, p);
      if (eMain > atRev) break;
      if (p !== genFrom) kept--;
      firstKept = p;
      p = q;
    }
    if (firstKept < putsEnd) {
      entryAt(r, firstKept);
      if (eMain <= atRev) keep.add(eMain, eSub);
    }
    for (let p = firstKept; p < entriesEnd; p++) out.push(r[p]!);
    out.push(created, ver, n < 0 ? -kept : kept);
  }
  if (out.length === 0) return undefined;
  if (out.length === r.length) return r;
  if (out.length === 4 && out[0]! > 0 && out[3] === 1 && out[1] === out[0] && out[2] === 1) return out[0]!;
  if (out.length === 5 && out[0]! > 0 && out[1]! > 0 && out[2] === out[0] && out[3] === 2 && out[4] === 2) {
    const pair = packPair(out[0]!, out[1]!);
    if (pair !== undefined) return pair;
  }
  return exact(out);
}
