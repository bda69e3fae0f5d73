// Members on real files talking raft over loopback TCP: replication, a leader crash and restart,
// a learner joining through a streamed snapshot and promoted; and the frame codec's bounds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:net';
import { ReplicatedNode } from '../../src/replication/node.ts';
import { FrameReader, encodeFrame, MAX_FRAME } from '../../src/replication/frames.ts';
import { memberIdFor, parseInitialCluster } from '../../src/replication/member-id.ts';
import { isBoltkvError } from '../../src/errors.ts';
import { makeMessage } from '../../src/raft/types.ts';
import { freePort } from '../support/etcd.ts';
import { eventually } from '../support/eventually.ts';
import { TestNodes, clusterSpec, loopbackURL, retryUnavailable as retry } from '../support/replicated-nodes.ts';

const dec = (b: Uint8Array | undefined): string | undefined =>
  b === undefined ? undefined : Buffer.from(b).toString();

test('three members over loopback TCP: replicate, survive a leader crash, add a learner by streamed snapshot and promote it', {
  timeout: 60_000,
}, async () => {
  const t = new TestNodes('boltkv-repl-');
  const { nodes } = t;
  const leaderOf = (): Promise<ReplicatedNode> => t.leader();
  try {
    const spec = await clusterSpec(['n1', 'n2', 'n3']);
    const start = (name: string, state: 'new' | 'existing' = 'new', cluster = spec): Promise<ReplicatedNode> =>
      t.start(name, cluster, {
        initialClusterState: state,
        electionTick: 10,
        snapshotCount: 50,
        catchUpEntries: 5,
        requestTimeoutTicks: 100,
      });
    for (const s of spec) await start(s.name);
    let leader = await leaderOf();
    const follower = [...nodes.values()].find((n) => n !== leader)!;
    for (let i = 0; i < 20; i++) await retry(() => follower.member.put({ key: `k${i}`, value: `v${i}` }));
    const r = await leader.member.range({ key: 'k', rangeEnd: 'l' });
    assert.equal(r.count, 20);

    // crash the leader; the others elect a new one and keep serving
    const oldName = [...nodes].find(([, n]) => n === leader)![0];
    await leader.crash();
    nodes.delete(oldName);
    leader = await leaderOf();
    await retry(() => leader.member.put({ key: 'after-crash', value: '1' }));
    await start(oldName);
    const back = nodes.get(oldName)!;
    await eventually('the restarted member to catch up', async () =>
      (await back.member.range({ key: 'after-crash', serializable: true })).count === 1 ? true : undefined,
    );

    // many writes so the log is compacted, then a learner joins: it can only be caught up by a snapshot
    leader = await leaderOf();
    await Promise.all(
      Array.from({ length: 150 }, (_, i) =>
        retry(() => leader.member.put({ key: `bulk${i}`, value: 'x'.repeat(2000) })),
      ),
    );
    const learnerURL = await loopbackURL();
    leader = await leaderOf();
    const added = await retry(() => leader.member.memberAdd({ peerURLs: [learnerURL], isLearner: true, name: 'n4' }));
    const spec4 = [...spec, { name: 'n4', peerURLs: [learnerURL] }];
    const learner = await start('n4', 'existing', spec4);
    assert.equal(learner.member.id, added.member.id, 'the joining member learned the id it was added with');
    try {
      await eventually('the learner to catch up', async () =>
        (await learner.member.range({ key: 'bulk', rangeEnd: 'bulm', serializable: true, countOnly: true })).count ===
        150
          ? true
          : undefined,
      );
    } catch (err) {
      const l = await leaderOf();
      const prog = [...(l.member.raftStatus().progress ?? new Map())].map(
        ([id, p]) => `${id}:${p.state}/${p.match}/${p.next}/snap${p.pendingSnapshot}/paused${p.paused}`,
      );
      throw new Error(
        `${String(err)}; leader ${l.member.id} progress ${prog.join(' ')}; leader transport ${JSON.stringify(l.transport.stats)}; learner ${JSON.stringify(learner.transport.stats)} status ${JSON.stringify(learner.member.memberStatus())} failed ${String(learner.member.failed)}`,
      );
    }
    assert.ok(learner.transport.stats.snapshotsReceived >= 1, 'caught up by a streamed snapshot');
    assert.deepEqual(readdirSync(t.dataDir('n4')), ['boltkv.db'], 'the received file was renamed into place');
    await assert.rejects(learner.member.range({ key: 'k' }), (e: unknown) =>
      isBoltkvError(e, 'ERR_LEARNER_NOT_SUPPORTED'),
    );
    leader = await leaderOf();
    await eventually('promotion', async () => {
      try {
        return await leader.member.memberPromote(learner.member.id);
      } catch (e) {
        if (isBoltkvError(e, 'ERR_LEARNER_NOT_READY')) return undefined;
        throw e;
      }
    });
    await eventually('the learner to learn it is a voter', () => (learner.member.isLearner ? undefined : true));
    const w = await retry(() => learner.member.put({ key: 'from-n4', value: 'ok' }));
    assert.ok(w.header.revision > 170);
    const got = await retry(() => follower.member.range({ key: 'from-n4' }));
    assert.equal(dec(got.kvs[0]?.value), 'ok');
  } finally {
    await t.close({ check: true });
  }
});

