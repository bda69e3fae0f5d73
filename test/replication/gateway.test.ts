// The gateway serves a replicated member as it serves openStore's store (Member implements KV):
// etcd's JSON API on each member of a loopback cluster, writes through one visible through another.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ReplicatedNode, type ClusterMemberSpec } from '../../src/replication/index.ts';
import { serve, createLogger } from '../../src/server/index.ts';
import { EtcdGateway, freePort } from '../support/etcd.ts';

test('serve({ kv: member }) answers etcd JSON on every member of a replicated cluster', {
  timeout: 60_000,
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'boltkv-repl-gw-'));
  const spec: ClusterMemberSpec[] = [];
  for (const name of ['g1', 'g2', 'g3']) spec.push({ name, peerURLs: [`http://127.0.0.1:${await freePort()}`] });
  const nodes = await Promise.all(
    spec.map((s) =>
      ReplicatedNode.start({
        name: s.name,
        dataDir: join(dir, s.name),
        listenPeerURL: s.peerURLs[0]!,
        initialCluster: spec,
        tickMs: 20,
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
  const gws = servers.map((s) => new EtcdGateway(s.urls[0]!));
  try {
    const end = Date.now() + 30_000;
    while (!nodes.every((n) => n.member.memberStatus().leader !== 0) && Date.now() < end)
      await new Promise((r) => setTimeout(r, 20));
    for (;;) {
      try {
        await gws[1]!.put({ key: Buffer.from('via-g2'), value: Buffer.from('hello') });
        break;
      } catch (e) {
        if (Date.now() > end) throw e;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    const r = (await gws[2]!.range({ key: Buffer.from('via-g2') })) as {
      kvs?: { value: Uint8Array }[];
      header: { revision: number };
    };
    assert.equal(Buffer.from(r.kvs![0]!.value).toString(), 'hello');
    const s = (await gws[0]!.call('/v3/maintenance/status', {})) as { version?: string };
    assert.ok(s.version !== undefined);
  } finally {
    for (const g of gws) g.destroy();
    for (const s of servers) await s.close();
    for (const n of nodes) await n.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
