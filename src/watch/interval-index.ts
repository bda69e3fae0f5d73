/**
 * Stabbing index over half-open byte-string intervals: which intervals contain key k? A treap
 * ordered by interval start, each node also knowing the largest end in its subtree, so a lookup
 * skips every subtree that ends at or before k. Insert/remove O(log n), lookup O(log n + matches):
 * range watchers are found per event without scanning them all.
 */

/** `end === null` means unbounded above. */
export interface Interval<T> {
  readonly start: string;
  readonly end: string | null;
  readonly value: T;
}

interface Node<T> {
  item: Interval<T>;
  seq: number;
  prio: number;
  maxEnd: string | null;
  left: Node<T> | null;
  right: Node<T> | null;
}

/** Opaque handle returned by insert, used to remove exactly that entry. */
export interface IntervalHandle {
  readonly seq: number;
  readonly start: string;
}

function endMax(a: string | null, b: string | null): string | null {
  if (a === null || b === null) return null;
  return a > b ? a : b;
}

export class IntervalIndex<T> {
  #root: Node<T> | null = null;
  #seq = 0;
  #size = 0;

  get size(): number {
    return this.#size;
  }

  insert(item: Interval<T>): IntervalHandle {
    const node: Node<T> = {
      item,
      seq: this.#seq++,
      prio: Math.random(),
      maxEnd: item.end,
      left: null,
      right: null,
    };
    const [l, r] = this.#split(this.#root, item.start, node.seq);
    this.#root = this.#merge(this.#merge(l, node), r);
    this.#size++;
    return { seq: node.seq, start: item.start };
  }

  remove(h: IntervalHandle): boolean {
    const before = this.#size;
    this.#root = this.#remove(this.#root, h);
    return this.#size < before;
  }

  /** Calls fn for every interval containing k. fn must not modify the index. */
  stab(k: string, fn: (value: T) => void): void {
    this.#stab(this.#root, k, fn);
  }

  #stab(n: Node<T> | null, k: string, fn: (value: T) => void): void {
    while (n !== null) {
      if (n.maxEnd !== null && n.maxEnd <= k) return;
      this.#stab(n.left, k, fn);
      if (n.item.start > k) return;
      if (n.item.end === null || k < n.item.end) fn(n.item.value);
      n = n.right;
    }
  }

  #less(n: Node<T>, start: string, seq: number): boolean {
    return n.item.start < start || (n.item.start === start && n.seq < seq);
  }

  #fix(n: Node<T>): Node<T> {
    let m = n.item.end;
    if (n.left) m = endMax(m, n.left.maxEnd);
    if (n.right) m = endMax(m, n.right.maxEnd);
    n.maxEnd = m;
    return n;
  }

  /** Splits into nodes ordered before (start, seq) and the rest. */
  #split(n: Node<T> | null, start: string, seq: number): [Node<T> | null, Node<T> | null] {
    if (n === null) return [null, null];
    if (this.#less(n, start, seq)) {
      const [l, r] = this.#split(n.right, start, seq);
      n.right = l;
      return [this.#fix(n), r];
    }
    const [l, r] = this.#split(n.left, start, seq);
    n.left = r;
    return [l, this.#fix(n)];
  }

  #merge(a: Node<T> | null, b: Node<T> | null): Node<T> | null {
    if (a === null) return b;
    if (b === null) return a;
    if (a.prio > b.prio) {
      a.right = this.#merge(a.right, b);
      return this.#fix(a);
    }
    b.left = this.#merge(a, b.left);
    return this.#fix(b);
  }

  #remove(n: Node<T> | null, h: IntervalHandle): Node<T> | null {
    if (n === null) return null;
    if (n.seq === h.seq) {
      this.#size--;
      return this.#merge(n.left, n.right);
    }
    if (this.#less(n, h.start, h.seq)) n.right = this.#remove(n.right, h);
    else n.left = this.#remove(n.left, h);
    return this.#fix(n);
  }
}
