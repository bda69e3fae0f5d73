// The gateway's raft fields on a cluster member, as etcd fills them: three `boltkv serve` processes
// form a cluster; /v3/maintenance/status through a follower names the leader (not itself) and
// carries raftTerm, raftIndex, raftAppliedIndex and isLearner from the raft node; every response
// header's raft_term is the member's current term, the same on all members and above 0.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../support/etcd.ts';
import { b64 } from './support.ts';
import { eventually } from '../support/eventually.ts';
import { type ServeProc, killServes, postJson, startServe, stopServes } from '../support/serve-proc.ts';

interface Header {
  cluster_id: string;
  member_id: string;
  revision?: string;
  raft_term?: string;
}
interface Status {
  header: Header;
  leader?: string;
  raftTerm?: string;
  raftIndex?: string;
  raftAppliedIndex?: string;
  isLearner?: boolean;
}

test('boltkv serve cluster: status names the real leader, headers carry the raft term', {
  timeout: 60_000,
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'boltkv-cluster-status-'));
  const procs: ServeProc[] = [];
  try {
    const names = ['s1', 's2', 's3'];
    const peers = await Promise.all(names.map(async () => `http://127.0.0.1:${await freePort()}`));
    const initial = names.map((n, i) => `${n}=${peers[i]}`).join(',');
    for (const [i, n] of names.entries())
      procs.push(startServe(dir, n, peers[i]!, initial, { token: 'cluster-status-test' }));
    const urls = await Promise.all(procs.map((p) => p.client));

    // A write commits once a leader is elected.
    const put = await eventually('a put through s1', async () => {
      const r = await postJson(urls[0]!, '/v3/kv/put', { key: b64('k'), value: b64('v') });
      return r.status === 200 ? r : undefined;
    });

    // Every member agrees on one leader that is not 0; each status says so with its own member id.
    const statuses = await eventually('every member to know the leader', async () => {
      const all = await Promise.all(
        urls.map(async (u) => (await postJson(u, '/v3/maintenance/status', {})).json as unknown as Status),
      );
      const leaders = new Set(all.map((s) => s.leader));
      return leaders.size === 1 && !leaders.has(undefined) && !leaders.has('0') ? all : undefined;
    });
    const leader = statuses[0]!.leader!;
    const ids = statuses.map((s) => s.header.member_id);
    assert.equal(new Set(ids).size, 3, 'three distinct member ids');
    assert.ok(ids.includes(leader), `the leader ${leader} is one of the members ${ids.join(', ')}`);
    const followers = statuses.filter((s) => s.header.member_id !== leader);
    assert.equal(followers.length, 2);
    for (const f of followers) {
      // Through a follower: the leader is the other member, not the one answering.
      assert.notEqual(f.leader, f.header.member_id);
      assert.equal(f.leader, leader);
    }

    // The raft fields come from the raft node: a term above 0, the same term in the header and the
    // body, indexes past the bootstrap entries, no learners here.
    const term = statuses[0]!.raftTerm;
    assert.ok(term !== undefined && Number(term) > 0, `raftTerm ${term}`);
    for (const s of statuses) {
      assert.equal(s.raftTerm, term);
      assert.equal(s.header.raft_term, term);
      assert.ok(Number(s.raftIndex) >= 2, `raftIndex ${s.raftIndex}`);
      assert.ok(Number(s.raftAppliedIndex) >= 1 && Number(s.raftAppliedIndex) <= Number(s.raftIndex));
      assert.notEqual(s.isLearner, true);
    }

    // Every other response header carries the term too: the put, a range, member list, on each member.
    assert.equal((put.json.header as Header).raft_term, term);
    for (const u of urls) {
      const range = await postJson(u, '/v3/kv/range', { key: b64('k') });
      assert.equal(range.status, 200);
      assert.equal((range.json.header as Header).raft_term, term);
      const list = await postJson(u, '/v3/cluster/member/list', {});
      assert.equal((list.json.header as Header).raft_term, term);
    }

    const codes = await stopServes(procs);
    assert.deepEqual(
      codes,
      procs.map(() => 0),
      procs.map((p) => `${p.name}: ${p.stderr()}`).join('\n'),
    );
  } finally {
    await killServes(procs);
    rmSync(dir, { recursive: true, force: true });
  }
});
