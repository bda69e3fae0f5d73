// The member over a deterministic simulated network: writes through any member are answered and
// replicated, reads are linearizable through ReadIndex or served locally when serializable, a
// restart applies nothing twice, learners refuse what etcd refuses, and promotion waits for the
// learner to catch up.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SimCluster, path } from './sim/cluster.ts';
import { open } from '../../src/bolt/index.ts';
import { isBoltkvError } from '../../src/errors.ts';

const dec = (b: Uint8Array | undefined): string | undefined =>
  b === undefined ? undefined : Buffer.from(b).toString();

test('three members elect a leader; writes through any member are answered and replicated', async () => {
  const c = new SimCluster(1, [1, 2, 3]);
  for (const id of [1, 2, 3]) await c.start(id);
  const leader = await c.waitLeader();
  const follower = c.members().find((m) => m.id !== leader.id)!;
  const r1 = await c.until(leader.put({ key: 'a', value: '1' }));
  assert.equal(r1.header.memberId, BigInt(leader.id));
  const r2 = await c.until(follower.put({ key: 'b', value: '2', prevKv: true }));
  assert.equal(r2.header.revision, 3);
  const got = await c.until(follower.range({ key: 'a' }));
  assert.equal(dec(got.kvs[0]?.value), '1');
  await c.run(c.now + 200);
  for (const m of c.members()) {
    const r = await m.range({ key: 'a', rangeEnd: 'z', serializable: true });
    assert.deepEqual(
      r.kvs.map((kv) => dec(kv.key)),
      ['a', 'b'],
      `member ${m.id}`,
    );
    assert.equal(r.header.revision, 3);
  }
  const ci = c.members().map((m) => m.consistentIndex());
  assert.ok(
    ci.every((x) => x === ci[0]),
    `consistent indexes ${ci}`,
  );
  await c.closeAll();
});

test('a follower serves batched linearizable reads and read-only txns while writes go through it', async () => {
  const c = new SimCluster(14, [1, 2, 3]);
  for (const id of [1, 2, 3]) await c.start(id);
  const leader = await c.waitLeader();
  const follower = c.members().find((m) => m.id !== leader.id)!;
  await c.until(leader.put({ key: 'q', value: '1' }));
  await c.run(c.now + 300);
  for (let round = 0; round < 30; round++) {
    // the first read starts a round; the others queue behind it and go out when its answer arrives,
    // while writes keep appending on the follower (Readies that must be synced)
    const ops: Promise<unknown>[] = [leader.put({ key: 'q', value: `${round}` })];
    for (let i = 0; i < 4; i++) {
      ops.push(follower.range({ key: 'q' }), follower.txn({ success: [{ requestRange: { key: 'q' } }] }));
      ops.push(follower.put({ key: `f${i}`, value: `${round}` }));
    }
    await c.until(Promise.all(ops));
    assert.equal(follower.failed, undefined, `round ${round}: ${String(follower.failed)}`);
  }
  await c.closeAll();
});

