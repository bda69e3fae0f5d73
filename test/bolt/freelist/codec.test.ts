// The freelist page codec: round trips, the exact layout bbolt reads, and corrupt input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { BoltError } from 'boltkv';
import { decodeFreelistPage, encodeFreelistPage, freelistPageCount } from 'boltkv/freelist';

const MAX = Number.MAX_SAFE_INTEGER;
const pageSizeArb = fc.constantFrom(64, 128, 512, 4096);
const idsArb = fc
  .uniqueArray(
    fc.oneof(
      fc.integer({ min: 2, max: 5000 }),
      fc.integer({ min: 2, max: MAX }),
      fc.constant(MAX),
      fc.constant(2 ** 32),
    ),
    { maxLength: 300, size: 'max' },
  )
  .map((a) => a.sort((x, y) => x - y));

function u64(view: DataView, at: number): number {
  return view.getUint32(at + 4, true) * 2 ** 32 + view.getUint32(at, true);
}

function isCorrupt(err: unknown): boolean {
  return err instanceof BoltError && err.code === 'ERR_CORRUPT_PAGE';
}

test('encode/decode round trip, with the header bbolt expects', () => {
  fc.assert(
    fc.property(idsArb, pageSizeArb, fc.integer({ min: 2, max: MAX }), (ids, pageSize, pgid) => {
      const buf = encodeFreelistPage(pgid, ids, pageSize);
      const pages = freelistPageCount(ids.length, pageSize);
      assert.equal(buf.length, pages * pageSize);
      assert.ok(16 + 8 * ids.length <= buf.length, 'ids fit');
      assert.ok(pages === 1 || 16 + 8 * ids.length > (pages - 1) * pageSize, 'no spare page');
      const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
      assert.equal(u64(view, 0), pgid);
      assert.equal(view.getUint16(8, true), 0x10);
      assert.equal(view.getUint16(10, true), ids.length);
      assert.equal(view.getUint32(12, true), pages - 1);
      ids.forEach((id, i) => assert.equal(u64(view, 16 + 8 * i), id));
      assert.deepEqual(decodeFreelistPage(buf), ids);
    }),
  );
});

test('decode reads a page at an unaligned offset inside a larger buffer', () => {
  fc.assert(
    fc.property(idsArb, fc.integer({ min: 1, max: 7 }), (ids, shift) => {
      const page = encodeFreelistPage(9, ids, 512);
      const big = new Uint8Array(page.length + 16);
      big.set(page, shift);
      assert.deepEqual(decodeFreelistPage(big.subarray(shift, shift + page.length)), ids);
    }),
  );
});

test('0xFFFF ids or more: header count 0xFFFF and the real count as the first u64', () => {
  for (const count of [0xfffe, 0xffff, 0x10000, 200_001]) {
    const ids = Array.from({ length: count }, (_, i) => 2 + 2 * i);
    const buf = encodeFreelistPage(5, ids, 4096);
    const view = new DataView(buf.buffer);
    const extended = count >= 0xffff;
    assert.equal(view.getUint16(10, true), extended ? 0xffff : count);
    if (extended) assert.equal(u64(view, 16), count);
    const first = extended ? 24 : 16;
    assert.equal(u64(view, first), 2);
    assert.equal(buf.length, freelistPageCount(count, 4096) * 4096);
    assert.equal(freelistPageCount(count, 4096), Math.ceil((first + 8 * count) / 4096));
    const back = decodeFreelistPage(buf);
    assert.equal(back.length, count);
    assert.equal(back[count - 1], ids[count - 1]);
  }
});

test('page counts at the boundaries', () => {
  assert.equal(freelistPageCount(0, 4096), 1);
  assert.equal(freelistPageCount(510, 4096), 1); // 16 + 510 * 8 = 4096
  assert.equal(freelistPageCount(511, 4096), 2);
  assert.equal(freelistPageCount(0xfffe, 4096), Math.ceil((16 + 8 * 0xfffe) / 4096));
  assert.equal(freelistPageCount(0xffff, 4096), Math.ceil((24 + 8 * 0xffff) / 4096));
  assert.throws(() => freelistPageCount(1, 100.5), { code: 'ERR_INVALID_OPTION' });
  assert.throws(() => freelistPageCount(-1, 4096), { code: 'ERR_INVALID_OPTION' });
  assert.throws(() => encodeFreelistPage(3, [2], 8), { code: 'ERR_INVALID_OPTION' });
});

