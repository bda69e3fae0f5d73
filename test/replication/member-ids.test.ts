// Member ids as etcd gives them: initial members' from peer URLs and the cluster token, added
// members' from peer URLs and the time, so a removed member's exact URL can be added again; the
// re-added member learns its new id from the cluster over the peer port, and from its file after
// (whatever --initial-cluster-state says on the restart).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ReplicatedNode, type ClusterMemberSpec } from '../../src/replication/node.ts';
import { memberIdFor } from '../../src/replication/member-id.ts';
import { fetchMemberList } from '../../src/replication/member-join.ts';
import { isBoltkvError } from '../../src/errors.ts';
import { freePort } from '../support/etcd.ts';
import { eventually } from '../support/eventually.ts';

test('ids: initial ones from URLs and token, added ones mix in the time', () => {
  assert.equal(memberIdFor(['http://a:1', 'http://b:2'], 't'), memberIdFor(['http://b:2', 'http://a:1'], 't'));
  assert.notEqual(memberIdFor(['http://a:1'], '', 1000), memberIdFor(['http://a:1'], '', 1001));
  assert.notEqual(memberIdFor(['http://a:1'], '', 1000), memberIdFor(['http://a:1'], 'boltkv-cluster'));
});

test("a removed member's exact peer URL is added again under a new id, which the new member learns from the cluster", {
  timeout: 60_000,
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'boltkv-member-ids-'));
  const nodes = new Map<string, ReplicatedNode>();
  const spec: ClusterMemberSpec[] = [];
  for (const name of ['n1', 'n2', 'n3']) spec.push({ name, peerURLs: [`http://127.0.0.1:${await freePort()}`] });
  const start = async (name: string, state: 'new' | 'existing', dataDir = join(dir, name)): Promise<ReplicatedNode> => {
    const s = spec.find((x) => x.name === name)!;
    const n = await ReplicatedNode.start({
      name,
      dataDir,
      listenPeerURL: s.peerURLs[0]!,
      initialCluster: spec,
      initialClusterState: state,
      tickMs: 20,
    });
    nodes.set(name, n);
    return n;
  };
  const retry = <T>(what: string, f: () => Promise<T>): Promise<T> =>
    eventually(what, async () => {
      try {
        return await f();
      } catch (e) {
        if (isBoltkvError(e, 'ERR_NO_LEADER') || isBoltkvError(e, 'ERR_TIMEOUT') || isBoltkvError(e, 'ERR_NOT_LEADER'))
          return undefined;
        throw e;
      }
    });
  try {
    for (const s of spec) await start(s.name, 'new');
    const n1 = nodes.get('n1')!;
    const oldId = nodes.get('n3')!.member.id;
    assert.equal(oldId, memberIdFor(spec[2]!.peerURLs, 'boltkv-cluster'));
    await retry('a write', () => n1.member.put({ key: 'a', value: '1' }));
    // the peer port answers the member list a joining member asks for
    const listed = await fetchMemberList(spec[0]!.peerURLs[0]!, 2000);
    assert.deepEqual(listed.map((m) => m.id).sort(), [...nodes.values()].map((n) => n.member.id).sort());

    await retry('remove n3', () => n1.member.memberRemove(oldId));
    await nodes.get('n3')!.close();
    nodes.delete('n3');
    const added = await retry('re-add n3', () =>
      n1.member.memberAdd({ peerURLs: spec[2]!.peerURLs, isLearner: true, name: 'n3' }),
    );
    assert.notEqual(added.member.id, oldId);
    // a fresh data dir, as etcd requires for a re-added member: it asks n1/n2 who it is
    const n3 = await start('n3', 'existing', join(dir, 'n3-again'));
    assert.equal(n3.member.id, added.member.id);
    await eventually('n3 to catch up', async () =>
      (await n3.member.range({ key: 'a', serializable: true })).count === 1 ? true : undefined,
    );
    // restarted, it finds its id in its own file (its peers need not answer)
    await n3.close();
    const back = await start('n3', 'existing', join(dir, 'n3-again'));
    assert.equal(back.member.id, added.member.id);
    await retry('a write after', () => n1.member.put({ key: 'b', value: '2' }));
    await eventually('n3 to see it', async () =>
      (await back.member.range({ key: 'b', serializable: true })).count === 1 ? true : undefined,
    );
    // restarted with --initial-cluster-state new (as a supervisor that always passes the same flags
    // does): the file's id wins over the one computed from the URLs, as etcd ignores the flag once
    // the data dir exists; with the computed id it would drop every message addressed to it
    await back.close();
    const again = await start('n3', 'new', join(dir, 'n3-again'));
    assert.equal(again.member.id, added.member.id);
    await retry('a write after a restart with state new', () => n1.member.put({ key: 'c', value: '3' }));
    await eventually('n3 to see it after a restart with state new', async () =>
      (await again.member.range({ key: 'c', serializable: true })).count === 1 ? true : undefined,
    );
    // a member nobody added is refused with etcd's error rather than started under a guessed id
    spec.push({ name: 'n9', peerURLs: [`http://127.0.0.1:${await freePort()}`] });
    await assert.rejects(start('n9', 'existing'), (e: unknown) => isBoltkvError(e, 'ERR_MEMBER_NOT_FOUND'));
  } finally {
    for (const n of nodes.values()) await n.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
