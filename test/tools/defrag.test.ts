/**
 * Online defragmentation while a writer commits continuously: the writer never stops for long,
 * every commit (before, during and after) is in the result, the file shrinks to about what a copy
 * compaction gives, readers open across the swap finish on the old file, and the result passes
 * check() and Go bbolt's check.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compact, open, type DB } from '../../src/bolt/index.ts';
import { requireGoTools } from '../support/go-tools.ts';
import { applyTo, expected, runWriter, stateOf } from './history.ts';

function tmp(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'boltkv-defrag-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** History plus a big filler bucket, most of which is then deleted: a file mostly of free pages. */
function fragmented(path: string, commits: number, options: { noFreelistSync?: boolean } = {}): DB {
  const db = open(path, { noSync: true, ...options });
  for (let i = 1; i <= commits; i++) db.update((tx) => applyTo(tx, i));
  db.update((tx) => {
    const b = tx.createBucket('filler');
    for (let i = 0; i < 8000; i++) b.put(`f${String(i).padStart(5, '0')}`, Buffer.alloc(700, i % 251));
    const nested = b.createBucket('nested');
    for (let i = 0; i < 500; i++) nested.put(`n${i}`, `nested value ${i}`);
    nested.setSequence(77);
  });
  db.update((tx) => {
    const b = tx.bucket('filler')!;
    for (let i = 0; i < 8000; i++) if (i % 16 !== 0) b.delete(`f${String(i).padStart(5, '0')}`);
  });
  return db;
}

function assertState(db: DB, n: number, label: string): void {
  assert.deepEqual(db.check(), [], `${label}: check()`);
  const s = stateOf(db);
  assert.equal(s.n, n, `${label}: holds commit ${n}`);
  for (const k of [...s.state.keys()]) if (k.startsWith('filler')) s.state.delete(k);
  assert.deepEqual(s.state, expected(n), `${label}: content`);
  db.view((tx) => {
    const f = tx.bucket('filler')!;
    assert.equal(f.get('f00016')?.length, 700);
    assert.equal(f.get('f00017'), undefined);
    assert.equal(f.bucket('nested')!.sequence, 77);
    assert.equal(Buffer.from(f.bucket('nested')!.get('n499')!).toString(), 'nested value 499');
  });
}

for (const variant of [
  { name: 'freelist synced', options: {} },
  { name: 'noFreelistSync', options: { noFreelistSync: true } },
]) {
  test(`defragment during continuous commits (${variant.name}): shrinks, loses nothing, writers keep going`, async (t) => {
    const { dir, cleanup } = tmp();
    t.after(cleanup);
    const path = join(dir, 'db');
    const db = fragmented(path, 150, variant.options);
    // The size a copy compaction reaches, for comparison.
    const ref = open(join(dir, 'ref.db'), { noSync: true });
    await compact(db, ref, { txMaxSize: 0 });
    const compactSize = ref.view((tx) => tx.size);
    ref.close();
    // A reader from before the defragmentation.
    const oldReader = db.begin(false);
    const oldState = stateOf(db).n;
    const writer = runWriter(db, 151);
    let commitsDuring = 0;
    const counter = setInterval(() => commitsDuring++, 1);
    const r = await db.defragment({ txMaxSize: 64 << 10 });
    clearInterval(counter);
    const last = await writer.stop();
    assert.ok(last > 151, 'writer committed during the run');
    assert.ok(r.after < r.before / 2, `shrank ${r.before} -> ${r.after}`);
    // A couple of catch-up commits may leave some slack; within a few dozen pages of compact's output.
    assert.ok(r.after <= compactSize + 64 * 4096, `after ${r.after} vs compact ${compactSize}`);
    assert.ok(r.pauseMs >= 0 && r.totalMs >= r.pauseMs);
    // Every commit is there, and writes go on after the swap.
    assertState(db, last, 'after defragment');
    db.update((tx) => applyTo(tx, last + 1));
    assertState(db, last + 1, 'after a later commit');
    // The old reader still sees its snapshot, from the old file.
    assert.deepEqual(oldReader.check(), []);
    const b = oldReader.bucket('meta')!;
    assert.equal(Buffer.from(b.get('n')!).toString(), String(oldState));
    assert.equal(oldReader.bucket('filler')!.get('f00001')?.length, undefined);
    oldReader.rollback();
    db.close();
    assert.deepEqual(readdirSync(dir).sort(), ['db', 'ref.db'], 'no leftover files');
    const again = open(path, { ...variant.options });
    try {
      assertState(again, last + 1, 'reopened');
    } finally {
      again.close();
    }
    const go = requireGoTools(t);
    if (go) assert.deepEqual(go.dump(path).problems, []);
  });
}

test('defragment: lock kept, errors typed, abort leaves the database as it was', async (t) => {
  const { dir, cleanup } = tmp();
  t.after(cleanup);
  const path = join(dir, 'db');
  const db = fragmented(path, 20);
  const ac = new AbortController();
  ac.abort();
  await assert.rejects(db.defragment({ signal: ac.signal }), { code: 'ERR_ABORTED' });
  assert.ok(!existsSync(`${path}.defrag`));
  assertState(db, 20, 'after abort');
  await assert.rejects(db.defragment({ txMaxSize: -1 }), { code: 'ERR_INVALID_OPTION' });
  await db.defragment();
  // The new file is locked: a second opener is refused.
  assert.throws(() => open(path), { code: 'ERR_LOCK_TIMEOUT' });
  db.close();
  const ro = open(path, { readOnly: true });
  await assert.rejects(ro.defragment(), { code: 'ERR_DATABASE_READ_ONLY' });
  ro.close();
  await assert.rejects(db.defragment(), { code: 'ERR_CLOSED' });
});
