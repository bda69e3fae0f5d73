/**
 * The default freelist: free pages kept as maximal spans, segregated by length, so allocation and
 * release cost O(1) per run however large or fragmented the free list grows. This is the design
 * that let etcd grow its bbolt files far past the point where the sorted-array scan stalled.
 *
 * Structure:
 * - length classes: span length -> array of the starts of the free spans of that length;
 * - the non-empty lengths, kept sorted, to find the smallest class >= n by binary search
 *   (O(log k); k distinct lengths can be at most sqrt(2 * free pages), about 4.5k at 10M pages);
 * - boundary tags: "start -> length" and "end -> length", plus each span's slot in its class so it
 *   can leave the class in O(1). They are direct-addressed page tables ({@link PageTable}), and
 *   the free-page bitmap tells whether a neighbouring page is free at all.
 *
 * Allocation policy for n pages:
 * 1. a span of exactly n pages if any class n exists (the most recently freed one: LIFO);
 * 2. otherwise best fit: the smallest length L > n that has a span; the first n pages of that span
 *    are handed out and the remaining L - n pages go back as a span of their own;
 * 3. otherwise 0 (the caller grows the file).
 * Unlike first fit this does not prefer low page ids; it never scans.
 *
 * Release: each run merges with the span ending just before it and the span starting just after
 * it (two bitmap probes, two tag reads), so spans stay maximal: no two free spans ever touch.
 * `debugSpans()` and `debugCheck()` expose this for tests.
 */
import { Panic } from '../errors.ts';
import { FreelistBase } from './freelist-base.ts';
import { PageTable } from './page-table.ts';