test('read-only txns are served through the read barrier (or locally when serializable), never logged', async () => {
  const c = new SimCluster(11, [1, 2, 3]);
  for (const id of [1, 2, 3]) await c.start(id);
  const leader = await c.waitLeader();
  const follower = c.members().find((m) => m.id !== leader.id)!;
  await c.until(leader.put({ key: 'a', value: '1' }));
  await c.run(c.now + 200);
  const logged = follower.raftStatus().lastIndex;
  await c.until(leader.put({ key: 'a', value: '2' }));
  const readTxn = {
    compare: [{ key: 'a', target: 'VALUE' as const, result: 'EQUAL' as const, value: '2' }],
    success: [{ requestRange: { key: 'a' } }, { requestTxn: { success: [{ requestRange: { key: 'b' } }] } }],
    failure: [{ requestRange: { key: 'z' } }],
  };
  // linearizable: the follower waits for the leader's commit index, so it sees the write just made
  const t = await c.until(follower.txn(readTxn));
  assert.equal(t.succeeded, true);
  const first = t.responses[0];
  assert.ok(first !== undefined && 'responseRange' in first);
  assert.equal(dec(first.responseRange.kvs[0]?.value), '2');
  assert.equal(t.header.revision, 3);
  assert.equal(t.header.memberId, BigInt(follower.id));
  assert.equal(follower.raftStatus().lastIndex, logged + 1, 'the read-only txn added no log entry');
  // cut off from the leader, a linearizable read-only txn cannot be served; a serializable one is
  c.isolate(follower.id);
  await c.run(c.now + 2000);
  const ser = await follower.txn({ success: [{ requestRange: { key: 'a', serializable: true } }] });
  const r0 = ser.responses[0];
  assert.ok(r0 !== undefined && 'responseRange' in r0);
  assert.equal(dec(r0.responseRange.kvs[0]?.value), '2');
  await assert.rejects(
    c.until(follower.txn(readTxn), 10_000),
    (e: unknown) => isBoltkvError(e, 'ERR_TIMEOUT') || isBoltkvError(e, 'ERR_NO_LEADER'),
  );
  c.heal();
  // a txn that writes in either branch still goes through the log
  const l = await c.waitLeader();
  const w = await c.until(
    l.txn({
      compare: [{ key: 'a', target: 'VALUE', result: 'EQUAL', value: 'x' }],
      success: [{ requestRange: { key: 'a' } }],
      failure: [{ requestPut: { key: 'b', value: '3' } }],
    }),
  );
  assert.equal(w.succeeded, false);
  assert.equal(w.header.revision, 4);
  await c.closeAll();
});

test('members publish their name and client URLs through the log; a learner too, once it knows a leader', async () => {
  const c = new SimCluster(12, [1, 2, 3]);
  c.memberOptionsFor = (id) => ({
    name: `n${id}`,
    clientURLs: [`http://127.0.0.${id}:2379`, `http://[::1]:${2370 + id}`],
  });
  for (const id of [1, 2, 3]) await c.start(id);
  const leader = await c.waitLeader();
  await c.run(c.now + 1000);
  for (const m of c.members()) {
    const list = m.memberList();
    assert.deepEqual(
      list.map((x) => [x.id, x.name, x.clientURLs]),
      [1, 2, 3].map((id) => [id, `n${id}`, [`http://127.0.0.${id}:2379`, `http://[::1]:${2370 + id}`]]),
      `member ${m.id}`,
    );
  }
  // a learner added with two peer URLs and no name: the member list fills in once it runs
  const { member } = await c.until(leader.memberAdd({ peerURLs: ['sim://m4', 'sim://m4b'], isLearner: true, id: 4 }));
  assert.deepEqual([member.name, member.clientURLs, member.peerURLs], ['', [], ['sim://m4', 'sim://m4b']]);
  c.addNode(4);
  await c.start(4);
  await c.run(c.now + 2000);
  const l4 = leader.memberList().find((x) => x.id === 4);
  assert.deepEqual(
    [l4?.name, l4?.clientURLs, l4?.peerURLs, l4?.isLearner],
    ['n4', ['http://127.0.0.4:2379', 'http://[::1]:2374'], ['sim://m4', 'sim://m4b'], true],
  );
  // an update of the peer URLs keeps the published attributes
  await c.until(leader.memberUpdate(4, ['sim://m4c']));
  const after = leader.memberList().find((x) => x.id === 4);
  assert.deepEqual([after?.name, after?.peerURLs, after?.clientURLs.length], ['n4', ['sim://m4c'], 2]);
  // and the attributes survive a restart (they are in the members bucket)
  await c.closeAll();
  for (const id of [1, 2, 3]) await c.restart(id, 'process');
  const again = c.nodes.get(2)!.member!.memberList();
  assert.deepEqual(
    again.map((x) => x.name),
    ['n1', 'n2', 'n3', 'n4'],
  );
  await c.closeAll();
});

