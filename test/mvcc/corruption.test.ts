/**
 * Damaged revision-layer records (issue 9 #5): opening or reading a store whose `key`, `meta` or
 * `lease` bucket holds something boltkv cannot have written fails with ERR_CORRUPT naming the bucket
 * and key — never a msgpackr Error, a Panic, or a store that trusts an absurd value.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { open as openBolt } from '../../src/bolt/index.ts';
import { MemoryBackend, MvccError, openStore } from '../../src/api/index.ts';
import { isBoltkvError } from '../../src/errors.ts';
import { encodeKeyValue, encodeLease, encodeTombstone } from '../../src/mvcc/codec.ts';
import { leaseIdToBytes, revToBytes, u64ToBytes } from '../../src/mvcc/revision.ts';
import {
  CONSISTENT_INDEX_KEY,
  FINISHED_COMPACT_KEY,
  KEY_BUCKET,
  LEASE_BUCKET,
  META_BUCKET,
  SCHEDULED_COMPACT_KEY,
} from '../../src/mvcc/store.ts';

const enc = new TextEncoder();
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

function corrupt(bucket: string, key: string) {
  return (e: unknown): boolean => {
    assert.ok(e instanceof MvccError, `expected an MvccError, got ${String(e)}`);
    assert.equal(e.code, 'ERR_CORRUPT', e.message);
    assert.equal(e.bucket, bucket);
    assert.equal(e.key, key);
    assert.ok(e.message.includes(`"${bucket}"`) && e.message.includes(key), e.message);
    return true;
  };
}

/** A memory backend holding two good revisions, then `damage` applied. */
async function damaged(
  damage: (put: (bucket: string, k: Uint8Array, v: Uint8Array) => void) => void,
): Promise<MemoryBackend> {
  const backend = new MemoryBackend();
  const kv = await openStore({ backend });
  await kv.set('a', '1');
  await kv.set('b', '2');
  await kv.close();
  backend.reopen();
  await backend.update((w) => damage((b, k, v) => w.put(b, k, v)));
  return backend;
}

const kvRecord = (key: string, create: number, mod: number, version: number): Uint8Array =>
  encodeKeyValue({
    key: enc.encode(key),
    createRevision: create,
    modRevision: mod,
    version,
    value: enc.encode('v'),
    lease: 0n,
  });

