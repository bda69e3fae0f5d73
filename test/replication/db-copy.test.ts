// The snapshot copy of a bolt file taken from a read transaction: writers committing meanwhile do
// not leak into it, it opens at exactly the transaction's state, and check() finds it sound.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { open } from '../../src/bolt/index.ts';
import { copyChunks, copyToBytes } from '../../src/replication/db-copy.ts';
import { FaultyDisk } from '../support/faulty-fs.ts';

test("a copy from a read transaction is the transaction's snapshot, whole and sound", () => {
  const disk = new FaultyDisk();
  const db = open('/src.db', { fileSystem: disk.fs });
  const big = new Uint8Array(3000).fill(7);
  db.update((tx) => {
    const b = tx.createBucket('b');
    for (let i = 0; i < 500; i++) b.put(`k${String(i).padStart(4, '0')}`, i % 10 === 0 ? big : `v${i}`);
  });
  const tx = db.begin(false);
  // writers go on: overwrite, delete, add, so freed pages get reused by later commits
  for (let round = 0; round < 5; round++) {
    db.update((w) => {
      const b = w.bucket('b')!;
      for (let i = 0; i < 500; i += 3) b.put(`k${String(i).padStart(4, '0')}`, `round${round}`);
      for (let i = 1; i < 500; i += 7) b.delete(`k${String(i).padStart(4, '0')}`);
      for (let i = 0; i < 100; i++) b.put(`new${round}-${i}`, big);
    });
  }
  const bytes = copyToBytes(tx);
  const chunks = [...copyChunks(tx, 8192)];
  assert.ok(chunks.length > 2, 'streamed in several chunks');
  assert.deepEqual(Buffer.concat(chunks), Buffer.from(bytes), 'chunked and whole copies agree');
  tx.rollback();
  db.close();
  const copyDisk = new FaultyDisk({ files: { '/copy.db': bytes } });
  const copy = open('/copy.db', { fileSystem: copyDisk.fs });
  try {
    assert.deepEqual(copy.check(), []);
    copy.view((t) => {
      const b = t.bucket('b')!;
      let n = 0;
      for (const [k, v] of b.range()) {
        const i = Number(Buffer.from(k).toString().slice(1));
        assert.deepEqual(
          Buffer.from(v!),
          Buffer.from(i % 10 === 0 ? big : new TextEncoder().encode(`v${i}`)),
          `key ${i}`,
        );
        n++;
      }
      assert.equal(n, 500);
    });
    // and it takes writes
    copy.update((t) => t.bucket('b')!.put('after', 'x'));
    assert.deepEqual(copy.check(), []);
  } finally {
    copy.close();
  }
});
