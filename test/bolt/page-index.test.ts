/**
 * The key index that branch and leaf pages build for their searches (first eight bytes of each
 * key plus its length), checked against a plain binary search over the same sorted keys. Pages
 * are built by hand so they can hold what a tree rarely does: keys sharing long prefixes (with
 * probes inside, before, after and shorter than the shared part), keys that tie on the indexed
 * bytes, keys that equal a longer key's zero-padded prefix, empty keys, and images longer than
 * one page (overflow). Each probe is searched three times, so the answer is checked before the
 * index exists, as it is built and once it is in use.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  BRANCH_FLAG,
  BUCKET_LEAF_FLAG,
  ELEMENT_SIZE,
  LEAF_FLAG,
  Page,
  PAGE_HEADER_SIZE,
  writePageHeader,
} from '../../src/bolt/page.ts';

const PAGE_SIZE = 4096;
const STEMS = ['', 'a', 'abcdefg', 'abcdefgh', 'abcdefgh\0', '\0\0\0\0\0\0\0\0', '\0\0\0', 'abcd'].map((s) =>
  Buffer.from(s, 'latin1'),
);
const keyArb = fc
  .tuple(fc.constantFrom(...STEMS), fc.uint8Array({ minLength: 0, maxLength: 10, max: 3 }))
  .map(([p, t]) => Buffer.concat([p, Buffer.from(t.map((b) => [0, 1, 0x61, 0xff][b]!))]));
const hex = (k: Uint8Array): string => Buffer.from(k).toString('hex');

/** A page image holding keys (sorted) with values of the given lengths (leaf) or child ids (branch). */
function buildPage(leaf: boolean, keys: Buffer[], valueLens: number[]): Buffer {
  const n = keys.length;
  let size = PAGE_HEADER_SIZE + n * ELEMENT_SIZE;
  keys.forEach((k, i) => {
    size += k.length + (leaf ? valueLens[i % valueLens.length]! : 0);
  });
  const pages = Math.ceil(size / PAGE_SIZE);
  const buf = Buffer.alloc(pages * PAGE_SIZE);
  const dv = writePageHeader(buf, 7, leaf ? LEAF_FLAG : BRANCH_FLAG, n, pages - 1);
  let data = PAGE_HEADER_SIZE + n * ELEMENT_SIZE;
  keys.forEach((k, i) => {
    const e = PAGE_HEADER_SIZE + i * ELEMENT_SIZE;
    if (leaf) {
      const vlen = valueLens[i % valueLens.length]!;
      dv.setUint32(e, i % 5 === 3 ? BUCKET_LEAF_FLAG : 0, true);
      dv.setUint32(e + 4, data - e, true);
      dv.setUint32(e + 8, k.length, true);
      dv.setUint32(e + 12, vlen, true);
      k.copy(buf, data);
      buf.fill(i & 0xff, data + k.length, data + k.length + vlen);
      data += k.length + vlen;
    } else {
      dv.setUint32(e, data - e, true);
      dv.setUint32(e + 4, k.length, true);
      dv.setUint32(e + 8, 1000 + i, true);
      dv.setUint32(e + 12, 0, true);
      k.copy(buf, data);
      data += k.length;
    }
  });
  return buf;
}

/** The model: index of the first key >= probe, and whether it equals the probe. */
function modelLowerBound(sorted: Buffer[], probe: Buffer): { i: number; hit: boolean } {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (Buffer.compare(sorted[mid]!, probe) < 0) lo = mid + 1;
    else hi = mid;
  }
  return { i: lo, hit: lo < sorted.length && Buffer.compare(sorted[lo]!, probe) === 0 };
}