test("--quota-backend-bytes on a member: writes past it are refused with etcd's error and raise NOSPACE until disarmed", async () => {
  const c = new SimCluster(13, [1, 2, 3]);
  c.memberOptions = { quotaBackendBytes: 256 * 1024 };
  for (const id of [1, 2, 3]) await c.start(id);
  const leader = await c.waitLeader();
  const value = 'x'.repeat(16 * 1024);
  let refused: unknown;
  for (let i = 0; i < 100 && refused === undefined; i++) {
    try {
      await c.until(leader.put({ key: `big${i}`, value }));
    } catch (e) {
      refused = e;
    }
  }
  assert.ok(
    isBoltkvError(refused, 'ERR_NO_SPACE') &&
      (refused as Error).message === 'etcdserver: mvcc: database space exceeded',
    String(refused),
  );
  assert.ok(leader.memberStatus().dbSize >= 200 * 1024, `db size ${leader.memberStatus().dbSize}`);
  const alarms = await c.until(leader.alarmList());
  assert.deepEqual(alarms.alarms, [{ memberId: BigInt(leader.id), alarm: 'NOSPACE' }]);
  assert.match((await leader.status()).errors[0] ?? '', /alarm:NOSPACE/);
  // with the alarm raised even a tiny write is refused; deletes and reads go on
  await assert.rejects(leader.put({ key: 'tiny', value: '1' }), (e: unknown) => isBoltkvError(e, 'ERR_NO_SPACE'));
  await assert.rejects(leader.leaseGrant({ TTL: 10 }), (e: unknown) => isBoltkvError(e, 'ERR_NO_SPACE'));
  await c.until(leader.delete('big', { prefix: true }));
  const r = await c.until(leader.get('big', { prefix: true }));
  assert.equal(r.count, 0);
  assert.equal((await c.until(leader.alarmDisarm())).alarms.length, 1);
  assert.deepEqual((await c.until(leader.alarmList())).alarms, []);
  await c.closeAll();
});

test("NOSPACE is replicated: raised by one member's quota it shows on all, blocks writes through any member, survives a restart, and is disarmed through another", async () => {
  const c = new SimCluster(17, [1, 2, 3]);
  // the tiny quota is member 3's, a follower: the others keep etcd's default
  c.memberOptionsFor = (id) => (id === 3 ? { quotaBackendBytes: 256 * 1024 } : {});
  for (const id of [1, 2, 3]) await c.start(id);
  let leader = await c.waitLeader();
  if (leader.id === 3) {
    await c.until(leader.transferLeadership(1));
    leader = await c.waitLeader();
  }
  assert.notEqual(leader.id, 3);
  const tiny = c.nodes.get(3)!.member!;
  const other = c.members().find((m) => m.id !== leader.id && m.id !== 3)!;
  const value = 'x'.repeat(16 * 1024);
  // writes through the leader fit its quota and grow every member's file
  for (let i = 0; i < 20; i++) await c.until(leader.put({ key: `big${i}`, value }));
  await c.run(c.now + 200);
  assert.ok(tiny.memberStatus().dbSize >= 256 * 1024, `db size ${tiny.memberStatus().dbSize}`);
  await assert.rejects(c.until(tiny.put({ key: 'one-more', value })), (e: unknown) => isBoltkvError(e, 'ERR_NO_SPACE'));
  await c.run(c.now + 300);
  const want = [{ memberId: BigInt(tiny.id), alarm: 'NOSPACE' }];
  for (const m of [leader, tiny, other]) {
    assert.deepEqual((await c.until(m.alarmList())).alarms, want, `alarms on member ${m.id}`);
    assert.deepEqual(
      (await m.status()).errors,
      [`memberID:${tiny.id} alarm:NOSPACE `],
      `status errors on member ${m.id}`,
    );
  }
  // cluster-wide: the leader's own quota is far away, yet writes that add data are refused
  await assert.rejects(c.until(leader.put({ key: 'tiny', value: '1' })), (e: unknown) =>
    isBoltkvError(e, 'ERR_NO_SPACE'),
  );
  await assert.rejects(c.until(other.txn({ success: [{ requestPut: { key: 't', value: '1' } }] })), (e: unknown) =>
    isBoltkvError(e, 'ERR_NO_SPACE'),
  );
  await assert.rejects(c.until(other.leaseGrant({ TTL: 10 })), (e: unknown) => isBoltkvError(e, 'ERR_NO_SPACE'));
  // reads, deletes and compaction go on
  await c.until(other.delete('big1'));
  assert.equal((await c.until(leader.get('big', { prefix: true }))).count, 19);
  // the alarm is in every member's file: a restart keeps it
  await c.restart(other.id, 'process');
  const other2 = c.nodes.get(other.id)!.member!;
  await c.run(c.now + 300);
  assert.deepEqual((await c.until(other2.alarmList())).alarms, want);
  // disarmed through a member that did not raise it, it clears everywhere
  const cleared = await c.until(other2.alarmDisarm());
  assert.deepEqual(cleared.alarms, want);
  await c.run(c.now + 300);
  for (const m of c.members()) assert.deepEqual((await c.until(m.alarmList())).alarms, [], `member ${m.id}`);
  await c.until(leader.put({ key: 'after', value: '1' }));
  // the tiny member's file is still past its quota: its next write raises the alarm again
  await assert.rejects(c.until(tiny.put({ key: 'again', value: '1' })), (e: unknown) =>
    isBoltkvError(e, 'ERR_NO_SPACE'),
  );
  await c.run(c.now + 300);
  assert.deepEqual((await c.until(leader.alarmList())).alarms, want);
  await c.closeAll();
});

