/**
 * Spill of a leaf still backed by its page (spill.ts): the page's elements are copied in runs
 * between the held puts, a run's keys and values with one copy when they lie back to back in the
 * source page and one by one when they do not (a page from another writer may lay its data out in
 * any order, with gaps). Checked against a sorted-map model on hand-made pages of both layouts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Node, type TreeContext } from '../../src/bolt/node.ts';
import { ELEMENT_SIZE, LEAF_FLAG, Page, PAGE_HEADER_SIZE, writePageHeader } from '../../src/bolt/page.ts';
import { spillTree } from '../../src/bolt/spill.ts';

const PS = 4096;
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** A leaf page image of sorted entries whose data lies in the order `place` (gaps of `gap` bytes between). */
function leafPage(pgid: number, entries: Array<[Buffer, Buffer, number]>, place: number[], gap: number): Page {
  const buf = new Uint8Array(PS);
  writePageHeader(buf, pgid, LEAF_FLAG, entries.length, 0);
  const dv = new DataView(buf.buffer);
  let data = PAGE_HEADER_SIZE + entries.length * ELEMENT_SIZE;
  for (const i of place) {
    const [k, v, flags] = entries[i]!;
    const e = PAGE_HEADER_SIZE + i * ELEMENT_SIZE;
    dv.setUint32(e, flags, true);
    dv.setUint32(e + 4, data - e, true);
    dv.setUint32(e + 8, k.length, true);
    dv.setUint32(e + 12, v.length, true);
    buf.set(k, data);
    buf.set(v, data + k.length);
    data += k.length + v.length + gap;
  }
  const page = new Page(buf);
  page.validate();
  return page;
}

/** A context that records what spill writes and frees. */
function context(): { ctx: TreeContext; written: Map<number, Uint8Array>; freed: number[] } {
  const written = new Map<number, Uint8Array>();
  const freed: number[] = [];
  let next = 100;
  const ctx: TreeContext = {
    pageSize: PS,
    load: () => {
      throw new Error('no child pages in a one-leaf tree');
    },
    free: (pgid) => freed.push(pgid),
    allocate: (n) => {
      const id = next;
      next += n;
      return id;
    },
    // Old bytes, as a reused buffer holds: the writers must write every byte.
    pageBuffer: (n) => new Uint8Array(n * PS).fill(0xab),
    write: (pgid, buf) => written.set(pgid, buf),
  };
  return { ctx, written, freed };
}

const key = fc.uint8Array({ minLength: 1, maxLength: 12 }).map((a) => Buffer.from(a));
const val = fc
  .oneof(
    { weight: 4, arbitrary: fc.uint8Array({ maxLength: 40 }) },
    // Large enough, now and then, that the leaf no longer fits a page and is split into several.
    { weight: 1, arbitrary: fc.uint8Array({ minLength: 100, maxLength: 400 }) },
  )
  .map((a) => Buffer.from(a));

/** The leaf entries below page id, in order, checking that every byte past a page's data is zero. */
function walk(written: Map<number, Uint8Array>, id: number, out: Array<[Buffer, Buffer, number]>): void {
  const buf = written.get(id);
  assert.ok(buf, `page ${id} was written`);
  const page = new Page(buf);
  page.validate();
  assert.equal(page.id, id);
  let end = PAGE_HEADER_SIZE + page.count * ELEMENT_SIZE;
  for (let i = 0; i < page.count; i++) {
    const k = page.key(i);
    end = Math.max(end, k.byteOffset - buf.byteOffset + k.length);
    if (page.isLeaf) {
      const v = page.value(i);
      end = Math.max(end, v.byteOffset - buf.byteOffset + v.length);
      out.push([k, v, page.elementFlags(i)]);
    } else walk(written, page.child(i), out);
  }
  assert.ok(
    buf.subarray(end).every((b) => b === 0),
    `page ${id}: bytes past its data are not zero`,
  );
}

test('a page-backed leaf spills as its elements with the held puts merged in, whatever the source layout', () => {
  fc.assert(
    fc.property(
      fc.uniqueArray(fc.tuple(key, val, fc.constantFrom(0, 0, 0, 1)), {
        minLength: 1,
        maxLength: 40,
        selector: ([k]) => hex(k),
      }),
      fc.array(fc.tuple(fc.oneof(key, fc.nat()), val), { maxLength: 8 }),
      fc.constantFrom('in order', 'shuffled', 'reversed'),
      fc.nat({ max: 1 }),
      fc.integer(),
      (raw, puts, layout, gap, seed) => {
        const entries = raw.sort((a, b) => Buffer.compare(a[0], b[0]));
        // Entries beyond a page are left out of the source page (the puts may still overfill it).
        let size = PAGE_HEADER_SIZE;
        let fit = 0;
        while (
          fit < entries.length &&
          size + ELEMENT_SIZE * 2 + entries[fit]![0].length + entries[fit]![1].length + 3 * 2 < PS
        )
          size += ELEMENT_SIZE + entries[fit]![0].length + entries[fit++]![1].length + 3;
        entries.length = fit;
        const place = entries.map((_, i) => i);
        if (layout === 'reversed') place.reverse();
        if (layout === 'shuffled') {
          let s = seed >>> 0;
          for (let i = place.length - 1; i > 0; i--) {
            s = (Math.imul(s, 1103515245) + 12345) >>> 0;
            const j = s % (i + 1);
            [place[i], place[j]] = [place[j]!, place[i]!];
          }
        }
        if (fit === 0) return;
        const page = leafPage(7, entries, place, 3 * gap);
        const model = new Map(entries.map(([k, v, f]) => [hex(k), { k, v, f }]));
        const node = Node.fromPage(page, null, 7);
        for (const [kk, v] of puts) {
          // A number picks an existing key, so replaces are as common as inserts.
          const k = typeof kk === 'number' ? entries[kk % entries.length]![0] : kk;
          node.put(k, v, 0);
          model.set(hex(k), { k, v, f: 0 });
        }
        assert.equal(node.heldPuts === null, puts.length === 0, 'up to eight puts are held aside');
        const { ctx, written, freed } = context();
        const root = spillTree(node, ctx, 0.5);
        assert.deepEqual(freed, [7]);
        const got: Array<[Buffer, Buffer, number]> = [];
        walk(written, root, got);
        const want = [...model.values()].sort((a, b) => Buffer.compare(a.k, b.k));
        assert.equal(got.length, want.length);
        for (let i = 0; i < want.length; i++) {
          assert.equal(hex(got[i]![0]), hex(want[i]!.k), `key ${i}`);
          assert.equal(hex(got[i]![1]), hex(want[i]!.v), `value ${i}`);
          assert.equal(got[i]![2], want[i]!.f, `flags ${i}`);
        }
      },
    ),
    { numRuns: 400 },
  );
});
