/**
 * Lease IDs that real etcd generates are far above 2^53; they must survive every round trip through
 * connect() exactly: grant, attach to a key, read back, time to live, keepalive, list, revoke (as
 * bigint and as a decimal string), and the lease helper.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from '../../src/client/index.ts';
import { requireEtcd, startEtcd } from '../support/etcd.ts';

test('etcd-generated lease IDs above 2^53 round-trip exactly', { timeout: 60_000 }, async (t) => {
  if (!requireEtcd(t)) return;
  const etcd = await startEtcd();
  const kv = connect({ endpoints: [etcd.url] });
  try {
    const ids: bigint[] = [];
    for (let i = 0; i < 5; i++) ids.push((await kv.leaseGrant({ TTL: 60 })).ID);
    for (const id of ids) assert.ok(id > 2n ** 53n, `etcd gave ${id}, not above 2^53`);
    // Consecutive IDs differ in their low bits: a double would merge them.
    assert.equal(new Set(ids).size, ids.length);
    assert.ok(
      ids.some((id, i) => i > 0 && Number(id) === Number(ids[i - 1]!)),
      'the IDs are close enough that a double could not tell them apart',
    );
    const id = ids[2]!;
    await kv.put({ key: 'lk', value: 'v', lease: id });
    assert.equal((await kv.get('lk')).kvs[0]!.lease, id);
    const ttl = await kv.leaseTimeToLive({ ID: id, keys: true });
    assert.equal(ttl.ID, id);
    assert.deepEqual(
      ttl.keys.map((k) => Buffer.from(k).toString()),
      ['lk'],
    );
    assert.equal((await kv.leaseKeepAlive({ ID: id })).ID, id);
    const listed = (await kv.leaseLeases()).leases.map((l) => l.ID);
    for (const x of ids) assert.ok(listed.includes(x), `${x} missing from leases`);
    // The neighbour is untouched by revoking this one, given as a decimal string.
    await kv.leaseRevoke({ ID: id.toString() });
    assert.equal((await kv.get('lk')).count, 0);
    assert.equal((await kv.leaseTimeToLive({ ID: id })).TTL, -1);
    assert.ok((await kv.leaseTimeToLive({ ID: ids[3]! })).TTL > 0);
    // A keepalive of a gone lease answers TTL 0 (etcd), and the helper reports such a lease lost.
    assert.equal((await kv.leaseKeepAlive({ ID: id })).TTL, 0);
    const kept = await kv.lease(2);
    assert.ok(kept.ID > 2n ** 53n);
    assert.equal(kept.TTL, 2);
    await new Promise((r) => setTimeout(r, 2500));
    assert.equal(kept.alive, true, 'the helper let the lease lapse');
    assert.ok((await kv.leaseTimeToLive({ ID: kept.ID })).TTL > 0);
    await kept[Symbol.asyncDispose]();
    assert.equal((await kv.leaseTimeToLive({ ID: kept.ID })).TTL, -1, 'disposing the helper revokes the lease');
    assert.equal((await kept.lost).code, 'ERR_CLOSED');
  } finally {
    await kv.close();
    await etcd.stop();
  }
});
