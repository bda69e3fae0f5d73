/**
 * The revision layer's own guarantees beyond request semantics: group commit, durability before
 * resolve and before onCommit, the EventSource contract, replication apply with consistent_index,
 * lease expiry, the storage layout, and typed errors for bad input.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryBackend } from '../../src/mvcc/backend/memory.ts';
import { MvccError } from '../../src/mvcc/errors.ts';
import { bytesToU64, revToBytes } from '../../src/mvcc/revision.ts';
import { decodeRecord } from '../../src/mvcc/codec.ts';
import { CONSISTENT_INDEX_KEY, KEY_BUCKET, META_BUCKET, MvccStore } from '../../src/mvcc/store.ts';
import { prefixEnd } from '../../src/api/prefix.ts';
import type { RevisionBatch } from '../../src/mvcc/types.ts';
import { FaultyBackend } from './faulty-backend.ts';
import { plain } from './gen.ts';

const txt = (b: Uint8Array): string => Buffer.from(b).toString();
const isCode =
  (code: string) =>
  (e: unknown): boolean =>
    e instanceof MvccError && e.code === code;

function open(backend = new MemoryBackend(), extra: Partial<Parameters<typeof MvccStore.open>[0]> = {}): MvccStore {
  return MvccStore.open({ backend, leaseCheckIntervalMs: 0, ...extra });
}

test('group commit: puts issued in one turn share one backend commit and keep their own revisions', async () => {
  const faulty = new FaultyBackend(new MemoryBackend());
  const s = open(faulty as never);
  const before = faulty.commits;
  const resps = await Promise.all(Array.from({ length: 50 }, (_, i) => s.put({ key: `k${i}`, value: 'v' })));
  assert.equal(faulty.commits - before, 1, 'one commit for the whole turn');
  assert.deepEqual(
    resps.map((r) => r.header.revision),
    Array.from({ length: 50 }, (_, i) => i + 2),
  );
  // and a later turn gets its own commit
  await s.put({ key: 'x', value: 'y' });
  assert.equal(faulty.commits - before, 2);
  await s.close();
});

test('storage layout: 17-byte revision keys, 18 with the tombstone mark, consistent_index 8-byte big-endian', async () => {
  const backend = new MemoryBackend();
  const s = open(backend);
  await s.put({ key: 'a', value: '1' });
  await s.deleteRange({ key: 'a' });
  await s.apply(7, { put: { key: 'b', value: '2' } });
  const keys: Uint8Array[] = [];
  backend.view((r) =>
    r.scan(KEY_BUCKET, new Uint8Array(0), undefined, (k) => {
      keys.push(k.slice());
    }),
  );
  assert.deepEqual(
    keys.map((k) => k.length),
    [17, 18, 17],
  );
  assert.deepEqual(keys[0], revToBytes(2, 0));
  assert.equal(keys[1]![17], 't'.charCodeAt(0));
  const rec = backend.view((r) => decodeRecord(r.get(KEY_BUCKET, keys[0]!)!, keys[0]!));
  assert.equal(rec.tombstone, false);
  const ci = backend.view((r) => r.get(META_BUCKET, CONSISTENT_INDEX_KEY)!);
  assert.equal(ci.length, 8);
  assert.equal(bytesToU64(ci), 7);
  await s.close();
});

test('onCommit: every revision in order, only after it is durable, with prevKv; readEvents agrees', async () => {
  const inner = new MemoryBackend();
  const s = open(inner);
  const got: RevisionBatch[] = [];
  s.onCommit((b) => {
    // durable: the record is already in the backend, not only in memory
    const rk = revToBytes(b.revision, 0);
    const stored = inner.view((r) => r.get(KEY_BUCKET, rk) ?? r.get(KEY_BUCKET, revToBytes(b.revision, 0, true)));
    assert.ok(stored !== undefined, `revision ${b.revision} is stored before it is announced`);
    assert.equal(s.currentRevision(), b.revision);
    got.push(b);
  });
  await Promise.all([
    s.put({ key: 'a', value: '1' }),
    s.put({ key: 'a', value: '2' }),
    s.txn({ success: [{ requestPut: { key: 'b', value: '3' } }, { requestDeleteRange: { key: 'a' } }] }),
    s.deleteRange({ key: 'zzz' }), // changes nothing: no revision
  ]);
  assert.deepEqual(
    got.map((b) => b.revision),
    [2, 3, 4],
  );
  const ev = plain(got) as {
    events: { type: string; kv: { key: string; modRevision: number }; prevKv?: { value: string } }[];
  }[];
  assert.deepEqual(
    ev[2]!.events.map((e) => [e.type, e.kv.key, e.kv.modRevision, e.prevKv?.value]),
    [
      ['PUT', 'b', 4, undefined],
      ['DELETE', 'a', 4, '2'],
    ],
  );
  assert.equal(ev[1]!.events[0]!.prevKv?.value, '1');
  // readEvents returns the same batches from storage
  const read = s.readEvents({
    fromRev: 2,
    toRev: 10,
    key: new Uint8Array([0]),
    rangeEnd: new Uint8Array([0]),
    prevKv: true,
  });
  assert.deepEqual(plain(read), plain(got));
  // key filter, limit in whole revisions
  const onlyA = s.readEvents({ fromRev: 1, toRev: 4, key: new TextEncoder().encode('a'), prevKv: false, limit: 2 });
  assert.deepEqual(
    onlyA.map((b) => b.revision),
    [2, 3],
  );
  await s.compact({ revision: 3 });
  assert.throws(
    () =>
      s.readEvents({ fromRev: 2, toRev: 4, key: new Uint8Array([0]), rangeEnd: new Uint8Array([0]), prevKv: false }),
    isCode('ERR_COMPACTED'),
  );
  await s.close();
});

test('apply: ignores an index at or below the stored consistent index, also after reopen', async () => {
  const backend = new MemoryBackend();
  let s = open(backend, { closeBackend: false });
  const r1 = await s.apply(5, { put: { key: 'a', value: '1' } });
  assert.deepEqual(plain(r1), { put: { header: { revision: 2 } } });
  assert.equal(await s.apply(5, { put: { key: 'a', value: 'again' } }), undefined);
  assert.equal(await s.apply(3, { deleteRange: { key: 'a' } }), undefined);
  // a failing entry still consumes its index
  await assert.rejects(s.apply(6, { put: { key: 'zz', value: '', ignoreValue: true } }), isCode('ERR_KEY_NOT_FOUND'));
  assert.equal(s.consistentIndex(), 6);
  await s.close();
  s = open(backend);
  assert.equal(s.consistentIndex(), 6);
  assert.equal(await s.apply(6, { put: { key: 'a', value: 'replayed' } }), undefined);
  assert.equal(txt(s.range({ key: 'a' }).kvs[0]!.value), '1');
  await s.apply(7, { leaseGrant: { ID: 9, TTL: 60 } });
  await s.apply(8, { txn: { success: [{ requestPut: { key: 'l', value: 'v', lease: 9 } }] } });
  await s.apply(9, { leaseRevoke: { ID: 9 } });
  assert.equal(s.range({ key: 'l' }).count, 0);
  await assert.rejects(s.apply(10, {} as never), isCode('ERR_INVALID_ARGUMENT'));
  await s.close();
});

test('leases: expiry on the clock deletes all attached keys in one revision; TTL reporting; keepalive', async () => {
  let now = 1_000_000;
  const s = open(new MemoryBackend(), { now: () => now, minLeaseTTL: 1 });
  const g = await s.leaseGrant({ ID: 42, TTL: 10 });
  assert.deepEqual(plain(g), { header: { revision: 1 }, ID: 42n, TTL: 10 });
  await s.put({ key: 'b', value: '1', lease: 42 });
  await s.put({ key: 'a', value: '1', lease: 42 });
  await s.put({ key: 'c', value: '1', lease: 42 });
  await s.put({ key: 'c', value: '2' }); // detached again
  const batches: RevisionBatch[] = [];
  s.onCommit((b) => batches.push(b));
  now += 4_500;
  const ttl = await s.leaseTimeToLive({ ID: 42, keys: true });
  assert.equal(ttl.TTL, 5);
  assert.equal(ttl.grantedTTL, 10);
  assert.deepEqual(ttl.keys.map(txt), ['a', 'b']);
  const ka = await s.leaseKeepAlive({ ID: 42 });
  assert.equal(ka.TTL, 10);
  now += 9_000;
  assert.equal((await s.leaseTimeToLive({ ID: 42 })).TTL, 1, 'keepalive renewed the TTL');
  now += 2_000;
  s.expireLeases();
  await new Promise((r) => setImmediate(r));
  await new Promise((r) => setImmediate(r));
  assert.equal(batches.length, 1, 'one revision for the whole lease');
  assert.deepEqual(
    batches[0]!.events.map((e) => [e.type, txt(e.kv.key)]),
    [
      ['DELETE', 'a'],
      ['DELETE', 'b'],
    ],
  );
  assert.equal((await s.leaseTimeToLive({ ID: 42 })).TTL, -1);
  assert.equal(s.range({ key: 'c' }).count, 1);
  // etcd answers a keepalive of a missing lease with TTL 0, not an error
  assert.deepEqual(plain(await s.leaseKeepAlive({ ID: 42 })), { header: { revision: s.revision() }, ID: 42n, TTL: 0 });
  await assert.rejects(s.leaseRevoke({ ID: 42 }), isCode('ERR_LEASE_NOT_FOUND'));
  await assert.rejects(s.put({ key: 'd', value: '', lease: 42 }), isCode('ERR_LEASE_NOT_FOUND'));
  await assert.rejects(s.leaseGrant({ TTL: 9_000_000_001 }), isCode('ERR_LEASE_TTL_TOO_LARGE'));
  const auto = await s.leaseGrant({ TTL: 5 });
  assert.ok(auto.ID > 0);
  await assert.rejects(s.leaseGrant({ ID: auto.ID, TTL: 5 }), isCode('ERR_LEASE_EXISTS'));
  assert.deepEqual((await s.leaseLeases()).leases, [{ ID: auto.ID }]);
  await s.close();
});

test('leases survive a reopen with their keys attached (full TTL again, as etcd does)', async () => {
  const backend = new MemoryBackend();
  let s = open(backend, { closeBackend: false });
  await s.leaseGrant({ ID: 3, TTL: 30 });
  await s.put({ key: 'x', value: '1', lease: 3 });
  await s.close();
  s = open(backend);
  const t = await s.leaseTimeToLive({ ID: 3, keys: true });
  assert.deepEqual(t.keys.map(txt), ['x']);
  assert.equal(t.TTL, 30, 'the full granted TTL right after a restart, as etcd reports it');
  await s.leaseRevoke({ ID: 3 });
  assert.equal(s.range({ key: 'x' }).count, 0);
  await s.close();
});

test('bad input gets typed errors, never a TypeError', async () => {
  const s = open();
  const bad: [() => unknown, string][] = [
    [() => s.range({ key: 5 } as never), 'ERR_INVALID_ARGUMENT'],
    [() => s.range(null as never), 'ERR_INVALID_ARGUMENT'],
    [() => s.range({ key: 'a', limit: 1.5 }), 'ERR_INVALID_ARGUMENT'],
    [() => s.range({ key: 'a', sortOrder: 'UP' as never }), 'ERR_INVALID_ARGUMENT'],
    [() => s.range({ key: '' }), 'ERR_EMPTY_KEY'],
    [() => s.put({ key: 'a', value: 'v', ignoreValue: true }), 'ERR_VALUE_PROVIDED'],
    [() => s.put({ key: 'a', lease: 1, ignoreLease: true }), 'ERR_LEASE_PROVIDED'],
    [() => s.put({ key: 'a', value: {} as never }), 'ERR_INVALID_ARGUMENT'],
    [
      () => s.txn({ success: [{ requestPut: { key: 'a' }, requestRange: { key: 'b' } } as never] }),
      'ERR_INVALID_ARGUMENT',
    ],
    [() => s.txn({ success: 'x' as never }), 'ERR_INVALID_ARGUMENT'],
    [() => s.txn({ compare: [{ key: 'a', target: 'NOPE' as never, result: 'EQUAL' }] }), 'ERR_INVALID_ARGUMENT'],
    [
      () => s.txn({ success: Array.from({ length: 129 }, (_, i) => ({ requestRange: { key: `k${i}` } })) }),
      'ERR_TOO_MANY_OPS',
    ],
    [() => s.txn({ compare: [{ key: '', target: 'VERSION', result: 'EQUAL' }] }), 'ERR_EMPTY_KEY'],
    [() => s.compact({ revision: 'x' as never }), 'ERR_INVALID_ARGUMENT'],
    [() => s.compact({ revision: 99 }), 'ERR_FUTURE_REV'],
    [() => s.leaseGrant({ TTL: 1.5 }), 'ERR_INVALID_ARGUMENT'],
    [() => s.apply(0, { put: { key: 'a' } }), 'ERR_INVALID_ARGUMENT'],
  ];
  for (const [f, code] of bad) {
    try {
      await f();
      assert.fail(`expected ${code}`);
    } catch (e) {
      assert.ok(isCode(code)(e), `expected ${code}, got ${String(e)}`);
    }
  }
  await s.close();
  await assert.rejects(s.put({ key: 'a', value: 'b' }), isCode('ERR_CLOSED'));
  assert.throws(() => s.range({ key: 'a' }), isCode('ERR_CLOSED'));
});

test('a failed backend commit rejects the waiting writes and fails the store (no silent loss)', async () => {
  const faulty = new FaultyBackend(new MemoryBackend());
  const s = open(faulty as never);
  await s.put({ key: 'a', value: '1' });
  faulty.failAt = faulty.commits + 1;
  const ps = [s.put({ key: 'b', value: '1' }), s.put({ key: 'c', value: '1' })];
  for (const p of ps) await assert.rejects(p, isCode('ERR_STORE_FAILED'));
  assert.throws(() => s.range({ key: 'a' }), isCode('ERR_STORE_FAILED'));
  await s.close();
});

test('prefixEnd follows etcd: increment the last byte below 0xff, "\\0" when all bytes are 0xff', () => {
  assert.deepEqual(prefixEnd('abc'), new TextEncoder().encode('abd'));
  assert.deepEqual(prefixEnd(new Uint8Array([0x61, 0xff, 0xff])), new Uint8Array([0x62]));
  assert.deepEqual(prefixEnd(new Uint8Array([0xff, 0xff])), new Uint8Array([0]));
});

test('the lease timer revokes expired leases without any request arriving', async () => {
  let now = 0;
  const s = MvccStore.open({ backend: new MemoryBackend(), leaseCheckIntervalMs: 5, now: () => now, minLeaseTTL: 1 });
  await s.leaseGrant({ ID: 1, TTL: 1 });
  await s.put({ key: 'k', value: 'v', lease: 1 });
  const revoked = new Promise<RevisionBatch>((resolve) => s.onCommit(resolve));
  now = 1_000;
  // the lease timer is unref'd (it must not keep a process alive): hold the loop open meanwhile
  const guard = setTimeout(() => undefined, 10_000);
  const b = await revoked;
  clearTimeout(guard);
  assert.deepEqual(
    b.events.map((e) => [e.type, txt(e.kv.key)]),
    [['DELETE', 'k']],
  );
  assert.equal(s.range({ key: 'k' }).count, 0);
  await s.close();
});
