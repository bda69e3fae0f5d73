/**
 * The in-memory key index: for every user key, its generations (create … puts … tombstone), holding
 * only revisions, never values. It answers "which revision of key K is live at revision R" without
 * touching storage, and decides what a compaction keeps. Pure and I/O-free: the store rebuilds it
 * from the `key` bucket on open.
 *
 * Keys are binary strings (one char per byte, latin1) so JS string order is byte order.
 */
import { OrderedMap } from './ordered-map.ts';
import { Panic } from '../errors.ts';

/** One generation of a key: its put revisions in order, then possibly the tombstone that ended it. */
interface Generation {
  /** create revision of the generation, as stored in its KeyValues (survives compaction). */
  created: number;
  /** version of the newest put. */
  ver: number;
  /** put revisions, flattened as main0, sub0, main1, sub1, … */
  revs: number[];
  /** main revision of the tombstone, -1 while the generation is open. */
  tombMain: number;
  tombSub: number;
}

/** A live revision of one key. */
export interface IndexEntry {
  key: string;
  main: number;
  sub: number;
}

/** Revisions ≤ the compaction revision that must survive, as `revKeyId(main, sub)` strings. */
export type KeepSet = Set<string>;

export function revKeyId(main: number, sub: number): string {
  return `${main}_${sub}`;
}

function firstMain(g: Generation): number {
  return g.revs.length > 0 ? g.revs[0]! : g.tombMain;
}

/** Index in pairs of the newest put with main <= rev, or -1. */
function lastPutAtOrBefore(g: Generation, rev: number): number {
  let lo = 0;
  let hi = g.revs.length / 2 - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    if (g.revs[mid * 2]! <= rev) {
      found = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found;
}

export class KeyIndex {
  private readonly keys = new OrderedMap<Generation[]>();

  /** Number of keys with any retained history (live or not). */
  get size(): number {
    return this.keys.size;
  }

  /** Record a put. `created`/`ver` are the KeyValue's createRevision/version. */
  put(key: string, main: number, sub: number, created: number, ver: number): void {
    let gens = this.keys.get(key);
    if (gens === undefined) {
      gens = [];
      this.keys.set(key, gens);
    }
    const last = gens[gens.length - 1];
    if (last === undefined || last.tombMain >= 0) {
      gens.push({ created, ver, revs: [main, sub], tombMain: -1, tombSub: 0 });
    } else {
      last.revs.push(main, sub);
      last.ver = ver;
    }
  }

  /** Record a delete of a live key. */
  tombstone(key: string, main: number, sub: number): void {
    const gens = this.keys.get(key);
    const last = gens?.[gens.length - 1];
    if (last === undefined || last.tombMain >= 0) throw new Panic('tombstone of a key that is not live');
    last.tombMain = main;
    last.tombSub = sub;
  }

  /**
   * On restore: a tombstone whose puts were already compacted away. Kept as a tombstone-only
   * generation so a compaction resumed at exactly its revision still keeps it.
   */
  restoreTombstone(key: string, main: number, sub: number): void {
    const gens = this.keys.get(key);
    const last = gens?.[gens.length - 1];
    if (last !== undefined && last.tombMain < 0) {
      this.tombstone(key, main, sub);
      return;
    }
    const g: Generation = { created: 0, ver: 0, revs: [], tombMain: main, tombSub: sub };
    if (gens === undefined) this.keys.set(key, [g]);
    else gens.push(g);
  }

  /** The live generation's create revision and version, if the key exists now. */
  current(key: string): { created: number; ver: number } | undefined {
    const gens = this.keys.get(key);
    const last = gens?.[gens.length - 1];
    if (last === undefined || last.tombMain >= 0) return undefined;
    return { created: last.created, ver: last.ver };
  }

  /** The put revision of `key` live at revision `rev`, if any. */
  get(key: string, rev: number): { main: number; sub: number } | undefined {
    const gens = this.keys.get(key);
    return gens === undefined ? undefined : liveAt(gens, rev);
  }

  /**
   * Visit live keys in [from, to) at revision `rev` in key order (`to` undefined: unbounded).
   * The visitor returns false to stop.
   */
  range(from: string, to: string | undefined, rev: number, fn: (e: IndexEntry) => boolean | void): void {
    this.keys.forEachInRange(from, to, (key, gens) => {
      const r = liveAt(gens, rev);
      if (r === undefined) return true;
      return fn({ key, main: r.main, sub: r.sub });
    });
  }

  /**
   * Drop history below `atRev` and return the revisions ≤ atRev that must stay in storage. Per key:
   * the newest put ≤ atRev and everything newer stays; a generation whose tombstone is < atRev goes
   * entirely; a tombstone exactly at atRev stays (alone) so a watch from atRev still sees it.
   */
  compact(atRev: number): KeepSet {
    const keep: KeepSet = new Set();
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
    const replaced: [string, Generation[]][] = [];
    let seen = 0;
    let last: string | undefined;
    this.keys.forEachInRange(from, undefined, (key, gens) => {
      if (seen >= maxKeys) return false;
      seen++;
      last = key;
      const next: Generation[] = [];
      for (const g of gens) {
        if (g.tombMain >= 0 && g.tombMain < atRev) continue;
        if (g.tombMain === atRev) {
          g.revs = [];
          keep.add(revKeyId(g.tombMain, g.tombSub));
          next.push(g);
          continue;
        }
        const idx = lastPutAtOrBefore(g, atRev);
        if (idx > 0) g.revs = g.revs.slice(idx * 2);
        if (idx >= 0) keep.add(revKeyId(g.revs[0]!, g.revs[1]!));
        next.push(g);
      }
      if (next.length === 0) emptied.push(key);
      else if (next.length !== gens.length) replaced.push([key, next]);
      return true;
    });
    for (const [k, g] of replaced) this.keys.set(k, g);
    for (const k of emptied) this.keys.delete(k);
    // the smallest binary string greater than `last`
    return seen < maxKeys || last === undefined ? undefined : `${last}\u0000`;
  }
}

function liveAt(gens: Generation[], rev: number): { main: number; sub: number } | undefined {
  for (let gi = gens.length - 1; gi >= 0; gi--) {
    const g = gens[gi]!;
    if (firstMain(g) > rev) continue;
    if (g.tombMain >= 0 && g.tombMain <= rev) return undefined;
    const idx = lastPutAtOrBefore(g, rev);
    if (idx < 0) return undefined;
    return { main: g.revs[idx * 2]!, sub: g.revs[idx * 2 + 1]! };
  }
  return undefined;
}
