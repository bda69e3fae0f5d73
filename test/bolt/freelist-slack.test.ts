// allocationSlack: small commits grow the file to stay in one extent while free pages are under
// the given share of the file; the file stays bounded and every check still passes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { open } from 'boltkv';
import { HashmapFreelist } from 'boltkv/freelist';
import { type GoTools, requireGoTools } from '../support/go-tools.ts';
import { countDataWrites, spreadKey as key, value100 as value } from '../support/small-commits.ts';

/** A 1 KiB-page tree of `keys` keys loaded in random order, then `commits` one-put commits. */
function run(
  go: GoTools | undefined,
  dir: string,
  slack: number,
  keys: number,
  commits: number,
): { writesPerCommit: number; pgid: number; free: number } {
  const path = join(dir, `slack-${slack}.db`);
  const db = open(path, { noSync: true, pageSize: 1024 });
  db.update((tx) => tx.createBucket('b'));
  for (let lo = 0; lo < keys; lo += 2000) {
    db.update((tx) => {
      const b = tx.bucket('b')!;
      for (let i = lo; i < lo + 2000; i++) b.put(key(i), value(i));
    });
  }
  db.close();
  const w = open(path, { noSync: true, allocationSlack: slack });
  let seed = 7;
  const next = (): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed % keys;
  };
  for (let c = 0; c < commits; c++) {
    const k = next();
    w.update((tx) => tx.bucket('b')!.put(key(k), value(k + c)));
  }
  const counter = countDataWrites(w);
  const tail = 1000;
  for (let c = 0; c < tail; c++) {
    const k = next();
    w.update((tx) => tx.bucket('b')!.put(key(k), value(k + c)));
  }
  const st = w.stats();
  assert.deepEqual(w.check(), []);
  w.close();
  const again = open(path, { readOnly: true });
  assert.deepEqual(again.check(), []);
  again.view((tx) => assert.equal(tx.bucket('b')!.get(key(3))?.length, 100));
  again.close();
  if (go) {
    const dump = go.dump(path);
    assert.deepEqual(dump.problems, [], 'bbolt (Go) checks the file');
    const b = dump.buckets.find((e) => Buffer.from(e.k, 'hex').toString() === 'b')?.bucket?.entries ?? [];
    assert.equal(b.length, keys);
  }
  return { writesPerCommit: counter.writes / tail, pgid: st.pgid, free: st.freePageN };
}

test('allocationSlack keeps small commits in one extent with a bounded file; Go checks it', (t) => {
  const go = requireGoTools(t);
  const dir = mkdtempSync(join(tmpdir(), 'boltkv-slack-'));
  try {
    const keys = 20_000;
    const off = run(go, dir, 0, keys, 6000);
    const on = run(go, dir, 0.65, keys, 6000);
    assert.ok(off.writesPerCommit > 1.5, `without slack: ${off.writesPerCommit} data writes per commit`);
    assert.ok(on.writesPerCommit < 1.1, `with slack: ${on.writesPerCommit} data writes per commit`);
    const live = on.pgid - on.free;
    assert.ok(on.pgid <= Math.ceil(live / (1 - 0.65)) + 32, `file ${on.pgid} pages for ${live} in use`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('allocationSlack is validated', () => {
  const dir = mkdtempSync(join(tmpdir(), 'boltkv-slack-'));
  try {
    for (const bad of [-0.1, 0.95, Number.NaN, '0.5']) {
      assert.throws(
        () => open(join(dir, 'x.db'), { allocationSlack: bad as number }),
        (e: unknown) => (e as { code?: string }).code === 'ERR_INVALID_OPTION',
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('reserve with a minimum run takes the whole run or nothing', () => {
  const fl = new HashmapFreelist();
  fl.init([10, 11, 12, 20, 21, 22, 23]);
  assert.equal(fl.reserve(5, 5, 5), 0, 'no run of five');
  assert.equal(fl.debugReservation(), null);
  assert.equal(
    fl.reserve(5, 5),
    10,
    'without the minimum it settles for a shorter run (5 halves to 2: best fit is 10..12)',
  );
  fl.endReservation();
  assert.equal(fl.reserve(6, 4, 4), 20);
  fl.endReservation();
  assert.throws(() => fl.reserve(7, 4, 0), /minimum run/);
  fl.debugCheck();
});
