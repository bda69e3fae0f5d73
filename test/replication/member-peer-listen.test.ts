// Several --listen-peer-urls, as etcd accepts: the member listens on each, and peers reach it
// through either (one peer per address at the transport; a whole cluster re-dialling the second).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Message } from '../../src/raft/index.ts';
import { PeerTransport, type PeerHandler } from '../../src/replication/transport.ts';
import { ReplicatedNode, type ClusterMemberSpec } from '../../src/replication/node.ts';
import { isBoltkvError } from '../../src/errors.ts';
import { freePort } from '../support/etcd.ts';
import { eventually } from '../support/eventually.ts';
import { fetchMemberList } from '../../src/replication/member-join.ts';
import { runServe } from '../../src/server/serve-command.ts';

function handler(got: Message[]): PeerHandler {
  return {
    step: (m) => void got.push(m),
    reportUnreachable: () => undefined,
    reportSnapshot: () => undefined,
    snapshotChunks: function* () {},
    receiveSnapshot: async () => undefined,
  };
}

const heartbeat = (from: number): Message => ({
  type: 'heartbeat',
  from,
  to: 1,
  term: 3,
  logTerm: 0,
  index: 0,
  entries: [],
  commit: 0,
  reject: false,
  rejectHint: 0,
});

test('a transport listening on two addresses takes messages from a peer dialling each', async () => {
  const [a, b] = [await freePort(), await freePort()];
  const got: Message[] = [];
  const t1 = new PeerTransport({
    id: 1,
    host: '127.0.0.1',
    port: a,
    alsoListen: [{ host: '127.0.0.1', port: b }],
    resolve: () => undefined,
  });
  t1.attach(handler(got));
  const t2 = new PeerTransport({ id: 2, resolve: (id) => (id === 1 ? `http://127.0.0.1:${a}` : undefined) });
  const t3 = new PeerTransport({ id: 3, resolve: (id) => (id === 1 ? `http://127.0.0.1:${b}` : undefined) });
  try {
    assert.equal(await t1.listen(), a);
    assert.deepEqual(t1.ports, [a, b]);
    for (const t of [t2, t3]) {
      t.attach(handler([]));
      await t.listen();
    }
    t2.send([heartbeat(2)]);
    t3.send([heartbeat(3)]);
    await eventually('both heartbeats', () => (got.length >= 2 ? got : undefined), 10_000);
    assert.deepEqual(got.map((m) => m.from).sort(), [2, 3]);
    // a port already taken fails listen() cleanly (nothing left bound)
    const t4 = new PeerTransport({
      id: 4,
      host: '127.0.0.1',
      port: 0,
      alsoListen: [{ host: '127.0.0.1', port: b }],
      resolve: () => undefined,
    });
    await assert.rejects(t4.listen(), /EADDRINUSE/);
  } finally {
    for (const t of [t1, t2, t3]) await t.close();
  }
});

test('a member listening on two peer URLs keeps its cluster when every peer moves to the second', {
  timeout: 60_000,
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'boltkv-peer-listen-'));
  const nodes = new Map<string, ReplicatedNode>();
  try {
    const first = `http://127.0.0.1:${await freePort()}`;
    const second = `http://127.0.0.1:${await freePort()}`;
    const spec: ClusterMemberSpec[] = [
      { name: 'n1', peerURLs: [first] },
      { name: 'n2', peerURLs: [`http://127.0.0.1:${await freePort()}`] },
      { name: 'n3', peerURLs: [`http://127.0.0.1:${await freePort()}`] },
    ];
    const start = async (s: ClusterMemberSpec): Promise<ReplicatedNode> => {
      const n = await ReplicatedNode.start({
        name: s.name,
        dataDir: join(dir, s.name),
        initialCluster: spec,
        tickMs: 20,
        listenPeerURLs: s.name === 'n1' ? [first, second] : s.peerURLs,
      });
      nodes.set(s.name, n);
      return n;
    };
    for (const s of spec) await start(s);
    const n1 = nodes.get('n1')!;
    assert.deepEqual(n1.transport.ports, [Number(new URL(first).port), Number(new URL(second).port)]);
    const write = (n: ReplicatedNode, key: string) =>
      eventually(`write ${key}`, async () => {
        try {
          return await n.member.put({ key, value: 'v' });
        } catch (e) {
          if (isBoltkvError(e, 'ERR_NO_LEADER') || isBoltkvError(e, 'ERR_TIMEOUT')) return undefined;
          throw e;
        }
      });
    await write(n1, 'before');
    // n1 now advertises only its second URL; the others restart, so they can only dial that one
    await eventually('update', async () => n1.member.memberUpdate(n1.member.id, [second]).catch(() => undefined));
    await eventually('n2, n3 see it', () =>
      ['n2', 'n3'].every(
        (n) =>
          nodes
            .get(n)!
            .member.memberList()
            .find((m) => m.id === n1.member.id)?.peerURLs[0] === second,
      )
        ? true
        : undefined,
    );
    for (const name of ['n2', 'n3']) {
      await nodes.get(name)!.close();
      await start(spec.find((s) => s.name === name)!);
    }
    // n1 gets the others' answers only if they reach it on the second URL
    await write(n1, 'after');
    for (const name of ['n2', 'n3']) {
      const m = nodes.get(name)!.member;
      const r = await eventually(`${name} has it`, async () => {
        const got = await m.range({ key: 'after', serializable: true });
        return got.count === 1 ? got : undefined;
      });
      assert.equal(r.count, 1);
    }
  } finally {
    for (const n of nodes.values()) await n.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('boltkv serve --listen-peer-urls a,b listens on both', { timeout: 30_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'boltkv-serve-listen-'));
  const [a, b] = [`http://127.0.0.1:${await freePort()}`, `http://127.0.0.1:${await freePort()}`];
  const client = `http://127.0.0.1:${await freePort()}`;
  const stop = new AbortController();
  const running = runServe(
    [
      '--name',
      's1',
      '--data-dir',
      join(dir, 's1'),
      '--listen-client-urls',
      client,
      '--advertise-client-urls',
      client,
      '--listen-peer-urls',
      `${a},${b}`,
      '--initial-advertise-peer-urls',
      a,
      '--initial-cluster',
      `s1=${a}`,
      '--heartbeat-interval',
      '20',
    ],
    { signal: stop.signal, handleSignals: false, out: () => undefined, err: () => undefined },
  );
  try {
    for (const url of [a, b]) {
      const list = await eventually(
        `member list on ${url}`,
        () => fetchMemberList(url, 1000).catch(() => undefined),
        20_000,
      );
      assert.deepEqual(
        list.map((m) => m.peerURLs),
        [[a]],
        url,
      );
    }
  } finally {
    stop.abort();
    assert.equal(await running, 0);
    rmSync(dir, { recursive: true, force: true });
  }
});
