// Real processes: three `boltkv serve` members started through the CLI with etcd's flags, each its
// own node process on loopback with its own data directory, killed with SIGKILL (kill -9) at random
// moments (the leader every other time) and restarted while clients write and read through the
// members' HTTP/JSON gateways, and one member cut off by a proxy in front of its peer port. A fourth
// member is added late as a learner (`member add --learner` through a voter's gateway, started with
// --initial-cluster-state existing) after the voters compacted their logs (--snapshot-count), so it
// catches up by snapshot (its "received a snapshot" log line proves it); promoting it before it runs
// is refused as "not in sync"; it is promoted once in sync
// and then killed and restarted like the others. Afterwards the recorded history must be
// linearizable, no acknowledged write lost, HashKV equal on every member at the same revision, and
// after a clean SIGTERM stop every file must pass check() and hold the same data.
// BOLTKV_STRESS=1 runs the fault loop for at least 60 s and 40 faults (about 2-2.5 min in all).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BoltBackend } from '../../src/mvcc/backend/bolt.ts';
import { hashKVOfBackend } from '../../src/mvcc/hash.ts';
import { freePort } from '../support/etcd.ts';
import { eventually } from '../support/eventually.ts';
import { Rng } from '../support/rng.ts';
import { type ServeProc, startServe } from '../support/serve-proc.ts';
import { b64, raw } from '../server/support.ts';
import { checkKv, type KvInput, type KvOutput, type Operation } from './lin/checker.ts';
import { PeerProxy } from './proc/peer-proxy.ts';

const STRESS = process.env.BOLTKV_STRESS === '1';
const DURATION_MS = STRESS ? 60_000 : 3_000;
const MIN_EVENTS = STRESS ? 40 : 5;
const TOKEN = 'processes-test';
/** Small so the voters snapshot and compact their logs early: a late learner needs a snapshot. */
const SNAPSHOT_COUNT = 20;
const CATCH_UP_ENTRIES = 5;
const FLAGS = [
  '--snapshot-count',
  String(SNAPSHOT_COUNT),
  '--experimental-snapshot-catchup-entries',
  String(CATCH_UP_ENTRIES),
  '--heartbeat-interval',
  '50',
];
const SNAPSHOT_LINE = '"received a snapshot"';
const NOT_IN_SYNC = 'etcdserver: can only promote a learner member which is in sync with leader';
const NOT_LEARNER = 'etcdserver: can only promote a learner member';

interface Member {
  name: string;
  /** The peer URL the others dial (for p3: the proxy). */
  peer: string;
  listenPeer: string;
  state: 'new' | 'existing';
  proc: ServeProc | undefined;
  /** Client URL of the running process (a new port after every restart). */
  url: string | undefined;
  /** stderr of the processes that ended, for counting snapshot receptions. */
  pastLogs: string;
}

interface Answer {
  status: number;
  json: Record<string, unknown>;
}

async function call(url: string, path: string, body: unknown, timeoutMs = 3000): Promise<Answer> {
  const r = await raw(url, path, JSON.stringify(body), 'POST', timeoutMs);
  return { status: r.status, json: JSON.parse(r.body) as Record<string, unknown> };
}

const unb64 = (s: string): string => Buffer.from(s, 'base64').toString('latin1');
const snapshotsIn = (log: string): number => log.split('\n').filter((l) => l.includes(SNAPSHOT_LINE)).length;

interface Status {
  id: string;
  leader: string;
  applied: number;
  revision: string;
}

async function status(url: string): Promise<Status> {
  const r = await call(url, '/v3/maintenance/status', {});
  if (r.status !== 200) throw new Error(`status: ${JSON.stringify(r.json)}`);
  const header = r.json.header as { member_id: string; revision: string };
  return {
    id: header.member_id,
    leader: String(r.json.leader ?? '0'),
    applied: Number(r.json.raftAppliedIndex ?? 0),
    revision: header.revision,
  };
}