test('a record that is not msgpack names bucket "key" and its revision key (bolt file)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'boltkv-corrupt-'));
  try {
    const path = join(dir, 'data.db');
    const kv = await openStore(path);
    await kv.set('a', '1');
    await kv.close();
    const db = openBolt(path);
    const at = revToBytes(2, 0);
    db.update((tx) => tx.bucket(KEY_BUCKET)!.put(at, Buffer.from([0xc1, 0xff])));
    db.close();
    await assert.rejects(openStore(path), corrupt('key', hex(at)));
    // the failed open released the file
    const again = openBolt(path);
    again.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('damaged key-bucket records and keys are ERR_CORRUPT', async () => {
  const cases: [string, Uint8Array, Uint8Array][] = [
    ['truncated msgpack', revToBytes(4, 0), kvRecord('c', 4, 4, 1).subarray(0, 5)],
    ['wrong arity', revToBytes(4, 0), enc.encode('\x93\x01\x02\x03')],
    ['modRevision unlike the key', revToBytes(4, 0), kvRecord('c', 4, 9, 1)],
    ['create after mod', revToBytes(4, 0), kvRecord('c', 5, 4, 1)],
    ['version 0', revToBytes(4, 0), kvRecord('c', 4, 4, 0)],
    ['revision 2^62 in the record', revToBytes(4, 0), kvRecord('c', 4, 2 ** 62, 1)],
    ['tombstone record under a value key', revToBytes(4, 0), encodeTombstone(enc.encode('a'))],
    ['value record under a tombstone key', revToBytes(4, 0, true), kvRecord('a', 2, 4, 2)],
    ['empty key', revToBytes(4, 0), encodeTombstone(new Uint8Array(0))],
  ];
  for (const [what, at, v] of cases) {
    const backend = await damaged((put) => put(KEY_BUCKET, at, v));
    await assert.rejects(openStore({ backend }), corrupt('key', hex(at)), what);
  }
  // a revision key of the wrong shape (19 bytes: the index would point at a key that does not exist)
  const odd = new Uint8Array([...revToBytes(4, 0), 1, 2]);
  const b1 = await damaged((put) => put(KEY_BUCKET, odd, kvRecord('c', 4, 4, 1)));
  await assert.rejects(openStore({ backend: b1 }), corrupt('key', hex(odd)));
  // a main revision beyond 2^53
  const huge = new Uint8Array(17).fill(0xff);
  huge[8] = 0x5f;
  const b2 = await damaged((put) => put(KEY_BUCKET, huge, kvRecord('c', 4, 4, 1)));
  await assert.rejects(openStore({ backend: b2 }), corrupt('key', hex(huge)));
});

test('absurd meta values are refused, not trusted (scheduledCompactRev 2^62)', async () => {
  const big = new Uint8Array(17);
  big.set([0x40], 0); // 2^62 as the main revision
  big[8] = 0x5f;
  const b1 = await damaged((put) => put(META_BUCKET, SCHEDULED_COMPACT_KEY, big));
  await assert.rejects(openStore({ backend: b1 }), corrupt('meta', 'scheduledCompactRev'));
  const b2 = await damaged((put) => put(META_BUCKET, FINISHED_COMPACT_KEY, enc.encode('junk')));
  await assert.rejects(openStore({ backend: b2 }), corrupt('meta', 'finishedCompactRev'));
  const b3 = await damaged((put) => {
    put(META_BUCKET, FINISHED_COMPACT_KEY, revToBytes(3, 0));
    put(META_BUCKET, SCHEDULED_COMPACT_KEY, revToBytes(2, 0));
  });
  await assert.rejects(openStore({ backend: b3 }), corrupt('meta', 'finishedCompactRev'));
  const b4 = await damaged((put) => put(META_BUCKET, CONSISTENT_INDEX_KEY, new Uint8Array([1, 2, 3])));
  await assert.rejects(openStore({ backend: b4 }), corrupt('meta', 'consistent_index'));
  const b5 = await damaged((put) => put(META_BUCKET, CONSISTENT_INDEX_KEY, new Uint8Array(8).fill(0xff)));
  await assert.rejects(openStore({ backend: b5 }), corrupt('meta', 'consistent_index'));
  // a sane scheduled compaction still opens and finishes
  const ok = await damaged((put) => put(META_BUCKET, CONSISTENT_INDEX_KEY, u64ToBytes(5)));
  const kv = await openStore({ backend: ok });
  assert.equal(kv.consistentIndex(), 5);
  await kv.close();
});

test('damaged lease records are ERR_CORRUPT naming bucket "lease"', async () => {
  const id = leaseIdToBytes(7n);
  const cases: [string, Uint8Array, Uint8Array][] = [
    ['not msgpack', id, Buffer.from([0xc1])],
    ['wrong arity', id, enc.encode('\x91\x07')],
    ['ID unlike its key', id, encodeLease({ ID: 8n, TTL: 10 })],
    ['TTL 0', id, encodeLease({ ID: 7n, TTL: 0 })],
    ['TTL above etcd maximum', id, encodeLease({ ID: 7n, TTL: 9_000_000_001 })],
    ['key not 8 bytes', new Uint8Array([7]), encodeLease({ ID: 7n, TTL: 10 })],
  ];
  for (const [what, k, v] of cases) {
    const backend = await damaged((put) => put(LEASE_BUCKET, k, v));
    await assert.rejects(openStore({ backend }), corrupt('lease', hex(k)), what);
  }
});

test('a record damaged after open fails the read with ERR_CORRUPT, and the store keeps answering', async () => {
  const backend = new MemoryBackend();
  const kv = await openStore({ backend });
  await kv.set('a', '1');
  await kv.set('b', '2');
  await backend.update((w) => w.put(KEY_BUCKET, revToBytes(2, 0), Buffer.from([0xc1])));
  await assert.rejects(kv.get('a'), corrupt('key', hex(revToBytes(2, 0))));
  await assert.rejects(kv.get('a', { revision: 2 }), corrupt('key', hex(revToBytes(2, 0))));
  assert.equal((await kv.get('b')).count, 1);
  const w = kv.events.readEvents({ fromRev: 3, toRev: 3, key: enc.encode('b'), prevKv: false });
  assert.equal(w.length, 1);
  assert.throws(
    () => kv.events.readEvents({ fromRev: 2, toRev: 3, key: enc.encode('a'), prevKv: false }),
    corrupt('key', hex(revToBytes(2, 0))),
  );
  await kv.close();
});

test('openStore on a file another handle holds throws a BoltkvError (ERR_LOCK_TIMEOUT)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'boltkv-lock-'));
  try {
    const path = join(dir, 'data.db');
    const first = await openStore(path);
    await assert.rejects(openStore(path), (e: unknown) => isBoltkvError(e, 'ERR_LOCK_TIMEOUT'));
    await first.close();
    const second = await openStore(path);
    await second.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
