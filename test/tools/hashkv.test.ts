/**
 * HashKV against a real etcd 3.4: the same random histories (puts, deletes, range deletes, txns,
 * physical compactions) go to etcd and to boltkv; `etcdctl endpoint hashkv --rev R` and boltkv's
 * hashKV must agree at every revision still available. Also the CRC-32C and protobuf encodings
 * against known vectors, and the compacted / future errors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore, type KVStore } from '../../src/api/index.ts';
import { BoltBackend } from '../../src/mvcc/backend/bolt.ts';
import { MemoryBackend } from '../../src/mvcc/backend/memory.ts';
import { crc32c, encodeKeyValueProto, hashKVOfBackend } from '../../src/mvcc/hash.ts';
import { requireEtcd, startEtcd, type EtcdServer } from '../support/etcd.ts';
import { Rng } from '../support/rng.ts';

test('crc32c and KeyValue protobuf encoding match known vectors', () => {
  assert.equal(crc32c(new TextEncoder().encode('123456789')), 0xe3069283);
  assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa);
  assert.equal(crc32c(new Uint8Array(0)), 0);
  const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
  // key "foo", create 2, mod 300, version 1, value "bar", lease 0: as gogoproto marshals it
  assert.equal(
    Buffer.from(
      encodeKeyValueProto({
        key: enc('foo'),
        createRevision: 2,
        modRevision: 300,
        version: 1,
        value: enc('bar'),
        lease: 0n,
      }),
    ).toString('hex'),
    '0a03666f6f100218ac0220012a03626172',
  );
  assert.equal(
    Buffer.from(
      encodeKeyValueProto({
        key: enc('k'),
        createRevision: 0,
        modRevision: 0,
        version: 0,
        value: new Uint8Array(0),
        lease: 0n,
      }),
    ).toString('hex'),
    '0a016b',
  );
  assert.equal(
    Buffer.from(
      encodeKeyValueProto({
        key: enc('k'),
        createRevision: 1,
        modRevision: 1,
        version: 1,
        value: new Uint8Array(0),
        lease: -1n,
      }),
    ).toString('hex'),
    '0a016b10011801200130ffffffffffffffffff01',
  );
});

type Op =
  | { t: 'put'; key: string; value: string }
  | { t: 'del'; key: string }
  | { t: 'delRange'; key: string; end: string }
  | { t: 'txn'; key: string; value: string; del: string }
  | { t: 'compact' };

function history(seed: number, n: number): Op[] {
  const rng = new Rng(seed);
  const keys = ['a', 'b', 'c', 'd', 'e', 'foo', 'foo/1', 'foo/2'];
  const pick = (): string => keys[rng.int(0, keys.length - 1)]!;
  const ops: Op[] = [];
  for (let i = 0; i < n; i++) {
    const r = rng.int(0, 100 - 1);
    if (r < 55) ops.push({ t: 'put', key: pick(), value: `v${i}`.repeat(1 + rng.int(0, 3 - 1)) });
    else if (r < 72) ops.push({ t: 'del', key: pick() });
    else if (r < 78) ops.push({ t: 'delRange', key: 'a', end: 'd' });
    else if (r < 88) ops.push({ t: 'txn', key: pick(), value: `t${i}`, del: pick() });
    else ops.push({ t: 'compact' });
  }
  // End with everything deleted once in a while: the case where the compaction keeps nothing.
  if (seed % 3 === 0) ops.push({ t: 'delRange', key: '\0', end: '\xff' }, { t: 'compact' });
  return ops;
}

interface Target {
  put(key: string, value: string): Promise<unknown>;
  del(key: string, end?: string): Promise<unknown>;
  txn(key: string, value: string, del: string): Promise<unknown>;
  compact(rev: number): Promise<unknown>;
  revision(): Promise<number>;
}

function etcdTarget(e: EtcdServer): Target {
  const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
  return {
    put: (key, value) => e.gateway.put({ key: enc(key), value: enc(value) }),
    del: (key, end) => e.gateway.deleteRange({ key: enc(key), rangeEnd: end === undefined ? undefined : enc(end) }),
    txn: (key, value, del) =>
      key === del
        ? e.gateway.put({ key: enc(key), value: enc(value) })
        : e.gateway.txn({
            success: [{ requestPut: { key: enc(key), value: enc(value) } }, { requestDeleteRange: { key: enc(del) } }],
          }),
    compact: (rev) => e.gateway.compact({ revision: rev, physical: true }),
    revision: async () => {
      const r = (await e.gateway.range({ key: enc('a') })) as { header: { revision: number } };
      return Number(r.header.revision);
    },
  };
}

function boltkvTarget(kv: KVStore): Target {
  return {
    put: (key, value) => kv.put({ key, value }),
    del: (key, end) => kv.deleteRange({ key, rangeEnd: end }),
    txn: (key, value, del) =>
      key === del
        ? kv.put({ key, value })
        : kv.txn({ success: [{ requestPut: { key, value } }, { requestDeleteRange: { key: del } }] }),
    compact: (rev) => kv.compact({ revision: rev, physical: true }),
    revision: async () => kv.revision(),
  };
}

async function play(t: Target, ops: readonly Op[], rng: Rng): Promise<void> {
  let lastCompact = 0;
  for (const op of ops) {
    if (op.t === 'put') await t.put(op.key, op.value);
    else if (op.t === 'del') await t.del(op.key);
    else if (op.t === 'delRange') await t.del(op.key, op.end);
    else if (op.t === 'txn') await t.txn(op.key, op.value, op.del);
    else {
      const cur = await t.revision();
      if (cur <= lastCompact) continue;
      const rev = lastCompact + 1 + rng.int(0, cur - lastCompact - 1);
      await t.compact(rev);
      lastCompact = rev;
    }
  }
}

function etcdHash(
  url: string,
  rev: number,
): { hash: number; compactRevision: number; revision: number } | { error: string } {
  const r = spawnSync('etcdctl', ['--endpoints', url, 'endpoint', 'hashkv', `--rev=${rev}`, '-w', 'json'], {
    encoding: 'utf8',
    env: { ...process.env, ETCDCTL_API: '3' },
  });
  if (r.status !== 0) return { error: r.stderr.trim() };
  const j = JSON.parse(r.stdout) as Array<{
    HashKV: { header: { revision: number }; hash: number; compact_revision?: number };
  }>;
  const h = j[0]!.HashKV;
  return { hash: h.hash >>> 0, compactRevision: h.compact_revision ?? 0, revision: h.header.revision };
}

test('hashKV equals etcd endpoint hashkv for random histories with compactions', { timeout: 120_000 }, async (t) => {
  if (!requireEtcd(t)) return;
  const seeds = process.env.BOLTKV_STRESS === '1' ? 24 : 6;
  for (let seed = 1; seed <= seeds; seed++) {
    const ops = history(seed, 60);
    const etcd = await startEtcd();
    const dir = mkdtempSync(join(tmpdir(), 'boltkv-hashkv-'));
    try {
      await play(etcdTarget(etcd), ops, new Rng(seed * 7));
      const kv = await openStore(join(dir, 'db'));
      await play(boltkvTarget(kv), ops, new Rng(seed * 7));
      const cur = kv.revision();
      assert.equal(cur, await etcdTarget(etcd).revision(), `seed ${seed}: same revision`);
      const ours = new Map<number, number | string>();
      for (let rev = 0; rev <= cur + 1; rev++) {
        try {
          ours.set(rev, (await kv.hashKV(rev)).hash);
        } catch (e) {
          ours.set(rev, (e as Error).message);
        }
      }
      await kv.close();
      for (let rev = 0; rev <= cur + 1; rev++) {
        const theirs = etcdHash(etcd.url, rev);
        const want = 'error' in theirs ? theirs.error : theirs.hash;
        const got = ours.get(rev)!;
        if (typeof got === 'string')
          assert.ok(
            String(want).includes(got.replace(/^boltkv: /, '')),
            `seed ${seed} rev ${rev}: etcd said ${want}, boltkv ${got}`,
          );
        else assert.equal(got, want, `seed ${seed} rev ${rev} (current ${cur})`);
      }
      // The same hash from the file alone, after reopening.
      const be = BoltBackend.open(join(dir, 'db'), {});
      try {
        const again = be.view((r) => hashKVOfBackend(r, 0));
        assert.equal(again.hash, ours.get(0));
        assert.equal(again.revision, cur);
      } finally {
        await be.close();
      }
    } finally {
      await etcd.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  }
});

test('hashKV errors and stability', async () => {
  const kv = await openStore({ backend: new MemoryBackend() });
  try {
    const empty = await kv.hashKV(0);
    assert.equal(empty.hash, crc32c(new TextEncoder().encode('key')), 'an empty store hashes the bucket name only');
    assert.equal(empty.compactRevision, -1);
    for (let i = 0; i < 10; i++) await kv.put({ key: `k${i % 3}`, value: `v${i}` });
    const h5 = await kv.hashKV(5);
    await kv.put({ key: 'later', value: 'x' });
    assert.equal((await kv.hashKV(5)).hash, h5.hash, 'later writes do not change a past revision');
    assert.notEqual((await kv.hashKV(0)).hash, h5.hash);
    await kv.compact({ revision: 4, physical: true });
    await assert.rejects(kv.hashKV(3), { code: 'ERR_COMPACTED' });
    await assert.rejects(kv.hashKV(4), { code: 'ERR_COMPACTED' });
    await assert.rejects(kv.hashKV(100), { code: 'ERR_FUTURE_REV' });
    assert.equal((await kv.hashKV(5)).compactRevision, 4);
    await assert.rejects(kv.hashKV(-1), { code: 'ERR_INVALID_ARGUMENT' });
  } finally {
    await kv.close();
  }
});

test('ETCD_RECORDS reads the user key of etcd-stored KeyValues, and refuses a record without one', async () => {
  const fc = (await import('fast-check')).default;
  const { ETCD_RECORDS } = await import('../../src/mvcc/hash.ts');
  const at = new Uint8Array(17);
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 1, maxLength: 300 }),
      fc.nat(),
      fc.nat(),
      fc.uint8Array({ maxLength: 50 }),
      fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
      (key, create, version, value, lease) => {
        const proto = encodeKeyValueProto({ key, createRevision: create, modRevision: create, version, value, lease });
        assert.equal(ETCD_RECORDS.userKey(proto, at), Buffer.from(key).toString('latin1'));
        assert.equal(ETCD_RECORDS.proto(proto, at), proto);
      },
    ),
  );
  for (const bad of [new Uint8Array(0), Uint8Array.of(0x10, 1), Uint8Array.of(0x0a, 5, 1, 2)]) {
    assert.throws(() => ETCD_RECORDS.userKey(bad, at), { code: 'ERR_CORRUPT' });
  }
});