test('restarting every member applies nothing twice and keeps the data', async () => {
  const c = new SimCluster(2, [1, 2, 3]);
  for (const id of [1, 2, 3]) await c.start(id);
  const leader = await c.waitLeader();
  for (let i = 0; i < 20; i++) await c.until(leader.put({ key: `k${i % 5}`, value: `v${i}` }));
  await c.run(c.now + 200);
  const before = c.members().map((m) => m.consistentIndex());
  await c.closeAll();
  for (const id of [1, 2, 3]) await c.restart(id, 'process');
  const l2 = await c.waitLeader();
  const r = await c.until(l2.range({ key: 'k', rangeEnd: 'l' }));
  assert.equal(r.header.revision, 21, 'each put applied exactly once');
  assert.deepEqual(
    r.kvs.map((kv) => dec(kv.value)),
    ['v15', 'v16', 'v17', 'v18', 'v19'],
  );
  for (const [i, m] of c.members().entries()) assert.ok(m.consistentIndex() >= before[i]!);
  await c.closeAll();
});

test('a learner joins by snapshot, refuses non-serializable requests, and is promoted once caught up', async () => {
  const c = new SimCluster(3, [1, 2, 3]);
  c.memberOptions = { snapshotCount: 20, catchUpEntries: 5 };
  for (const id of [1, 2, 3]) await c.start(id);
  const leader = await c.waitLeader();
  for (let i = 0; i < 60; i++) await c.until(leader.put({ key: `k${i}`, value: `v${i}` }));
  const { members } = await c.until(leader.memberAdd({ peerURLs: ['sim://m4'], isLearner: true, id: 4 }));
  assert.ok(members.some((m) => m.id === 4 && m.isLearner));
  c.addNode(4);
  // promotion before it has caught up is refused with etcd's error
  await assert.rejects(
    leader.memberPromote(4),
    (e: unknown) => isBoltkvError(e, 'ERR_LEARNER_NOT_READY') && /in sync with leader/.test((e as Error).message),
  );
  await c.start(4);
  await c.run(c.now + 1000);
  assert.ok(c.snapshotsSent >= 1, 'the learner was caught up by a snapshot');
  const learner = c.nodes.get(4)!.member!;
  assert.equal(learner.isLearner, true);
  const r = await learner.range({ key: 'k', rangeEnd: 'l', serializable: true });
  assert.equal(r.count, 60);
  await assert.rejects(
    learner.range({ key: 'k' }),
    (e: unknown) =>
      isBoltkvError(e, 'ERR_LEARNER_NOT_SUPPORTED') &&
      (e as Error).message === 'etcdserver: rpc not supported for learner',
  );
  await assert.rejects(learner.put({ key: 'x' }), (e: unknown) => isBoltkvError(e, 'ERR_LEARNER_NOT_SUPPORTED'));
  assert.throws(
    () => learner.watch({ key: 'k' }),
    (e: unknown) => isBoltkvError(e, 'ERR_LEARNER_NOT_SUPPORTED'),
  );
  await assert.rejects(learner.leaseGrant({ TTL: 10 }), (e: unknown) => isBoltkvError(e, 'ERR_LEARNER_NOT_SUPPORTED'));
  await assert.rejects(
    learner.leaseKeepAlive({ ID: 1n }),
    (e: unknown) =>
      isBoltkvError(e, 'ERR_LEARNER_NOT_SUPPORTED') &&
      (e as Error).message === 'etcdserver: rpc not supported for learner',
  );
  await assert.rejects(learner.txn({ success: [{ requestRange: { key: 'k', serializable: true } }] }), (e: unknown) =>
    isBoltkvError(e, 'ERR_LEARNER_NOT_SUPPORTED'),
  );
  await assert.rejects(learner.memberAdd({ peerURLs: ['sim://x'] }), (e: unknown) =>
    isBoltkvError(e, 'ERR_LEARNER_NOT_SUPPORTED'),
  );
  assert.equal((await learner.status()).isLearner, true);
  assert.equal(learner.memberStatus().isLearner, true);
  const l = c.leader()!;
  await assert.rejects(
    c
      .members()
      .find((m) => m !== l && m.id !== 4)!
      .memberPromote(4),
    (e: unknown) => isBoltkvError(e, 'ERR_NOT_LEADER'),
  );
  const after = await c.until(l.memberPromote(4));
  assert.ok(after.some((m) => m.id === 4 && !m.isLearner));
  await c.run(c.now + 200);
  assert.equal(learner.isLearner, false);
  const w = await c.until(learner.put({ key: 'from4', value: 'x' }));
  assert.ok(w.header.revision > 60);
  await assert.rejects(l.memberPromote(4), (e: unknown) => isBoltkvError(e, 'ERR_MEMBER_NOT_LEARNER'));
  // every file is a sound bolt file
  await c.closeAll();
  for (const n of c.nodes.values()) {
    const db = open(path(n.id), { fileSystem: n.disk.fs });
    assert.deepEqual(db.check(), [], `member ${n.id}`);
    db.close();
  }
});

