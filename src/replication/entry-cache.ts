/**
 * The newest entries of the raft log in memory: a contiguous suffix of the log, trimmed from its
 * old end to a byte budget. It serves the reads that matter most (a leader feeding followers that
 * are only slightly behind, a Ready's committed entries) without a read transaction, and it holds
 * the entries not yet known to be in the bolt file, which a read must not look for on disk: the
 * owner says how far eviction may go (`evictable`).
 */
import type { Entry } from '../raft/index.ts';

/** Bytes an entry is charged beyond its data: the object, its fields and the array slot. */
export const ENTRY_OVERHEAD = 64;

export function entryCost(e: Entry): number {
  return e.data.byteLength + ENTRY_OVERHEAD;
}

export class EntryCache {
  private ents: Array<Entry | undefined> = [];
  /** ents[head] is the oldest cached entry; the slots before it are dropped. */
  private head = 0;
  private held = 0;

  constructor(readonly budget: number) {}

  /** Bytes the cached entries are charged (data plus ENTRY_OVERHEAD each). */
  bytes(): number {
    return this.held;
  }

  size(): number {
    return this.ents.length - this.head;
  }

  /** Index of the oldest cached entry; `end + 1` (nothing cached) when empty. */
  first(end: number): number {
    const e = this.ents[this.head];
    return e === undefined ? end + 1 : e.index;
  }

  get(i: number): Entry | undefined {
    const e = this.ents[this.head];
    if (e === undefined || i < e.index) return undefined;
    return this.ents[this.head + (i - e.index)];
  }

  /**
   * Appends entries that continue the log at ents[0].index, dropping cached entries from that
   * index on (a replaced suffix). A gap before them empties the cache first.
   */
  append(ents: readonly Entry[]): void {
    if (ents.length === 0) return;
    const start = ents[0]!.index;
    const oldest = this.ents[this.head];
    if (oldest !== undefined) {
      const newest = this.ents[this.ents.length - 1]!;
      if (start <= oldest.index || start > newest.index + 1) this.clear();
      else this.dropFrom(start);
    }
    for (const e of ents) {
      this.ents.push(e);
      this.held += entryCost(e);
    }
  }

  /** Forgets cached entries at or after i. */
  dropFrom(i: number): void {
    while (this.ents.length > this.head && this.ents[this.ents.length - 1]!.index >= i) {
      this.held -= entryCost(this.ents.pop()!);
    }
    if (this.ents.length === this.head) this.clear();
  }

  /** Forgets cached entries at or before i (compaction). */
  dropThrough(i: number): void {
    while (this.head < this.ents.length && this.ents[this.head]!.index <= i) this.dropOldest();
    this.tidy();
  }

  /** Drops the oldest entries while over budget, never one past `evictable`. */
  trim(evictable: number): void {
    while (this.held > this.budget && this.head < this.ents.length && this.ents[this.head]!.index <= evictable)
      this.dropOldest();
    this.tidy();
  }

  clear(): void {
    this.ents = [];
    this.head = 0;
    this.held = 0;
  }

  private dropOldest(): void {
    const e = this.ents[this.head]!;
    this.ents[this.head] = undefined;
    this.head++;
    this.held -= entryCost(e);
  }

  /** Reclaims dropped slots once they are half the array. */
  private tidy(): void {
    if (this.head === this.ents.length) this.clear();
    else if (this.head > 1024 && this.head * 2 > this.ents.length) {
      this.ents = this.ents.slice(this.head);
      this.head = 0;
    }
  }
}
