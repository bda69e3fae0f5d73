/**
 * Compaction: physical deletion in bounded batches, writers not stalled behind it, and a crash in
 * the middle of it finished by the next open with identical reads.
 * Rules checked (etcd-semantics.md, "Compaction"): reads below rev fail at once; per key the newest
 * revision ≤ rev and everything newer stays; a tombstone exactly at rev stays; deletion proceeds in
 * bounded batches and resumes after a restart; `version` stays correct. Storage layout ("Revisions"):
 * meta holds scheduledCompactRev / finishedCompactRev.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryBackend } from '../../src/mvcc/backend/memory.ts';
import { BoltBackend } from '../../src/mvcc/backend/bolt.ts';
import type { Backend } from '../../src/mvcc/backend.ts';
import { MvccError } from '../../src/mvcc/errors.ts';
import { bytesToRev, isTombstoneKey, revToBytes } from '../../src/mvcc/revision.ts';
import {
  FINISHED_COMPACT_KEY,
  KEY_BUCKET,
  META_BUCKET,
  MvccStore,
  SCHEDULED_COMPACT_KEY,
} from '../../src/mvcc/store.ts';
import { FaultyBackend } from './faulty-backend.ts';
import { plain } from './gen.ts';

/** 20 keys, several generations each, some deleted, one deleted exactly at the compaction revision. */
async function populate(s: MvccStore): Promise<{ compactAt: number }> {
  const writes: Promise<unknown>[] = [];
  for (let round = 0; round < 4; round++) {
    for (let k = 0; k < 20; k++) writes.push(s.put({ key: `k${String(k).padStart(2, '0')}`, value: `r${round}` }));
    writes.push(s.deleteRange({ key: `k0${round}` }));
  }
  await Promise.all(writes);
  await s.put({ key: 'tomb', value: 'x' });
  await s.deleteRange({ key: 'tomb' });
  const compactAt = s.revision();
  for (let k = 0; k < 5; k++) await s.put({ key: `k1${k}`, value: 'after' });
  return { compactAt };
}

function readAll(s: MvccStore, from: number): unknown[] {
  const out: unknown[] = [];
  for (let r = from; r <= s.revision(); r++) out.push(plain(s.range({ key: '\0', rangeEnd: '\0', revision: r })));
  return out;
}

function revisionsAtOrBelow(b: Backend, rev: number): { main: number; tomb: boolean }[] {
  const out: { main: number; tomb: boolean }[] = [];
  b.view((r) =>
    r.scan(KEY_BUCKET, revToBytes(0, 0), revToBytes(rev + 1, 0), (k) => {
      out.push({ main: bytesToRev(k).main, tomb: isTombstoneKey(k) });
    }),
  );
  return out;
}

