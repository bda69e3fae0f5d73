/**
 * Maintenance over the gateway where the store offers it: the space quota's NOSPACE alarm (writes
 * refused with etcd's error, listed and disarmed through /v3/maintenance/alarm), defragment, and
 * etcd's unimplemented-method answer where the store cannot (an in-memory store has no file).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from '../../src/api/index.ts';
import { b64, raw, startBoltkv } from './support.ts';

test('NOSPACE: writes refused as etcd does, alarm listed with the member id, disarmed; defragment answers {}', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'boltkv-maint-'));
  const kv = await openStore(join(dir, 'db'), { quotaBackendBytes: 256 * 1024, bolt: { noSync: true } });
  const b = await startBoltkv({ kv });
  try {
    const value = b64('v'.repeat(16 * 1024));
    let refused: { status: number; body: string } | undefined;
    for (let i = 0; i < 200 && refused === undefined; i++) {
      const r = await raw(b.url, '/v3/kv/put', `{"key":"${b64(`k${i}`)}","value":"${value}"}`);
      if (r.status !== 200) refused = r;
    }
    assert.ok(refused !== undefined, 'the quota was reached');
    assert.equal(refused.status, 429);
    assert.deepEqual(JSON.parse(refused.body), {
      error: 'etcdserver: mvcc: database space exceeded',
      message: 'etcdserver: mvcc: database space exceeded',
      code: 8,
    });
    const memberId = b.server.memberId.toString();
    const list = await raw(b.url, '/v3/maintenance/alarm', '{"action":"GET"}');
    assert.deepEqual(JSON.parse(list.body), { alarms: [{ memberID: memberId, alarm: 'NOSPACE' }] });
    const off = await raw(
      b.url,
      '/v3/maintenance/alarm',
      `{"action":"DEACTIVATE","memberID":"${memberId}","alarm":"NOSPACE"}`,
    );
    assert.equal(off.status, 200);
    assert.deepEqual(JSON.parse((await raw(b.url, '/v3/maintenance/alarm', '{}')).body), {});
    const del = await raw(b.url, '/v3/kv/deleterange', `{"key":"${b64('k')}","range_end":"${b64('l')}"}`);
    assert.equal(del.status, 200, del.body);
    const defrag = await raw(b.url, '/v3/maintenance/defragment', '{}');
    assert.deepEqual({ status: defrag.status, body: defrag.body }, { status: 200, body: '{}' });
    // Raising an alarm by hand is not offered.
    const act = await raw(b.url, '/v3/maintenance/alarm', '{"action":"ACTIVATE","alarm":"NOSPACE"}');
    assert.equal(act.status, 501);
  } finally {
    await b.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a store without a file: defragment, hash and snapshot answer as unimplemented methods', async () => {
  const b = await startBoltkv();
  try {
    for (const path of [
      '/v3/maintenance/defragment',
      '/v3/maintenance/hash',
      '/v3/maintenance/snapshot',
      '/v3/cluster/member/add',
      '/v3/auth/enable',
    ]) {
      const r = await raw(b.url, path, '{}');
      assert.equal(r.status, 501, path);
      assert.equal(JSON.parse(r.body).code, 12, path);
    }
  } finally {
    await b.close();
  }
});
