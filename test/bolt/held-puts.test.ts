/**
 * A leaf still backed by its page holds up to eight puts as offsets into shared byte slabs
 * (held-puts.ts); counts, searches, key comparisons and the first key are answered through them,
 * and a ninth put or a read of the elements builds the element objects. Checked against a sorted
 * model after every put.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Node } from '../../src/bolt/node.ts';
import { ELEMENT_SIZE, LEAF_FLAG, Page, PAGE_HEADER_SIZE, writePageHeader } from '../../src/bolt/page.ts';

const PS = 4096;
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

function leafPage(entries: Array<[Buffer, Buffer]>): Page {
  const buf = new Uint8Array(PS);
  writePageHeader(buf, 9, LEAF_FLAG, entries.length, 0);
  const dv = new DataView(buf.buffer);
  let data = PAGE_HEADER_SIZE + entries.length * ELEMENT_SIZE;
  entries.forEach(([k, v], i) => {
    const e = PAGE_HEADER_SIZE + i * ELEMENT_SIZE;
    dv.setUint32(e + 4, data - e, true);
    dv.setUint32(e + 8, k.length, true);
    dv.setUint32(e + 12, v.length, true);
    buf.set(k, data);
    buf.set(v, data + k.length);
    data += k.length + v.length;
  });
  return new Page(buf);
}

const key = fc.uint8Array({ minLength: 1, maxLength: 6 }).map((a) => Buffer.from(a));
const val = fc.uint8Array({ maxLength: 12 }).map((a) => Buffer.from(a));

test('held puts answer count, search, comparisons and the first key as the model, before and after the elements are built', () => {
  fc.assert(
    fc.property(
      fc.uniqueArray(fc.tuple(key, val), { minLength: 1, maxLength: 30, selector: ([k]) => hex(k) }),
      fc.array(fc.tuple(fc.oneof(key, fc.nat()), val), { minLength: 1, maxLength: 12 }),
      fc.array(key, { minLength: 1, maxLength: 6 }),
      (raw, puts, probes) => {
        const entries = raw.sort((a, b) => Buffer.compare(a[0], b[0]));
        const node = Node.fromPage(leafPage(entries), null, 9);
        const model = new Map(entries.map(([k, v]) => [hex(k), { k, v }]));
        // One slab for all puts' bytes, as a transaction's: offsets, not views.
        const slab = Buffer.alloc(4096, 0xee);
        let used = 0;
        const copy = (b: Buffer): number => {
          slab.set(b, used);
          used += b.length;
          return used - b.length;
        };
        for (const [kk, v] of puts) {
          const k = typeof kk === 'number' ? entries[kk % entries.length]![0] : kk;
          const kpos = copy(k);
          const vpos = copy(v);
          node.putBytes(Buffer.from(k), slab, kpos, slab, vpos, v.length, 0);
          model.set(hex(k), { k, v });
          const want = [...model.values()].sort((a, b) => Buffer.compare(a.k, b.k));
          assert.equal(node.count, want.length);
          assert.equal(hex(node.firstKey()), hex(want[0]!.k));
          let size = PAGE_HEADER_SIZE;
          for (const w of want) size += ELEMENT_SIZE + w.k.length + w.v.length;
          assert.equal(node.byteSize, size);
          for (const p of [...probes, k]) {
            const lb = want.findIndex((w) => Buffer.compare(w.k, p) >= 0);
            const i = node.lowerBound(p);
            assert.equal(i, lb < 0 ? want.length : lb, `lowerBound ${hex(p)}`);
            if (i < want.length)
              assert.equal(Math.sign(node.compareKeyAt(i, p)), Math.sign(Buffer.compare(want[i]!.k, p)));
          }
        }
        // Still page-backed: at most eight puts held; else the elements were built on the ninth.
        if (node.sourcePage !== null) assert.ok(node.heldPuts !== null && node.heldPuts.length <= 8);
        else assert.equal(node.heldPuts, null);
        // Building the elements keeps everything.
        const want = [...model.values()].sort((a, b) => Buffer.compare(a.k, b.k));
        const inodes = node.inodes;
        assert.equal(inodes.length, want.length);
        inodes.forEach((inode, i) => {
          assert.equal(hex(inode.key), hex(want[i]!.k));
          assert.equal(hex(inode.value), hex(want[i]!.v));
        });
        assert.equal(node.heldPuts, null);
      },
    ),
    { numRuns: 300 },
  );
});