async function crashMidCompaction(makeInner: () => Backend, reopenInner: (old: Backend) => Backend): Promise<void> {
  const inner = makeInner();
  const faulty = new FaultyBackend(inner);
  const s = MvccStore.open({ backend: faulty, compactionBatchLimit: 7, leaseCheckIntervalMs: 0 });
  const { compactAt } = await populate(s);
  const before = readAll(s, compactAt);
  const liveAtCompact = s.range({ key: '\0', rangeEnd: '\0', revision: compactAt, countOnly: true }).count;
  const storedBefore = revisionsAtOrBelow(inner, compactAt).length;
  // commit 1 after this point records scheduledCompactRev; batches follow; the 4th batch "crashes"
  faulty.failAt = faulty.commits + 5;
  await s.compact({ revision: compactAt });
  // reads below the compact revision fail at once, before any physical deletion
  assert.throws(
    () => s.range({ key: 'k05', revision: compactAt - 1 }),
    (e: unknown) => e instanceof MvccError && e.code === 'ERR_COMPACTED',
  );
  await assert.rejects(s.compactionDone(), (e: unknown) => e instanceof MvccError && e.code === 'ERR_STORE_FAILED');
  await s.close();

  // the crash left a half-done compaction: scheduled but not finished, some old revisions gone
  const left = reopenInner(inner);
  const meta = left.view((r) => ({
    sch: r.get(META_BUCKET, SCHEDULED_COMPACT_KEY),
    fin: r.get(META_BUCKET, FINISHED_COMPACT_KEY),
  }));
  assert.equal(bytesToRev(meta.sch!).main, compactAt);
  assert.equal(meta.fin, undefined);
  const mid = revisionsAtOrBelow(left, compactAt).length;
  assert.ok(mid < storedBefore, 'some batches ran before the crash');
  assert.ok(mid > liveAtCompact + 1, 'the crash interrupted the deletion');

  const s2 = MvccStore.open({ backend: left, compactionBatchLimit: 7, leaseCheckIntervalMs: 0 });
  try {
    assert.equal(s2.compactRevision(), compactAt);
    assert.throws(
      () => s2.range({ key: 'k05', revision: compactAt - 1 }),
      (e: unknown) => e instanceof MvccError && e.code === 'ERR_COMPACTED',
    );
    await s2.compactionDone();
    assert.deepEqual(readAll(s2, compactAt), before, 'identical reads at every retained revision');
    const fin = left.view((r) => r.get(META_BUCKET, FINISHED_COMPACT_KEY));
    assert.equal(bytesToRev(fin!).main, compactAt);
    // exactly one revision per key live at compactAt, plus the tombstone at compactAt itself
    const kept = revisionsAtOrBelow(left, compactAt);
    assert.equal(kept.length, liveAtCompact + 1);
    assert.deepEqual(
      kept.filter((k) => k.tomb).map((k) => k.main),
      [compactAt],
    );
    // version survives compaction
    const k14 = s2.range({ key: 'k14' }).kvs[0]!;
    assert.equal(k14.version, 5);
    assert.equal(k14.createRevision, s2.range({ key: 'k14', revision: compactAt }).kvs[0]!.createRevision);
  } finally {
    await s2.close();
  }
}

test('a crash mid-compaction is finished on reopen with identical reads (memory backend)', async () => {
  await crashMidCompaction(
    () => new MemoryBackend(),
    (b) => b,
  );
});

