/** bucket.scan(): the view-free visitor scan, checked against a sorted-map model and against range(). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { open, BoltError, type DB, type ScanEntry } from 'boltkv';

const key = fc.uint8Array({ minLength: 1, maxLength: 3, max: 8 });
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const cmp = (a: Uint8Array, b: Uint8Array): number => Buffer.compare(a, b);

function withDb(fn: (db: DB) => void): void {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'boltkv-scan-'));
  const db = open(path.join(dir, 'db'), { noSync: true });
  try {
    fn(db);
  } finally {
    db.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** A write transaction that is rolled back at the end, whatever fn did. */
function scratch(db: DB, fn: (tx: ReturnType<DB['begin']>) => void): void {
  const tx = db.begin(true);
  try {
    fn(tx);
  } finally {
    tx.rollback();
  }
}

const isCode = (code: string) => (err: unknown) => err instanceof BoltError && err.code === code;

/** What a visitor saw, as hex strings: key, value (or 'bucket'), and the in-place fields agree with the views. */
function collect(out: string[][]): (e: ScanEntry) => void {
  return (e) => {
    const k = e.key();
    assert.equal(hex(k), hex(e.keyBuffer.subarray(e.keyOffset, e.keyOffset + e.keyLength)));
    assert.equal(e.compareKey(k), 0);
    assert.equal(hex(e.copyKey()), hex(k));
    const v = e.value();
    if (e.isBucket) assert.equal(v, null);
    else assert.equal(hex(v!), hex(e.valueBuffer.subarray(e.valueOffset, e.valueOffset + e.valueLength)));
    out.push([hex(k), v === null ? 'bucket' : hex(v)]);
  };
}

test('scan() agrees with a filtered, sorted model, in read and write transactions', () => {
  withDb((db) => {
    fc.assert(
      fc.property(
        // Values long enough that a few hundred entries span several leaf pages.
        fc.uniqueArray(fc.tuple(key, fc.nat(120)), { maxLength: 300, selector: ([k]) => hex(k) }),
        fc.uniqueArray(key, { maxLength: 5, selector: hex }),
        fc.record(
          { gt: fc.option(key), gte: fc.option(key), lt: fc.option(key), lte: fc.option(key) },
          { requiredKeys: [] },
        ),
        fc.boolean(),
        fc.option(fc.nat(50)),
        fc.uniqueArray(key, { maxLength: 20, selector: hex }),
        (pairs, subs, bounds, reverse, limit, extra) => {
          const model = new Map<string, string>();
          db.update((tx) => {
            if (tx.bucket('b')) tx.deleteBucket('b');
            const b = tx.createBucket('b');
            for (const [k, n] of pairs) {
              const v = Buffer.alloc(n, k[0]);
              b.put(k, v);
              model.set(hex(k), hex(v));
            }
            for (const s of subs) {
              if (model.has(hex(s))) continue;
              b.createBucket(s);
              model.set(hex(s), 'bucket');
            }
          });
          const opts = Object.fromEntries(Object.entries(bounds).filter(([, v]) => v !== null)) as Record<
            string,
            Uint8Array
          >;
          const expect = (m: Map<string, string>): string[][] => {
            let rows = [...m.entries()]
              .map(([k, v]) => [Buffer.from(k, 'hex'), v] as const)
              .sort((a, b) => cmp(a[0], b[0]))
              .filter(([k]) => (!opts.gt || cmp(k, opts.gt) > 0) && (!opts.gte || cmp(k, opts.gte) >= 0))
              .filter(([k]) => (!opts.lt || cmp(k, opts.lt) < 0) && (!opts.lte || cmp(k, opts.lte) <= 0))
              .map(([k, v]) => [hex(k), v]);
            if (reverse) rows.reverse();
            if (limit !== null) rows = rows.slice(0, limit);
            return rows;
          };
          const options = { ...opts, reverse, limit: limit ?? undefined };
          // Read transaction: the scan walks pages.
          const seen: string[][] = [];
          const n = db.view((tx) => tx.bucket('b')!.scan(options, collect(seen)));
          assert.deepEqual(seen, expect(model));
          assert.equal(n, seen.length);
          // Write transaction after more puts: the scan walks materialized nodes too.
          scratch(db, (tx) => {
            const b = tx.bucket('b')!;
            for (const k of extra) {
              if (model.get(hex(k)) === 'bucket') continue;
              b.put(k, k);
              model.set(hex(k), hex(k));
            }
            const seen2: string[][] = [];
            b.scan(options, collect(seen2));
            assert.deepEqual(seen2, expect(model));
          });
        },
      ),
      { numRuns: 150 },
    );
  });
});

