/**
 * Hot backup and copy-compaction while a writer commits continuously: every copy passes our
 * check() (and Go bbolt's, where available) and holds exactly the state after some commit.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createWriteStream, mkdtempSync, rmSync, statSync, readdirSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { compact, open, type DB } from '../../src/bolt/index.ts';
import { requireGoTools } from '../support/go-tools.ts';
import { applyTo, expected, runWriter, stateOf } from './history.ts';

function tmp(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'boltkv-backup-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A database with some history already, so copies take many chunks. */
function seeded(path: string, commits: number): DB {
  const db = open(path, { noSync: true });
  for (let i = 1; i <= commits; i++) db.update((tx) => applyTo(tx, i));
  // A big filler bucket: several MiB, so a copy spans many 1 MiB chunks while the writer runs.
  db.update((tx) => {
    const b = tx.createBucket('filler');
    for (let i = 0; i < 6000; i++) b.put(`f${i}`, Buffer.alloc(900, i % 251));
  });
  return db;
}

function assertPrefix(copy: DB, label: string): number {
  assert.deepEqual(copy.check(), [], `${label}: check() problems`);
  const { n, state, seq } = stateOf(copy);
  const want = expected(n);
  for (const k of [...state.keys()]) if (k.startsWith('filler')) state.delete(k);
  assert.equal(seq, n, `${label}: bucket sequence matches commit`);
  assert.equal(state.size, want.size, `${label}: key count at commit ${n}`);
  assert.deepEqual(state, want, `${label}: content is exactly commit ${n}`);
  return n;
}

test('db.backup and tx.writeTo during continuous commits give exact committed prefixes', async (t) => {
  const { dir, cleanup } = tmp();
  t.after(cleanup);
  const db = seeded(join(dir, 'src.db'), 200);
  const writer = runWriter(db, 201);
  const seen: number[] = [];
  const copies: string[] = [];
  try {
    for (let round = 0; round < 4; round++) {
      const p = join(dir, `backup-${round}.db`);
      const bytes = await db.backup(p);
      assert.equal(statSync(p).size, bytes);
      copies.push(p);
      // The same through a stream with a slow consumer (backpressure), via writeTo.
      const q = join(dir, `stream-${round}.db`);
      const tx = db.begin(false);
      try {
        const pass = new PassThrough({ highWaterMark: 64 << 10 });
        const out = createWriteStream(q);
        pass.pipe(out);
        const n = await tx.writeTo(pass);
        pass.end();
        await once(out, 'close');
        assert.equal(n, tx.size);
      } finally {
        tx.rollback();
      }
      copies.push(q);
    }
  } finally {
    const last = await writer.stop();
    assert.ok(last > 205, 'writer kept committing during the copies');
    db.close();
  }
  for (const p of copies) {
    const c = open(p, { readOnly: true });
    try {
      seen.push(assertPrefix(c, p));
    } finally {
      c.close();
    }
  }
  assert.ok(seen.every((n) => n >= 200));
  // Copies are made one after another: the commits they hold never go backwards.
  for (let i = 1; i < seen.length; i++) assert.ok(seen[i]! >= seen[i - 1]!, `copy ${i} went back in time`);
  // No temporary files left behind.
  assert.deepEqual(
    readdirSync(dir).filter((f) => f.includes('.tmp-')),
    [],
  );
});

