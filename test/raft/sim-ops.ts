/** Fault/action vocabulary of the randomized simulation, shared by the test and replay tooling. */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Cluster } from './cluster.ts';

export type Op =
  | { t: 'tick'; n: number }
  | { t: 'tickAll' }
  | { t: 'round' }
  | { t: 'deliver'; k: number }
  | { t: 'deliverAll' }
  | { t: 'drop'; k: number }
  | { t: 'dup'; k: number }
  | { t: 'partition'; mask: number }
  | { t: 'heal' }
  | { t: 'isolateLeader' }
  | { t: 'crashLeader' }
  | { t: 'crash'; n: number }
  | { t: 'restart'; n: number }
  | { t: 'propose'; n: number }
  | { t: 'read'; n: number }
  | { t: 'readAtLeaders' }
  | { t: 'splitBrain' }
  | { t: 'conf'; kind: 'addLearner' | 'addVoter' | 'promote' | 'remove'; n: number }
  | { t: 'transfer'; n: number; to: number };

export const nodeIdx = fc.nat({ max: 6 });
export const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ t: fc.constant('tick' as const), n: nodeIdx }) },
  { weight: 3, arbitrary: fc.constant({ t: 'tickAll' as const }) },
  { weight: 8, arbitrary: fc.constant({ t: 'round' as const }) },
  { weight: 10, arbitrary: fc.record({ t: fc.constant('deliver' as const), k: fc.nat() }) },
  { weight: 4, arbitrary: fc.constant({ t: 'deliverAll' as const }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('drop' as const), k: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('dup' as const), k: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('partition' as const), mask: fc.nat({ max: 127 }) }) },
  { weight: 2, arbitrary: fc.constant({ t: 'heal' as const }) },
  { weight: 1, arbitrary: fc.constant({ t: 'isolateLeader' as const }) },
  { weight: 1, arbitrary: fc.constant({ t: 'crashLeader' as const }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('crash' as const), n: nodeIdx }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('restart' as const), n: nodeIdx }) },
  { weight: 4, arbitrary: fc.record({ t: fc.constant('propose' as const), n: nodeIdx }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('read' as const), n: nodeIdx }) },
  { weight: 1, arbitrary: fc.constant({ t: 'readAtLeaders' as const }) },
  { weight: 1, arbitrary: fc.constant({ t: 'splitBrain' as const }) },
  {
    weight: 2,
    arbitrary: fc.record({
      t: fc.constant('conf' as const),
      kind: fc.constantFrom('addLearner' as const, 'addVoter' as const, 'promote' as const, 'remove' as const),
      n: nodeIdx,
    }),
  },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('transfer' as const), n: nodeIdx, to: nodeIdx }) },
);

export const shapeArb = fc
  .record({
    voters: fc.integer({ min: 1, max: 5 }),
    learners: fc.integer({ min: 0, max: 2 }),
    spares: fc.integer({ min: 0, max: 2 }),
    preVote: fc.boolean(),
    checkQuorum: fc.boolean(),
    seed: fc.integer({ min: 1, max: 2 ** 30 }),
    maxInflightMsgs: fc.integer({ min: 1, max: 4 }),
    maxSizePerMsg: fc.constantFrom(1, 200, 1 << 20),
    snapshotEvery: fc.integer({ min: 2, max: 12 }),
  })
  .filter((s) => s.voters + s.learners + s.spares >= 3 && s.voters + s.learners + s.spares <= 7);

export type Shape = {
  voters: number;
  learners: number;
  spares: number;
  preVote: boolean;
  checkQuorum: boolean;
  seed: number;
  maxInflightMsgs?: number;
  maxSizePerMsg?: number;
  snapshotEvery?: number;
};

export function build(s: Shape): Cluster {
  const ids = Array.from({ length: s.voters + s.learners + s.spares }, (_, i) => i + 1);
  return new Cluster({
    voters: ids.slice(0, s.voters),
    learners: ids.slice(s.voters, s.voters + s.learners),
    spares: ids.slice(s.voters + s.learners),
    preVote: s.preVote,
    checkQuorum: s.checkQuorum,
    seed: s.seed,
    ...(s.maxInflightMsgs !== undefined ? { maxInflightMsgs: s.maxInflightMsgs } : {}),
    ...(s.maxSizePerMsg !== undefined ? { maxSizePerMsg: s.maxSizePerMsg } : {}),
    ...(s.snapshotEvery !== undefined ? { snapshotEvery: s.snapshotEvery } : {}),
  });
}

