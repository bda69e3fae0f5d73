/**
 * The baseline freelist, as bbolt originally shipped it: every free page id in one sorted array.
 *
 * Policy: first fit. `allocate(n)` scans from the lowest id for the first n consecutive ids, so its
 * cost grows with how far into the list the first long-enough run sits: O(free pages) when the low
 * end of the file is fragmented, which is the slowdown etcd hit on large databases. Releasing
 * pending pages merges them into the array: O(free pages) per release. It stays selectable
 * (`'array'`) for comparison and for the allocator benchmark.
 *
 * Taking pages off the front (the common case on a contiguous list) only advances a head offset;
 * the dead prefix goes at the next merge.
 */
import { FreelistBase } from './freelist-base.ts';

export class ArrayFreelist extends FreelistBase {
  readonly kind = 'array' as const;
  /**
   * Free ids ascending in list[head .. end). A Float64Array (ids reach 2^53) so removals are a
   * memmove, as with bbolt's Go slice; a JS array's copyWithin is several times slower and would
   * make the baseline look worse than it is.
   */
  private list = new Float64Array(0);
  private head = 0;
  private end = 0;

  protected rebuildIndex(): void {
    this.list = Float64Array.from(this.freePages.toArray());
    this.head = 0;
    this.end = this.list.length;
  }

  protected takeRun(n: number): number {
    const list = this.list;
    const end = this.end;
    let runStart = 0;
    let prev = -1;
    for (let i = this.head; i < end; i++) {
      const id = list[i]!;
      if (id !== prev + 1) runStart = id;
      if (id - runStart + 1 === n) {
        const first = i - n + 1;
        if (first === this.head) this.head += n;
        else {
          list.copyWithin(first, i + 1, end);
          this.end -= n;
        }
        this.freePages.deleteRange(runStart, n);
        return runStart;
      }
      prev = id;
    }
    return 0;
  }

  protected insertRuns(starts: readonly number[], lengths: readonly number[]): void {
    let total = 0;
    for (const n of lengths) total += n;
    const added = new Float64Array(total);
    let k = 0;
    for (let r = 0; r < starts.length; r++) {
      const s = starts[r]!;
      const n = lengths[r]!;
      for (let j = 0; j < n; j++) added[k++] = s + j;
      this.freePages.addRange(s, n);
    }
    added.sort();
    // A full merge into a new array, O(free pages): what bbolt's array freelist does on release.
    const old = this.list;
    const merged = new Float64Array(this.end - this.head + total);
    let i = this.head;
    let j = 0;
    k = 0;
    while (i < this.end && j < total) merged[k++] = old[i]! < added[j]! ? old[i++]! : added[j++]!;
    while (i < this.end) merged[k++] = old[i++]!;
    while (j < total) merged[k++] = added[j++]!;
    this.list = merged;
    this.head = 0;
    this.end = merged.length;
  }

  ids(): number[] {
    const out = new Array<number>(this.end - this.head);
    for (let i = this.head, k = 0; i < this.end; i++, k++) out[k] = this.list[i]!;
    return out;
  }
}