test('a crash mid-compaction is finished on reopen with identical reads (bolt backend)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'boltkv-compact-'));
  try {
    const path = join(dir, 'db');
    await crashMidCompaction(
      () => BoltBackend.open(path, { noSync: true }),
      (old) => {
        (old as BoltBackend).close();
        return BoltBackend.open(path, { noSync: true });
      },
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('writers are not stalled behind a long compaction', async () => {
  const backend = new MemoryBackend();
  const s = MvccStore.open({ backend, compactionBatchLimit: 5, leaseCheckIntervalMs: 0 });
  try {
    const ps: Promise<unknown>[] = [];
    for (let i = 0; i < 400; i++) ps.push(s.put({ key: `k${i % 10}`, value: String(i) }));
    await Promise.all(ps);
    const order: string[] = [];
    const done = s.compact({ revision: s.revision(), physical: true }).then(() => order.push('compaction'));
    // let a few batches run, then write
    for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
    await s.put({ key: 'late', value: '1' }).then(() => order.push('put'));
    await done;
    assert.deepEqual(order, ['put', 'compaction'], 'the put committed between compaction batches');
    assert.equal(s.range({ key: 'late' }).kvs.length, 1);
    assert.equal(revisionsAtOrBelow(backend, s.compactRevision()).length, 10);
  } finally {
    await s.close();
  }
});

test('while a writer commits, deletion batches ride on its commits: no commit of their own', async () => {
  const counting = new FaultyBackend(new MemoryBackend());
  const s = MvccStore.open({
    backend: counting,
    compactionBatchLimit: 5,
    compactionBatchIntervalMs: 0,
    leaseCheckIntervalMs: 0,
  });
  try {
    const ps: Promise<unknown>[] = [];
    for (let i = 0; i < 600; i++) ps.push(s.put({ key: `k${i % 20}`, value: String(i) }));
    await Promise.all(ps);
    const at = s.revision();
    const before = counting.commits;
    let done = false;
    const compaction = s.compact({ revision: at, physical: true }).then(() => {
      done = true;
    });
    let puts = 0;
    while (!done) {
      await s.put({ key: `w${puts}`, value: 'x' });
      puts++;
    }
    await compaction;
    // 580 revisions to delete in batches of 5: over a hundred batches, all inside the writer's commits
    assert.ok(puts > 100, `the writer kept committing (${puts} puts)`);
    // the compact request and the writer's puts (the first put may share the request's commit)
    assert.ok(
      counting.commits - before <= 1 + puts,
      `no commit of the compaction's own: ${counting.commits - before} commits for ${puts} puts`,
    );
    assert.equal(revisionsAtOrBelow(counting.inner, at).length, 20);
    for (let i = 0; i < puts; i++) assert.equal(s.range({ key: `w${i}` }).kvs.length, 1);
  } finally {
    await s.close();
  }
});

test('without writers, a run of kept revisions is passed over without commits', async () => {
  const counting = new FaultyBackend(new MemoryBackend());
  const s = MvccStore.open({
    backend: counting,
    compactionBatchLimit: 5,
    compactionBatchIntervalMs: 0,
    leaseCheckIntervalMs: 0,
  });
  try {
    // 200 keys written once (all kept), then 20 keys written twice: 20 revisions to delete
    await Promise.all(Array.from({ length: 200 }, (_, i) => s.put({ key: `keep${i}`, value: 'x' })));
    for (let round = 0; round < 2; round++)
      await Promise.all(Array.from({ length: 20 }, (_, i) => s.put({ key: `twice${i}`, value: String(round) })));
    const at = s.revision();
    const before = counting.commits;
    await s.compact({ revision: at, physical: true });
    // the compact request, 4 batches of 5, and finishedCompactRev (the 4th batch stopped at its
    // limit with kept revisions after it); examining the 200 kept revisions in commits of 40 would
    // have added 5 more
    assert.equal(counting.commits - before, 1 + 4 + 1);
    assert.equal(revisionsAtOrBelow(counting.inner, at).length, 220);
  } finally {
    await s.close();
  }
});

test("a crash in a writer's commit carrying a batch: the writer fails, reopen finishes the compaction with identical reads", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'boltkv-compact-'));
  try {
    const path = join(dir, 'db');
    const faulty = new FaultyBackend(BoltBackend.open(path, { noSync: true }));
    const s = MvccStore.open({
      backend: faulty,
      compactionBatchLimit: 5,
      compactionBatchIntervalMs: 0,
      leaseCheckIntervalMs: 0,
    });
    const { compactAt } = await populate(s);
    const before = readAll(s, compactAt);
    const stored = revisionsAtOrBelow(faulty.inner, compactAt).length;
    faulty.failAt = faulty.commits + 6; // the compact request, then writer commits carrying batches
    const compaction = s.compact({ revision: compactAt, physical: true });
    const acked: string[] = [];
    let failure: unknown;
    for (let i = 0; failure === undefined; i++) {
      try {
        await s.put({ key: `w${i}`, value: 'x' });
        acked.push(`w${i}`);
      } catch (e) {
        failure = e;
      }
    }
    assert.ok(failure instanceof MvccError && failure.code === 'ERR_STORE_FAILED');
    await assert.rejects(compaction, (e: unknown) => e instanceof MvccError && e.code === 'ERR_STORE_FAILED');
    await s.close();
    assert.ok(acked.length >= 3, `writes committed before the crash (${acked.length})`);
    (faulty.inner as BoltBackend).close();

    const left = BoltBackend.open(path, { noSync: true });
    const mid = revisionsAtOrBelow(left, compactAt).length;
    assert.ok(mid < stored, 'batches rode on the commits before the crash');
    const s2 = MvccStore.open({ backend: left, compactionBatchLimit: 5, leaseCheckIntervalMs: 0 });
    try {
      await s2.compactionDone();
      // the same answers at every revision the crashed store had (headers differ: the acknowledged
      // writes moved the current revision on)
      const noHeader = (rs: unknown[]): unknown[] => rs.map((r) => ({ ...(r as object), header: undefined }));
      assert.deepEqual(
        noHeader(readAll(s2, compactAt).slice(0, before.length)),
        noHeader(before),
        'identical reads at every retained revision',
      );
      for (const k of acked) assert.equal(s2.range({ key: k }).kvs.length, 1, `acknowledged ${k} survived`);
      assert.equal(s2.range({ key: `w${acked.length}` }).kvs.length, 0, 'the failed put left nothing');
      assert.equal(bytesToRev(left.view((r) => r.get(META_BUCKET, FINISHED_COMPACT_KEY))!).main, compactAt);
      assert.deepEqual(left.db.check(), []);
    } finally {
      await s2.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
