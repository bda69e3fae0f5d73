// Deterministic simulation of a replicated cluster: members on a network that drops, delays,
// duplicates and partitions messages; machines crashed at random I/O calls or killed and restarted
// from what their disks kept; learners added by snapshot, promoted and removed. Clients record every
// operation; afterwards the history must be linearizable, no acknowledged write lost, every file
// must pass check(), and members that applied the same index must hold identical data.
// BOLTKV_STRESS=1 runs more seeds for longer; BOLTKV_SIM_SEED=n replays one seed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { open } from '../../src/bolt/index.ts';
import { BoltBackend } from '../../src/mvcc/backend/bolt.ts';
import { isBoltkvError } from '../../src/errors.ts';
import { checkKv, type Operation } from './lin/checker.ts';
import { hashKVOfBackend } from '../../src/mvcc/hash.ts';
import { SimCluster, path } from './sim/cluster.ts';
import { Workload } from './sim/workload.ts';

const STRESS = process.env.BOLTKV_STRESS === '1';
const ONE = process.env.BOLTKV_SIM_SEED;
const SEEDS =
  ONE !== undefined ? [Number(ONE)] : STRESS ? Array.from({ length: 40 }, (_, i) => i + 1) : [1, 2, 3, 4, 5, 6];
const DURATION = STRESS ? 20_000 : 4_000;

/** Everything of etcd's state machine in a file, for member-to-member comparison. */
function dumpState(c: SimCluster, id: number): { ci: number; data: string } {
  const n = c.nodes.get(id)!;
  const b = BoltBackend.open(path(id), { fileSystem: n.disk.fs });
  try {
    const ci = b.view((r) => {
      const v = r.get('meta', new TextEncoder().encode('consistent_index'));
      return v === undefined ? 0 : Buffer.from(v).readUIntBE(2, 6);
    });
    const parts: string[] = [];
    b.view((r) => {
      for (const bucket of ['key', 'lease', 'members', 'members_removed']) {
        r.scan(bucket, new Uint8Array(0), undefined, (k, v) => {
          parts.push(`${bucket}:${Buffer.from(k).toString('hex')}=${Buffer.from(v).toString('hex')}`);
        });
      }
    });
    const hash = b.view((r) => hashKVOfBackend(r, 0).hash);
    return { ci, data: `hashKV=${hash}\n${parts.join('\n')}` };
  } finally {
    b.close();
  }
}

interface Stats {
  seed: number;
  ops: number;
  acked: number;
  unknown: number;
  crashes: number;
  restarts: number;
  snapshots: number;
  learners: number;
  promoted: number;
  removed: number;
}