/** First index in the ascending array whose value is >= x. */
function lowerBound(sorted: readonly number[], x: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export class HashmapFreelist extends FreelistBase {
  readonly kind = 'hashmap' as const;
  protected override readonly cheapRunSearch = true;
  /** Length of the span, written at its first and at its last page. */
  private readonly lenAt = new PageTable();
  /** Index of the span in its length class, written at its first page. */
  private readonly slotAt = new PageTable();
  private readonly classes = new Map<number, number[]>();
  /** Lengths whose class is non-empty, ascending. */
  private readonly lengths: number[] = [];

  protected rebuildIndex(): void {
    this.lenAt.clear();
    this.slotAt.clear();
    this.classes.clear();
    this.lengths.length = 0;
    this.freePages.forEachRun((start, length) => this.addSpan(start, length));
  }

  protected takeRun(n: number): number {
    const exact = this.classes.get(n);
    if (exact !== undefined) {
      const start = exact.pop()!;
      if (exact.length === 0) this.dropClass(n);
      this.freePages.deleteRange(start, n);
      return start;
    }
    const i = lowerBound(this.lengths, n);
    if (i === this.lengths.length) return 0;
    const length = this.lengths[i]!;
    const cls = this.classes.get(length)!;
    const start = cls[cls.length - 1]!;
    this.resizeSpan(start, length, start + n, length - n);
    this.freePages.deleteRange(start, n);
    return start;
  }

  protected insertRuns(starts: readonly number[], lengths: readonly number[]): void {
    for (let r = 0; r < starts.length; r++) {
      const s = starts[r]!;
      const n = lengths[r]!;
      let start = s;
      let length = n;
      // The neighbour span that grows into the merged one (-1: none, the run stands alone).
      let grownStart = -1;
      let grownLength = 0;
      if (this.freePages.has(s - 1)) {
        const left = this.lenAt.get(s - 1);
        start = s - left;
        length += left;
        grownStart = start;
        grownLength = left;
      }
      if (this.freePages.has(s + n)) {
        const right = this.lenAt.get(s + n);
        length += right;
        if (grownStart < 0) {
          grownStart = s + n;
          grownLength = right;
        } else {
          this.removeSpan(s + n, right);
        }
      }
      if (grownStart < 0) this.addSpan(start, length);
      else this.resizeSpan(grownStart, grownLength, start, length);
      this.freePages.addRange(s, n);
    }
  }

  ids(): number[] {
    return this.freePages.toArray();
  }

  /**
   * Replace span (start, length) by (newStart, newLength). When the span is alone in its class
   * and no class newLength exists yet, the class array moves to the new length in place: the
   * common case of one large span being carved up or grown (a contiguous list) then allocates
   * nothing and, when no other length sits between the two, does not reshuffle the index.
   */
  private resizeSpan(start: number, length: number, newStart: number, newLength: number): void {
    const cls = this.classes.get(length);
    if (cls === undefined || cls.length !== 1 || newLength === 0 || this.classes.has(newLength)) {
      this.removeSpan(start, length);
      if (newLength > 0) this.addSpan(newStart, newLength);
      return;
    }
    if (cls[0] !== start) throw new Panic(`freelist span ${start}+${length} missing from its length class`);
    if (newLength > 0xffffffff) throw new Panic(`freelist span of ${newLength} pages is too long`);
    this.classes.delete(length);
    this.classes.set(newLength, cls);
    cls[0] = newStart;
    const lengths = this.lengths;
    const i = lowerBound(lengths, length);
    if ((i === 0 || lengths[i - 1]! < newLength) && (i + 1 === lengths.length || lengths[i + 1]! > newLength)) {
      lengths[i] = newLength;
    } else {
      lengths.splice(i, 1);
      lengths.splice(lowerBound(lengths, newLength), 0, newLength);
    }
    this.slotAt.set(newStart, 0);
    this.lenAt.set(newStart, newLength);
    this.lenAt.set(newStart + newLength - 1, newLength);
  }

  private addSpan(start: number, length: number): void {
    if (length > 0xffffffff) throw new Panic(`freelist span of ${length} pages is too long`);
    this.lenAt.set(start, length);
    this.lenAt.set(start + length - 1, length);
    let cls = this.classes.get(length);
    if (cls === undefined) {
      cls = [];
      this.classes.set(length, cls);
      this.lengths.splice(lowerBound(this.lengths, length), 0, length);
    }
    this.slotAt.set(start, cls.length);
    cls.push(start);
  }

  private removeSpan(start: number, length: number): void {
    const cls = this.classes.get(length);
    const slot = this.slotAt.get(start);
    if (cls === undefined || cls[slot] !== start) {
      throw new Panic(`freelist span ${start}+${length} missing from its length class`);
    }
    const last = cls.pop()!;
    if (last !== start) {
      cls[slot] = last;
      this.slotAt.set(last, slot);
    }
    if (cls.length === 0) this.dropClass(length);
  }

  private dropClass(length: number): void {
    this.classes.delete(length);
    this.lengths.splice(lowerBound(this.lengths, length), 1);
  }

  /** Free spans as [start, length], ascending by start. For tests and debugging. */
  debugSpans(): Array<[number, number]> {
    const spans: Array<[number, number]> = [];
    for (const [length, cls] of this.classes) for (const s of cls) spans.push([s, length]);
    return spans.sort((a, b) => a[0] - b[0]);
  }

  /**
   * Verify every internal invariant, O(free pages): tags and slots agree with the classes, spans
   * are exactly the free pages, each span is maximal, and the length index matches the classes.
   * Throws Panic on the first violation. For tests.
   */
  debugCheck(): void {
    let pages = 0;
    for (const [length, cls] of this.classes) {
      if (cls.length === 0) throw new Panic(`empty class ${length} kept`);
      cls.forEach((s, slot) => {
        if (this.lenAt.get(s) !== length || this.lenAt.get(s + length - 1) !== length) {
          throw new Panic(`span ${s}+${length}: boundary tags disagree`);
        }
        if (this.slotAt.get(s) !== slot) throw new Panic(`span ${s}+${length}: wrong slot`);
        if (this.freePages.countRange(s, length) !== length) {
          throw new Panic(`span ${s}+${length}: not all pages are free`);
        }
        if (this.freePages.has(s - 1) || this.freePages.has(s + length)) {
          throw new Panic(`span ${s}+${length} is not maximal: a neighbouring page is free`);
        }
        pages += length;
      });
    }
    if (pages !== this.freePages.size) {
      throw new Panic(`spans hold ${pages} pages, bitmap holds ${this.freePages.size}`);
    }
    const keys = [...this.classes.keys()].sort((a, b) => a - b);
    if (keys.length !== this.lengths.length || keys.some((k, i) => this.lengths[i] !== k)) {
      throw new Panic('length index out of step with the classes');
    }
  }
}