test('scan() over a deep tree matches range() for random bounds', () => {
  withDb((db) => {
    const N = 20_000;
    const k = (i: number): Buffer => {
      const b = Buffer.alloc(8);
      b.writeUInt32BE(i * 3, 4);
      return b;
    };
    db.update((tx) => {
      const b = tx.createBucket('b');
      for (let i = 0; i < N; i++) b.put(k(i), Buffer.alloc(40, i & 0xff));
    });
    fc.assert(
      fc.property(fc.nat(N * 3 + 3), fc.nat(N * 3 + 3), fc.boolean(), fc.nat(3000), (a, c, reverse, limit) => {
        const low = k(a / 3);
        low.writeUInt32BE(a, 4);
        const high = Buffer.alloc(8);
        high.writeUInt32BE(c, 4);
        db.view((tx) => {
          const b = tx.bucket('b')!;
          const options = { gte: low, lt: high, reverse, limit };
          const want = [...b.range(options)].map(([kk, v]) => hex(kk) + hex(v!));
          const got: string[] = [];
          const n = b.scan(options, (e) => void got.push(hex(e.key()) + hex(e.value()!)));
          assert.equal(n, want.length);
          assert.deepEqual(got, want);
        });
      }),
      { numRuns: 60 },
    );
  });
});

test('returning false stops a scan; the count includes the entry that stopped it', () => {
  withDb((db) => {
    db.update((tx) => {
      const b = tx.createBucket('b');
      for (let i = 0; i < 1000; i++) b.put(`k${String(i).padStart(4, '0')}`, 'v');
    });
    const keys: string[] = [];
    const n = db.view((tx) => tx.bucket('b')!.scan({}, (e) => keys.push(e.key().toString()) < 7));
    assert.equal(n, 7);
    assert.deepEqual(keys, ['k0000', 'k0001', 'k0002', 'k0003', 'k0004', 'k0005', 'k0006']);
  });
});

test('a visitor that writes: the scan re-finds its place after deletes and puts', () => {
  withDb((db) => {
    db.update((tx) => {
      const b = tx.createBucket('b');
      for (let i = 0; i < 2000; i++) b.put(`k${String(i).padStart(4, '0')}`, 'v');
    });
    scratch(db, (tx) => {
      const b = tx.bucket('b')!;
      // Delete every visited key: each entry is visited once, and the bucket ends empty.
      const seen: string[] = [];
      b.scan({}, (e) => {
        const k = e.copyKey();
        seen.push(k.toString());
        b.delete(k);
      });
      assert.equal(seen.length, 2000);
      assert.equal(new Set(seen).size, 2000);
      assert.equal(
        b.scan({}, () => {}),
        0,
      );
    });
    scratch(db, (tx) => {
      const b = tx.bucket('b')!;
      // Reverse, putting a key just after each visited one and one past the bound: neither is
      // visited, every original key is, once.
      const seen: string[] = [];
      b.scan({ reverse: true, lt: 'k0100' }, (e) => {
        seen.push(e.key().toString());
        b.put(`${e.key().toString()}-`, 'x');
        b.put(`z${seen.length}`, 'x');
      });
      assert.deepEqual(
        seen,
        Array.from({ length: 100 }, (_, i) => `k${String(99 - i).padStart(4, '0')}`),
      );
    });
  });
});