/** Ids ever added stay reserved: raft forbids reusing an id after removal. */
export function applyOp(c: Cluster, op: Op, removed: Set<number>): void {
  const ids = c.allIds;
  const pick = (i: number) => ids[i % ids.length]!;
  switch (op.t) {
    case 'tick':
      c.tick(pick(op.n));
      return;
    case 'tickAll':
      c.tickAll();
      return;
    case 'round':
      c.tickAll();
      c.deliverAll();
      return;
    case 'deliver':
      c.deliver(op.k);
      return;
    case 'deliverAll':
      c.deliverAll();
      return;
    case 'drop':
      c.drop(op.k);
      return;
    case 'dup':
      c.duplicate(op.k);
      return;
    case 'partition':
      c.heal();
      for (const id of ids) if (op.mask & (1 << (id - 1))) c.group.set(id, 1);
      return;
    case 'heal':
      c.heal();
      return;
    case 'isolateLeader': {
      // Targeted faults make stale leaders and conflicting logs common instead of rare.
      const l = c.leader();
      if (l !== undefined) c.isolate(l);
      return;
    }
    case 'crashLeader': {
      const l = c.leader();
      if (l !== undefined) c.crash(l);
      return;
    }
    case 'crash':
      c.crash(pick(op.n));
      return;
    case 'restart': {
      // Restart one of the crashed nodes (if any).
      const down = ids.filter((id) => !c.alive(id));
      if (down.length > 0) c.restart(down[op.n % down.length]!);
      return;
    }
    case 'propose':
      c.propose(pick(op.n));
      return;
    case 'read':
      c.read(pick(op.n));
      return;
    case 'splitBrain': {
      // Scripted stale-leader episode: cut the leader off, let the others elect and commit a
      // write, then read at the old leader. Safe ReadIndex must not answer from the old side.
      const old = c.leader();
      if (old === undefined) return;
      c.isolate(old);
      const others = ids.filter((id) => id !== old);
      const fresh = () => c.leaders().find((id) => id !== old);
      for (let i = 0; i < 40 && fresh() === undefined; i++) {
        c.deliverAll();
        for (const id of others) c.tick(id);
      }
      const nl = fresh();
      if (nl === undefined) return;
      const before = c.maxApplied;
      c.propose(nl);
      for (let i = 0; i < 10 && c.maxApplied === before; i++) c.deliverAll();
      c.read(old);
      c.deliverAll();
      return;
    }
    case 'readAtLeaders':
      // Reads at every node that believes it leads, stale leaders included: the dangerous case.
      for (const id of c.leaders()) c.read(id);
      return;
    case 'transfer':
      c.transferLeader(pick(op.n), pick(op.to));
      return;
    case 'conf': {
      const lead = c.leader();
      if (lead === undefined) return;
      const cfg = c.status(lead)!.config;
      const target = pick(op.n);
      if (removed.has(target)) return;
      const isVoter = cfg.voters.includes(target);
      const isLearner = cfg.learners.includes(target);
      let ok = false;
      switch (op.kind) {
        case 'addLearner':
          if (!isVoter && !isLearner) ok = c.proposeConfChange(lead, { type: 'addLearnerNode', nodeId: target });
          break;
        case 'addVoter':
          if (!isVoter && !isLearner) ok = c.proposeConfChange(lead, { type: 'addNode', nodeId: target });
          break;
        case 'promote':
          if (isLearner) ok = c.proposeConfChange(lead, { type: 'addNode', nodeId: target });
          break;
        case 'remove':
          if ((isVoter && cfg.voters.length > 1) || isLearner) {
            ok = c.proposeConfChange(lead, { type: 'removeNode', nodeId: target });
            if (ok) removed.add(target);
          }
          break;
      }
      void ok;
      return;
    }
  }
}

/** Heals everything, then requires a leader and that new proposals commit on every member. */
export function checkLiveness(c: Cluster): void {
  c.heal();
  for (const id of c.allIds) c.restart(id);
  assert.ok(
    c.runUntil(() => c.leader() !== undefined, 2000),
    'no leader elected after healing',
  );
  // Wait until every member follows one leader that has applied its whole log (no membership
  // change, transfer or election in flight), so nothing legitimately takes leadership away from it
  // while the proposals replicate.
  const settled = () => {
    const lead = c.leader();
    if (lead === undefined) return false;
    const st = c.status(lead)!;
    if (st.applied !== st.lastIndex || st.leadTransferee !== 0) return false;
    if (c.queue.some((e) => e.m.type === 'vote' || e.m.type === 'preVote' || e.m.type === 'timeoutNow')) return false;
    return c.members(lead).every((id) => {
      const s2 = c.status(id)!;
      return s2.hardState.term === st.hardState.term && s2.softState.lead === lead;
    });
  };
  assert.ok(c.runUntil(settled, 3000), 'the healed cluster does not settle');
  // Nodes outside the final membership are decommissioned, as an operator would. A removed node
  // that never learned of its removal would otherwise keep calling elections (etcd has the same
  // property; pre-vote and check-quorum only soften it).
  const finalMembers = new Set(c.members(c.leader()!));
  for (const id of c.allIds) if (!finalMembers.has(id)) c.crash(id);
  assert.ok(c.runUntil(settled, 3000), 'the cluster does not settle after decommissioning non-members');
  const lead = c.leader()!;
  const term = c.status(lead)!.hardState.term;
  const payloads: string[] = [];
  for (let i = 0; i < 3; i++) {
    const p = c.propose(lead);
    assert.ok(p, `the settled leader ${lead} refused a proposal`);
    payloads.push(p);
  }
  const done = () => {
    const lead = c.leader();
    if (lead === undefined) return false;
    const members = c.members(lead);
    return members.every((id) => {
      const sm = c.node(id).sm.join('\n');
      return payloads.every((p) => sm.includes(`/normal/${p}`));
    });
  };
  const ok = c.runUntil(done, 3000);
  c.checkInvariants();
  assert.ok(ok, `proposals ${payloads.join(',')} made to leader ${lead} (term ${term}) did not reach every member`);
}
