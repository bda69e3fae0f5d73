import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { IntervalIndex, type IntervalHandle } from '../../src/watch/interval-index.ts';

const key = fc.string({ unit: fc.constantFrom('a', 'b', 'c', '\0', '\xff'), maxLength: 3 });

describe('IntervalIndex', () => {
  it('stab finds exactly the intervals containing the key (vs brute force)', () => {
    const op = fc.oneof(
      fc.record({ t: fc.constant('add' as const), start: key, end: fc.option(key, { nil: null }) }),
      fc.record({ t: fc.constant('del' as const), pick: fc.nat() }),
      fc.record({ t: fc.constant('stab' as const), k: key }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 120 }), (ops) => {
        const idx = new IntervalIndex<number>();
        const live: { start: string; end: string | null; id: number; h: IntervalHandle }[] = [];
        let id = 0;
        for (const o of ops) {
          if (o.t === 'add') {
            const h = idx.insert({ start: o.start, end: o.end, value: id });
            live.push({ start: o.start, end: o.end, id, h });
            id++;
          } else if (o.t === 'del') {
            if (live.length === 0) continue;
            const [x] = live.splice(o.pick % live.length, 1);
            assert.equal(idx.remove(x!.h), true);
            assert.equal(idx.remove(x!.h), false, 'second remove is a no-op');
          } else {
            const got: number[] = [];
            idx.stab(o.k, (v) => got.push(v));
            const want = live.filter((x) => o.k >= x.start && (x.end === null || o.k < x.end)).map((x) => x.id);
            assert.deepEqual(
              got.sort((a, b) => a - b),
              want.sort((a, b) => a - b),
            );
          }
          assert.equal(idx.size, live.length);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('stays shallow with many equal starts (treap balance)', () => {
    const idx = new IntervalIndex<number>();
    for (let i = 0; i < 20000; i++) idx.insert({ start: 'p/', end: 'p0', value: i });
    let n = 0;
    idx.stab('p/x', () => n++);
    assert.equal(n, 20000);
    let m = 0;
    idx.stab('q', () => m++);
    assert.equal(m, 0);
  });
});