test('a forward scan that starts over pages and whose visitor writes mid-way keeps its bounds and limit (model)', () => {
  withDb((db) => {
    const N = 3000;
    const k = (i: number): Buffer => Buffer.from(`k${String(i).padStart(5, '0')}`);
    db.update((tx) => {
      const b = tx.createBucket('b');
      for (let i = 0; i < N; i += 2) b.put(k(i), Buffer.alloc(60, i & 0xff));
    });
    fc.assert(
      fc.property(fc.nat(N), fc.nat(N), fc.nat(200), fc.nat(40), fc.boolean(), (lo, hi, limit, writeAt, gtNotGte) => {
        scratch(db, (tx) => {
          const b = tx.bucket('b')!;
          const model = new Set<string>();
          for (let i = 0; i < N; i += 2) model.add(k(i).toString());
          const low = k(lo).toString();
          const high = k(hi).toString();
          const seen: string[] = [];
          const options = { [gtNotGte ? 'gt' : 'gte']: low, lte: high, limit };
          b.scan(options, (e) => {
            const key = e.key().toString();
            seen.push(key);
            if (seen.length === writeAt) {
              // Odd keys around the current one: the one after it is ahead of the scan and is
              // seen (within the bounds and limit), the one before is behind it and is not.
              const j = Number(key.slice(1));
              b.put(k(j + 1), 'x');
              if (j > 0) b.put(k(j - 1), 'x');
              model.add(k(j + 1).toString());
            }
          });
          const want = [...model]
            .sort()
            .filter((x) => (gtNotGte ? x > low : x >= low) && x <= high)
            .slice(0, limit);
          assert.deepEqual(seen, want);
        });
      }),
      { numRuns: 120 },
    );
  });
});

test('scan() on a closed transaction or database, or with bad arguments, throws typed errors', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'boltkv-scan-'));
  const db = open(path.join(dir, 'db'), { noSync: true });
  try {
    db.update((tx) => {
      const b = tx.createBucket('b');
      for (let i = 0; i < 100; i++) b.put(`k${i}`, 'v');
    });
    const tx = db.begin(false);
    const b = tx.bucket('b')!;
    assert.throws(() => b.scan({}, 42 as unknown as () => void), isCode('ERR_INVALID_ARGUMENT'));
    assert.throws(() => b.scan({ gt: 5 } as never, () => {}), isCode('ERR_INVALID_KEY_TYPE'));
    assert.throws(() => b.scan({ nope: 1 } as never, () => {}), isCode('ERR_INVALID_OPTION'));
    assert.throws(() => b.scan({}, (e) => void e.compareKey(7 as never)), isCode('ERR_INVALID_KEY_TYPE'));
    // The visitor ends its own transaction: the next step answers ERR_TX_CLOSED.
    assert.throws(() => b.scan({}, () => tx.rollback()), isCode('ERR_TX_CLOSED'));
    assert.throws(() => b.scan({}, () => {}), isCode('ERR_TX_CLOSED'));
    const tx2 = db.begin(false);
    const b2 = tx2.bucket('b')!;
    db.close();
    assert.throws(() => b2.scan({}, () => {}), isCode('ERR_CLOSED'));
  } finally {
    if (!db.closed) db.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('an aborted scan stops with ERR_ABORTED', () => {
  withDb((db) => {
    db.update((tx) => {
      const b = tx.createBucket('b');
      for (let i = 0; i < 100; i++) b.put(`k${i}`, 'v');
    });
    const ac = new AbortController();
    let seen = 0;
    assert.throws(
      () => db.view((tx) => tx.bucket('b')!.scan({ signal: ac.signal }, () => void (++seen === 10 && ac.abort()))),
      isCode('ERR_ABORTED'),
    );
    assert.equal(seen, 10);
    const pre = AbortSignal.abort();
    assert.throws(() => db.view((tx) => tx.bucket('b')!.scan({ signal: pre }, () => {})), isCode('ERR_ABORTED'));
  });
});
