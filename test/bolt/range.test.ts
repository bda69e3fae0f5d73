/** bucket.range(): bounds, direction, limit and abort, checked against a sorted array model. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { open, BoltError } from 'boltkv';

const key = fc.uint8Array({ minLength: 1, maxLength: 3, max: 8 });

test('range() agrees with a filtered, sorted model', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'boltkv-range-'));
  const db = open(path.join(dir, 'db'), { noSync: true });
  try {
    fc.assert(
      fc.property(
        fc.uniqueArray(key, { maxLength: 300, selector: (k) => Buffer.from(k).toString('hex') }),
        fc.record(
          { gt: fc.option(key), gte: fc.option(key), lt: fc.option(key), lte: fc.option(key) },
          { requiredKeys: [] },
        ),
        fc.boolean(),
        fc.option(fc.nat(50)),
        (keys, bounds, reverse, limit) => {
          db.update((tx) => {
            if (tx.bucket('b')) tx.deleteBucket('b');
            const b = tx.createBucket('b');
            for (const k of keys) b.put(k, k);
          });
          const opts = Object.fromEntries(Object.entries(bounds).filter(([, v]) => v !== null)) as Record<
            string,
            Uint8Array
          >;
          const c = (a: Uint8Array, b: Uint8Array) => Buffer.compare(a, b);
          let expected = [...keys]
            .sort(c)
            .filter((k) => (!opts.gt || c(k, opts.gt) > 0) && (!opts.gte || c(k, opts.gte) >= 0))
            .filter((k) => (!opts.lt || c(k, opts.lt) < 0) && (!opts.lte || c(k, opts.lte) <= 0));
          if (reverse) expected.reverse();
          if (limit !== null) expected = expected.slice(0, limit);
          const got = db.view((tx) =>
            [...tx.bucket('b')!.range({ ...opts, reverse, limit: limit ?? undefined })].map(([k]) =>
              Buffer.from(k).toString('hex'),
            ),
          );
          assert.deepEqual(
            got,
            expected.map((k) => Buffer.from(k).toString('hex')),
          );
        },
      ),
      { numRuns: 200 },
    );
  } finally {
    db.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('an aborted range stops with ERR_ABORTED', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'boltkv-range-'));
  const db = open(path.join(dir, 'db'), { noSync: true });
  try {
    db.update((tx) => {
      const b = tx.createBucket('b');
      for (let i = 0; i < 100; i++) b.put(`k${i}`, 'v');
    });
    const ac = new AbortController();
    let seen = 0;
    assert.throws(
      () =>
        db.view((tx) => {
          for (const _ of tx.bucket('b')!.range({ signal: ac.signal })) if (++seen === 10) ac.abort();
        }),
      (err: unknown) => err instanceof BoltError && err.code === 'ERR_ABORTED',
    );
    assert.equal(seen, 10);
  } finally {
    db.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
