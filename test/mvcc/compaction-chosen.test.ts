/**
 * Compaction chooses the revision keys a batch deletes outside any write transaction and deletes
 * them in a later writer's commit. Writes landing in between — new revisions of the very keys whose
 * old revisions were chosen — must survive, and the result must be what a compaction with no
 * writer around it leaves.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { MemoryBackend } from '../../src/mvcc/backend/memory.ts';
import { BoltBackend } from '../../src/mvcc/backend/bolt.ts';
import type { Backend } from '../../src/mvcc/backend.ts';
import { KEY_BUCKET, MvccStore } from '../../src/mvcc/store.ts';
import { FaultyBackend } from './faulty-backend.ts';
import { plain } from './gen.ts';

/** Every record of the key bucket, as hex key → hex value. */
function keyBucket(b: Backend): Map<string, string> {
  const out = new Map<string, string>();
  b.view((r) =>
    r.scan(KEY_BUCKET, new Uint8Array(0), undefined, (k, v) => {
      out.set(Buffer.from(k).toString('hex'), Buffer.from(v).toString('hex'));
    }),
  );
  return out;
}

function readAll(s: MvccStore, from: number): unknown[] {
  const out: unknown[] = [];
  for (let r = from; r <= s.revision(); r++) out.push(plain(s.range({ key: '\0', rangeEnd: '\0', revision: r })));
  return out;
}

type Op = { put: number; value: string } | { del: number };

async function applyOps(s: MvccStore, ops: readonly Op[]): Promise<void> {
  for (const op of ops) {
    if ('put' in op) await s.put({ key: `k${op.put}`, value: op.value });
    else await s.deleteRange({ key: `k${op.del}` });
  }
}

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ put: fc.nat(5), value: fc.string({ maxLength: 3 }) }) },
  { weight: 1, arbitrary: fc.record({ del: fc.nat(5) }) },
);

function withFile<T>(fn: (path: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'boltkv-chosen-'));
  return fn(join(dir, 'db')).finally(() => rmSync(dir, { recursive: true, force: true }));
}

test('a writer rewriting the keys being compacted: batches chosen before its commits lose none of its writes', async () => {
  await withFile(async (path) => {
    const backend = BoltBackend.open(path);
    const s = MvccStore.open({
      backend,
      compactionBatchLimit: 4,
      compactionBatchIntervalMs: 0,
      leaseCheckIntervalMs: 0,
    });
    try {
      // 8 keys, 5 generations each: 32 revisions to delete, in batches of 4
      for (let g = 0; g < 5; g++)
        await Promise.all(Array.from({ length: 8 }, (_, k) => s.put({ key: `k${k}`, value: `g${g}` })));
      const at = s.revision();
      let done = false;
      const compaction = s.compact({ revision: at, physical: true }).then(() => {
        done = true;
      });
      // one put at a time, each a new revision of a key whose old revisions are being deleted:
      // the batch a commit carries was chosen during the previous commit's fdatasync
      const written: { key: string; rev: number; value: string }[] = [];
      for (let i = 0; !done; i++) {
        const key = `k${i % 8}`;
        const value = `w${i}`;
        const r = await s.put({ key, value });
        written.push({ key, rev: r.header.revision, value });
      }
      await compaction;
      assert.ok(written.length >= 8, `the writer ran during the compaction (${written.length} puts)`);
      for (const w of written) {
        const got = s.range({ key: w.key, revision: w.rev });
        assert.equal(got.kvs.length, 1);
        assert.equal(Buffer.from(got.kvs[0]!.value).toString(), w.value);
        assert.equal(got.kvs[0]!.modRevision, w.rev);
      }
      // every revision at or below `at` left is the one kept per key: 8, plus everything written after
      assert.equal(keyBucket(backend).size, 8 + written.length);
      assert.equal(backend.db.check().length, 0);
    } finally {
      await s.close();
      backend.close();
    }
  });
});

test('property: compaction with a writer alongside leaves what compaction alone and then the same writes leave', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(opArb, { minLength: 1, maxLength: 40 }),
      fc.array(opArb, { minLength: 1, maxLength: 30 }),
      fc.integer({ min: 1, max: 6 }),
      fc.boolean(),
      async (history, during, batchLimit, onBolt) => {
        await withFile(async (path) => {
          const inner: Backend = onBolt ? BoltBackend.open(path) : new MemoryBackend();
          const backend = new FaultyBackend(inner);
          const opts = { compactionBatchLimit: batchLimit, compactionBatchIntervalMs: 0, leaseCheckIntervalMs: 0 };
          const s = MvccStore.open({ backend, ...opts });
          const refBackend = new MemoryBackend();
          const ref = MvccStore.open({ backend: refBackend, ...opts });
          try {
            await applyOps(s, history);
            await applyOps(ref, history);
            const at = s.revision();
            // the writer's ops are issued one at a time while the compaction runs (the tail after it
            // ends, if any, just follows it); the reference compacts alone first
            let done = false;
            const compaction = s.compact({ revision: at, physical: true }).then(() => {
              done = true;
            });
            let i = 0;
            for (; i < during.length && !done; i++) await applyOps(s, [during[i]!]);
            await compaction;
            await applyOps(s, during.slice(i));
            await ref.compact({ revision: at, physical: true });
            await applyOps(ref, during);
            assert.equal(s.revision(), ref.revision());
            assert.deepEqual(readAll(s, at), readAll(ref, at));
            assert.deepEqual(keyBucket(inner), keyBucket(refBackend));
            if (inner instanceof BoltBackend) assert.equal(inner.db.check().length, 0);
          } finally {
            await s.close();
            await ref.close();
            inner.close();
          }
        });
      },
    ),
    { numRuns: 40 },
  );
});
