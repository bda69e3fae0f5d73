/**
 * The defragmentation's catch-up diff against a model: a writer makes random structural changes
 * (puts of small and overflow values, deletes, sub-buckets created, deleted and replaced by keys,
 * sequences, whole top-level buckets dropped) while defragment() runs over several rounds; the
 * result must equal the model of every committed change.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { open, type Bucket, type DB, type Tx } from '../../src/bolt/index.ts';
import { Rng } from '../support/rng.ts';

type MNode = { kind: 'value'; v: string } | { kind: 'bucket'; seq: number; children: Map<string, MNode> };
type Model = Map<string, MNode>;

function cloneModel(m: Map<string, MNode>): Map<string, MNode> {
  const out = new Map<string, MNode>();
  for (const [k, n] of m)
    out.set(k, n.kind === 'value' ? n : { kind: 'bucket', seq: n.seq, children: cloneModel(n.children) });
  return out;
}

function dump(tx: Tx): Model {
  const walk = (b: Bucket): Map<string, MNode> => {
    const out = new Map<string, MNode>();
    b.forEach((k, v) => {
      const key = Buffer.from(k).toString('latin1');
      if (v === null) {
        const c = b.bucket(k)!;
        out.set(key, { kind: 'bucket', seq: c.sequence, children: walk(c) });
      } else out.set(key, { kind: 'value', v: Buffer.from(v).toString('latin1') });
    });
    return out;
  };
  const top: Model = new Map();
  tx.forEach((name, b) => {
    top.set(Buffer.from(name).toString('latin1'), { kind: 'bucket', seq: b.sequence, children: walk(b) });
  });
  return top;
}

/** One random change, applied to the transaction and the model together. */
function randomOp(rng: Rng, tx: Tx, model: Model): void {
  const top = rng.pick(['a', 'b', 'c', 'd']);
  if (rng.int(0, 199) === 0 && model.has(top)) {
    tx.deleteBucket(top);
    model.delete(top);
    return;
  }
  let bucket = tx.createBucketIfNotExists(top);
  let node = model.get(top);
  if (!node || node.kind !== 'bucket') {
    node = { kind: 'bucket', seq: 0, children: new Map() };
    model.set(top, node);
  }
  let children = node.children;
  // Sometimes go one level down.
  if (rng.bool(0.3)) {
    const name = rng.pick(['x', 'y']);
    const cur = children.get(name);
    if (cur?.kind === 'value') {
      bucket.delete(name);
      children.delete(name);
    }
    bucket = bucket.createBucketIfNotExists(name);
    let sub = children.get(name);
    if (!sub || sub.kind !== 'bucket') {
      sub = { kind: 'bucket', seq: 0, children: new Map() };
      children.set(name, sub);
    }
    node = sub;
    children = sub.children;
  }
  const key = `k${rng.int(0, 399)}`;
  const existing = children.get(key);
  const r = rng.int(0, 99);
  if (r < 60) {
    if (existing?.kind === 'bucket') return;
    const size = rng.int(0, 49) === 0 ? 3000 + rng.int(0, 9000) : rng.int(1, 60);
    const v = String.fromCharCode(97 + rng.int(0, 25)).repeat(size);
    bucket.put(key, v);
    children.set(key, { kind: 'value', v });
  } else if (r < 80) {
    if (existing?.kind === 'bucket') {
      bucket.deleteBucket(key);
    } else bucket.delete(key);
    children.delete(key);
  } else if (r < 90) {
    if (existing?.kind === 'value') bucket.delete(key);
    const b = existing?.kind === 'bucket' ? bucket.bucket(key)! : bucket.createBucket(key);
    const cn =
      existing?.kind === 'bucket' ? existing : { kind: 'bucket' as const, seq: 0, children: new Map<string, MNode>() };
    children.set(key, cn);
    const n = rng.int(1, 5);
    for (let i = 0; i < n; i++) {
      const v = `inner${rng.int(0, 999)}`;
      b.put(`i${rng.int(0, 20)}`, v);
    }
    // keep the model exact: re-read what the bucket holds
    cn.children = new Map();
    b.forEach((k, v) => {
      if (v !== null)
        cn.children.set(Buffer.from(k).toString('latin1'), { kind: 'value', v: Buffer.from(v).toString('latin1') });
    });
  } else {
    const seq = rng.int(0, 1_000_000);
    bucket.setSequence(seq);
    node.seq = seq;
  }
}

async function scenario(seed: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'boltkv-defrag-model-'));
  try {
    const rng = new Rng(seed);
    const db: DB = open(join(dir, 'db'), { noSync: true });
    let model: Model = new Map();
    // A base large enough that the copy takes many chunks.
    for (let i = 0; i < 40; i++) {
      db.update((tx) => {
        for (let j = 0; j < 200; j++) randomOp(rng, tx, model);
      });
    }
    db.update((tx) => {
      const f = tx.createBucket('filler');
      for (let i = 0; i < 3000; i++) f.put(`f${i}`, 'z'.repeat(500));
    });
    model.set('filler', {
      kind: 'bucket',
      seq: 0,
      children: new Map([...Array(3000).keys()].map((i) => [`f${i}`, { kind: 'value', v: 'z'.repeat(500) } as MNode])),
    });
    let stop = false;
    let commits = 0;
    const writer = (async () => {
      while (!stop) {
        const next = cloneModel(model);
        await db.updateAsync((tx) => {
          const n = rng.int(1, 12);
          for (let j = 0; j < n; j++) randomOp(rng, tx, next);
        });
        model = next;
        commits++;
        await new Promise<void>((r) => setImmediate(r));
      }
    })();
    const r = await db.defragment({ txMaxSize: 8 << 10, settleChanges: 0, maxRounds: 4 });
    stop = true;
    await writer;
    assert.ok(commits > 5, `seed ${seed}: writer committed ${commits} times during defragment`);
    assert.ok(r.rounds >= 1, `seed ${seed}: catch-up rounds ran`);
    assert.deepEqual(db.check(), [], `seed ${seed}: check`);
    assert.deepEqual(db.view(dump), model, `seed ${seed}: content equals the model`);
    db.close();
    const again = open(join(dir, 'db'));
    assert.deepEqual(again.view(dump), model, `seed ${seed}: reopened`);
    again.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('defragment catch-up equals a model of random structural changes', async () => {
  const seeds = process.env.BOLTKV_STRESS === '1' ? 20 : 4;
  for (let seed = 1; seed <= seeds; seed++) await scenario(seed);
});