test("status reports etcd 3.4's raftIndex (the committed index, not the log's last) and raftAppliedIndex; no leader is an error", async () => {
  const c = new SimCluster(19, [1, 2, 3]);
  for (const id of [1, 2, 3]) await c.start(id);
  const leader = await c.waitLeader();
  for (let i = 0; i < 5; i++) await c.until(leader.put({ key: `s${i}`, value: 'v' }));
  await c.run(c.now + 200);
  const settled = await leader.status();
  const raft = leader.raftStatus();
  assert.equal(settled.raftIndex, raft.hardState.commit);
  assert.equal(settled.raftIndex, raft.lastIndex, 'settled: every entry committed');
  assert.equal(settled.raftAppliedIndex, settled.raftIndex);
  assert.deepEqual(settled.errors, []);
  // cut off from a quorum, the leader appends entries it cannot commit: raftIndex stays
  c.isolate(leader.id);
  const pending = leader.put({ key: 'uncommitted', value: 'v' }).catch((e: unknown) => e);
  await c.run(c.now + 30);
  const cut = leader.memberStatus();
  assert.ok(
    leader.raftStatus().lastIndex > cut.raftIndex,
    `last ${leader.raftStatus().lastIndex} committed ${cut.raftIndex}`,
  );
  assert.equal(cut.raftIndex, settled.raftIndex);
  assert.equal(cut.raftAppliedIndex, settled.raftAppliedIndex);
  // once it steps down (check quorum) it knows no leader, and says so as etcd does
  await c.run(c.now + 400);
  const alone = await leader.status();
  assert.equal(alone.leader, 0n);
  assert.deepEqual(alone.errors, ['etcdserver: no leader']);
  await c.until(pending);
  await c.closeAll();
});

