// The real thing: a bbolt file written by a running etcd server (Debian's etcd-server). boltkv must
// open it, find exactly what bbolt's tx.Check finds (nothing), and read the same bytes Go's bbolt
// reads, bucket by bucket. Skips loudly without etcd or Go, unless BOLTKV_REQUIRE_INTEROP=1.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { open } from '../../src/bolt/index.ts';
import { requireGoTools } from '../support/go-tools.ts';
import { dumpDb } from '../support/bolt-ops.ts';

function etcdAvailable(t: TestContext): boolean {
  const r = spawnSync('etcd', ['--version'], { encoding: 'utf8' });
  if (r.status === 0) return true;
  const why = 'the `etcd` command is not installed (Debian: apt-get install etcd-server)';
  if (process.env.BOLTKV_REQUIRE_INTEROP === '1') throw new Error(`BOLTKV_REQUIRE_INTEROP=1 but ${why}`);
  console.warn(`\n*** SKIPPING etcd interop test "${t.name}": ${why} ***\n`);
  t.skip(why);
  return false;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

const b64 = (s: string | Uint8Array): string => Buffer.from(s).toString('base64');

test('a bbolt file written by etcd reads identically in boltkv and Go, and checks clean in both', async (t) => {
  const go = requireGoTools(t);
  if (!go || !etcdAvailable(t)) return;
  const dir = mkdtempSync(join(tmpdir(), 'boltkv-etcd-'));
  const [client, peer] = [await freePort(), await freePort()];
  const curl = `http://127.0.0.1:${client}`;
  const etcd = spawn(
    'etcd',
    [
      '--name',
      'boltkv-test',
      '--data-dir',
      join(dir, 'etcd'),
      '--listen-client-urls',
      curl,
      '--advertise-client-urls',
      curl,
      '--listen-peer-urls',
      `http://127.0.0.1:${peer}`,
      '--initial-advertise-peer-urls',
      `http://127.0.0.1:${peer}`,
      '--initial-cluster',
      `boltkv-test=http://127.0.0.1:${peer}`,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let log = '';
  etcd.stderr.on('data', (d: Buffer) => {
    log = (log + d.toString()).slice(-8000);
  });
  const exited = new Promise<void>((r) => etcd.once('exit', () => r()));
  try {
    const call = async (path: string, body: unknown): Promise<void> => {
      const res = await fetch(`${curl}${path}`, { method: 'POST', body: JSON.stringify(body) });
      if (!res.ok) throw new Error(`${path}: HTTP ${res.status} ${await res.text()}`);
    };
    // Wait for the server (bounded).
    for (let i = 0; ; i++) {
      try {
        const res = await fetch(`${curl}/health`);
        if (res.ok) break;
      } catch {
        // not up yet
      }
      if (i > 200) throw new Error(`etcd did not come up:\n${log}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    for (let i = 0; i < 300; i++) await call('/v3/kv/put', { key: b64(`key/${i % 120}`), value: b64(`value ${i}`) });
    // Values big enough for bbolt overflow pages.
    await call('/v3/kv/put', { key: b64('big'), value: b64(new Uint8Array(200_000).fill(0x42)) });
    await call('/v3/kv/put', { key: b64('big'), value: b64(new Uint8Array(50_000).fill(0x43)) });
    await call('/v3/kv/deleterange', { key: b64('key/1'), range_end: b64('key/2') });
    await call('/v3/kv/compaction', { revision: '100', physical: true });
    etcd.kill('SIGTERM');
    await exited;

    const path = join(dir, 'etcd', 'member', 'snap', 'db');
    assert.ok(existsSync(path), `etcd wrote no backend file; log:\n${log}`);
    const d = go.dump(path);
    assert.deepEqual(d.problems, [], 'bbolt tx.Check of the etcd file');
    const db = open(path, { readOnly: true });
    try {
      assert.deepEqual(db.check(), [], 'boltkv check() of the etcd file');
      const mine = dumpDb(db);
      assert.deepEqual(mine, d.buckets, 'boltkv reads what Go reads');
      const names = mine.map((e) => Buffer.from(e.k, 'hex').toString());
      for (const b of ['key', 'meta']) assert.ok(names.includes(b), `etcd bucket ${b} present (have ${names})`);
      const keyBucket = mine.find((e) => Buffer.from(e.k, 'hex').toString() === 'key')!.bucket!;
      assert.ok(keyBucket.entries.length > 100, `revisions in 'key': ${keyBucket.entries.length}`);
      assert.ok(
        keyBucket.entries.some((e) => (e.v?.length ?? 0) > 2 * 4096 * 2),
        'a revision large enough for overflow pages',
      );
    } finally {
      db.close();
    }
    // boltkv may also write to it: open read-write, commit, and Go still checks it clean.
    const rw = open(path);
    try {
      rw.update((tx) => tx.createBucketIfNotExists('boltkv-was-here').put('k', 'v'));
    } finally {
      rw.close();
    }
    assert.deepEqual(go.dump(path).problems, []);
  } finally {
    if (etcd.exitCode === null && etcd.signalCode === null) {
      etcd.kill('SIGKILL');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  }
});