test('boltkv serve processes: kill -9 in a loop, a partitioned peer port, a learner added late, caught up by snapshot and promoted; linearizable, nothing acknowledged lost, HashKV and files equal', {
  timeout: STRESS ? 300_000 : 120_000,
}, async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'boltkv-procs-'));
  const rng = new Rng(Number(process.env.BOLTKV_PROC_SEED ?? 7));
  const voters: Member[] = [];
  for (const name of ['p1', 'p2', 'p3']) {
    const peer = `http://127.0.0.1:${await freePort()}`;
    voters.push({ name, peer, listenPeer: peer, state: 'new', proc: undefined, url: undefined, pastLogs: '' });
  }
  // p3's peers reach it only through a proxy the test controls: it advertises the proxy's port and
  // listens on another one.
  const p3 = voters[2]!;
  const proxy = new PeerProxy(Number(new URL(p3.peer).port), await freePort());
  p3.listenPeer = `http://127.0.0.1:${proxy.target}`;
  await proxy.start();
  const p4peer = `http://127.0.0.1:${await freePort()}`;
  const p4: Member = {
    name: 'p4',
    peer: p4peer,
    listenPeer: p4peer,
    state: 'existing',
    proc: undefined,
    url: undefined,
    pastLogs: '',
  };
  const initial = voters.map((m) => `${m.name}=${m.peer}`).join(',');
  const launch = async (m: Member): Promise<void> => {
    const cluster = m === p4 ? `${initial},p4=${p4.peer}` : initial;
    const proc = startServe(root, m.name, m.peer, cluster, {
      state: m.state,
      token: TOKEN,
      listenPeer: m.listenPeer,
      extra: FLAGS,
    });
    m.proc = proc;
    m.url = await proc.client;
  };
  const kill9 = async (m: Member): Promise<void> => {
    const proc = m.proc;
    if (proc === undefined) return;
    m.proc = undefined;
    m.url = undefined;
    proc.child.kill('SIGKILL');
    await proc.exited;
    m.pastLogs += proc.stderr();
  };

  const members: Member[] = [...voters];
  const history: Operation[] = [];
  let clock = 0;
  let seq = 0;
  let stop = false;
  let kills = 0;
  let leaderKills = 0;
  let p4Kills = 0;
  let partitions = 0;
  let clients: Promise<void>[] = [];
  const t0 = Date.now();
  const phases: string[] = [];
  const phase = (what: string): void => void phases.push(`${what} ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  try {
    await Promise.all(voters.map(launch));
    phase('voters serving');
    const keys = ['a', 'b', 'c'];
    const client = async (id: number): Promise<void> => {
      while (!stop) {
        const m = rng.pick(members);
        const url = m.url;
        if (url === undefined) {
          await new Promise((r) => setTimeout(r, 20));
          continue;
        }
        const key = rng.pick(keys);
        const input: KvInput = rng.bool(0.5) ? { kind: 'put', key, value: `v${++seq}` } : { kind: 'get', key };
        const callAt = ++clock;
        let output: KvOutput | undefined;
        let ret = Infinity;
        try {
          const r =
            input.kind === 'put'
              ? await call(url, '/v3/kv/put', { key: b64(key), value: b64(input.value) })
              : await call(url, '/v3/kv/range', { key: b64(key) });
          if (r.status === 200) {
            const kv = (r.json.kvs as { value?: string }[] | undefined)?.[0];
            output =
              input.kind === 'put'
                ? { kind: 'put' }
                : { kind: 'get', value: kv === undefined ? null : unb64(kv.value ?? '') };
            ret = ++clock;
          } else if (r.json.message === 'etcdserver: no leader') {
            output = undefined; // raft dropped it: never in any log
          } else if (input.kind === 'put') {
            output = { kind: 'unknown' };
          }
        } catch (err) {
          // a refused connection never carried the request; anything else may have
          const refused = (err as NodeJS.ErrnoException).code === 'ECONNREFUSED';
          if (input.kind === 'put' && !refused) output = { kind: 'unknown' };
        }
        if (output !== undefined) history.push({ client: id, input, output, call: callAt, ret });
      }
    };
    clients = Array.from({ length: 4 }, (_, i) => client(i));

    // Learner phase: once every voter has applied well past a snapshot (its log no longer reaches
    // back to the start), add p4 as a learner through a voter, start it as existing, wait until it
    // received a snapshot and applied ≥ 90% of the leader's index, promote it.
    const compacted = 2 * SNAPSHOT_COUNT + CATCH_UP_ENTRIES;
    await eventually('the voters to apply past a snapshot', async () => {
      const st = await Promise.all(voters.map((m) => status(m.url!)));
      return st.every((s) => s.applied >= compacted) ? true : undefined;
    });
    let learnerId = '';
    await eventually('member add --learner', async () => {
      const via = rng.pick(voters).url!;
      const r = await call(via, '/v3/cluster/member/add', { peerURLs: [p4.peer], isLearner: true });
      if (r.status === 200) {
        learnerId = (r.json.member as { ID: string }).ID;
        return true;
      }
      if (r.json.message !== 'etcdserver: Peer URLs already exists') throw new Error(JSON.stringify(r.json));
      // an earlier attempt whose answer was lost went through
      const list = await call(via, '/v3/cluster/member/list', {});
      learnerId =
        (list.json.members as { ID: string; peerURLs: string[] }[]).find((x) => x.peerURLs[0] === p4.peer)?.ID ?? '';
      return learnerId !== '' ? true : undefined;
    });
    // Not started yet, so far behind: the leader must refuse to promote it, with etcd's error.
    let notInSync = 0;
    await eventually('a "not in sync" refusal of the empty learner', async () => {
      const r = await call(rng.pick(voters).url!, '/v3/cluster/member/promote', { ID: learnerId });
      assert.notEqual(r.status, 200, 'a learner that holds nothing was promoted');
      if (r.json.message !== NOT_IN_SYNC) throw new Error(JSON.stringify(r.json));
      notInSync++;
      return true;
    });
    await launch(p4);
    let last = '';
    await eventually(
      () => `the learner to catch up (last ${last}; ${p4.proc?.stderr()})`,
      async () => {
        const l = await status(p4.url!);
        const st = await Promise.all(voters.map((m) => status(m.url!)));
        const lead = st.find((s) => s.leader === s.id);
        last = JSON.stringify({ l, lead });
        if (lead === undefined) return undefined;
        return snapshotsIn(p4.proc!.stderr()) >= 1 && l.applied >= 0.9 * lead.applied ? true : undefined;
      },
      30_000,
    );
    const learnerSnapshots = snapshotsIn(p4.proc!.stderr());
    phase('learner caught up');
    await eventually('member promote', async () => {
      const r = await call(rng.pick(voters).url!, '/v3/cluster/member/promote', { ID: learnerId });
      if (r.status === 200 || r.json.message === NOT_LEARNER) return true; // NOT_LEARNER: a lost answer went through
      if (r.json.message === NOT_IN_SYNC) notInSync++;
      throw new Error(JSON.stringify(r.json));
    });
    p4.state = 'new'; // a restart of a member with a file ignores the initial cluster state anyway
    members.push(p4);

    const leader = async (): Promise<Member | undefined> => {
      const st = await Promise.all(
        members.map((m) => (m.url === undefined ? undefined : status(m.url).catch(() => undefined))),
      );
      const lead = st.find((s) => s !== undefined && s.leader === s.id);
      return lead === undefined ? undefined : members[st.indexOf(lead)];
    };
    const end = Date.now() + DURATION_MS;
    // at least a few faults however slow the machine is (starting a member process takes a while)
    for (let ev = 0; ev < MIN_EVENTS || Date.now() < end; ev++) {
      await new Promise((r) => setTimeout(r, rng.int(300, 1200)));
      if (ev % 3 === 2) {
        proxy.partition();
        partitions++;
        await new Promise((r) => setTimeout(r, rng.int(300, 1500)));
        proxy.heal();
        continue;
      }
      // the promoted learner is the first victim, then the leader every other time
      const lead = ev % 2 === 1 ? await leader() : undefined;
      const victim = ev === 0 ? p4 : (lead ?? rng.pick(members));
      if (victim.proc === undefined) continue;
      await kill9(victim);
      kills++;
      if (victim === lead) leaderKills++;
      if (victim === p4) p4Kills++;
      await new Promise((r) => setTimeout(r, rng.int(100, 600)));
      await launch(victim);
    }
    stop = true;
    await Promise.all(clients);
    phase('faults done');

    // Every member up: let the cluster settle (one leader, the same applied index everywhere).
    let statuses: Status[] = [];
    await eventually(
      () => `the members to converge: ${JSON.stringify(statuses)}`,
      async () => {
        statuses = await Promise.all(members.map((m) => status(m.url!)));
        const ids = new Set(statuses.map((s) => s.leader));
        return ids.size === 1 && !ids.has('0') && statuses.every((s) => s.applied === statuses[0]!.applied)
          ? true
          : undefined;
      },
      30_000,
    );
    phase('converged');
    for (const k of keys) {
      const r = await call(members[0]!.url!, '/v3/kv/range', { key: b64(k) }, 10_000);
      assert.equal(r.status, 200, `final read of ${k}: ${JSON.stringify(r.json)}`);
      const kv = (r.json.kvs as { value?: string }[] | undefined)?.[0];
      const c0 = ++clock;
      history.push({
        client: 99,
        input: { kind: 'get', key: k },
        output: { kind: 'get', value: kv === undefined ? null : unb64(kv.value ?? '') },
        call: c0,
        ret: ++clock,
      });
    }
    const v = checkKv(history);
    assert.ok(v.ok, `history of ${history.length} operations is not linearizable on key ${v.badKey}`);
    const acked = history.filter((o) => o.input.kind === 'put' && o.ret !== Infinity).length;
    assert.ok(acked >= 5, `only ${acked} acknowledged writes`);
    assert.ok(
      kills >= 3 && partitions >= 1 && p4Kills >= 1,
      `only ${kills} kills (${p4Kills} of p4) and ${partitions} partitions`,
    );
    for (const k of keys) {
      const final = history.filter((o) => o.client === 99 && o.input.key === k).at(-1)!;
      const value = final.output.kind === 'get' ? final.output.value : null;
      const lastPut = history
        .filter((o) => o.input.key === k && o.input.kind === 'put' && o.ret !== Infinity)
        .sort((a, b) => a.ret - b.ret)
        .at(-1);
      if (lastPut === undefined) continue;
      const src = history.find((o) => o.input.kind === 'put' && o.input.value === value);
      assert.ok(
        src !== undefined && (src === lastPut || src.ret > lastPut.call),
        `key ${k}: acknowledged ${JSON.stringify(lastPut.input)} lost (found ${value})`,
      );
    }
    // HashKV through every member's gateway at the same revision.
    const rev = statuses[0]!.revision;
    const hashes = await Promise.all(
      members.map(async (m) => {
        const r = await call(m.url!, '/v3/maintenance/hashkv', { revision: rev }, 10_000);
        assert.equal(r.status, 200, `${m.name} hashkv: ${JSON.stringify(r.json)}`);
        return String(r.json.hash);
      }),
    );
    assert.ok(
      hashes.every((h) => h === hashes[0]),
      `HashKV at revision ${rev} differs between members: ${hashes}`,
    );
    const snapshots = members.map((m) => `${m.name} ${snapshotsIn(m.pastLogs + (m.proc?.stderr() ?? ''))}`).join(', ');
    t.diagnostic(
      `${history.length} operations checked (${acked} acknowledged writes), ${kills} kill -9 (${leaderKills} of the leader, ${p4Kills} of the promoted learner), ${partitions} partitions of p3`,
    );
    t.diagnostic(
      `learner p4 caught up by ${learnerSnapshots} snapshot(s), promoted after ${notInSync} "not in sync" refusals; snapshots received per member: ${snapshots}; HashKV ${hashes[0]} at revision ${rev}`,
    );
    t.diagnostic(`timeline: ${phases.join(', ')}`);

    // A clean stop: every member exits 0, then its file is opened and checked.
    for (const m of members) m.proc!.child.kill('SIGTERM');
    const codes = await Promise.all(members.map((m) => m.proc!.exited));
    assert.deepEqual(
      codes,
      members.map(() => 0),
      members.map((m) => `${m.name}: ${m.proc!.stderr()}`).join('\n'),
    );
    const fileHashes = members.map((m) => {
      const b = BoltBackend.open(join(root, m.name, 'member', 'boltkv.db'));
      try {
        assert.deepEqual(b.db.check(), [], `${m.name}: check()`);
        return b.view((r) => hashKVOfBackend(r, 0).hash);
      } finally {
        b.close();
      }
    });
    assert.ok(
      fileHashes.every((h) => h === fileHashes[0]),
      `HashKV of the files differs between members: ${fileHashes}`,
    );
  } finally {
    stop = true;
    await Promise.all(clients);
    await proxy.close();
    for (const m of new Set([...members, p4])) {
      const p = m.proc;
      if (p !== undefined && p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
      if (p !== undefined) await p.exited;
    }
    rmSync(root, { recursive: true, force: true });
  }
});
