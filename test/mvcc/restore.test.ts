/**
 * Reopen over a bolt file: the key index is rebuilt from the `key` bucket by the engine's bulk
 * leaf scan (BackendReader.scanAll). The rebuilt store must answer exactly as the store that wrote
 * the file did, and as a store rebuilt through the plain cursor scan, over a tree several levels
 * deep with overwrites, deletes, re-creates, leases, sub-revisions and values spilling onto overflow
 * pages.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import type { Backend, BackendReader } from '../../src/mvcc/backend.ts';
import { BoltBackend } from '../../src/mvcc/backend/bolt.ts';
import { MvccStore } from '../../src/mvcc/store.ts';
import { inTempDir } from '../support/temp-dir.ts';
import { plain } from './gen.ts';

function open(backend: Backend): MvccStore {
  return MvccStore.open({ backend, leaseCheckIntervalMs: 0, autoExpireLeases: false });
}

/** The same backend without scanAll, so the store restores through scan(). */
function cursorOnly(b: Backend): Backend {
  const strip = (r: BackendReader): BackendReader => ({
    get: (bucket, key) => r.get(bucket, key),
    scan: (bucket, from, to, fn) => r.scan(bucket, from, to, fn),
    scanReverse: (bucket, from, to, fn) => r.scanReverse(bucket, from, to, fn),
  });
  return {
    view: (fn) => b.view((r) => fn(strip(r))),
    update: (fn) => b.update(fn),
    close: () => b.close(),
  };
}

/** Everything a reader can see: every key at a spread of revisions, and the leases. */
async function snapshot(s: MvccStore, revs: number[]): Promise<unknown[]> {
  const out: unknown[] = [];
  for (const revision of revs) out.push(plain(s.range({ key: '\0', rangeEnd: '\0', revision })));
  out.push(plain(await s.leaseLeases()));
  out.push(s.revision(), s.compactRevision());
  return out;
}

test('a reopened bolt store answers as before, through the leaf scan and through the cursor scan alike', () =>
  inTempDir(async (dir) => {
    const file = path.join(dir, 'db');
    const s = open(BoltBackend.open(file, { noSync: true }));
    await s.leaseGrant({ ID: 7, TTL: 600 });
    const big = 'x'.repeat(9000); // beyond a 4 KiB page: an overflow leaf
    for (let round = 0; round < 3; round++) {
      const ps: Promise<unknown>[] = [];
      for (let i = 0; i < 1500; i++) {
        const key = `key/${String((i * 7919) % 1500).padStart(5, '0')}`;
        if (round === 1 && i % 5 === 0) ps.push(s.deleteRange({ key }));
        else if (i % 97 === 0) ps.push(s.put({ key, value: big }));
        else if (i % 13 === 0) ps.push(s.put({ key, value: `v${round}`, lease: 7 }));
        else ps.push(s.put({ key, value: `v${round}.${i}` }));
      }
      // a txn gives sub-revisions
      ps.push(
        s.txn({
          success: [
            { requestPut: { key: 'a', value: '1' } },
            { requestPut: { key: 'b', value: '2' } },
            { requestDeleteRange: { key: 'key/00003' } },
          ],
        }),
      );
      await Promise.all(ps);
    }
    await s.compact({ revision: 1000, physical: true });
    const now = s.revision();
    const revs = [1000, 1700, 2600, 3400, now];
    const before = await snapshot(s, revs);
    assert.ok((before[0] as { kvs: unknown[] }).kvs.length > 900, 'the snapshot holds the keys');
    await s.close();

    const leaf = open(BoltBackend.open(file, { noSync: true }));
    assert.deepEqual(await snapshot(leaf, revs), before);
    await leaf.close();

    const cursor = open(cursorOnly(BoltBackend.open(file, { noSync: true })));
    assert.deepEqual(await snapshot(cursor, revs), before);
    await cursor.close();
  }, 'boltkv-restore-'));
