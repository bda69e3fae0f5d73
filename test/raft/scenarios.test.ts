/**
 * Scenario tests named after the rules of the raft paper (Ongaro & Ousterhout) and etcd's learner
 * rules, each driven step by step through the deterministic cluster (no ticks unless stated, so no
 * election happens by accident).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Cluster } from './cluster.ts';
import { checkLearnerPromotion, isRaftError } from '../../src/raft/index.ts';

function state(c: Cluster, id: number): string {
  return c.status(id)!.softState.raftState;
}
function term(c: Cluster, id: number): number {
  return c.status(id)!.hardState.term;
}
function commit(c: Cluster, id: number): number {
  return c.status(id)!.hardState.commit;
}
function payloads(c: Cluster, id: number): string[] {
  // Client payloads: non-empty normal entries other than the bootstrap marker.
  return c
    .node(id)
    .sm.map((k) => k.split('/'))
    .filter((p) => p[1] === 'normal' && p[2] !== '' && p[2] !== 'boot')
    .map((p) => p.slice(2).join('/'));
}
function storedKeys(c: Cluster, id: number): string[] {
  const st = c.node(id).storage;
  return st
    .entries(st.firstIndex(), st.lastIndex() + 1, Number.MAX_SAFE_INTEGER)
    .map((e) => `${e.index}:${e.term}:${new TextDecoder().decode(e.data)}`);
}

describe('raft paper: leader election', () => {
  test('election safety: a candidate without a majority of voters never becomes leader', () => {
    const c = new Cluster({ voters: [1, 2, 3, 4, 5] });
    c.isolate(1);
    c.group.set(2, 1000 + 1); // 1 and 2 together, 3 4 5 elsewhere
    c.elect(1);
    assert.equal(state(c, 1), 'candidate');
    assert.equal(c.leader(), undefined);
    c.elect(3);
    assert.equal(c.leader(), 3);
    c.checkInvariants();
  });

  test('election restriction: a voter denies its vote to a candidate with a less up-to-date log', () => {
    const c = new Cluster({ voters: [1, 2, 3] });
    c.elect(1);
    c.isolate(3);
    c.propose(1, 'p1');
    c.stabilize();
    assert.deepEqual(payloads(c, 2), ['p1']);
    assert.deepEqual(payloads(c, 3), []);
    c.crash(1);
    c.heal();
    c.elect(3); // 3 lacks p1: 2 must refuse
    assert.notEqual(state(c, 3), 'leader');
    c.elect(2);
    assert.equal(c.leader(), 2);
    c.stabilize();
    assert.deepEqual(payloads(c, 3), ['p1'], 'the committed entry survives the leader change');
    c.checkInvariants();
  });

  test('a vote is granted to at most one candidate per term', () => {
    const c = new Cluster({ voters: [1, 2, 3] });
    c.node(1).raw!.campaign();
    c.process(1);
    c.node(3).raw!.campaign();
    c.process(3);
    // Node 2 sees 1's request first, then 3's for the same term.
    c.deliverWhere((m) => m.type === 'vote' && m.to === 2 && m.from === 1);
    c.deliverWhere((m) => m.type === 'vote' && m.to === 2 && m.from === 3);
    const resps = c.queue.filter((e) => e.m.type === 'voteResp' && e.m.from === 2).map((e) => e.m);
    assert.deepEqual(
      resps.map((m) => [m.to, m.reject]),
      [
        [1, false],
        [3, true],
      ],
    );
    c.stabilize();
    assert.equal(c.leader(), 1);
    c.checkInvariants();
  });
});

describe('raft paper: log replication', () => {
  test("log matching on conflict: a deposed leader's uncommitted suffix is replaced", () => {
    const c = new Cluster({ voters: [1, 2, 3] });
    c.elect(1);
    c.isolate(1);
    c.propose(1, 'lost1');
    c.propose(1, 'lost2');
    c.stabilize();
    assert.equal(commit(c, 1), 2, 'isolated leader cannot commit');
    c.elect(2);
    c.propose(2, 'p1');
    c.stabilize();
    c.heal();
    // The new leader's heartbeat tells the old one about the newer term; it then repairs its log.
    c.tick(2);
    c.stabilize();
    assert.equal(state(c, 1), 'follower');
    assert.deepEqual(storedKeys(c, 1), storedKeys(c, 2));
    assert.deepEqual(payloads(c, 1), ['p1']);
    assert.ok(!storedKeys(c, 1).some((k) => k.includes('lost')));
    c.checkInvariants();
  });

  test('commitment of entries from earlier terms (figure 8): an old-term entry on a majority is not committed until a current-term entry is', () => {
    const c = new Cluster({ voters: [1, 2, 3], maxSizePerMsg: 1 });
    c.elect(1);
    c.isolate(1);
    c.propose(1, 'old'); // index 3, term 1, only on 1
    c.stabilize();
    c.heal();
    for (const id of [1, 2, 3]) c.crash(id);
    c.dropWhere(() => true);
    // Restart everyone and let 1 win term 2; its log has 'old' (term 1) then a term-2 noop.
    for (const id of [1, 2, 3]) c.restart(id);
    c.node(1).raw!.campaign();
    c.process(1);
    c.deliverWhere((m) => m.type === 'vote');
    c.deliverWhere((m) => m.type === 'voteResp');
    assert.equal(c.leader(), 1);
    assert.equal(term(c, 1), 2);
    // Replicate entry by entry to node 2 only; after 'old' is acknowledged it is on a majority
    // (1 and 2) but must not be committed yet.
    let sawOldOnly = false;
    for (let i = 0; i < 20; i++) {
      const delivered = c.deliverWhere((m) => m.to === 2 || (m.from === 2 && m.to === 1));
      c.dropWhere((m) => m.to === 3 || m.from === 3);
      const keys = storedKeys(c, 2);
      const hasOld = keys.some((k) => k.endsWith(':old'));
      const hasNoop = keys.some((k) => k.startsWith('4:2:'));
      if (hasOld && !hasNoop && c.queue.every((e) => !(e.m.type === 'appResp' && e.m.from === 2))) {
        sawOldOnly = true;
        assert.equal(commit(c, 1), 2, 'old-term entry committed by counting replicas');
      }
      if (delivered === 0) break;
    }
    assert.ok(sawOldOnly, 'the scenario never reached the state "old entry on a majority, noop not yet"');
    // Once the term-2 entry is on node 2 as well, both commit together.
    assert.equal(commit(c, 1), 4);
    c.checkInvariants();
  });
});

describe('raft extensions: pre-vote and check-quorum', () => {
  test('pre-vote prevents disruption: a partitioned node does not inflate the term', () => {
    for (const preVote of [true, false]) {
      const c = new Cluster({ voters: [1, 2, 3], preVote });
      c.elect(1);
      const t0 = term(c, 1);
      c.isolate(3);
      for (let i = 0; i < 30; i++) {
        c.tick(3);
        c.stabilize();
      }
      c.heal();
      c.tick(1);
      c.stabilize();
      for (let i = 0; i < 5; i++) c.runUntil(() => false, 1);
      if (preVote) {
        assert.equal(term(c, 3), t0, 'pre-vote: the isolated node kept its term');
        assert.equal(c.leader(), 1, 'pre-vote: the leader was not disrupted');
        assert.equal(term(c, 1), t0);
      } else {
        assert.ok(term(c, 3) > t0, 'without pre-vote the isolated node inflates its term');
        assert.ok(term(c, 1) > t0, 'without pre-vote rejoining forces a new term on the leader');
      }
      c.checkInvariants();
    }
  });

  test('check-quorum step down: a leader cut off from a majority becomes a follower', () => {
    for (const checkQuorum of [true, false]) {
      const c = new Cluster({ voters: [1, 2, 3], checkQuorum, electionTick: 3 });
      c.elect(1);
      c.isolate(1);
      for (let i = 0; i < 10; i++) c.tick(1);
      if (checkQuorum) assert.notEqual(state(c, 1), 'leader');
      else assert.equal(state(c, 1), 'leader');
    }
  });

  test('check-quorum lease: followers ignore a vote request while they hear from a leader', () => {
    const c = new Cluster({ voters: [1, 2, 3], checkQuorum: true });
    c.elect(1);
    const t0 = term(c, 1);
    c.node(3).raw!.campaign(); // forced campaign without a reason
    c.process(3);
    c.stabilize();
    assert.equal(c.leader(), 1);
    assert.equal(term(c, 1), t0);
    assert.equal(term(c, 2), t0);
  });
});

describe('raft: leader transfer and ReadIndex', () => {
  test('leader transfer hands leadership to an up-to-date voter via timeoutNow', () => {
    const c = new Cluster({ voters: [1, 2, 3], preVote: true, checkQuorum: true });
    c.elect(1);
    c.propose(1, 'p1');
    c.stabilize();
    c.transferLeader(1, 3);
    assert.ok(c.queue.some((e) => e.m.type === 'timeoutNow' && e.m.to === 3));
    c.stabilize();
    assert.equal(c.leader(), 3);
    assert.deepEqual(payloads(c, 3), ['p1']);
    c.checkInvariants();
  });

  test('proposals are refused while a transfer is in progress', () => {
    const c = new Cluster({ voters: [1, 2, 3] });
    c.elect(1);
    c.isolate(3);
    c.propose(1, 'p1');
    c.stabilize();
    c.transferLeader(1, 3); // 3 lags: the leader first catches it up
    assert.equal(c.propose(1, 'p2'), undefined);
    c.heal();
    c.tick(1);
    c.stabilize();
    assert.equal(c.leader(), 3);
  });

  test('ReadIndex (safe): served after a heartbeat quorum, at an index covering committed writes', () => {
    const c = new Cluster({ voters: [1, 2, 3] });
    c.elect(1);
    c.propose(1, 'p1');
    c.stabilize();
    const r = c.read(2)!;
    assert.equal(r.index, undefined);
    c.stabilize();
    assert.equal(r.index, commit(c, 1));
    assert.equal(c.readsServed, 1);
  });

  test('ReadIndex (safe): an isolated stale leader cannot confirm a read', () => {
    const c = new Cluster({ voters: [1, 2, 3] });
    c.elect(1);
    c.isolate(1);
    const r = c.read(1)!;
    c.stabilize();
    c.elect(2);
    c.propose(2, 'newer');
    c.stabilize();
    assert.equal(r.index, undefined, 'a leader without a quorum must not answer');
  });

  test('ReadIndex waits until the new leader commits an entry of its own term', () => {
    const c = new Cluster({ voters: [1, 2, 3] });
    c.elect(1);
    c.propose(1, 'p1');
    c.stabilize();
    c.node(2).raw!.campaign();
    c.process(2);
    c.deliverWhere((m) => m.type === 'vote');
    c.deliverWhere((m) => m.type === 'voteResp');
    assert.equal(c.leader(), 2);
    const noop = c.status(2)!.lastIndex; // the new leader's first entry of its own term
    const r = c.read(2)!;
    c.deliverWhere((m) => m.type === 'heartbeat' || m.type === 'heartbeatResp');
    assert.equal(r.index, undefined, 'no answer before the term-2 entry commits');
    c.stabilize();
    assert.ok(
      r.index !== undefined && r.index >= noop,
      `read index ${r.index} must cover the term-${term(c, 2)} entry ${noop}`,
    );
  });
});

describe('raft: snapshots, flow control and restart', () => {
  test('a lagging follower gets a snapshot, then entries', () => {
    const c = new Cluster({ voters: [1, 2, 3], snapshotEvery: 3 });
    c.elect(1);
    c.crash(3);
    for (let i = 1; i <= 12; i++) c.propose(1, `p${i}`);
    c.stabilize();
    assert.ok(c.node(1).storage.firstIndex() > 3, 'leader compacted its log');
    c.restart(3);
    c.tick(1);
    c.stabilize();
    assert.ok(c.snapshotsDelivered >= 1);
    c.propose(1, 'after');
    c.stabilize();
    assert.deepEqual(payloads(c, 3), [...Array.from({ length: 12 }, (_, i) => `p${i + 1}`), 'after']);
    c.checkInvariants();
  });

  test('maxInflightMsgs bounds appends in flight; maxSizePerMsg bounds each append', () => {
    const c = new Cluster({ voters: [1, 2], maxInflightMsgs: 3, maxSizePerMsg: 100 });
    c.elect(1);
    for (let i = 0; i < 40; i++) c.propose(1, `p${i}-${'x'.repeat(20)}`);
    const apps = c.queue.filter((e) => e.m.type === 'app' && e.m.to === 2 && e.m.entries.length > 0).map((e) => e.m);
    assert.equal(apps.length, 3, 'exactly maxInflightMsgs appends with entries are in flight');
    for (const m of apps) {
      const size = m.entries.reduce((s, e) => s + e.data.length + 24, 0);
      assert.ok(m.entries.length === 1 || size <= 100, `append of ${size} bytes`);
    }
    const st = c.status(1)!.progress!.get(2)!;
    assert.equal(st.state, 'replicate');
    assert.equal(st.paused, true);
    c.stabilize();
    assert.equal(payloads(c, 2).length, 40);
  });

  test('reportUnreachable drops a replicating follower back to probe', () => {
    const c = new Cluster({ voters: [1, 2, 3] });
    c.elect(1);
    assert.equal(c.status(1)!.progress!.get(2)!.state, 'replicate');
    c.node(1).raw!.reportUnreachable(2);
    assert.equal(c.status(1)!.progress!.get(2)!.state, 'probe');
  });

  test('restart from storage recovers term, vote, commit and the applied state', () => {
    const c = new Cluster({ voters: [1, 2, 3] });
    c.elect(1);
    for (let i = 1; i <= 5; i++) c.propose(1, `p${i}`);
    c.stabilize();
    c.tick(1);
    c.stabilize();
    const before = c.status(2)!.hardState;
    for (const id of [1, 2, 3]) c.crash(id);
    for (const id of [1, 2, 3]) c.restart(id);
    assert.deepEqual(c.status(2)!.hardState, before);
    assert.deepEqual(payloads(c, 2), ['p1', 'p2', 'p3', 'p4', 'p5']);
    c.elect(2);
    c.propose(2, 'p6');
    c.stabilize();
    assert.deepEqual(payloads(c, 1), ['p1', 'p2', 'p3', 'p4', 'p5', 'p6']);
    c.checkInvariants();
  });
});

describe('etcd learner rules', () => {
  test('a learner receives and applies the log', () => {
    const c = new Cluster({ voters: [1, 2, 3], learners: [4] });
    c.elect(1);
    c.propose(1, 'p1');
    c.stabilize();
    c.tick(1);
    c.stabilize();
    assert.deepEqual(payloads(c, 4), ['p1']);
  });

  test('a learner never campaigns: not on timeout, not on campaign(), not on timeoutNow', () => {
    const c = new Cluster({ voters: [1, 2], learners: [3] });
    c.elect(1);
    c.crash(1);
    for (let i = 0; i < 50; i++) c.tick(3);
    c.node(3).raw!.campaign();
    c.process(3);
    c.node(3).raw!.step({
      type: 'timeoutNow',
      from: 1,
      to: 3,
      term: term(c, 3),
      logTerm: 0,
      index: 0,
      entries: [],
      commit: 0,
      reject: false,
      rejectHint: 0,
    });
    c.process(3);
    assert.equal(state(c, 3), 'follower');
    assert.ok(!c.queue.some((e) => e.m.from === 3 && (e.m.type === 'vote' || e.m.type === 'preVote')));
  });

  test("a learner's vote is never counted", () => {
    const c = new Cluster({ voters: [1, 2, 3], learners: [4] });
    c.elect(1);
    c.crash(1);
    c.crash(3);
    // 2 campaigns; only the learner 4 is around to answer. It answers, but 2 must not win.
    c.node(2).raw!.campaign();
    c.process(2);
    c.queue.push({
      m: {
        type: 'vote',
        from: 2,
        to: 4,
        term: term(c, 2),
        logTerm: c.status(2)!.hardState.term,
        index: c.status(2)!.lastIndex,
        entries: [],
        commit: 0,
        reject: false,
        rejectHint: 0,
      },
    });
    c.stabilize();
    assert.ok(c.grants.get(term(c, 2))?.get(2)?.has(4), 'the learner did answer with a grant');
    assert.notEqual(state(c, 2), 'leader');
  });

  test('learners never count toward the commit quorum', () => {
    const c = new Cluster({ voters: [1, 2, 3], learners: [4, 5] });
    c.elect(1);
    const base = commit(c, 1);
    c.crash(2);
    c.crash(3);
    c.propose(1, 'p1');
    c.stabilize();
    assert.equal(c.status(1)!.progress!.get(4)!.match, c.status(1)!.lastIndex, 'learners hold the entry');
    assert.equal(commit(c, 1), base, 'but leader + 2 learners is not a quorum of 3 voters');
    c.restart(2);
    c.tick(1);
    c.stabilize();
    assert.ok(commit(c, 1) > base);
  });

  test("learners' heartbeat acknowledgements do not confirm a ReadIndex", () => {
    const c = new Cluster({ voters: [1, 2, 3], learners: [4, 5] });
    c.elect(1);
    c.crash(2);
    c.crash(3);
    const r = c.read(1)!;
    c.stabilize();
    assert.equal(r.index, undefined);
  });

  test('leadership is never transferred to a learner', () => {
    const c = new Cluster({ voters: [1, 2], learners: [3] });
    c.elect(1);
    c.transferLeader(1, 3);
    assert.equal(c.status(1)!.leadTransferee, 0);
    assert.ok(!c.queue.some((e) => e.m.type === 'timeoutNow'));
    c.stabilize();
    assert.equal(c.leader(), 1);
  });

  test('adding a learner, then promoting it, makes it a voter that counts', () => {
    const c = new Cluster({ voters: [1, 2, 3], spares: [4], snapshotEvery: 4 });
    c.elect(1);
    for (let i = 1; i <= 6; i++) c.propose(1, `p${i}`);
    c.stabilize();
    assert.ok(c.proposeConfChange(1, { type: 'addLearnerNode', nodeId: 4 }));
    c.stabilize();
    c.tick(1);
    c.stabilize();
    assert.deepEqual(c.status(1)!.config, { voters: [1, 2, 3], learners: [4] });
    assert.deepEqual(payloads(c, 4).slice(0, 6), ['p1', 'p2', 'p3', 'p4', 'p5', 'p6']);
    assert.equal(checkLearnerPromotion(c.status(1)!, 4).ok, true);
    assert.ok(c.proposeConfChange(1, { type: 'addNode', nodeId: 4 }));
    c.stabilize();
    assert.deepEqual(c.status(1)!.config, { voters: [1, 2, 3, 4], learners: [] });
    // Now 4 voters: quorum is 3. With 2 and 3 down, 1 and 4 cannot commit; with 3 down they can.
    c.crash(2);
    c.crash(3);
    const base = commit(c, 1);
    c.propose(1, 'x');
    c.stabilize();
    assert.equal(commit(c, 1), base);
    c.restart(2);
    c.tick(1);
    c.stabilize();
    assert.ok(commit(c, 1) > base);
    c.checkInvariants();
  });

  test("the promotion check refuses a learner below 90% of the leader's match", () => {
    const c = new Cluster({ voters: [1, 2, 3], learners: [4] });
    c.elect(1);
    c.crash(4);
    for (let i = 1; i <= 30; i++) c.propose(1, `p${i}`);
    c.stabilize();
    const v = checkLearnerPromotion(c.status(1)!, 4);
    assert.equal(v.ok, false);
    assert.equal(v.ok === false && v.reason, 'lagging');
    assert.equal(checkLearnerPromotion(c.status(2)!, 4).ok, false, 'only the leader can judge');
    assert.equal(
      checkLearnerPromotion(c.status(1)!, 2).ok === false &&
        (checkLearnerPromotion(c.status(1)!, 2) as { reason: string }).reason,
      'notLearner',
    );
    c.restart(4);
    c.tick(1);
    c.stabilize();
    assert.equal(checkLearnerPromotion(c.status(1)!, 4).ok, true);
  });
});

describe('membership changes (single step)', () => {
  test('a removed leader steps down and the rest elect a new one', () => {
    const c = new Cluster({ voters: [1, 2, 3] });
    c.elect(1);
    assert.ok(c.proposeConfChange(1, { type: 'removeNode', nodeId: 1 }));
    c.stabilize();
    assert.equal(state(c, 1), 'follower');
    assert.ok(c.runUntil(() => c.leader() !== undefined && c.leader() !== 1, 200));
    const l = c.leader()!;
    assert.deepEqual(c.status(l)!.config.voters, [2, 3]);
    c.propose(l, 'p1');
    c.stabilize();
    assert.deepEqual(payloads(c, 2), ['p1']);
  });

  test('only one membership change may be pending; several at once need joint consensus', () => {
    const c = new Cluster({ voters: [1, 2, 3], spares: [4, 5] });
    c.elect(1);
    c.isolate(2);
    c.isolate(3);
    assert.ok(c.proposeConfChange(1, { type: 'addLearnerNode', nodeId: 4 }));
    assert.equal(c.proposeConfChange(1, { type: 'addLearnerNode', nodeId: 5 }), false, 'second change refused');
    assert.throws(
      () =>
        c.node(1).raw!.proposeConfChange([
          { type: 'addLearnerNode', nodeId: 4 },
          { type: 'addLearnerNode', nodeId: 5 },
        ]),
      (e: unknown) => isRaftError(e, 'ERR_RAFT_JOINT_UNSUPPORTED'),
    );
  });

  test('the last voter cannot be removed; a voter cannot be demoted to learner', () => {
    const c = new Cluster({ voters: [1] });
    c.elect(1);
    assert.throws(
      () => c.node(1).raw!.proposeConfChange({ type: 'removeNode', nodeId: 1 }),
      (e: unknown) => isRaftError(e, 'ERR_RAFT_INVALID_CONF_CHANGE'),
    );
    assert.throws(
      () => c.node(1).raw!.proposeConfChange({ type: 'addLearnerNode', nodeId: 1 }),
      (e: unknown) => isRaftError(e, 'ERR_RAFT_INVALID_CONF_CHANGE'),
    );
  });

  test('a single voter commits alone and replicates to its learners', () => {
    const c = new Cluster({ voters: [1], learners: [2] });
    c.elect(1);
    assert.equal(c.leader(), 1);
    c.propose(1, 'solo');
    c.stabilize();
    assert.deepEqual(payloads(c, 1), ['solo']);
    assert.deepEqual(payloads(c, 2), ['solo']);
  });
});
