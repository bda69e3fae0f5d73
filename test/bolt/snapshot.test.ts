/**
 * Snapshot isolation: read transactions held open across many commits keep seeing exactly the
 * state they began with, while the writer frees pages and reuses free pages around them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { open, type Tx } from 'boltkv';

function tmpFile(): { file: string; cleanup: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'boltkv-snap-'));
  return { file: path.join(dir, 'db'), cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

function contents(tx: Tx): Map<string, string> {
  const out = new Map<string, string>();
  const b = tx.bucket('data');
  b?.forEach((k, v) => {
    out.set(Buffer.from(k).toString('hex'), Buffer.from(v!).toString('hex'));
  });
  return out;
}

test('readers keep their snapshot while pages are freed and reused around them', () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.record({
          writes: fc.array(fc.tuple(fc.nat(300), fc.nat(120), fc.boolean()), { minLength: 1, maxLength: 60 }),
          openReader: fc.boolean(),
          closeReader: fc.nat(10),
        }),
        { minLength: 5, maxLength: 40, size: 'max' },
      ),
      (steps) => {
        const { file, cleanup } = tmpFile();
        const db = open(file, { noSync: true });
        const readers: Array<{ tx: Tx; expected: Map<string, string> }> = [];
        try {
          db.update((tx) => void tx.createBucket('data'));
          for (const step of steps) {
            if (step.openReader) {
              const tx = db.begin(false);
              readers.push({ tx, expected: contents(tx) });
            }
            db.update((tx) => {
              const b = tx.bucket('data')!;
              for (const [k, size, del] of step.writes) {
                const key = Buffer.from(`key-${k.toString().padStart(4, '0')}`);
                if (del) b.delete(key);
                else b.put(key, Buffer.alloc(size, k & 0xff));
              }
            });
            // Every open reader still sees exactly its snapshot.
            for (const r of readers) assert.deepEqual(contents(r.tx), r.expected);
            if (readers.length > 0 && step.closeReader < readers.length) {
              readers.splice(step.closeReader, 1)[0]!.tx.rollback();
            }
            assert.deepEqual(db.check(), []);
          }
          for (const r of readers) {
            assert.deepEqual(contents(r.tx), r.expected);
            r.tx.rollback();
          }
        } finally {
          db.close();
          cleanup();
        }
      },
    ),
    { numRuns: process.env.BOLTKV_STRESS ? 300 : 40 },
  );
});

test('pages freed while a reader is open are reused only after it ends', () => {
  const { file, cleanup } = tmpFile();
  const db = open(file, { noSync: true });
  try {
    db.update((tx) => {
      const b = tx.createBucket('data');
      for (let i = 0; i < 2000; i++) b.put(`k${i}`, Buffer.alloc(100, i & 0xff));
    });
    const reader = db.begin(false);
    const before = contents(reader);
    // Rewrite everything several times: the reader's pages become pending, not free.
    for (let round = 0; round < 5; round++) {
      db.update((tx) => {
        const b = tx.bucket('data')!;
        for (let i = 0; i < 2000; i++) b.put(`k${i}`, Buffer.alloc(100, (i + round + 1) & 0xff));
      });
    }
    const grownWhileReading = db.stats().pgid;
    assert.ok(db.stats().pendingPageN > 0, 'pages the reader can see are pending');
    assert.deepEqual(contents(reader), before);
    reader.rollback();
    // With the reader gone, the next commits reuse pages instead of growing the file.
    for (let round = 0; round < 5; round++) {
      db.update((tx) => {
        const b = tx.bucket('data')!;
        for (let i = 0; i < 2000; i++) b.put(`k${i}`, Buffer.alloc(100, (i + round) & 0xff));
      });
    }
    assert.ok(db.stats().pgid <= grownWhileReading, `file kept growing: ${db.stats().pgid} > ${grownWhileReading}`);
    assert.deepEqual(db.check(), []);
  } finally {
    db.close();
    cleanup();
  }
});

test('a read transaction stays valid across await while writers commit', async () => {
  const { file, cleanup } = tmpFile();
  const db = open(file, { noSync: true });
  try {
    await db.updateAsync((tx) => {
      tx.createBucket('data').put('a', '1');
    });
    {
      using reader = db.begin(false);
      for (let i = 2; i <= 20; i++) {
        await db.updateAsync((tx) => tx.bucket('data')!.put('a', String(i)));
        await new Promise((r) => setImmediate(r));
        assert.equal(Buffer.from(reader.bucket('data')!.get('a')!).toString(), '1');
      }
    }
    db.view((tx) => assert.equal(Buffer.from(tx.bucket('data')!.get('a')!).toString(), '20'));
    assert.equal(db.stats().openReadTxN, 0, 'using ended the reader');
  } finally {
    db.close();
    cleanup();
  }
});