test('cluster API: status, member update and remove, leader transfer, with etcd errors', async () => {
  const c = new SimCluster(4, [1, 2, 3]);
  for (const id of [1, 2, 3]) await c.start(id);
  const leader = await c.waitLeader();
  const st = await leader.status();
  assert.equal(st.leader, BigInt(leader.id));
  assert.equal(st.isLearner, false);
  assert.ok(st.raftIndex! >= 1 && st.raftTerm! >= 2 && st.dbSize > 0);
  assert.equal(st.version, '3.4.0+boltkv');
  const other = c.members().find((m) => m !== leader)!;
  // update through a follower: replicated to everyone
  const list = await c.until(other.memberUpdate(3, ['sim://m3-new']));
  assert.deepEqual(list.find((m) => m.id === 3)!.peerURLs, ['sim://m3-new']);
  await c.run(c.now + 100);
  for (const m of c.members()) assert.deepEqual(m.memberList().find((x) => x.id === 3)!.peerURLs, ['sim://m3-new']);
  await assert.rejects(
    leader.memberUpdate(99, ['x']),
    (e: unknown) => isBoltkvError(e, 'ERR_MEMBER_NOT_FOUND') && (e as Error).message === 'etcdserver: member not found',
  );
  await assert.rejects(leader.memberAdd({ peerURLs: ['sim://m1'] }), (e: unknown) =>
    isBoltkvError(e, 'ERR_MEMBER_EXISTS'),
  );
  await assert.rejects(other.transferLeadership(1), (e: unknown) => isBoltkvError(e, 'ERR_NOT_LEADER'));
  // transfer leadership to a follower
  const target = other.id;
  await c.until(leader.transferLeadership(target));
  await c.run(c.now + 50);
  assert.equal(c.leader()!.id, target);
  // remove a voter; it stops itself once it applies its removal
  const newLeader = c.leader()!;
  const victim = c.members().find((m) => m !== newLeader)!;
  const victimURLs = newLeader.memberList().find((m) => m.id === victim.id)!.peerURLs;
  const after = await c.until(newLeader.memberRemove(victim.id));
  assert.ok(!after.some((m) => m.id === victim.id));
  await c.run(c.now + 200);
  assert.equal(victim.isRemoved, true);
  assert.equal(victim.isClosed, true);
  await assert.rejects(newLeader.memberRemove(victim.id), (e: unknown) => isBoltkvError(e, 'ERR_MEMBER_NOT_FOUND'));
  await assert.rejects(newLeader.memberAdd({ peerURLs: ['sim://again'], id: victim.id }), (e: unknown) =>
    isBoltkvError(e, 'ERR_MEMBER_EXISTS'),
  );
  // the two remaining voters still commit
  await c.until(newLeader.put({ key: 'after-remove', value: '1' }));
  await assert.rejects(victim.put({ key: 'x' }), (e: unknown) => isBoltkvError(e, 'ERR_CLOSED'));
  // etcd mixes the time into an added member's id: the removed member's exact URLs come back under a new id
  await c.run(c.now + 1500);
  const again = await c.until(newLeader.memberAdd({ peerURLs: victimURLs, isLearner: true }));
  assert.notEqual(again.member.id, victim.id);
  assert.deepEqual(again.members.find((m) => m.id === again.member.id)?.peerURLs, victimURLs);
  // the same URLs twice are still refused, as etcd does
  await assert.rejects(newLeader.memberAdd({ peerURLs: victimURLs }), (e: unknown) =>
    isBoltkvError(e, 'ERR_MEMBER_EXISTS'),
  );
  await c.closeAll();
});