test('bbolt accepts the 0xFFFF form with a small real count, and so do we', () => {
  const buf = new Uint8Array(64);
  const view = new DataView(buf.buffer);
  view.setUint16(8, 0x10, true);
  view.setUint16(10, 0xffff, true);
  view.setUint32(16, 2, true);
  view.setUint32(24, 7, true);
  view.setUint32(32, 9, true);
  assert.deepEqual(decodeFreelistPage(buf), [7, 9]);
});

test('encode refuses ids that are not ascending page ids (a caller bug: Panic)', () => {
  for (const ids of [[3, 3], [5, 4], [1], [0, 2], [2.5], [2, MAX + 1], [2, Number.NaN]]) {
    assert.throws(() => encodeFreelistPage(3, ids, 4096), { code: 'ERR_PANIC' }, JSON.stringify(ids));
  }
  assert.throws(() => encodeFreelistPage(1, [2], 4096), { code: 'ERR_PANIC' });
});

/** A valid page with `ids`, then `mutate` applied to its bytes. */
function corrupted(ids: number[], mutate: (view: DataView, buf: Uint8Array) => Uint8Array | void): Uint8Array {
  const buf = encodeFreelistPage(4, ids, 128);
  const out = mutate(new DataView(buf.buffer), buf);
  return out ?? buf;
}

test('decode rejects each kind of inconsistency with ERR_CORRUPT_PAGE', () => {
  const cases: Array<[string, Uint8Array]> = [
    ['short buffer', new Uint8Array(10)],
    ['leaf flag', corrupted([2, 3], (v) => v.setUint16(8, 0x02, true))],
    ['freelist plus leaf flag', corrupted([2, 3], (v) => v.setUint16(8, 0x12, true))],
    ['count beyond buffer', corrupted([2, 3], (v) => v.setUint16(10, 15, true))],
    ['truncated', corrupted([2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15], (_v, b) => b.subarray(0, 100))],
    [
      'extended count beyond buffer',
      corrupted([2, 3], (v) => {
        v.setUint16(10, 0xffff, true);
        v.setUint32(20, 1, true);
      }),
    ],
    [
      'extended count missing',
      (() => {
        const b = new Uint8Array(20);
        const v = new DataView(b.buffer);
        v.setUint16(8, 0x10, true);
        v.setUint16(10, 0xffff, true);
        return b;
      })(),
    ],
    ['descending', corrupted([2, 5, 9], (v) => v.setUint32(24, 10, true))],
    ['duplicate', corrupted([2, 5, 9], (v) => v.setUint32(32, 5, true))],
    ['id 0', corrupted([2, 5], (v) => v.setUint32(16, 0, true))],
    ['id 1', corrupted([2, 5], (v) => v.setUint32(16, 1, true))],
    ['beyond 2^53', corrupted([2, 5], (v) => v.setUint32(28, 0x200000, true))],
  ];
  for (const [name, buf] of cases) {
    assert.throws(() => decodeFreelistPage(buf), isCorrupt, name);
  }
});

test('decode of arbitrary bytes: a valid list or ERR_CORRUPT_PAGE, nothing else', () => {
  let accepted = 0;
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 0, maxLength: 200, size: 'max' }), fc.boolean(), (bytes, forceFlag) => {
      if (forceFlag && bytes.length >= 12) {
        bytes[8] = 0x10;
        bytes[9] = 0;
        bytes[10] = bytes[10]! % 4;
        bytes[11] = 0;
      }
      let ids: number[];
      try {
        ids = decodeFreelistPage(bytes);
      } catch (err) {
        assert.ok(isCorrupt(err), `unexpected ${String(err)}`);
        return;
      }
      accepted++;
      ids.forEach((id, i) => {
        assert.ok(Number.isSafeInteger(id) && id >= 2);
        if (i > 0) assert.ok(id > ids[i - 1]!);
      });
    }),
    { numRuns: 2000 },
  );
  assert.ok(accepted > 0, 'some random pages decode');
});
