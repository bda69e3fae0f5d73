/** The engine's public contract: typed errors for bad input and misuse, batching, cursors, disposal. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { inspect } from 'node:util';
import { open, BoltError, isBoltkvError, MAX_KEY_SIZE } from 'boltkv';
import { boltCode as code } from '../support/bolt-code.ts';
import { withDb } from '../support/temp-db.ts';

const text = (b: Uint8Array | null | undefined): string | undefined => (b ? Buffer.from(b).toString() : undefined);

test(
  'bad keys and values get typed errors',
  withDb((db) => {
    db.update((tx) => {
      const b = tx.createBucket('b');
      assert.throws(() => b.put('', 'v'), code('ERR_KEY_REQUIRED'));
      assert.throws(() => b.put(new Uint8Array(MAX_KEY_SIZE + 1), 'v'), code('ERR_KEY_TOO_LARGE'));
      assert.throws(() => b.put(42 as unknown as string, 'v'), code('ERR_INVALID_KEY_TYPE'));
      assert.throws(() => b.put('k', null as unknown as string), code('ERR_INVALID_VALUE_TYPE'));
      assert.throws(() => b.put('k', 5 as unknown as string), code('ERR_INVALID_VALUE_TYPE'));
      assert.throws(() => b.get({} as unknown as string), code('ERR_INVALID_KEY_TYPE'));
      assert.throws(() => tx.createBucket(''), code('ERR_BUCKET_NAME_REQUIRED'));
      assert.throws(() => tx.createBucket('b'), code('ERR_BUCKET_EXISTS'));
      assert.throws(() => tx.deleteBucket('nope'), code('ERR_BUCKET_NOT_FOUND'));
      b.put('plain', 'v');
      b.createBucket('sub');
      assert.throws(() => b.createBucket('plain'), code('ERR_INCOMPATIBLE_VALUE'));
      assert.throws(() => b.put('sub', 'v'), code('ERR_INCOMPATIBLE_VALUE'));
      assert.throws(() => b.delete('sub'), code('ERR_INCOMPATIBLE_VALUE'));
      assert.throws(() => b.deleteBucket('plain'), code('ERR_INCOMPATIBLE_VALUE'));
      assert.equal(b.get('sub'), undefined, 'get of a sub-bucket name returns undefined');
      b.put(new Uint8Array(MAX_KEY_SIZE).fill(1), 'max-size key is fine');
    });
    db.view((tx) => assert.equal(text(tx.bucket('b')!.get('plain')), 'v'));
  }),
);

test(
  'transactions refuse misuse with typed errors',
  withDb((db) => {
    const r = db.begin(false);
    assert.throws(() => r.createBucket('x'), code('ERR_TX_NOT_WRITABLE'));
    r.rollback();
    assert.throws(() => r.bucket('x'), code('ERR_TX_CLOSED'));
    assert.throws(() => r.rollback(), code('ERR_TX_CLOSED'));

    const w = db.begin(true);
    assert.throws(() => db.begin(true), code('ERR_WRITER_BUSY'));
    assert.throws(() => db.update(() => undefined), code('ERR_WRITER_BUSY'));
    w.createBucket('x');
    w.commit();
    assert.throws(() => w.commit(), code('ERR_TX_CLOSED'));

    db.update((tx) => {
      assert.throws(() => tx.commit(), code('ERR_TX_MANAGED'));
      assert.throws(() => tx.rollback(), code('ERR_TX_MANAGED'));
    });
    assert.throws(() => db.update(() => Promise.resolve(1) as unknown as number), code('ERR_INVALID_OPTION'));
    // A throwing update rolls back and rethrows the caller's own error.
    assert.throws(
      () =>
        db.update((tx) => {
          tx.bucket('x')!.put('k', 'v');
          throw new Error('boom');
        }),
      /boom/,
    );
    db.view((tx) => assert.equal(tx.bucket('x')!.get('k'), undefined));
  }),
);

test(
  'Symbol.dispose rolls back an open write transaction',
  withDb((db) => {
    {
      using tx = db.begin(true);
      tx.createBucket('gone');
    }
    db.view((tx) => assert.equal(tx.bucket('gone'), undefined));
    db.update((tx) => void tx.createBucket('kept'));
    db.view((tx) => assert.ok(tx.bucket('kept')));
  }),
);

test('a closed database and its transactions refuse work', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'boltkv-api-'));
  const db = open(path.join(dir, 'db'), { noSync: true });
  db.update((tx) => void tx.createBucket('b'));
  const r = db.begin(false);
  db.close();
  assert.throws(() => r.bucket('b'), code('ERR_CLOSED'));
  assert.ok(isBoltkvError(new BoltError('ERR_CLOSED', 'x'), 'ERR_CLOSED'), 'the shared closed code');
  await assert.rejects(
    db.updateAsync(() => 1),
    code('ERR_CLOSED'),
  );
  assert.throws(() => db.update(() => 1), code('ERR_CLOSED'));
  assert.throws(() => db.stats(), code('ERR_CLOSED'));
  assert.throws(() => db.begin(false), code('ERR_CLOSED'));
  assert.throws(() => db.view(() => 1), code('ERR_CLOSED'));
  assert.throws(() => db.check(), code('ERR_CLOSED'));
  await assert.rejects(
    db.batch(() => 1),
    code('ERR_CLOSED'),
  );
  db.close(); // idempotent
  fs.rmSync(dir, { recursive: true, force: true });
});

test('options are validated', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'boltkv-api-'));
  const file = path.join(dir, 'db');
  assert.throws(() => open(file, { pageSize: 1000 }), code('ERR_INVALID_OPTION'));
  assert.throws(() => open(file, { freelist: 'tree' as 'array' }), code('ERR_INVALID_OPTION'));
  assert.throws(() => open(file, { cacheSize: -1 }), code('ERR_INVALID_OPTION'));
  assert.throws(() => open(path.join(dir, 'missing'), { readOnly: true }), code('ERR_IO'));
  const db = open(file, { pageSize: 8192 });
  db.close();
  // An existing file keeps its own page size.
  const again = open(file, { pageSize: 4096 });
  assert.equal(again.pageSize, 8192);
  again.close();
  const ro = open(file, { readOnly: true });
  assert.throws(() => ro.begin(true), code('ERR_DATABASE_READ_ONLY'));
  assert.throws(() => ro.update(() => 1), code('ERR_DATABASE_READ_ONLY'));
  ro.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test(
  'cursor walks both ways, seeks, and stays put past either end',
  withDb((db) => {
    db.update((tx) => {
      const b = tx.createBucket('b');
      for (const k of ['b', 'd', 'f']) b.put(k, k.toUpperCase());
      b.createBucket('e');
    });
    db.view((tx) => {
      const c = tx.bucket('b')!.cursor();
      assert.deepEqual(c.first()?.map(text), ['b', 'B']);
      assert.deepEqual(c.next()?.map(text), ['d', 'D']);
      const e = c.next()!;
      assert.equal(text(e[0]), 'e');
      assert.equal(e[1], null, 'a sub-bucket has a null value');
      assert.equal(text(c.next()![0]), 'f');
      assert.equal(c.next(), undefined);
      assert.equal(text(c.prev()![0]), 'f', 'prev after the end returns the last');
      assert.equal(text(c.seek('c')![0]), 'd');
      assert.equal(c.seek('g'), undefined);
      assert.equal(text(c.prev()![0]), 'f');
      assert.equal(text(c.last()![0]), 'f');
      assert.equal(text(c.seek('a')![0]), 'b');
      assert.equal(c.prev(), undefined);
      assert.equal(text(c.next()![0]), 'b', 'next before the start returns the first');
    });
  }),
);

test(
  'cursor delete during iteration removes exactly what it visits',
  withDb((db) => {
    db.update((tx) => {
      const b = tx.createBucket('b');
      for (let i = 0; i < 3000; i++) b.put(`k${String(i).padStart(5, '0')}`, 'v');
    });
    db.update((tx) => {
      const c = tx.bucket('b')!.cursor();
      let i = 0;
      for (let e = c.first(); e; e = c.next()) if (i++ % 3 !== 0) c.delete();
      assert.equal(i, 3000);
    });
    db.view((tx) => {
      const keys: string[] = [];
      tx.bucket('b')!.forEach((k) => void keys.push(text(k)!));
      assert.equal(keys.length, 1000);
      assert.deepEqual(keys.slice(0, 3), ['k00000', 'k00003', 'k00006']);
    });
    assert.deepEqual(db.check(), []);
  }),
);

test(
  'sequences: nextSequence, setSequence and u64 values',
  withDb((db) => {
    db.update((tx) => {
      const b = tx.createBucket('b');
      assert.equal(b.nextSequence(), 1);
      assert.equal(b.nextSequence(), 2);
      b.createBucket('n').setSequence(2n ** 64n - 1n);
    });
    db.view((tx) => {
      assert.equal(tx.bucket('b')!.sequence, 2);
      const n = tx.bucket('b')!.bucket('n')!;
      assert.equal(n.sequenceBigInt(), 2n ** 64n - 1n);
      assert.throws(() => n.sequence, code('ERR_VALUE_TOO_LARGE'));
    });
    db.update((tx) => assert.throws(() => tx.bucket('b')!.setSequence(-1), code('ERR_INVALID_OPTION')));
  }),
);

test(
  'batch: concurrent calls share commits, a failing call fails alone',
  withDb(async (db) => {
    db.update((tx) => void tx.createBucket('b'));
    const before = db.stats().writeTxN;
    const calls = Array.from({ length: 50 }, (_, i) =>
      db.batch((tx) => {
        if (i === 7) throw new Error('seven fails');
        tx.bucket('b')!.put(`k${i}`, String(i));
        return i;
      }),
    );
    const results = await Promise.allSettled(calls);
    results.forEach((r, i) => {
      if (i === 7) assert.equal(r.status, 'rejected');
      else assert.deepEqual(r, { status: 'fulfilled', value: i });
    });
    const writes = db.stats().writeTxN - before;
    assert.ok(writes <= 4, `50 batched calls took ${writes} write transactions`);
    db.view((tx) => {
      const b = tx.bucket('b')!;
      for (let i = 0; i < 50; i++) assert.equal(text(b.get(`k${i}`)), i === 7 ? undefined : String(i));
    });
  }),
);

test(
  'updateAsync serializes async writers and resolves after the commit',
  withDb(async (db) => {
    db.update((tx) => void tx.createBucket('b'));
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        db.updateAsync(async (tx) => {
          const b = tx.bucket('b')!;
          const n = Number(text(b.get('n')) ?? '0');
          await new Promise((r) => setImmediate(r));
          b.put('n', String(n + 1));
          return i;
        }),
      ),
    );
    db.view((tx) => assert.equal(text(tx.bucket('b')!.get('n')), '20'));
  }),
);

test(
  'large values use overflow pages and read back intact',
  withDb((db) => {
    const big = Buffer.alloc(1 << 20);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff;
    db.update((tx) => tx.createBucket('b').put('big', big));
    db.view((tx) => assert.ok(Buffer.from(tx.bucket('b')!.get('big')!).equals(big)));
    db.update((tx) => tx.bucket('b')!.delete('big'));
    assert.deepEqual(db.check(), []);
  }),
);

test(
  'keys and values come back as zero-copy Buffer views: they print and decode as bytes',
  withDb((db) => {
    db.update((tx) => {
      const b = tx.createBucket('b');
      b.put('greeting', 'hello');
      b.put('big', 'x'.repeat(5000));
      b.createBucket('sub').put('inner', 'v');
      // Inside the write transaction (the transaction's own copies) ...
      assert.ok(Buffer.isBuffer(b.get('greeting')));
      assert.equal(b.get('greeting')!.toString(), 'hello');
      assert.ok(Buffer.isBuffer(b.get('big')));
    });
    db.view((tx) => {
      // ... and from pages on disk, through get, cursors, range and forEach.
      const b = tx.bucket('b')!;
      const v = b.get('greeting')!;
      assert.ok(Buffer.isBuffer(v));
      assert.equal(v.toString(), 'hello');
      assert.match(inspect(v), /^<Buffer 68 65 6c 6c 6f>$/);
      assert.ok(v.buffer.byteLength > v.length, 'a view into the page, not a copy');
      assert.equal(b.get('big')!.toString(), 'x'.repeat(5000));
      const [k, val] = b.cursor().first()!;
      assert.ok(Buffer.isBuffer(k) && Buffer.isBuffer(val));
      for (const [rk, rv] of b.range({ gte: 'g' }))
        assert.ok(Buffer.isBuffer(rk) && (rv === null || Buffer.isBuffer(rv)));
      b.forEach((fk) => assert.ok(Buffer.isBuffer(fk)));
      tx.forEach((name) => assert.ok(Buffer.isBuffer(name)));
      assert.equal(b.bucket('sub')!.get('inner')!.toString(), 'v', 'inline sub-bucket values too');
    });
  }),
);
