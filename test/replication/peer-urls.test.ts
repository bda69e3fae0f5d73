// A member advertising several peer URLs over loopback TCP: peers dial them in order and move on
// when one refuses, and every member's name and client URLs reach everyone's member list.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ClusterMemberSpec, ReplicatedNode } from '../../src/replication/node.ts';
import { isBoltkvError } from '../../src/errors.ts';
import { eventually } from '../support/eventually.ts';
import { TestNodes, loopbackURL } from '../support/replicated-nodes.ts';

test('peers reach a member through its second peer URL when the first refuses; client URLs are published', async () => {
  const t = new TestNodes('boltkv-peer-urls-');
  const nodes = (): ReplicatedNode[] => [...t.nodes.values()];
  try {
    const dead = await loopbackURL(); // nothing listens here
    const listen: Record<string, string> = {};
    for (const name of ['n1', 'n2', 'n3']) listen[name] = await loopbackURL();
    const spec: ClusterMemberSpec[] = [
      { name: 'n1', peerURLs: [listen.n1!] },
      { name: 'n2', peerURLs: [listen.n2!] },
      { name: 'n3', peerURLs: [dead, listen.n3!] },
    ];
    for (const [i, s] of spec.entries()) {
      await t.start(s.name, spec, { listenPeerURL: listen[s.name]!, clientURLs: [`http://127.0.0.1:${2379 + i}`] });
    }
    const n3 = t.nodes.get('n3')!;
    const leader = await t.leader();
    await eventually('a write', async () => {
      try {
        return await leader.member.put({ key: 'k', value: 'v' });
      } catch (e) {
        if (isBoltkvError(e, 'ERR_NO_LEADER') || isBoltkvError(e, 'ERR_TIMEOUT')) return undefined;
        throw e;
      }
    });
    const r = await eventually('the write on n3', async () => {
      const got = await n3.member.range({ key: 'k', serializable: true });
      return got.count === 1 ? got : undefined;
    });
    assert.equal(Buffer.from(r.kvs[0]!.value).toString(), 'v');
    const expected = spec.map((s, i) => ({
      name: s.name,
      peerURLs: s.peerURLs,
      clientURLs: [`http://127.0.0.1:${2379 + i}`],
    }));
    for (const n of nodes()) {
      const list = await eventually(`published attributes on ${n.member.id}`, () => {
        const l = n.member
          .memberList()
          .map((m) => ({ name: m.name, peerURLs: m.peerURLs, clientURLs: m.clientURLs }))
          .sort((a, b) => a.name.localeCompare(b.name));
        return l.every((m) => m.clientURLs.length > 0) ? l : undefined;
      });
      assert.deepEqual(list, expected);
    }
  } finally {
    await t.close();
  }
});
