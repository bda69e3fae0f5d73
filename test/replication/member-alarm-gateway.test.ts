// NOSPACE through the JSON gateway of a replicated cluster, diffed with a real etcd 3.4: the same
// refusal, the same alarm list shape (raised by the member with the tiny quota, listed by every
// member), and disarm through another member as etcdctl does it (DEACTIVATE with the member id).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ReplicatedNode, type ClusterMemberSpec } from '../../src/replication/index.ts';
import { serve, createLogger } from '../../src/server/index.ts';
import { freePort, requireEtcd, startEtcd } from '../support/etcd.ts';

const QUOTA = 256 * 1024;
const VALUE = Buffer.alloc(16 * 1024, 'x').toString('base64');

async function post(
  base: string,
  path: string,
  body: unknown,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(base + path, { method: 'POST', body: JSON.stringify(body) });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

/** Puts big values until the answer is not 200; returns that answer. */
async function fillUntilRefused(base: string): Promise<{ status: number; json: Record<string, unknown> }> {
  for (let i = 0; i < 200; i++) {
    const r = await post(base, '/v3/kv/put', { key: Buffer.from(`big${i}`).toString('base64'), value: VALUE });
    if (r.status !== 200) return r;
  }
  throw new Error('never refused');
}

async function eventually<T>(f: () => Promise<T>, ok: (v: T) => boolean, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (ok(v) || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('NOSPACE on a replicated cluster answers like etcd: refusal, alarm list on every member, disarm through another', {
  timeout: 60_000,
}, async (t) => {
  if (!requireEtcd(t)) return;
  const etcd = await startEtcd({ extraArgs: ['--quota-backend-bytes', String(QUOTA)] });
  const dir = mkdtempSync(join(tmpdir(), 'boltkv-alarm-gw-'));
  const spec: ClusterMemberSpec[] = [];
  for (const name of ['a1', 'a2', 'a3']) spec.push({ name, peerURLs: [`http://127.0.0.1:${await freePort()}`] });
  const nodes = await Promise.all(
    spec.map((s) =>
      ReplicatedNode.start({
        name: s.name,
        dataDir: join(dir, s.name),
        listenPeerURL: s.peerURLs[0]!,
        initialCluster: spec,
        tickMs: 20,
        ...(s.name === 'a3' ? { quotaBackendBytes: QUOTA } : {}),
      }),
    ),
  );
  const servers = await Promise.all(
    nodes.map((n) =>
      serve({
        kv: n.member,
        listen: 'http://127.0.0.1:0',
        name: n.member.id.toString(),
        logger: createLogger('error'),
      }),
    ),
  );
  const urls = servers.map((s) => s.urls[0]!);
  try {
    const end = Date.now() + 30_000;
    while (!nodes.every((n) => n.member.memberStatus().leader !== 0) && Date.now() < end)
      await new Promise((r) => setTimeout(r, 20));
    const tinyId = String(nodes[2]!.member.id);

    const etcdRefused = await fillUntilRefused(etcd.url);
    const boltRefused = await fillUntilRefused(urls[2]!);
    assert.deepEqual(boltRefused, etcdRefused);
    assert.match(String(etcdRefused.json.error), /database space exceeded/);

    const etcdList = await post(etcd.url, '/v3/maintenance/alarm', { action: 'GET' });
    const etcdId = (etcdList.json.alarms as { memberID: string }[])[0]!.memberID;
    const shape = (r: { status: number; json: Record<string, unknown> }, id: string): string =>
      JSON.stringify(r).replaceAll(id, '<id>');
    // every member lists the alarm the tiny member raised, in etcd's shape
    for (const url of urls) {
      const l = await eventually(
        () => post(url, '/v3/maintenance/alarm', { action: 'GET' }),
        (r) => Array.isArray(r.json.alarms),
      );
      assert.equal(shape(l, tinyId), shape(etcdList, etcdId), url);
      assert.deepEqual(l.json.alarms, [{ memberID: tinyId, alarm: 'NOSPACE' }]);
    }
    // a write through a member far from its own quota is refused too, with the same answer
    const tiny = await post(etcd.url, '/v3/kv/put', { key: 'dA==', value: 'MQ==' });
    assert.deepEqual(await post(urls[0]!, '/v3/kv/put', { key: 'dA==', value: 'MQ==' }), tiny);

    // etcdctl alarm disarm: DEACTIVATE each listed alarm by member id; here through member a1
    const etcdOff = await post(etcd.url, '/v3/maintenance/alarm', {
      action: 'DEACTIVATE',
      memberID: etcdId,
      alarm: 'NOSPACE',
    });
    const boltOff = await post(urls[0]!, '/v3/maintenance/alarm', {
      action: 'DEACTIVATE',
      memberID: tinyId,
      alarm: 'NOSPACE',
    });
    assert.equal(shape(boltOff, tinyId), shape(etcdOff, etcdId));
    for (const url of urls) {
      const l = await eventually(
        () => post(url, '/v3/maintenance/alarm', { action: 'GET' }),
        (r) => r.json.alarms === undefined,
      );
      assert.deepEqual(l, await post(etcd.url, '/v3/maintenance/alarm', { action: 'GET' }), url);
    }
    const put = await post(urls[0]!, '/v3/kv/put', { key: 'dA==', value: 'MQ==' });
    assert.equal(put.status, 200);

    // ACTIVATE CORRUPT by hand through one member: the same answer as etcd's, listed by every
    // member, every write refused through another with etcd's answer; DEACTIVATE through a third.
    const corrupt = { action: 'ACTIVATE', memberID: '7', alarm: 'CORRUPT' };
    assert.deepEqual(
      await post(urls[1]!, '/v3/maintenance/alarm', corrupt),
      await post(etcd.url, '/v3/maintenance/alarm', corrupt),
    );
    for (const url of urls) {
      const l = await eventually(
        () => post(url, '/v3/maintenance/alarm', { action: 'GET', alarm: 'CORRUPT' }),
        (r) => Array.isArray(r.json.alarms),
      );
      assert.deepEqual(l, await post(etcd.url, '/v3/maintenance/alarm', { action: 'GET', alarm: 'CORRUPT' }), url);
    }
    // Writes that add nothing (no quota check first): refused by the corrupt applier on both. (A put
    // would meet the size check first on both, as NOSPACE, and etcd then swaps its corrupt applier
    // for the capped one until a restart: boltkv keeps refusing as CORRUPT, as etcd does after one.)
    for (const [path, body] of [
      ['/v3/kv/deleterange', { key: 'dA==' }],
      ['/v3/kv/txn', { success: [{ request_delete_range: { key: 'dA==' } }] }],
      ['/v3/kv/compaction', { revision: '1' }],
    ] as const) {
      const want = await post(etcd.url, path, body);
      assert.equal(want.status, 500, path);
      assert.deepEqual(await post(urls[0]!, path, body), want, path);
    }
    const off = { action: 'DEACTIVATE', memberID: '7', alarm: 'CORRUPT' };
    assert.deepEqual(
      await post(urls[2]!, '/v3/maintenance/alarm', off),
      await post(etcd.url, '/v3/maintenance/alarm', off),
    );
    const after = await eventually(
      () => post(urls[0]!, '/v3/kv/put', { key: 'dA==', value: 'Mw==' }),
      (r) => r.status === 200,
    );
    assert.equal(after.status, 200);
  } finally {
    for (const s of servers) await s.close();
    for (const n of nodes) await n.close();
    await etcd.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
