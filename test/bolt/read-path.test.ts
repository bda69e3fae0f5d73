/**
 * The read path over committed pages: the word-wise key search (get, seek) and the cursor's
 * in-leaf step, checked against a sorted model with keys built to share long prefixes, so
 * comparisons end inside a 4-byte word, at a word's edge, in a tail byte and past 256 bytes
 * (where the search falls back to bytewise comparison). Also the page cache against a model, and
 * its default budget.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { open } from 'boltkv';
import type { FileIO } from '../../src/bolt/file.ts';
import { LEAF_FLAG, PAGE_HEADER_SIZE, writePageHeader } from '../../src/bolt/page.ts';
import { defaultCacheSize, MAX_DEFAULT_CACHE, MIN_DEFAULT_CACHE, Pager } from '../../src/bolt/pager.ts';

const PREFIXES = [0, 3, 4, 5, 8, 255, 256, 257, 300].map((n) => Buffer.alloc(n, 0x61));
const keyArb = fc
  .tuple(fc.constantFrom(...PREFIXES), fc.uint8Array({ minLength: 0, maxLength: 6, max: 3 }))
  .map(([p, t]) => Buffer.concat([p, Buffer.from(t.map((b) => [0, 1, 0x61, 0xff][b]!))]))
  .filter((k) => k.length > 0);
const hex = (k: Uint8Array): string => Buffer.from(k).toString('hex');

function tempDb(name: string) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `boltkv-${name}-`));
  return { dir, file: path.join(dir, 'db'), [Symbol.dispose]: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

test('get, seek, next and prev over committed pages agree with a sorted model', () => {
  using t = tempDb('read-path');
  const db = open(t.file, { noSync: true });
  try {
    fc.assert(
      fc.property(
        fc.uniqueArray(keyArb, { minLength: 1, maxLength: 400, selector: hex }),
        fc.array(keyArb, { minLength: 1, maxLength: 40 }),
        (keys, probes) => {
          db.update((tx) => {
            if (tx.bucket('b')) tx.deleteBucket('b');
            const b = tx.createBucket('b');
            // Large enough values that the tree has branch pages above several leaves.
            for (const k of keys) b.put(k, Buffer.concat([k, Buffer.alloc(40, 7)]));
          });
          const sorted = [...keys].sort(Buffer.compare);
          db.view((tx) => {
            const b = tx.bucket('b')!;
            for (const p of [...probes, ...keys.slice(0, 20)]) {
              const want = sorted.findIndex((k) => Buffer.compare(k, p) >= 0);
              const exact = want >= 0 && Buffer.compare(sorted[want]!, p) === 0;
              const got = b.get(p);
              if (exact) assert.deepEqual(got, Buffer.concat([p, Buffer.alloc(40, 7)]));
              else assert.equal(got, undefined);
              const c = b.cursor();
              const e = c.seek(p);
              if (want < 0) {
                assert.equal(e, undefined);
                continue;
              }
              assert.equal(hex(e![0]), hex(sorted[want]!));
              // Forward steps: within a leaf (the fast path) and across leaves.
              for (let i = want + 1; i < Math.min(sorted.length, want + 30); i++)
                assert.equal(hex(c.next()![0]), hex(sorted[i]!));
              const back = c.prev();
              const at = Math.min(sorted.length, want + 30) - 2;
              if (at >= 0 && at >= want - 1) assert.equal(back && hex(back[0]), hex(sorted[at]!));
            }
          });
        },
      ),
      { numRuns: 40 },
    );
  } finally {
    db.close();
  }
});

test('entries from next() stay intact for the transaction, and sub-buckets read as null', () => {
  using t = tempDb('read-views');
  const db = open(t.file, { noSync: true });
  try {
    db.update((tx) => {
      const b = tx.createBucket('b');
      for (let i = 0; i < 2000; i++) {
        const k = Buffer.alloc(8);
        k.writeUInt32BE(i, 4);
        if (i % 97 === 50) b.createBucket(k).put('x', 'y');
        else b.put(k, Buffer.alloc(100, i & 0xff));
      }
    });
    db.view((tx) => {
      const c = tx.bucket('b')!.cursor();
      const seen: Array<[Buffer, Buffer | null]> = [];
      for (let e = c.first(); e; e = c.next()) seen.push(e);
      assert.equal(seen.length, 2000);
      // Read many other pages in between, then check what was handed out earlier.
      for (let i = 0; i < 2000; i += 7) tx.bucket('b')!.get(Buffer.from([0, 0, 0, 0, 0, 0, i >> 8, i & 0xff]));
      seen.forEach(([k, v], i) => {
        assert.equal(k.readUInt32BE(4), i);
        assert.ok(Buffer.isBuffer(k));
        if (i % 97 === 50) assert.equal(v, null);
        else assert.deepEqual(v, Buffer.alloc(100, i & 0xff));
      });
    });
  } finally {
    db.close();
  }
});

test('the default page cache is an eighth of memory, between 128 MiB and 2 GiB; an explicit size wins', () => {
  const d = defaultCacheSize();
  assert.ok(d >= MIN_DEFAULT_CACHE && d <= MAX_DEFAULT_CACHE, `default ${d}`);
  assert.equal(
    d,
    Math.min(
      MAX_DEFAULT_CACHE,
      Math.max(MIN_DEFAULT_CACHE, Math.floor(Math.min(os.totalmem(), process.constrainedMemory?.() || Infinity) / 8)),
    ),
  );
  using t = tempDb('read-cache');
  const db = open(t.file, { noSync: true });
  assert.equal(db.stats().cache.limit, d);
  db.close();
  const small = open(t.file, { noSync: true, cacheSize: 1 << 20 });
  assert.equal(small.stats().cache.limit, 1 << 20);
  small.close();
});

/** A file of `pages` empty leaf pages, each stamped with its id and a version byte, counting reads. */
class PageFile implements FileIO {
  readonly data: Buffer;
  reads = 0;
  constructor(
    readonly pageSize: number,
    pages: number,
  ) {
    this.data = Buffer.alloc(pageSize * pages);
    for (let id = 0; id < pages; id++) writePageHeader(this.data.subarray(id * pageSize), id, LEAF_FLAG, 0, 0);
  }
  read(buf: Uint8Array, position: number): number {
    this.reads++;
    const n = Math.max(0, Math.min(buf.length, this.data.length - position));
    buf.set(this.data.subarray(position, position + n));
    return n;
  }
  write(buf: Uint8Array, position: number): void {
    this.data.set(buf, position);
  }
  writev(bufs: readonly Uint8Array[], position: number): void {
    for (const b of bufs) {
      this.write(b, position);
      position += b.length;
    }
  }
  sync(): void {}
  syncAsync(): Promise<void> {
    return Promise.resolve();
  }
  size(): number {
    return this.data.length;
  }
  truncate(): void {}
  tryLock(): boolean {
    return true;
  }
  unlock(): void {}
  close(): void {}
}

