/**
 * Misuse a real program commits by accident (issue 9 #2, #3, #4, #7, #8, #10): ending a managed
 * transaction from inside, async callbacks where sync ones are required, a write queued behind
 * itself, wrongly typed arguments and options. Each gets a typed error, leaves the file sound and
 * leaves nothing hanging or crashing the process later.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { open, type DB, type Tx } from '../../src/bolt/index.ts';
import { boltCode as code } from '../support/bolt-code.ts';
import { withDb } from '../support/temp-db.ts';

/** Fails the test if the process sees an unhandled rejection while fn runs (and a little after). */
async function noUnhandledRejection(fn: () => Promise<void>): Promise<void> {
  const seen: unknown[] = [];
  const onRejection = (reason: unknown): void => void seen.push(reason);
  process.on('unhandledRejection', onRejection);
  try {
    await fn();
    await new Promise((r) => setTimeout(r, 30));
  } finally {
    process.off('unhandledRejection', onRejection);
  }
  assert.deepEqual(seen.map(String), []);
}

/** Settles within ms, or fails: a hang is a defect. */
async function within<T>(ms: number, p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function fill(db: DB): void {
  db.update((tx) => {
    const a = tx.createBucket('a');
    for (let i = 0; i < 2000; i++) a.put(`k${i}`, 'v'.repeat(100));
    tx.createBucket('b');
  });
}

test(
  'commitAsync inside update is refused before it touches anything; the file stays sound (#2)',
  withDb(async (db) => {
    fill(db);
    let inner: Promise<void> | undefined;
    db.update((tx) => {
      tx.bucket('a')!.put('k1', 'new');
      inner = tx.commitAsync();
      inner.catch(() => {});
    });
    await assert.rejects(inner!, code('ERR_TX_MANAGED'));
    db.update((tx) => {
      for (let i = 0; i < 40; i++) tx.bucket('b')!.put(`n${i}`, 'B'.repeat(3000));
    });
    assert.deepEqual(db.check(), []);
    assert.equal(
      db.view((tx) => Buffer.from(tx.bucket('a')!.get('k1')!).toString()),
      'new',
      'the outer update committed',
    );
  }),
);

for (const via of ['updateAsync', 'batch'] as const) {
  test(
    `commit, commitAsync and rollback inside ${via} are refused with ERR_TX_MANAGED (#2)`,
    withDb(async (db) => {
      fill(db);
      const run = (fn: (tx: Tx) => void): Promise<unknown> => (via === 'batch' ? db.batch(fn) : db.updateAsync(fn));
      let p: Promise<void> | undefined;
      await run((tx) => {
        tx.bucket('a')!.put('k2', 'x');
        assert.throws(() => tx.commit(), code('ERR_TX_MANAGED'));
        assert.throws(() => tx.rollback(), code('ERR_TX_MANAGED'));
        p = tx.commitAsync();
        p.catch(() => {});
      });
      await assert.rejects(p!, code('ERR_TX_MANAGED'));
      await run((tx) => {
        for (let i = 0; i < 40; i++) tx.bucket('b')!.put(`n${i}`, 'B'.repeat(3000));
      });
      assert.deepEqual(db.check(), []);
      assert.equal(
        db.view((tx) => Buffer.from(tx.bucket('a')!.get('k2')!).toString()),
        'x',
      );
    }),
  );
}

test(
  'an async callback to update or batch is refused, and its later failure crashes nothing (#3)',
  withDb(async (db) => {
    fill(db);
    await noUnhandledRejection(async () => {
      // A function declared async is refused before it runs.
      let ran = false;
      assert.throws(
        () =>
          db.update(async () => {
            ran = true;
          }),
        code('ERR_INVALID_OPTION'),
      );
      await assert.rejects(
        db.batch(async () => {
          ran = true;
        }),
        code('ERR_INVALID_OPTION'),
      );
      assert.equal(ran, false);
      // A plain function returning a promise that later rejects (it uses the ended transaction).
      const late = (tx: Tx): Promise<void> =>
        new Promise<void>((r) => setTimeout(r, 5)).then(() => tx.bucket('a')!.put('late', 'x'));
      assert.throws(() => db.update(late as unknown as (tx: Tx) => void), code('ERR_INVALID_OPTION'));
      await assert.rejects(db.batch(late as unknown as (tx: Tx) => void), code('ERR_INVALID_OPTION'));
    });
    assert.deepEqual(db.check(), []);
    assert.equal(
      db.view((tx) => tx.bucket('a')!.get('late')),
      undefined,
    );
  }),
);

test(
  'updateAsync or batch awaited inside an updateAsync callback is a typed error, and nothing hangs after (#4)',
  withDb(async (db) => {
    fill(db);
    await within(
      5000,
      assert.rejects(
        db.updateAsync(async (tx) => {
          tx.bucket('a')!.put('outer', '1');
          await db.updateAsync((t2) => t2.bucket('a')!.put('inner', '1'));
        }),
        code('ERR_WRITER_BUSY'),
      ),
      'nested updateAsync',
    );
    await within(
      5000,
      assert.rejects(
        db.updateAsync(async () => {
          await db.batch((t2) => t2.bucket('a')!.put('inner', '1'));
        }),
        code('ERR_WRITER_BUSY'),
      ),
      'batch inside updateAsync',
    );
    // Caught inside, the outer write still commits.
    await within(
      5000,
      db.updateAsync(async (tx) => {
        await assert.rejects(
          db.updateAsync(() => 1),
          code('ERR_WRITER_BUSY'),
        );
        tx.bucket('a')!.put('caught', '1');
      }),
      'caught nested call',
    );
    // Every later write goes through.
    await within(
      5000,
      Promise.all([
        db.updateAsync((tx) => tx.bucket('a')!.put('after1', '1')),
        db.batch((tx) => tx.bucket('a')!.put('after2', '1')),
      ]),
      'later writes',
    );
    // A write scheduled from inside a callback but run after it ended is not re-entry.
    let later: Promise<void> | undefined;
    await db.updateAsync(() => {
      later = new Promise<void>((resolve, reject) => {
        setTimeout(() => db.updateAsync((tx) => tx.bucket('a')!.put('scheduled', '1')).then(resolve, reject), 10);
      });
    });
    await within(5000, later!, 'scheduled write');
    const keys = db.view((tx) =>
      ['outer', 'inner', 'caught', 'after1', 'after2', 'scheduled'].filter((k) => tx.bucket('a')!.get(k)),
    );
    assert.deepEqual(keys, ['caught', 'after1', 'after2', 'scheduled']);
    // Two databases may nest: only waiting on one's own queue is refused.
    const other = open(`${path.dirname(db.path)}/other`, { noSync: true });
    try {
      await db.updateAsync(async (tx) => {
        await other.updateAsync((t2) => t2.createBucket('o'));
        tx.bucket('a')!.put('nested-other', '1');
      });
      assert.ok(other.view((tx) => tx.bucket('o')));
    } finally {
      other.close();
    }
  }),
);

test(
  'non-function callbacks are typed errors (#7)',
  withDb(async (db) => {
    fill(db);
    for (const bad of [undefined, null, 42, 'fn', {}, Symbol('x')]) {
      const fn = bad as unknown as (tx: Tx) => void;
      assert.throws(() => db.view(fn), code('ERR_INVALID_ARGUMENT'));
      assert.throws(() => db.update(fn), code('ERR_INVALID_ARGUMENT'));
      await assert.rejects(db.updateAsync(fn), code('ERR_INVALID_ARGUMENT'));
      await assert.rejects(db.batch(fn), code('ERR_INVALID_ARGUMENT'));
      db.view((tx) => {
        assert.throws(() => tx.forEach(fn as never), code('ERR_INVALID_ARGUMENT'));
        assert.throws(() => tx.bucket('a')!.forEach(fn as never), code('ERR_INVALID_ARGUMENT'));
      });
    }
    assert.deepEqual(db.check(), []);
  }),
);

test(
  'range arguments are validated when range() is called (#7)',
  withDb((db) => {
    fill(db);
    db.view((tx) => {
      const b = tx.bucket('a')!;
      assert.throws(() => b.range(null as never), code('ERR_INVALID_OPTION'));
      assert.throws(() => b.range(5 as never), code('ERR_INVALID_OPTION'));
      assert.throws(() => b.range({ limit: Symbol('x') as never }), code('ERR_INVALID_OPTION'));
      assert.throws(() => b.range({ limit: -1 }), code('ERR_INVALID_OPTION'));
      assert.throws(() => b.range({ limit: 1.5 }), code('ERR_INVALID_OPTION'));
      assert.throws(() => b.range({ reverse: 'false' as never }), code('ERR_INVALID_OPTION'));
      assert.throws(() => b.range({ signal: {} as never }), code('ERR_INVALID_OPTION'));
      assert.throws(() => b.range({ gt: 5 as never }), code('ERR_INVALID_KEY_TYPE'));
      // level's `prefix` (or any unknown field) must not silently mean "everything".
      assert.throws(
        () => b.range({ prefix: 'k1' } as never),
        (err) => code('ERR_INVALID_OPTION')(err) && /prefix/.test((err as Error).message),
      );
      assert.equal([...b.range({ gte: 'k1', lt: 'k2', limit: Infinity })].length, 1111);
      assert.equal([...b.range(undefined)].length, 2000);
    });
  }),
);

test('open validates its path and options: boolean options must be booleans (#7, #8)', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'boltkv-misuse-'));
  const file = path.join(dir, 'db');
  try {
    for (const p of [Symbol('x'), 42, null, undefined, '', {}]) {
      assert.throws(() => open(p as unknown as string), code('ERR_INVALID_ARGUMENT'));
    }
    const bad: Record<string, unknown>[] = [
      { noSync: 'false' },
      { readOnly: 'false' },
      { noFreelistSync: 1 },
      { noGrowSync: null },
      { pageSize: Symbol('x') },
      { pageSize: '4096' },
      { lockTimeoutMs: Symbol('y') },
      { lockTimeoutMs: Number.NaN },
      { initialSize: 1e20 },
      { initialSize: -1 },
      { cacheSize: '1' },
      { maxBatchSize: 0 },
      { maxBatchSize: 1.5 },
      { fileMode: 'rw' },
      { fileMode: 0o10000 },
      { freelist: 'tree' },
      { fileSystem: {} },
      { maxBatchDelayMs: -5 },
      { cacheWrittenLeaves: 'no' },
    ];
    for (const o of bad) {
      assert.throws(
        () => open(file, o as never),
        code('ERR_INVALID_OPTION'),
        JSON.stringify(o, (_k, v) => (typeof v === 'symbol' ? String(v) : v)),
      );
    }
    for (const o of [null, 5, 'x', []]) assert.throws(() => open(file, o as never), code('ERR_INVALID_OPTION'));
    assert.equal(fs.existsSync(file), false, 'a refused open creates nothing');
    open(file, { noSync: false, readOnly: false, noFreelistSync: false }).close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('unknown option names passed to open are refused, naming the option', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'boltkv-misuse-'));
  try {
    for (const name of ['nosync', 'timeout', 'mapSize', 'pagesize']) {
      assert.throws(
        () => open(path.join(dir, 'db'), { [name]: true } as never),
        (err) => code('ERR_INVALID_OPTION')(err) && (err as Error).message.includes(name),
      );
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test(
  'tx.forEach skips a top-level key that is not a bucket, and check() flags it (#10)',
  withDb((db) => {
    db.update((tx) => {
      tx.createBucket('a').put('k', 'v');
      tx.createBucket('c');
      // A plain value at the top level: what corruption or a foreign writer can leave.
      (tx as unknown as { root: { put(k: string, v: string): void } }).root.put('b', 'not a bucket');
    });
    const seen: string[] = [];
    db.view((tx) =>
      tx.forEach((name, bucket) => {
        assert.ok(bucket, `bucket for ${Buffer.from(name).toString()}`);
        seen.push(Buffer.from(name).toString());
      }),
    );
    assert.deepEqual(seen, ['a', 'c']);
    const problems = db.check();
    assert.equal(problems.length, 1, problems.join('\n'));
    assert.match(problems[0]!, /top level.*not a bucket/);
  }),
);