async function simulate(seed: number): Promise<Stats> {
  const c = new SimCluster(seed, [1, 2, 3]);
  c.net = { dropRate: 0.05, dupRate: 0.05, minDelay: 1, maxDelay: 15 };
  c.memberOptions = { snapshotCount: 40, catchUpEntries: 10, requestTimeoutTicks: 60 };
  for (const id of [1, 2, 3]) await c.start(id);
  const keys = ['a', 'b', 'c', 'd'];
  const w = new Workload(c, keys, 4);
  w.start();
  let nextLearner = 10;
  const learners: number[] = [];
  let promoted = 0;
  let removed = 0;
  const rng = c.rng;
  const faultEvery = 150;
  for (let t = faultEvery; t < DURATION; t += faultEvery) {
    await c.run(t);
    const r = rng.next();
    const live = [...c.nodes.values()].filter((n) => n.member !== undefined && !n.member.isClosed);
    const victim = live.length > 0 ? rng.pick(live).id : undefined;
    if (r < 0.08 && victim !== undefined) c.kill(victim, rng.int(50, 400));
    else if (r < 0.16 && victim !== undefined) c.crashAtIo(victim, rng.int(1, 60));
    else if (r < 0.3 && victim !== undefined) {
      c.isolate(victim);
      c.at(rng.int(100, 600), () => c.heal());
    } else if (r < 0.4) {
      const ids = [...c.nodes.keys()];
      c.partition(rng.pick(ids), rng.pick(ids));
      c.at(rng.int(100, 600), () => c.heal());
    } else if (r < 0.63 && learners.length < 2) {
      const l = c.leader();
      if (l !== undefined) {
        const id = nextLearner++;
        l.memberAdd({ peerURLs: [`sim://m${id}`], isLearner: true, id }).then(
          async () => {
            c.addNode(id);
            learners.push(id);
            await c.start(id);
          },
          async (e: unknown) => {
            // the proposer died or timed out: the add may still commit, so start the member anyway
            // (an operator would find it in the member list); certainly-refused adds start nothing
            if (
              isBoltkvError(e, 'ERR_NO_LEADER') ||
              isBoltkvError(e, 'ERR_LEARNER_NOT_SUPPORTED') ||
              isBoltkvError(e, 'ERR_MEMBER_EXISTS')
            )
              return;
            c.addNode(id);
            await c.start(id);
          },
        );
      }
    } else if (r < 0.71 && learners.length > 0) {
      const l = c.leader();
      const id = learners[0]!;
      if (l !== undefined) {
        l.memberPromote(id).then(
          () => {
            learners.splice(learners.indexOf(id), 1);
            promoted++;
          },
          (e: unknown) => {
            if (!isBoltkvError(e)) throw e;
          },
        );
      }
    } else if (r < 0.76) {
      // remove a learner, or a voter while more than three remain
      const l = c.leader();
      const list = l?.memberList() ?? [];
      const voters = list.filter((m) => !m.isLearner);
      const candidates = list.filter((m) => m.isLearner || (voters.length > 3 && m.id !== l?.id));
      if (l !== undefined && candidates.length > 0) {
        const id = rng.pick(candidates).id;
        l.memberRemove(id).then(
          () => {
            removed++;
            const k = learners.indexOf(id);
            if (k >= 0) learners.splice(k, 1);
          },
          () => undefined,
        );
      }
    }
  }
  // quiesce: faults off, everyone back, clients finish
  w.stopped = true;
  c.heal();
  c.net = { dropRate: 0, dupRate: 0, minDelay: 1, maxDelay: 5 };
  for (const n of c.nodes.values()) n.disk.clearRules();
  for (let i = 0; i < 300 && !w.idle; i++) await c.run(c.now + 20);
  await c.run(c.now + 1500);
  const leader = await c.waitLeader(5000);
  for (const k of keys) await c.until(w.issue(99, leader, { kind: 'get', key: k }));
  await c.run(c.now + 1500);

  // 1. linearizable
  const verdict = checkKv(w.history);
  assert.ok(verdict.ok, `seed ${seed}: history not linearizable on key ${verdict.badKey} (${w.history.length} ops)`);
  // 2. no acknowledged write lost: the final value is the last acknowledged write or a later/concurrent one
  for (const k of keys) {
    const final = w.history.filter((o) => o.client === 99 && o.input.key === k).at(-1)!;
    const value = final.output.kind === 'get' ? final.output.value : undefined;
    const writes = w.history.filter(
      (o): o is Operation =>
        o.input.key === k &&
        (o.input.kind === 'put' || (o.input.kind === 'cas' && o.output.kind === 'cas' && o.output.ok)),
    );
    const acked = writes.filter((o) => o.ret !== Infinity).sort((a, b) => a.ret - b.ret);
    const last = acked.at(-1);
    if (last === undefined) continue;
    const source = writes.find((o) => 'value' in o.input && o.input.value === value);
    assert.ok(source !== undefined, `seed ${seed}: key ${k} holds ${value}, which nobody wrote`);
    assert.ok(
      source === last || source.ret > last.call,
      `seed ${seed}: key ${k}: acknowledged write ${'value' in last.input ? last.input.value : ''} lost (found ${value})`,
    );
  }
  // 3. files sound; 4. members at the same applied index hold the same data
  // a member removed while it was cut off never learns it (as in etcd): the operator shuts it down
  const inCluster = new Set(leader.memberList().map((m) => m.id));
  const live = c
    .members()
    .map((m) => m.id)
    .filter((id) => inCluster.has(id));
  for (const id of inCluster) assert.ok(live.includes(id), `seed ${seed}: member ${id} is not running at the end`);
  if (process.env.BOLTKV_SIM_DEBUG === '1') {
    for (const m of c.members())
      console.log(
        JSON.stringify({
          ...m.memberStatus(),
          ci: m.consistentIndex(),
          conf: m.raftStatus().config,
          members: m.memberList().map((x) => [x.id, x.isLearner]),
        }),
      );
    const l = c.leader();
    if (l)
      console.log(
        [...(l.raftStatus().progress ?? new Map())]
          .map(([id, p]) => `${id}:${p.state}/${p.match}/${p.next}/snap${p.pendingSnapshot}`)
          .join(' '),
      );
  }
  await c.closeAll();
  const byIndex = new Map<number, { id: number; data: string }[]>();
  for (const n of c.nodes.values()) {
    if (!n.disk.paths().includes(path(n.id)) || n.disk.contents(path(n.id)).length === 0) continue;
    const db = open(path(n.id), { fileSystem: n.disk.fs });
    assert.deepEqual(db.check(), [], `seed ${seed}: member ${n.id} file check`);
    db.close();
    if (!live.includes(n.id)) continue;
    const d = dumpState(c, n.id);
    let l = byIndex.get(d.ci);
    if (l === undefined) byIndex.set(d.ci, (l = []));
    l.push({ id: n.id, data: d.data });
  }
  for (const [ci, group] of byIndex) {
    for (const g of group)
      assert.equal(g.data, group[0]!.data, `seed ${seed}: members ${group[0]!.id} and ${g.id} differ at index ${ci}`);
  }
  const voters = live.length;
  assert.ok(voters >= 3, `seed ${seed}: cluster shrank to ${voters}`);
  // the cluster converged: every live member applied the same index
  assert.equal(byIndex.size, 1, `seed ${seed}: members at different indexes after quiescence: ${[...byIndex.keys()]}`);
  return {
    seed,
    ops: w.history.length,
    acked: w.acked,
    unknown: w.unknown,
    crashes: c.crashes,
    restarts: c.restarts,
    snapshots: c.snapshotsSent,
    learners: nextLearner - 10,
    promoted,
    removed,
  };
}

test(`simulated cluster: ${SEEDS.length} seeds x ${DURATION} ms with drops, delays, duplicates, partitions, crashes and learners`, async (t) => {
  const all: Stats[] = [];
  for (const seed of SEEDS) all.push(await simulate(seed));
  const sum = (f: (s: Stats) => number): number => all.reduce((n, s) => n + f(s), 0);
  t.diagnostic(
    `checked ${sum((s) => s.ops)} operations (${sum((s) => s.acked)} acknowledged writes, ${sum((s) => s.unknown)} unknown), ${sum((s) => s.crashes)} crashes, ${sum((s) => s.restarts)} restarts, ${sum((s) => s.snapshots)} snapshots sent, ${sum((s) => s.learners)} learners added, ${sum((s) => s.promoted)} promoted, ${sum((s) => s.removed)} removed`,
  );
  assert.ok(sum((s) => s.acked) > 20 * SEEDS.length, 'the workload made progress');
  assert.ok(sum((s) => s.crashes) > 0 && sum((s) => s.snapshots) > 0);
});