test('leases: the leader expires them through the log; a new leader gives them their full TTL again', async () => {
  const c = new SimCluster(5, [1, 2, 3]);
  for (const id of [1, 2, 3]) await c.start(id);
  const leader = await c.waitLeader();
  const g = await c.until(leader.leaseGrant({ TTL: 5 }));
  assert.ok(g.ID > 0n);
  await c.until(leader.put({ key: 'leased', value: 'v', lease: g.ID }));
  // a keep-alive through a follower reaches the leader (as a proposal) and is answered with the lease's TTL
  await c.run(c.now + 3000);
  const follower = c.members().find((m) => m !== leader)!;
  const ka = await c.until(follower.leaseKeepAlive({ ID: g.ID }));
  assert.equal(ka.ID, g.ID);
  assert.equal(ka.TTL, 5);
  assert.equal(ka.header.memberId, BigInt(follower.id));
  const missing = await c.until(follower.leaseKeepAlive({ ID: 424242n }));
  assert.equal(missing.TTL, 0, 'etcd answers a keep-alive of an unknown lease with TTL 0');
  await c.run(c.now + 3000);
  let r = await c.until(follower.range({ key: 'leased' }));
  assert.equal(r.count, 1, 'renewed through a follower: still alive 6 s after grant');
  await c.until(leader.leaseKeepAlive({ ID: g.ID }));
  // leader change at ~4.9 s after the last renewal... the new leader restarts the clock
  await c.run(c.now + 1500);
  await c.until(leader.transferLeadership(follower.id));
  await c.run(c.now + 1000);
  r = await c.until(follower.range({ key: 'leased' }));
  assert.equal(r.count, 1, 'a new leader gives the lease its full TTL again');
  const ttl = await c.until(follower.leaseTimeToLive({ ID: g.ID }));
  assert.ok(ttl.TTL >= 3 && ttl.TTL <= 5, `TTL ${ttl.TTL}`);
  await c.run(c.now + 5000);
  for (const m of c.members()) {
    const rr = await m.range({ key: 'leased', serializable: true });
    assert.equal(rr.count, 0, `member ${m.id}: lease expired and its key deleted everywhere`);
  }
  const left = await c.until(follower.leaseTimeToLive({ ID: g.ID }));
  assert.equal(left.TTL, -1);
  await c.closeAll();
});

test('a watch on a member sees every revision, also across a snapshot install', async () => {
  const c = new SimCluster(6, [1, 2, 3]);
  c.memberOptions = { snapshotCount: 10, catchUpEntries: 2 };
  for (const id of [1, 2, 3]) await c.start(id);
  const leader = await c.waitLeader();
  const lagging = c.members().find((m) => m !== leader)!;
  const seen: number[] = [];
  const w = lagging.watch({ key: 'w', rangeEnd: 'x' });
  const collect = (async () => {
    for await (const resp of w) for (const ev of resp.events) seen.push(ev.kv.modRevision);
  })();
  c.isolate(lagging.id);
  for (let i = 0; i < 30; i++) await c.until(leader.put({ key: `w${i}`, value: `${i}` }));
  const before = c.snapshotsSent;
  c.heal();
  await c.run(c.now + 1000);
  assert.ok(c.snapshotsSent > before, 'the lagging member was sent a snapshot');
  const r = await lagging.range({ key: 'w', rangeEnd: 'x', serializable: true });
  assert.equal(r.count, 30);
  await c.run(c.now + 200);
  assert.deepEqual(
    seen,
    Array.from({ length: 30 }, (_, i) => i + 2),
  );
  w.cancel();
  await collect;
  await c.closeAll();
});
