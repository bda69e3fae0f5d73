// `boltkv serve` with etcd's cluster flags, as real processes: three members bootstrap from
// --initial-cluster, a write through one is read (linearizable) through another, member/list shows
// the three, a learner added with member/add starts with --initial-cluster-state existing, catches
// up and serves a serializable read, refuses a put with etcd's 503, and SIGTERM stops every member.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../support/etcd.ts';
import { b64 } from '../server/support.ts';
import { runServe } from '../../src/server/serve-command.ts';
import { eventually } from '../support/eventually.ts';
import { type ServeProc, killServes, postJson, startServe, stopServes } from '../support/serve-proc.ts';

test('boltkv serve with --initial-cluster: three processes form a cluster, a learner joins with state existing', {
  timeout: 60_000,
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'boltkv-serve-cluster-'));
  const procs: ServeProc[] = [];
  try {
    const names = ['s1', 's2', 's3'];
    const peers = await Promise.all(names.map(async () => `http://127.0.0.1:${await freePort()}`));
    const initial = names.map((n, i) => `${n}=${peers[i]}`).join(',');
    for (const [i, n] of names.entries())
      procs.push(startServe(dir, n, peers[i]!, initial, { state: 'new', token: 'serve-cluster-test' }));
    const [a, b, c] = (await Promise.all(procs.map((p) => p.client))) as [string, string, string];

    // A put through s1 (retried until a leader is elected), read linearizably through s2.
    await eventually('a put through s1', async () => {
      const r = await postJson(a, '/v3/kv/put', { key: b64('greeting'), value: b64('hello') });
      return r.status === 200 ? r : undefined;
    });
    const read = await postJson(b, '/v3/kv/range', { key: b64('greeting') });
    assert.equal(read.status, 200);
    const kvs = read.json.kvs as { value: string }[];
    assert.equal(Buffer.from(kvs[0]!.value, 'base64').toString(), 'hello');

    // member/list: the three members with their peer URLs, the same on every member.
    const list = await postJson(c, '/v3/cluster/member/list', {});
    assert.equal(list.status, 200);
    const members = list.json.members as { ID: string; name: string; peerURLs: string[]; isLearner?: boolean }[];
    assert.deepEqual(members.map((m) => m.peerURLs[0]).sort(), [...peers].sort());
    assert.ok(members.every((m) => m.isLearner !== true));
    const header = list.json.header as { cluster_id: string; member_id: string };
    const listA = await postJson(a, '/v3/cluster/member/list', {});
    assert.equal((listA.json.header as { cluster_id: string }).cluster_id, header.cluster_id);
    assert.notEqual((listA.json.header as { member_id: string }).member_id, header.member_id);

    // member/add a learner (through a follower or the leader alike), then start it as existing.
    const peer4 = `http://127.0.0.1:${await freePort()}`;
    const added = await eventually('member/add', async () => {
      const r = await postJson(b, '/v3/cluster/member/add', { peerURLs: [peer4], isLearner: true });
      return r.status === 200 ? r : undefined;
    });
    const newMember = added.json.member as { ID: string; peerURLs: string[]; isLearner: boolean };
    assert.equal(newMember.isLearner, true);
    assert.deepEqual(newMember.peerURLs, [peer4]);
    assert.equal((added.json.members as unknown[]).length, 4);
    const d = startServe(dir, 's4', peer4, `${initial},s4=${peer4}`, {
      state: 'existing',
      token: 'serve-cluster-test',
    });
    procs.push(d);
    const learner = await d.client;

    // The learner catches up and answers a serializable range with the data.
    let lastLearner = '';
    await eventually(
      () =>
        `the learner to serve the data (last answer ${lastLearner}; exit ${d.child.exitCode}; stderr ${d.stderr()})`,
      async () => {
        const r = await postJson(learner, '/v3/kv/range', { key: b64('greeting'), serializable: true });
        lastLearner = JSON.stringify(r.json);
        const v = (r.json.kvs as { value: string }[] | undefined)?.[0]?.value;
        return v !== undefined && Buffer.from(v, 'base64').toString() === 'hello' ? true : undefined;
      },
      40_000,
    );
    const learnerList = await postJson(a, '/v3/cluster/member/list', {});
    const four = learnerList.json.members as { ID: string; isLearner?: boolean }[];
    assert.equal(four.length, 4);
    assert.equal(four.find((m) => m.ID === newMember.ID)?.isLearner, true);

    // A learner refuses writes as etcd does: gRPC 14, HTTP 503.
    const refused = await postJson(learner, '/v3/kv/put', { key: b64('k'), value: b64('v') });
    assert.equal(refused.status, 503);
    assert.equal(refused.json.code, 14);
    assert.equal(refused.json.message, 'etcdserver: rpc not supported for learner');

    // Removing a member that does not exist: etcd's NotFound.
    const missing = await postJson(a, '/v3/cluster/member/remove', { ID: '12345' });
    assert.equal(missing.status, 404);
    assert.equal(missing.json.message, 'etcdserver: member not found');

    // SIGTERM: every member exits 0.
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

test('runServe: malformed cluster flags are usage errors (exit 2), before anything listens', async () => {
  const cases: [string[], RegExp][] = [
    [['--name', 'x', '--initial-cluster', 'a=http://127.0.0.1:1'], /no member named "x"/],
    [['--name', 'a', '--initial-cluster', 'a'], /invalid --initial-cluster/],
    [
      ['--name', 'a', '--initial-cluster', 'a=http://127.0.0.1:1', '--initial-cluster-state', 'old'],
      /initial-cluster-state/,
    ],
    [
      [
        '--name',
        'a',
        '--initial-cluster',
        'a=http://127.0.0.1:1',
        '--initial-advertise-peer-urls',
        'http://127.0.0.1:2',
      ],
      /do not match/,
    ],
    [
      ['--name', 'a', '--initial-cluster', 'a=http://127.0.0.1:1', '--listen-peer-urls', 'https://127.0.0.1:1'],
      /only http/,
    ],
    [['--name', 'a', '--initial-cluster', 'a=http://127.0.0.1:1', '--heartbeat-interval', '0'], /heartbeat-interval/],
    [['--name', 'a', '--initial-cluster', 'a=http://127.0.0.1:1', '--snapshot-count', '0'], /snapshot-count/],
    [
      ['--name', 'a', '--initial-cluster', 'a=http://127.0.0.1:1', '--experimental-snapshot-catchup-entries', 'many'],
      /experimental-snapshot-catchup-entries/,
    ],
  ];
  for (const [argv, re] of cases) {
    let err = '';
    const code = await runServe(argv, { err: (s) => void (err += s), out: () => undefined, handleSignals: false });
    assert.equal(code, 2, argv.join(' '));
    assert.match(err, re);
    assert.match(err, /ERR_USAGE/);
  }
});