test('compact during continuous commits: dense, checkable, an exact committed prefix', async (t) => {
  const { dir, cleanup } = tmp();
  t.after(cleanup);
  const db = seeded(join(dir, 'src.db'), 300);
  // Fragment: drop most of the filler so the source is mostly free pages.
  db.update((tx) => {
    const b = tx.bucket('filler')!;
    for (let i = 0; i < 6000; i++) if (i % 10 !== 0) b.delete(`f${i}`);
  });
  const writer = runWriter(db, 301);
  const results: Array<Awaited<ReturnType<typeof compact>>> = [];
  try {
    for (const txMaxSize of [0, 4096, 65536]) {
      const dst = open(join(dir, `compact-${txMaxSize}.db`), { noSync: true });
      try {
        results.push(await compact(db, dst, { txMaxSize }));
      } finally {
        dst.close();
      }
    }
  } finally {
    await writer.stop();
  }
  const srcBytes = db.view((tx) => tx.size);
  db.close();
  for (const txMaxSize of [0, 4096, 65536]) {
    const p = join(dir, `compact-${txMaxSize}.db`);
    const c = open(p, { readOnly: true });
    try {
      const n = assertPrefix(c, p);
      const r = results.shift()!;
      assert.equal(r.txid >= 300, true);
      assert.equal(stateOf(c).state.get('filler:f10')?.length, 900);
      const used = c.view((tx) => tx.size);
      assert.ok(used < srcBytes / 2, `compacted ${used} bytes vs source ${srcBytes}`);
      assert.ok(n >= 300);
    } finally {
      c.close();
    }
  }
});

test('copies of a file with large nested content pass Go bbolt check', async (t) => {
  const go = requireGoTools(t);
  if (!go) return;
  const { dir, cleanup } = tmp();
  t.after(cleanup);
  const db = seeded(join(dir, 'src.db'), 400);
  const writer = runWriter(db, 401);
  try {
    await db.backup(join(dir, 'b.db'));
    const dst = open(join(dir, 'c.db'), { noSync: true });
    await compact(db, dst, { txMaxSize: 8192 });
    dst.close();
  } finally {
    await writer.stop();
    db.close();
  }
  for (const f of ['b.db', 'c.db']) {
    const dump = go.dump(join(dir, f));
    assert.deepEqual(dump.problems, [], `${f}: Go bbolt check`);
    assert.ok(dump.buckets.length >= 3);
  }
});

test('bad input: closed tx, aborted copy, failing stream, existing compact target', async (t) => {
  const { dir, cleanup } = tmp();
  t.after(cleanup);
  const db = seeded(join(dir, 'src.db'), 20);
  const tx = db.begin(false);
  tx.rollback();
  await assert.rejects(
    tx.writeTo(() => undefined),
    { code: 'ERR_TX_CLOSED' },
  );
  const w = db.begin(true);
  await assert.rejects(
    w.writeTo(() => undefined),
    { code: 'ERR_INVALID_OPTION' },
  );
  w.rollback();
  const ac = new AbortController();
  ac.abort();
  await assert.rejects(db.backup(join(dir, 'aborted.db'), { signal: ac.signal }), { code: 'ERR_ABORTED' });
  assert.deepEqual(
    readdirSync(dir).filter((f) => f !== 'src.db'),
    [],
    'an aborted backup leaves nothing',
  );
  // A sink that fails surfaces its error, typed.
  const tx2 = db.begin(false);
  const bad = new PassThrough();
  bad.destroy();
  await assert.rejects(tx2.writeTo(bad), (e: { code?: string }) => e.code === 'ERR_IO');
  tx2.rollback();
  // The database closing under a copy ends it with a typed error.
  const tx3 = db.begin(false);
  const p = tx3.writeTo(async () => {
    await new Promise((r) => setImmediate(r));
  });
  db.close();
  await assert.rejects(p, { code: 'ERR_CLOSED' });
  // compact into a destination that already has the buckets fails with the engine's error.
  const s2 = seeded(join(dir, 's2.db'), 5);
  const d2 = open(join(dir, 'd2.db'), { noSync: true });
  d2.update((tx) => tx.createBucket('data'));
  await assert.rejects(compact(s2, d2), { code: 'ERR_BUCKET_EXISTS' });
  await assert.rejects(compact(s2, d2, { txMaxSize: -1 }), { code: 'ERR_INVALID_OPTION' });
  s2.close();
  d2.close();
  writeFileSync(join(dir, 'x'), '');
});
