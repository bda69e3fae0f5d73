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
import { FINISHED_COMPACT_KEY, KEY_BUCKET, META_BUCKET, MvccStore, SCHEDULED_COMPACT_KEY } from '../../src/mvcc/store.ts';
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
  b.view((r) => r.scan(KEY_BUCKET, revToBytes(0, 0), revToBytes(rev + 1, 0), (k) => {
    out.push({ main: bytesToRev(k).main, tomb: isTombstoneKey(k) });
  }));
  return out;
}

async function crashMidCompaction(makeInner: () => Backend, reopenInner: (old: Backend) => Backend): Promise<void> {
  const inner = makeInner();
  const faulty = new FaultyBackend(inner);
  const s = MvccStore.open({ backend: faulty, compactionBatchLimit: 7, leaseCheckIntervalMs: 0 });
  const { compactAt } = await populate(s);
  const before = readAll(s, compactAt);
  const liveAtCompact = (s.range({ key: '\0', rangeEnd: '\0', revision: compactAt, countOnly: true })).count;
  const storedBefore = revisionsAtOrBelow(inner, compactAt).length;
  // commit 1 after this point records scheduledCompactRev; batches follow; the 4th batch "crashes"
  faulty.failAt = faulty.commits + 5;
  await s.compact({ revision: compactAt });
  // reads below the compact revision fail at once, before any physical deletion
  assert.throws(() => s.range({ key: 'k05', revision: compactAt - 1 }), (e: unknown) => e instanceof MvccError && e.code === 'ERR_COMPACTED');
  await assert.rejects(s.compactionDone(), (e: unknown) => e instanceof MvccError && e.code === 'ERR_STORE_FAILED');
  await s.close();

  // the crash left a half-done compaction: scheduled but not finished, some old revisions gone
  const left = reopenInner(inner);
  const meta = left.view((r) => ({ sch: r.get(META_BUCKET, SCHEDULED_COMPACT_KEY), fin: r.get(META_BUCKET, FINISHED_COMPACT_KEY) }));
  assert.equal(bytesToRev(meta.sch!).main, compactAt);
  assert.equal(meta.fin, undefined);
  const mid = revisionsAtOrBelow(left, compactAt).length;
  assert.ok(mid < storedBefore, 'some batches ran before the crash');
  assert.ok(mid > liveAtCompact + 1, 'the crash interrupted the deletion');

  const s2 = MvccStore.open({ backend: left, compactionBatchLimit: 7, leaseCheckIntervalMs: 0 });
  try {
    assert.equal(s2.compactRevision(), compactAt);
    assert.throws(() => s2.range({ key: 'k05', revision: compactAt - 1 }), (e: unknown) => e instanceof MvccError && e.code === 'ERR_COMPACTED');
    await s2.compactionDone();
    assert.deepEqual(readAll(s2, compactAt), before, 'identical reads at every retained revision');
    const fin = left.view((r) => r.get(META_BUCKET, FINISHED_COMPACT_KEY));
    assert.equal(bytesToRev(fin!).main, compactAt);
    // exactly one revision per key live at compactAt, plus the tombstone at compactAt itself
    const kept = revisionsAtOrBelow(left, compactAt);
    assert.equal(kept.length, liveAtCompact + 1);
    assert.deepEqual(kept.filter((k) => k.tomb).map((k) => k.main), [compactAt]);
    // version survives compaction
    const k14 = s2.range({ key: 'k14' }).kvs[0]!;
    assert.equal(k14.version, 5);
    assert.equal(k14.createRevision, s2.range({ key: 'k14', revision: compactAt }).kvs[0]!.createRevision);
  } finally {
    await s2.close();
  }
}

test('a crash mid-compaction is finished on reopen with identical reads (memory backend)', async () => {
  await crashMidCompaction(() => new MemoryBackend(), (b) => b);
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
