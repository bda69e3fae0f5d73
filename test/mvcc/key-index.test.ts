/**
 * Property test of the key index against a plain model: the full event history per key.
 * Rules checked (etcd-semantics.md): "Revisions" (generations: create, puts, tombstone; version
 * resets after a delete) and "Compaction" (keep the newest revision ≤ rev and everything newer; a
 * generation that ended before rev disappears; a tombstone exactly at rev survives).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { KeepSet, KeyIndex, revKeyId } from '../../src/mvcc/key-index.ts';

type Op =
  | { t: 'put'; k: string }
  | { t: 'del'; k: string }
  | { t: 'compact'; back: number; chunk: number }
  | { t: 'txn'; ks: string[] }
  | { t: 'jump'; by: number };

const opsOf = (keyArb: fc.Arbitrary<string>, jumps = 0): fc.Arbitrary<Op> =>
  fc.oneof(
    { weight: 5, arbitrary: keyArb.map((k) => ({ t: 'put' as const, k })) },
    { weight: 2, arbitrary: keyArb.map((k) => ({ t: 'del' as const, k })) },
    {
      weight: 1,
      arbitrary: fc.record({
        t: fc.constant('compact' as const),
        back: fc.nat(6),
        chunk: fc.integer({ min: 1, max: 8 }),
      }),
    },
    {
      weight: 1,
      arbitrary: fc.uniqueArray(keyArb, { minLength: 1, maxLength: 3 }).map((ks) => ({ t: 'txn' as const, ks })),
    },
    {
      weight: jumps,
      arbitrary: fc.integer({ min: 2 ** 23 - 6, max: 2 ** 23 }).map((by) => ({ t: 'jump' as const, by })),
    },
  );
const opArb = opsOf(fc.constantFrom('a', 'b', 'c', 'd', '\u00ff', 'a\u0000'));
// few keys and long runs: histories long enough that the index grows its arrays in place
const hotOpArb = opsOf(fc.constantFrom('a', 'b', 'c'));
// revisions around the limits of the two-put packing (first put below 2^30, distance below 2^23)
const bigOpArb = opsOf(fc.constantFrom('a', 'b', 'c'), 2);

interface ModelEvent {
  main: number;
  sub: number;
  tomb: boolean;
}

const variants = [
  ['', opArb, 60, 300, 1],
  [' (long histories)', hotOpArb, 250, 40, 1],
  [' (revisions near 2^30, jumps near 2^23)', bigOpArb, 60, 300, 2 ** 30 - 12],
] as const;
for (const [name, arb, maxLength, numRuns, firstRev] of variants)
  test(`key index matches a history model at every retained revision, and compaction keeps exactly what the rules say${name}`, () => {
    fc.assert(
      fc.property(fc.array(arb, { maxLength }), (ops) => {
        const idx = new KeyIndex();
        const hist = new Map<string, ModelEvent[]>();
        const live = (k: string): boolean => {
          const h = hist.get(k);
          return h !== undefined && h.length > 0 && !h[h.length - 1]!.tomb;
        };
        let rev = firstRev;
        let compacted = 0;
        const version = new Map<string, { created: number; ver: number }>();
        const put = (k: string, main: number, sub: number): void => {
          const cur = live(k) ? version.get(k)! : { created: main, ver: 0 };
          const next = { created: cur.created, ver: cur.ver + 1 };
          version.set(k, next);
          idx.put(k, main, sub, next.created, next.ver);
          if (!hist.has(k)) hist.set(k, []);
          hist.get(k)!.push({ main, sub, tomb: false });
        };
        for (const op of ops) {
          if (op.t === 'jump') rev += op.by;
          else if (op.t === 'put') put(op.k, ++rev, 0);
          else if (op.t === 'txn') {
            rev++;
            op.ks.forEach((k, i) => put(k, rev, i));
          } else if (op.t === 'del') {
            if (!live(op.k)) continue;
            rev++;
            idx.tombstone(op.k, rev, 0);
            hist.get(op.k)!.push({ main: rev, sub: 0, tomb: true });
          } else {
            const at = rev - op.back;
            if (at <= compacted) continue;
            // in bounded steps, as the store runs it between writes
            const keep = new KeepSet();
            let from: string | undefined = '';
            while (from !== undefined) from = idx.compactChunk(at, from, op.chunk, keep);
            // the model's keep set: per key, the newest event <= at if it is a put, or a tombstone exactly at `at`
            const want = new Set<string>();
            for (const h of hist.values()) {
              const older = h.filter((e) => e.main <= at);
              const newest = older[older.length - 1];
              if (newest !== undefined && (!newest.tomb || newest.main === at))
                want.add(revKeyId(newest.main, newest.sub));
            }
            assert.deepEqual([...keep].sort(), [...want].sort(), `keep set of compact(${at})`);
            compacted = at;
          }
          // every key at every revision >= compacted answers as the model does
          // (where revisions jumped, at every event revision and the one before it)
          const revs = new Set<number>([Math.max(compacted, 1), rev]);
          for (const h of hist.values())
            for (const e of h) for (const r of [e.main - 1, e.main]) if (r >= compacted && r <= rev) revs.add(r);
          if (rev - compacted < 1000) for (let r = Math.max(compacted, 1); r <= rev; r++) revs.add(r);
          for (const r of [...revs].sort((x, y) => x - y)) {
            for (const [k, h] of hist) {
              const older = h.filter((e) => e.main <= r);
              const newest = older[older.length - 1];
              const expect = newest === undefined || newest.tomb ? undefined : { main: newest.main, sub: newest.sub };
              assert.deepEqual(idx.get(k, r), expect, `key ${JSON.stringify(k)} at ${r}`);
            }
            const seen: string[] = [];
            idx.range('', undefined, r, (e) => {
              seen.push(e.key);
            });
            const expectKeys = [...hist.keys()].filter((k) => idx.get(k, r) !== undefined).sort();
            assert.deepEqual(seen, expectKeys, `range at ${r}`);
          }
          for (const k of hist.keys()) {
            const cur = idx.current(k);
            assert.equal(cur !== undefined, live(k));
            if (cur !== undefined) assert.deepEqual(cur, version.get(k));
          }
        }
      }),
      { numRuns },
    );
  });

test('range respects [from, to) bounds in byte order', () => {
  const idx = new KeyIndex();
  const keys = ['a', 'ab', 'b', 'b\u0000', 'c', '\u00ff'];
  keys.forEach((k, i) => idx.put(k, i + 2, 0, i + 2, 1));
  const got = (from: string, to: string | undefined): string[] => {
    const out: string[] = [];
    idx.range(from, to, 100, (e) => {
      out.push(e.key);
    });
    return out;
  };
  assert.deepEqual(got('ab', 'c'), ['ab', 'b', 'b\u0000']);
  assert.deepEqual(got('b', undefined), ['b', 'b\u0000', 'c', '\u00ff']);
  assert.deepEqual(got('c', 'a'), []);
});

test('a restored tombstone without its puts is invisible to reads and kept only by a compaction at its revision', () => {
  const idx = new KeyIndex();
  idx.restoreTombstone('k', 5, 0);
  assert.equal(idx.get('k', 5), undefined);
  assert.equal(idx.current('k'), undefined);
  idx.put('k', 7, 0, 7, 1);
  assert.deepEqual(idx.get('k', 7), { main: 7, sub: 0 });
  assert.deepEqual([...idx.compact(5)], ['5_0']);
  assert.deepEqual([...idx.compact(6)], []);
  assert.deepEqual(idx.get('k', 8), { main: 7, sub: 0 });
});