test('page key index: lowerBound and exact match agree with a plain binary search (leaf and branch, incl. overflow)', () => {
  fc.assert(
    fc.property(
      fc.boolean(),
      fc.uniqueArray(keyArb, { minLength: 0, maxLength: 120, selector: hex }),
      fc.array(fc.integer({ min: 0, max: 300 }), { minLength: 1, maxLength: 5 }),
      fc.array(keyArb, { minLength: 1, maxLength: 30 }),
      // A prefix every stored key (and most probes) begins with, so the index keeps a shared part.
      fc
        .uint8Array({ minLength: 0, maxLength: 20, max: 3 })
        .map((t) => Buffer.from(t.map((b) => [0, 1, 0x61, 0xff][b]!))),
      (leaf, rawKeys, valueLens, rawExtra, shared) => {
        const keys = rawKeys.map((k) => Buffer.concat([shared, k]));
        const extra = [
          ...rawExtra,
          ...rawExtra.map((k) => Buffer.concat([shared, k])),
          // Inside the shared part, and just below or above it.
          ...Array.from({ length: shared.length + 1 }, (_, j) => shared.subarray(0, j)),
          ...Array.from({ length: shared.length }, (_, j) => {
            const b = Buffer.from(shared);
            b[j] = (b[j]! + 1) & 0xff;
            return b;
          }),
          ...Array.from({ length: shared.length }, (_, j) => {
            const b = Buffer.concat([shared, Buffer.from('zz')]);
            b[j] = (b[j]! + 0xff) & 0xff;
            return b;
          }),
        ];
        const sorted = [...keys].sort(Buffer.compare);
        const page = new Page(buildPage(leaf, sorted, valueLens));
        assert.equal(page.count, sorted.length);
        // Values, sub-bucket flags and child ids, read from the page and (after the searches) from the index.
        const checkElements = (): void => {
          for (let i = 0; i < sorted.length; i++) {
            assert.equal(hex(page.key(i)), hex(sorted[i]!));
            if (!leaf) assert.equal(page.child(i), 1000 + i);
            else {
              const v = Buffer.alloc(valueLens[i % valueLens.length]!, i & 0xff);
              assert.deepEqual(page.value(i), v);
              assert.deepEqual(page.leafValue(i), i % 5 === 3 ? undefined : v);
            }
          }
        };
        checkElements();
        // Probes: every stored key, keys one byte longer or shorter, and random ones.
        const probes = [
          ...sorted,
          ...sorted.map((k) => Buffer.concat([k, Buffer.from([0])])),
          ...sorted.map((k) => k.subarray(0, Math.max(0, k.length - 1))),
          ...extra,
        ];
        for (let round = 0; round < 3; round++) {
          for (const p of probes) {
            const want = modelLowerBound(sorted, p);
            const exact = { hit: !want.hit };
            assert.equal(page.lowerBound(p, exact), want.i, `probe ${hex(p)} round ${round}`);
            assert.equal(exact.hit, want.hit, `probe ${hex(p)} round ${round}`);
          }
        }
        checkElements();
      },
    ),
    { numRuns: 300 },
  );
});

test('page key index: a probe tied on eight bytes with a longer stored key is compared in full', () => {
  const keys = ['abcdefgh', 'abcdefghA', 'abcdefghB', 'abcdefghBB', 'abcdefgi', 'b', 'c', 'd', 'e', 'f'].map((s) =>
    Buffer.from(s),
  );
  for (const leaf of [true, false]) {
    const page = new Page(buildPage(leaf, keys, [3]));
    for (let round = 0; round < 3; round++) {
      for (const [probe, i, hit] of [
        ['abcdefghB', 2, true],
        ['abcdefghAz', 2, false],
        ['abcdefghBA', 3, false],
        ['abcdefgh', 0, true],
        ['abcdefg', 0, false],
        ['abcdefgh\0', 1, false],
        ['abcdefgz', 5, false],
      ] as const) {
        const exact = { hit: !hit };
        assert.equal(page.lowerBound(Buffer.from(probe), exact), i, `${leaf} ${probe}`);
        assert.equal(exact.hit, hit, `${leaf} ${probe}`);
      }
    }
  }
});
