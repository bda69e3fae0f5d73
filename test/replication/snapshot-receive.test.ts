// A leader may send the same snapshot twice: a stale rejection from the learner (sent before the
// first snapshot arrived, delivered after it) sends the leader's probe back below its first index.
// The second copy then arrives while the first is being installed. It must neither touch the file
// being installed nor leave a copy behind, and the learner must end up with the leader's data.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Message } from '../../src/raft/index.ts';
import type { PeerHandler } from '../../src/replication/transport.ts';
import { eventually } from '../support/eventually.ts';
import { TestNodes, clusterSpec, loopbackURL } from '../support/replicated-nodes.ts';

async function* slowly(chunks: Iterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  for (const c of chunks) {
    await new Promise((r) => setImmediate(r));
    yield c;
  }
}

test('a snapshot received twice while the first copy is installed: the learner gets the data, no copy is left behind', {
  timeout: 60_000,
}, async () => {
  const t = new TestNodes('boltkv-snap-recv-');
  try {
    const spec = await clusterSpec(['n1']);
    const leader = await t.start('n1', spec);
    await eventually('n1 to lead', () => (leader.member.memberStatus().leader === leader.member.id ? true : undefined));
    for (let i = 0; i < 50; i++) await leader.member.put({ key: `k${i}`, value: 'x'.repeat(3000) });

    const url = await loopbackURL();
    await leader.member.memberAdd({ peerURLs: [url], isLearner: true, name: 'n2' });
    // A leftover from an earlier life of this member: cleaned up at start.
    const learnerDir = t.dataDir('n2');
    rmSync(learnerDir, { recursive: true, force: true });
    mkdirSync(learnerDir, { recursive: true });
    writeFileSync(join(learnerDir, 'boltkv.db.snap.3.7'), 'stale');
    const learner = await t.start('n2', [...spec, { name: 'n2', peerURLs: [url] }], {
      initialClusterState: 'existing',
    });
    assert.ok(!existsSync(join(learnerDir, 'boltkv.db.snap.3.7')), 'a stale received file is removed at start');

    // Every snapshot that arrives is delivered a second time right behind the first, from a fresh
    // copy of the leader's file, as a duplicate send would deliver it.
    let duplicates = 0;
    const m = learner.member;
    const doubling: PeerHandler = {
      step: (msg) => m.step(msg),
      reportUnreachable: (id) => m.reportUnreachable(id),
      reportSnapshot: (id, s) => m.reportSnapshot(id, s),
      snapshotChunks: () => m.snapshotChunks(),
      receiveSnapshot: (msg: Message, chunks) => {
        const first = m.receiveSnapshot(msg, chunks);
        duplicates++;
        const second = m.receiveSnapshot(msg, slowly(leader.member.snapshotChunks()));
        second.catch(() => undefined);
        return first;
      },
    };
    learner.transport.attach(doubling);

    await eventually('the learner to hold the data', async () => {
      const r = await learner.member.range({ key: 'k', rangeEnd: 'l', serializable: true, countOnly: true });
      return r.count === 50 ? true : undefined;
    });
    assert.ok(duplicates >= 1, 'the learner was sent a snapshot');
    // Writes after the snapshot arrive through the log.
    await leader.member.put({ key: 'after', value: 'log' });
    await eventually('the learner to apply a later write', async () => {
      const r = await learner.member.range({ key: 'after', serializable: true });
      return r.count === 1 ? true : undefined;
    });
    await eventually('received copies to be cleaned up', () =>
      readdirSync(learnerDir).filter((f) => f !== 'boltkv.db').length === 0 ? true : undefined,
    );
    assert.equal(learner.member.failed, undefined);
  } finally {
    await t.close({ check: true });
  }
});