test('peer frames: bounded, and garbage closes the connection instead of throwing', async () => {
  const r = new FrameReader();
  const f = encodeFrame({ t: 'chunk', d: new Uint8Array([1, 2, 3]) });
  // split delivery
  assert.deepEqual(r.push(f.subarray(0, 3)), []);
  const out = r.push(f.subarray(3));
  assert.equal(out.length, 1);
  assert.deepEqual([...(out[0] as { d: Uint8Array }).d], [1, 2, 3]);
  const big = new Uint8Array(8);
  new DataView(big.buffer).setUint32(0, MAX_FRAME + 1);
  assert.throws(
    () => new FrameReader().push(big),
    (e: unknown) => isBoltkvError(e, 'ERR_CORRUPT'),
  );
  assert.throws(
    () => new FrameReader().push(new Uint8Array([0, 0, 0, 1, 0xc1])),
    (e: unknown) => isBoltkvError(e, 'ERR_CORRUPT'),
  );
  // a live transport drops a connection that sends garbage, and keeps serving
  const dir = mkdtempSync(join(tmpdir(), 'boltkv-frames-'));
  const url = `http://127.0.0.1:${await freePort()}`;
  const node = await ReplicatedNode.start({
    name: 'solo',
    dataDir: dir,
    listenPeerURL: url,
    initialCluster: [{ name: 'solo', peerURLs: [url] }],
    tickMs: 10,
  });
  try {
    const closed = await new Promise<boolean>((resolve) => {
      const s = connect({ host: '127.0.0.1', port: node.peerPort }, () =>
        s.write(new Uint8Array([0xff, 0xff, 0xff, 0xff, 1, 2])),
      );
      s.on('close', () => resolve(true));
      s.on('error', () => undefined);
    });
    assert.ok(closed);
    await eventually('the single member to lead', () =>
      node.member.memberStatus().leader === node.member.id ? true : undefined,
    );
    await node.member.put({ key: 'still', value: 'fine' });
  } finally {
    await node.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('--initial-cluster parsing and member ids', () => {
  const m = parseInitialCluster('n1=http://127.0.0.1:2380,n2=http://127.0.0.1:2381,n1=http://10.0.0.1:2380');
  assert.deepEqual(m.get('n1'), ['http://127.0.0.1:2380', 'http://10.0.0.1:2380']);
  assert.throws(() => parseInitialCluster('n1'), /name=url/);
  assert.throws(() => parseInitialCluster('n1=not a url'));
  assert.equal(memberIdFor(['http://a:1', 'http://b:2']), memberIdFor(['http://b:2', 'http://a:1']));
  assert.notEqual(memberIdFor(['http://a:1']), memberIdFor(['http://a:1'], 'other-token'));
  assert.ok(Number.isSafeInteger(memberIdFor(['http://a:1'])));
});

test('a snapshot send cut off while waiting for the receiver ends its read transaction and reports failure', {
  timeout: 20_000,
}, async () => {
  const { createServer } = await import('node:net');
  const { PeerTransport } = await import('../../src/replication/transport.ts');
  // A receiver that takes a few bytes, stops reading (so the sender waits for 'drain'), then dies.
  const sockets: import('node:net').Socket[] = [];
  const srv = createServer((s) => {
    sockets.push(s);
    s.once('data', () => {
      s.pause();
      setTimeout(() => s.destroy(), 200);
    });
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as { port: number }).port;
  let released = false;
  let produced = 0;
  const verdicts: string[] = [];
  const t = new PeerTransport({ id: 1, resolve: (id) => (id === 2 ? `http://127.0.0.1:${port}` : undefined) });
  t.attach({
    step: () => undefined,
    reportUnreachable: () => undefined,
    reportSnapshot: (_id, st) => void verdicts.push(st),
    snapshotChunks: function* () {
      try {
        for (;;) {
          produced++;
          yield new Uint8Array(1 << 20);
        }
      } finally {
        released = true;
      }
    },
    receiveSnapshot: async () => undefined,
  });
  try {
    t.send([
      makeMessage({
        type: 'snap',
        to: 2,
        from: 1,
        term: 1,
        snapshot: {
          data: new Uint8Array(0),
          metadata: { index: 5, term: 1, confState: { voters: [1], learners: [2] } },
        },
      }),
    ]);
    await eventually('the failure verdict and the released copy', () =>
      verdicts.length > 0 && released ? true : undefined,
    );
    assert.deepEqual(verdicts, ['failure']);
    assert.ok(produced < 64, `the sender stopped reading the file (${produced} chunks)`);
  } finally {
    await t.close();
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => srv.close(() => r()));
  }
});
