/**
 * etcd's space quota on the in-process store: writes past quotaBackendBytes fail with etcd's error
 * and raise NOSPACE; reads, deletes and compaction keep working; compact + defragment + disarm
 * restore writes. Also kv.defragment() and kv.snapshot() (a bolt image plus its SHA-256, as etcd's
 * Snapshot RPC sends it).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore, MemoryBackend } from '../../src/api/index.ts';
import { open } from '../../src/bolt/index.ts';
import { costPut, costTxn } from '../../src/api/quota.ts';

function tmp(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'boltkv-quota-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

test("quota: etcd's costs", () => {
  assert.equal(costPut({ key: 'abc', value: 'hello' }), 256 + 3 + 5);
  assert.equal(
    costTxn({
      success: [{ requestPut: { key: 'a', value: 'b' } }],
      failure: [{ requestPut: { key: 'aa', value: 'bb' } }, { requestPut: { key: 'c', value: '' } }],
    }),
    256 + 4 + 256 + 1,
  );
  assert.equal(costTxn({ success: [{ requestDeleteRange: { key: 'a' } }] }), 0);
});

test('quota: NOSPACE alarm, reads and deletes go on, compact + defragment + disarm restore writes', async (t) => {
  const { dir, cleanup } = tmp();
  t.after(cleanup);
  const limit = 4 << 20;
  const kv = await openStore(join(dir, 'db'), { quotaBackendBytes: limit, bolt: { noSync: true } });
  try {
    const value = 'v'.repeat(2000);
    let n = 0;
    let err: unknown;
    for (; n < 10_000; n++) {
      try {
        await kv.put({ key: `k${n % 500}`, value: `${n}${value}` });
      } catch (e) {
        err = e;
        break;
      }
    }
    assert.ok(err, 'writes eventually hit the quota');
    assert.equal((err as { code: string }).code, 'ERR_NO_SPACE');
    assert.equal((err as Error).message, 'etcdserver: mvcc: database space exceeded');
    const st = await kv.status();
    assert.ok(st.dbSize + 256 + 4 + value.length >= limit - 8192, `size ${st.dbSize} near the limit ${limit}`);
    // protobuf's text leaves member 0 out, as etcd prints it
    assert.deepEqual(st.errors, ['alarm:NOSPACE ']);
    assert.deepEqual((await kv.alarmList()).alarms, [{ memberId: 0n, alarm: 'NOSPACE' }]);
    // With the alarm up: every write that adds data fails, even a tiny one; reads, deletes, compaction work.
    await assert.rejects(kv.put({ key: 'tiny', value: '' }), { code: 'ERR_NO_SPACE' });
    await assert.rejects(kv.txn({ success: [{ requestPut: { key: 'x', value: 'y' } }] }), { code: 'ERR_NO_SPACE' });
    await assert.rejects(kv.leaseGrant({ TTL: 60 }), { code: 'ERR_NO_SPACE' });
    assert.equal((await kv.get('k1')).count, 1);
    const tx = await kv.txn({ compare: [], success: [{ requestRange: { key: 'k1' } }] });
    assert.equal(tx.succeeded, true);
    await kv.delete('k', { prefix: true });
    await kv.compact({ revision: kv.revision(), physical: true });
    // Still alarmed: disarm is needed, as in etcd.
    await assert.rejects(kv.put({ key: 'tiny', value: '' }), { code: 'ERR_NO_SPACE' });
    const before = (await kv.status()).dbSize;
    const r = await kv.defragment();
    const after = (await kv.status()).dbSize;
    assert.ok(after < before / 4, `defragment shrank ${before} -> ${after} (${JSON.stringify(r)})`);
    assert.deepEqual((await kv.alarmDisarm()).alarms, [{ memberId: 0n, alarm: 'NOSPACE' }]);
    assert.deepEqual((await kv.alarmList()).alarms, []);
    await kv.put({ key: 'again', value: 'works' });
    assert.equal(Buffer.from((await kv.get('again')).kvs[0]!.value).toString(), 'works');
    assert.deepEqual((await kv.status()).errors, []);
  } finally {
    await kv.close();
  }
});

test('quota: disarm while still too big re-raises on the next write; negative quota disables it', async () => {
  const kv = await openStore({ backend: new MemoryBackend(), quotaBackendBytes: 1 });
  try {
    await assert.rejects(kv.put({ key: 'a', value: 'b' }), { code: 'ERR_NO_SPACE' });
    await kv.alarmDisarm();
    await assert.rejects(kv.put({ key: 'a', value: 'b' }), { code: 'ERR_NO_SPACE' });
    await kv.delete('a');
    assert.equal((await kv.alarmList()).alarms.length, 1);
    await assert.rejects(kv.defragment(), { code: 'ERR_UNSUPPORTED' });
    assert.throws(() => kv.snapshot(), { code: 'ERR_UNSUPPORTED' });
  } finally {
    await kv.close();
  }
  const off = await openStore({ backend: new MemoryBackend(), quotaBackendBytes: -1 });
  await off.put({ key: 'a', value: 'b'.repeat(100_000) });
  await off.close();
  await assert.rejects(openStore({ backend: new MemoryBackend(), quotaBackendBytes: 1.5 }), {
    code: 'ERR_INVALID_ARGUMENT',
  });
});

test('kv.snapshot: a bolt image of one revision plus its sha256, while writes go on', async (t) => {
  const { dir, cleanup } = tmp();
  t.after(cleanup);
  const kv = await openStore(join(dir, 'db'), { bolt: { noSync: true } });
  try {
    for (let i = 0; i < 2000; i++) await kv.put({ key: `key${i}`, value: 'x'.repeat(300) });
    const rev = kv.revision();
    const chunks: Buffer[] = [];
    const stream = kv.snapshot();
    const writes = (async () => {
      for (let i = 0; i < 50; i++) await kv.put({ key: `later${i}`, value: 'y' });
    })();
    for await (const c of stream) chunks.push(c as Buffer);
    await writes;
    const all = Buffer.concat(chunks);
    const image = all.subarray(0, all.length - 32);
    assert.equal(all.subarray(all.length - 32).toString('hex'), createHash('sha256').update(image).digest('hex'));
    writeFileSync(join(dir, 'snap.db'), image);
    const db = open(join(dir, 'snap.db'), { readOnly: true });
    assert.deepEqual(db.check(), []);
    db.close();
    const copy = await openStore(join(dir, 'snap.db'));
    try {
      assert.ok(copy.revision() >= rev && copy.revision() <= rev + 50);
      assert.equal((await copy.get('key1999')).count, 1);
      assert.equal((await copy.hashKV(rev)).hash, (await kv.hashKV(rev)).hash);
    } finally {
      await copy.close();
    }
  } finally {
    await kv.close();
  }
});