test('the page cache agrees with a model: right pages, bounded bytes, rewritten pages never served stale', () => {
  const PS = 256;
  const PAGES = 64;
  fc.assert(
    fc.property(
      fc.integer({ min: 2, max: 24 }),
      fc.array(
        fc.oneof(
          {
            weight: 8,
            arbitrary: fc.record({ op: fc.constant('read' as const), id: fc.integer({ min: 2, max: PAGES - 1 }) }),
          },
          {
            weight: 2,
            arbitrary: fc.record({ op: fc.constant('write' as const), id: fc.integer({ min: 2, max: PAGES - 1 }) }),
          },
          { weight: 1, arbitrary: fc.record({ op: fc.constant('clear' as const), id: fc.constant(0) }) },
        ),
        { maxLength: 300 },
      ),
      (budgetPages, ops) => {
        const file = new PageFile(PS, PAGES);
        const limit = budgetPages * PS;
        const pager = new Pager(file, PS, limit);
        const version = new Uint8Array(PAGES);
        for (const { op, id } of ops) {
          if (op === 'read') {
            const before = file.reads;
            const p = pager.page(id, PAGES);
            assert.equal(p.id, id);
            // The byte after the header carries the version last written: a stale page would differ.
            assert.equal(p.buf[PAGE_HEADER_SIZE], version[id]);
            // A second read right away is always a hit.
            const again = pager.page(id, PAGES);
            assert.equal(again, p);
            assert.ok(file.reads - before <= 1);
          } else if (op === 'write') {
            version[id] = (version[id]! + 1) & 0xff;
            const img = Buffer.alloc(PS);
            writePageHeader(img, id, LEAF_FLAG, 0, 0);
            img[PAGE_HEADER_SIZE] = version[id]!;
            pager.writePages(new Map([[id, img]]));
          } else pager.clearCache();
          const s = pager.cacheStats();
          assert.equal(s.bytes, s.pages * PS);
          assert.ok(s.bytes <= limit + PS, `cache holds ${s.bytes} bytes over a ${limit}-byte budget`);
        }
      },
    ),
    { numRuns: 200 },
  );
});

