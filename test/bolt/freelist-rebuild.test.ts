/**
 * The freelist rebuild a crash-time open runs (src/bolt/freelist-rebuild.ts): on random files with
 * nested, inline and deleted buckets and overflow values, the pages it finds free are exactly the
 * pages no tree reaches (test/support/page-map.ts walks the file independently) and exactly what
 * the live freelist held (free + pending) when the crash happened.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { open } from '../../src/bolt/index.ts';
import { rebuildFreePages } from '../../src/bolt/freelist-rebuild.ts';
import { FaultyDisk } from '../support/faulty-fs.ts';
import { mapPages } from '../support/page-map.ts';

const PATH = '/rb.db';

type Op =
  | { kind: 'put'; bucket: number; key: number; size: number }
  | { kind: 'del'; bucket: number; key: number }
  | { kind: 'dropBucket'; bucket: number }
  | { kind: 'commit' };

const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('put' as const),
      bucket: fc.nat(5),
      key: fc.nat(300),
      size: fc.oneof(fc.nat(300), fc.integer({ min: 4000, max: 20000 })),
    }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('del' as const), bucket: fc.nat(5), key: fc.nat(300) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('dropBucket' as const), bucket: fc.nat(5) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('commit' as const) }) },
);

/** Buckets 0-2 are top-level; 3-5 are nested inside bucket (n - 3) and often small enough to be inline. */
function bucketFor(tx: import('../../src/bolt/index.ts').Tx, n: number) {
  if (n < 3) return tx.createBucketIfNotExists(`top${n}`);
  return tx.createBucketIfNotExists(`top${n - 3}`).createBucketIfNotExists(`sub${n}`);
}

function freeByMap(file: Uint8Array): number[] {
  const map = mapPages(file);
  const used = new Set<number>([
    0,
    1,
    ...map.pages.branch,
    ...map.pages.leaf,
    ...map.pages.overflow,
    ...map.pages.freelist,
  ]);
  const free: number[] = [];
  for (let id = 2; id < map.meta.pgid; id++) if (!used.has(id)) free.push(id);
  return free;
}

test('the rebuild finds exactly the unreachable pages, which are the live freelist', () => {
  fc.assert(
    fc.property(fc.array(op, { minLength: 1, maxLength: 120 }), (ops) => {
      const disk = new FaultyDisk();
      const db = open(PATH, { fileSystem: disk.fs, noSync: true });
      try {
        let tx = db.begin(true);
        for (const o of ops) {
          if (o.kind === 'commit') {
            tx.commit();
            tx = db.begin(true);
          } else if (o.kind === 'put') bucketFor(tx, o.bucket).put(`k${o.key}`, Buffer.alloc(o.size, o.key & 0xff));
          else if (o.kind === 'del') bucketFor(tx, o.bucket).delete(`k${o.key}`);
          else if (o.bucket < 3) {
            if (tx.bucket(`top${o.bucket}`)) tx.deleteBucket(`top${o.bucket}`);
          } else {
            const parent = tx.bucket(`top${o.bucket - 3}`);
            if (parent?.bucket(`sub${o.bucket}`)) parent.deleteBucket(`sub${o.bucket}`);
          }
        }
        tx.commit();
        const live = db.stats();
        const file = disk.contents(PATH);
        const expected = freeByMap(file);
        assert.equal(live.freePageN + live.pendingPageN, expected.length, 'live freelist vs unreachable pages');
        const io = disk.fs.open(PATH, { readOnly: true, mode: 0o600 });
        try {
          const meta = mapPages(file).meta;
          const got = rebuildFreePages(io, 4096, Number(meta.pgid), Number(meta.root));
          assert.deepEqual(got, expected);
        } finally {
          io.close();
        }
      } finally {
        db.close();
      }
    }),
    { numRuns: 60 },
  );
});

test('a page two trees reference is damage, reported as ERR_CORRUPT_PAGE', () => {
  const disk = new FaultyDisk();
  const db = open(PATH, { fileSystem: disk.fs, noSync: true });
  db.update((tx) => {
    const b = tx.createBucket('a');
    for (let i = 0; i < 200; i++) b.put(`k${String(i).padStart(4, '0')}`, 'v'.repeat(100));
  });
  db.close();
  const file = disk.contents(PATH);
  const map = mapPages(file);
  // Point the root branch's second child at its first: the first leaf is now reached twice.
  const root = map.pages.branch[0]!;
  const dv = new DataView(file.buffer, file.byteOffset);
  const first = dv.getUint32(root * 4096 + 16 + 8, true);
  const damaged = new FaultyDisk({ files: new Map([[PATH, file]]) });
  const io = damaged.fs.open(PATH, { readOnly: false, mode: 0o600 });
  const patch = new Uint8Array(4);
  new DataView(patch.buffer).setUint32(0, first, true);
  io.write(patch, root * 4096 + 32 + 8);
  assert.throws(() => rebuildFreePages(io, 4096, Number(map.meta.pgid), Number(map.meta.root)), {
    code: 'ERR_CORRUPT_PAGE',
  });
  io.close();
});
