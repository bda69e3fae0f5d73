// Alarms raised by hand (etcd's Alarm ACTIVATE) on a replicated cluster: proposed through any
// member, applied by all, kept in every member's file across a restart; CORRUPT refuses every write
// on every member while reads go on; DEACTIVATE clears exactly the (member, type) pair given.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SimCluster } from './sim/cluster.ts';
import { isBoltkvError } from '../../src/errors.ts';

const refusedAs = (code: string) => (e: unknown) => isBoltkvError(e, code);

test('ACTIVATE CORRUPT and NOSPACE through a follower: on every member, across a restart; DEACTIVATE exactly one pair', async () => {
  const c = new SimCluster(23, [1, 2, 3]);
  for (const id of [1, 2, 3]) await c.start(id);
  const leader = await c.waitLeader();
  const follower = c.members().find((m) => m.id !== leader.id)!;
  await c.until(leader.put({ key: 'a', value: '1' }));
  await c.until(leader.leaseGrant({ ID: 42, TTL: 600 }));

  // Raised through a follower, as etcd's ACTIVATE: member 0 and member 7, answered with the alarm.
  const corrupt = { memberId: 7n, alarm: 'CORRUPT' as const };
  const nospace0 = { memberId: 0n, alarm: 'NOSPACE' as const };
  assert.deepEqual((await c.until(follower.alarmActivate(corrupt))).alarms, [corrupt]);
  assert.deepEqual((await c.until(follower.alarmActivate(nospace0))).alarms, [nospace0]);
  assert.deepEqual((await c.until(leader.alarmActivate(nospace0))).alarms, [nospace0], 'raised again: answered again');
  await c.run(c.now + 300);
  const both = [nospace0, corrupt];
  for (const m of c.members()) {
    assert.deepEqual((await c.until(m.alarmList())).alarms, both, `alarms on member ${m.id}`);
    assert.deepEqual((await m.status()).errors, ['alarm:NOSPACE ', 'memberID:7 alarm:CORRUPT '], `member ${m.id}`);
  }

  // CORRUPT: every write refused through any member (deletes, compaction, lease revoke too); reads go on.
  for (const m of [leader, follower]) {
    await assert.rejects(c.until(m.put({ key: 'b', value: '2' })), refusedAs('ERR_CORRUPT_CLUSTER'));
    await assert.rejects(c.until(m.delete('a')), refusedAs('ERR_CORRUPT_CLUSTER'));
    await assert.rejects(c.until(m.compact({ revision: 1 })), refusedAs('ERR_CORRUPT_CLUSTER'));
    await assert.rejects(c.until(m.leaseRevoke({ ID: 42 })), refusedAs('ERR_CORRUPT_CLUSTER'));
    await assert.rejects(
      c.until(m.txn({ success: [{ requestDeleteRange: { key: 'a' } }] })),
      refusedAs('ERR_CORRUPT_CLUSTER'),
    );
    assert.equal((await c.until(m.get('a'))).count, 1);
    assert.equal((await c.until(m.txn({ success: [{ requestRange: { key: 'a' } }] }))).succeeded, true);
  }

  // Kept in the file: a restarted member lists both and still refuses.
  await c.restart(follower.id, 'process');
  const follower2 = c.nodes.get(follower.id)!.member!;
  await c.run(c.now + 300);
  assert.deepEqual((await c.until(follower2.alarmList())).alarms, both);
  await assert.rejects(c.until(follower2.put({ key: 'b', value: '2' })), refusedAs('ERR_CORRUPT_CLUSTER'));

  // DEACTIVATE of member 0's NOSPACE clears that pair only (not every alarm).
  assert.deepEqual((await c.until(follower2.alarmDisarm(nospace0))).alarms, [nospace0]);
  assert.deepEqual((await c.until(follower2.alarmDisarm(nospace0))).alarms, [], 'not raised any more');
  await c.run(c.now + 300);
  for (const m of c.members()) assert.deepEqual((await c.until(m.alarmList())).alarms, [corrupt], `member ${m.id}`);

  // With CORRUPT cleared, writes go through again everywhere.
  assert.deepEqual((await c.until(leader.alarmDisarm(corrupt))).alarms, [corrupt]);
  await c.until(follower2.put({ key: 'b', value: '2' }));
  await c.run(c.now + 300);
  for (const m of c.members()) assert.equal((await c.until(m.get('b'))).count, 1, `member ${m.id}`);
  await assert.rejects(
    c.until(leader.alarmActivate({ memberId: -1n, alarm: 'NOSPACE' })),
    refusedAs('ERR_INVALID_ARGUMENT'),
  );
  await c.closeAll();
});
