/**
 * The KV contract: openStore's result is a `KV` (checked by the compiler and by calling through the
 * interface), lease IDs are lossless int64 (bigint out; bigint, number or decimal string in), a
 * revision beyond 2^53 is etcd's "future revision", and status() answers etcd's StatusResponse
 * fields that exist in process.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { openStore, MvccError, SERVER_VERSION, type KV } from '../../src/index.ts';
import { inTempDir } from '../support/temp-dir.ts';

const isCode =
  (code: string) =>
  (e: unknown): boolean =>
    e instanceof MvccError && e.code === code;

function inTmp(fn: (path: string) => Promise<void>): Promise<void> {
  return inTempDir((dir) => fn(join(dir, 'data.db')), 'boltkv-kv-');
}

test('openStore returns a KV; calls through the interface work and dispose closes it', async () => {
  const kv: KV = await openStore({ inMemory: true });
  await kv.set('a', '1');
  assert.equal((await kv.get('a')).count, 1);
  await kv[Symbol.asyncDispose]();
  await assert.rejects(kv.get('a'), isCode('ERR_CLOSED'));
});

test('lease IDs above 2^53 survive grant, attach, range, txn compare, watch and reopen exactly', async () => {
  await inTmp(async (path) => {
    const big = (1n << 62n) + 12345n; // not representable as a JS number
    let kv: KV = await openStore(path, { leaseCheckIntervalMs: 0 });
    const g = await kv.leaseGrant({ ID: big.toString(), TTL: 60 });
    assert.equal(g.ID, big);
    const w = kv.watch({ key: 'k' });
    await kv.put({ key: 'k', value: 'v', lease: big });
    for await (const r of w) {
      assert.equal(r.events[0]!.kv.lease, big);
      break;
    }
    assert.equal((await kv.get('k')).kvs[0]!.lease, big);
    const t = await kv.txn({
      compare: [{ key: 'k', target: 'LEASE', result: 'EQUAL', lease: big }],
      success: [{ requestRange: { key: 'k' } }],
    });
    assert.equal(t.succeeded, true);
    const near = await kv.txn({ compare: [{ key: 'k', target: 'LEASE', result: 'EQUAL', lease: big + 1n }] });
    assert.equal(near.succeeded, false, 'compare is exact, not rounded to a double');
    await kv.close();
    kv = await openStore(path, { leaseCheckIntervalMs: 0 });
    assert.equal((await kv.get('k')).kvs[0]!.lease, big);
    assert.deepEqual((await kv.leaseLeases()).leases, [{ ID: big }]);
    const ttl = await kv.leaseTimeToLive({ ID: big, keys: true });
    assert.equal(ttl.ID, big);
    assert.deepEqual(
      ttl.keys.map((k) => Buffer.from(k).toString()),
      ['k'],
    );
    await kv.leaseRevoke({ ID: big });
    assert.equal((await kv.get('k')).count, 0);
    await kv.close();
  });
});

test('generated lease IDs are positive int64 bigints; small IDs also come back as bigint', async () => {
  const kv = await openStore({ inMemory: true, leaseCheckIntervalMs: 0 });
  try {
    const seen = new Set<bigint>();
    for (let i = 0; i < 20; i++) {
      const { ID } = await kv.leaseGrant({ TTL: 10 });
      assert.equal(typeof ID, 'bigint');
      assert.ok(ID > 0n && ID < 1n << 63n);
      seen.add(ID);
    }
    assert.equal(seen.size, 20);
    assert.equal((await kv.leaseGrant({ ID: 7, TTL: 10 })).ID, 7n);
    await kv.put({ key: 'x', lease: 7n });
    assert.equal((await kv.get('x')).kvs[0]!.lease, 7n);
    assert.equal((await kv.get('nothing-leased', {})).count, 0);
    await kv.put({ key: 'y' });
    assert.equal((await kv.get('y')).kvs[0]!.lease, 0n);
  } finally {
    await kv.close();
  }
});

test('lease IDs that are not int64 are a typed error, not a rounded number', async () => {
  const kv = await openStore({ inMemory: true, leaseCheckIntervalMs: 0 });
  try {
    for (const ID of [2 ** 60, 1.5, '12x', '', (1n << 63n).toString(), 1n << 63n, {}]) {
      await assert.rejects(kv.leaseGrant({ ID: ID as never, TTL: 10 }), isCode('ERR_INVALID_ARGUMENT'), String(ID));
    }
  } finally {
    await kv.close();
  }
});

test('a revision beyond 2^53 (number, bigint or string) is a future revision, as in etcd', async () => {
  const kv = await openStore({ inMemory: true });
  try {
    await kv.set('a', '1');
    for (const revision of [2 ** 60, 2n ** 62n, '9223372036854775807', 2 ** 53]) {
      await assert.rejects(kv.range({ key: 'a', revision }), isCode('ERR_FUTURE_REV'), String(revision));
      await assert.rejects(kv.compact({ revision }), isCode('ERR_FUTURE_REV'), String(revision));
      await assert.rejects(kv.txn({ success: [{ requestRange: { key: 'a', revision } }] }), isCode('ERR_FUTURE_REV'));
    }
    // beyond int64, or not an integer at all: a type error
    await assert.rejects(kv.range({ key: 'a', revision: '9223372036854775808' }), isCode('ERR_INVALID_ARGUMENT'));
    await assert.rejects(kv.range({ key: 'a', revision: 1.5 }), isCode('ERR_INVALID_ARGUMENT'));
    // big filter bounds act as etcd's exact values would
    assert.equal((await kv.range({ key: 'a', maxModRevision: 2n ** 62n })).kvs.length, 1);
    assert.equal((await kv.range({ key: 'a', minModRevision: '4611686018427387904' })).kvs.length, 0);
    assert.equal((await kv.range({ key: 'a', revision: '2' })).kvs.length, 1);
  } finally {
    await kv.close();
  }
});

test('status() reports our version, the revision and the backend size', async () => {
  await inTmp(async (path) => {
    const kv = await openStore(path, { bolt: { noSync: true } });
    try {
      const s0 = await kv.status();
      assert.equal(s0.version, SERVER_VERSION);
      assert.match(s0.version, /^3\.4\.\d+/);
      assert.equal(s0.header.revision, 1);
      assert.deepEqual(s0.errors, []);
      assert.ok(s0.dbSize >= s0.dbSizeInUse && s0.dbSizeInUse > 0);
      for (let i = 0; i < 200; i++) await kv.set(`k${i}`, 'x'.repeat(1000));
      const s1 = await kv.status();
      assert.equal(s1.header.revision, 201);
      assert.ok(s1.dbSize > s0.dbSize, 'the file grew');
      assert.equal(s1.raftIndex, undefined);
    } finally {
      await kv.close();
    }
  });
  const mem = await openStore({ inMemory: true });
  await mem.set('a', 'xyz');
  const s = await mem.status();
  assert.ok(s.dbSize > 0 && s.dbSize === s.dbSizeInUse);
  await mem.close();
  await assert.rejects(mem.status(), isCode('ERR_CLOSED'));
});

test('shortcut options must be objects: get/delete/set with null options are typed errors', async () => {
  const kv = await openStore({ inMemory: true });
  try {
    await kv.set('a', '1');
    await assert.rejects(kv.get('a', null as never), isCode('ERR_INVALID_ARGUMENT'));
    await assert.rejects(kv.delete('a', null as never), isCode('ERR_INVALID_ARGUMENT'));
    await assert.rejects(kv.set('a', '2', 5 as never), isCode('ERR_INVALID_ARGUMENT'));
    await assert.rejects(kv.get('a', { prefix: true, fromKey: true }), isCode('ERR_INVALID_ARGUMENT'));
    await assert.rejects(kv.get('a', { prefix: 'yes' as never }), isCode('ERR_INVALID_ARGUMENT'));
    assert.equal((await kv.get('a')).kvs.length, 1, 'nothing was deleted or overwritten');
    assert.equal((await kv.delete('a', { prevKv: true })).prevKvs.length, 1);
  } finally {
    await kv.close();
  }
});

test('keys and values come back as Buffer views that print as the stored text, without copies', async () => {
  await inTmp(async (path) => {
    const kv = await openStore(path, { bolt: { noSync: true } });
    try {
      await kv.set('greeting', 'hello');
      for (const resp of [await kv.get('greeting'), await kv.get('greeting', { revision: 2 })]) {
        const { key, value } = resp.kvs[0]!;
        assert.ok(Buffer.isBuffer(key) && Buffer.isBuffer(value));
        assert.equal(String(value), 'hello');
        assert.equal(String(key), 'greeting');
        assert.equal(key.buffer, value.buffer, 'key and value are views into the same stored record');
      }
      const d = await kv.delete('greeting', { prevKv: true });
      assert.equal(String(d.prevKvs[0]!.value), 'hello');
    } finally {
      await kv.close();
    }
  });
});