test('pages freed by commits leave the page cache: it holds the live tree, not every version written', () => {
  using t = tempDb('read-cache-free');
  const db = open(t.file, { noSync: true, cacheSize: 256 << 20 });
  try {
    const k = (i: number): Buffer => Buffer.from(`key-${String(i).padStart(6, '0')}`);
    db.update((tx) => {
      const b = tx.createBucket('b');
      for (let i = 0; i < 20_000; i++) b.put(k(i), Buffer.alloc(100, i & 0xff));
    });
    // Each commit rewrites the path to a few leaves (copy-on-write) and frees the old pages.
    for (let c = 0; c < 300; c++) {
      db.update((tx) => {
        const b = tx.bucket('b')!;
        for (let j = 0; j < 3; j++) b.put(k((c * 7919 + j * 104729) % 20_000), Buffer.alloc(100, c & 0xff));
      });
    }
    // Read everything once so every live page is cached.
    const live = db.view((tx) => {
      const b = tx.bucket('b')!;
      assert.equal(
        b.scan({}, () => {}),
        20_000,
      );
      const s = b.stats();
      return s.branchPageN + s.leafPageN + s.branchOverflowN + s.leafOverflowN;
    });
    const cached = db.stats().cache.pages;
    // The live tree, plus at most the root bucket's page and the freelist's.
    assert.ok(cached <= live + 2, `cache holds ${cached} pages for a tree of ${live}`);
    assert.ok(cached >= live - 1, `cache holds ${cached} pages, fewer than the ${live} just read`);
  } finally {
    db.close();
  }
});

test('cacheWrittenLeaves: false caches the branch pages a commit writes but not its leaves; reads still see every write', () => {
  using t = tempDb('read-cache-written');
  const k = (i: number): Buffer => Buffer.from(`key-${String(i).padStart(6, '0')}`);
  const cachedAfterLoad = (cacheWrittenLeaves: boolean | undefined): { pages: number; leaves: number } => {
    fs.rmSync(t.file, { force: true });
    const db = open(t.file, { noSync: true, cacheSize: 64 << 20, cacheWrittenLeaves });
    try {
      for (let c = 0; c < 20; c++) {
        db.update((tx) => {
          const b = tx.createBucketIfNotExists('b');
          for (let i = c * 500; i < (c + 1) * 500; i++) b.put(k(i), Buffer.alloc(100, i & 0xff));
        });
      }
      const pages = db.stats().cache.pages;
      const leaves = db.view((tx) => tx.bucket('b')!.stats().leafPageN);
      db.view((tx) => {
        const b = tx.bucket('b')!;
        for (let i = 0; i < 10_000; i += 37) assert.deepEqual(b.get(k(i)), Buffer.alloc(100, i & 0xff));
        assert.equal(
          b.scan({}, () => {}),
          10_000,
        );
      });
      return { pages, leaves };
    } finally {
      db.close();
    }
  };
  const kept = cachedAfterLoad(undefined);
  const notKept = cachedAfterLoad(false);
  assert.ok(
    kept.pages >= kept.leaves,
    `by default the written leaves are cached (${kept.pages} pages, ${kept.leaves} leaves)`,
  );
  assert.ok(
    notKept.pages < notKept.leaves / 4,
    `without, only branch pages and re-read leaves are (${notKept.pages} pages, ${notKept.leaves} leaves)`,
  );
});

test('branch pages searched through their eight-byte prefix index agree with a model (zero bytes and short keys)', () => {
  using t = tempDb('read-branch-index');
  const db = open(t.file, { noSync: true });
  // Keys of 1-11 bytes over {0, 1, 0xff}: many share their first eight bytes once zero padded ("a" and "a\0").
  const shortKey = fc
    .uint8Array({ minLength: 1, maxLength: 11, max: 2 })
    .map((a) => Buffer.from(a.map((b) => [0, 1, 0xff][b]!)));
  try {
    fc.assert(
      fc.property(
        fc.uniqueArray(shortKey, { minLength: 500, maxLength: 3000, selector: hex }),
        fc.array(shortKey, { maxLength: 60 }),
        (keys, probes) => {
          db.update((tx) => {
            if (tx.bucket('b')) tx.deleteBucket('b');
            const b = tx.createBucket('b');
            for (const k of keys) b.put(k, Buffer.concat([k, Buffer.alloc(100, 3)]));
          });
          const sorted = [...keys].sort(Buffer.compare);
          db.view((tx) => {
            const b = tx.bucket('b')!;
            assert.ok(b.stats().branchPageN >= 1, 'the tree has a branch page');
            for (const p of [...probes, ...keys.slice(0, 30)]) {
              const want = sorted.findIndex((k) => Buffer.compare(k, p) >= 0);
              const exact = want >= 0 && Buffer.compare(sorted[want]!, p) === 0;
              const got = b.get(p);
              if (exact) assert.deepEqual(got, Buffer.concat([p, Buffer.alloc(100, 3)]));
              else assert.equal(got, undefined);
              const e = b.cursor().seek(p);
              if (want < 0) assert.equal(e, undefined);
              else assert.equal(hex(e![0]), hex(sorted[want]!));
            }
          });
        },
      ),
      { numRuns: 40 },
    );
  } finally {
    db.close();
  }
});
