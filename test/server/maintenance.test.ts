/**
 * Maintenance over the gateway where the store offers it: the space quota's NOSPACE alarm (writes
 * refused with etcd's error, listed and disarmed through /v3/maintenance/alarm), defragment,
 * snapshot (streamed as etcd 3.4 streams it, re-joined into a file boltkv opens) and hash (etcd's
 * whole-backend CRC-32C, checked against a real etcd over its own file), and etcd's
 * unimplemented-method answer where the store cannot (an in-memory store has no file).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { request } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from '../../src/api/index.ts';
import { backendHash } from '../../src/api/backend-hash.ts';
import { open as openBolt } from '../../src/bolt/index.ts';
import { Crc32c } from '../../src/mvcc/hash.ts';
import { requireEtcd, startEtcd } from '../support/etcd.ts';
import { b64, raw, startBoltkv } from './support.ts';

interface Snapshot {
  image: Buffer;
  digest: Buffer;
  /** Each frame's result keys, in order, and its remaining_bytes (absent: 0) and blob size. */
  frames: { keys: string[]; remaining: number; bytes: number }[];
}

/** POST /v3/maintenance/snapshot and re-join its frames; asserts etcd 3.4's framing on the way. */
async function fetchSnapshot(url: string): Promise<Snapshot> {
  const r = await raw(url, '/v3/maintenance/snapshot', '{}', 'POST', 30_000);
  assert.equal(r.status, 200, r.body.slice(0, 200));
  assert.equal(r.headers['content-type'], 'application/json');
  const lines = r.body.split('\n').filter((l) => l.length > 0);
  const blobs: Buffer[] = [];
  const frames: Snapshot['frames'] = [];
  for (const line of lines) {
    const frame = JSON.parse(line) as { result: { remaining_bytes?: string; blob: string } };
    const blob = Buffer.from(frame.result.blob, 'base64');
    blobs.push(blob);
    frames.push({
      keys: Object.keys(frame.result),
      remaining: Number(frame.result.remaining_bytes ?? 0),
      bytes: blob.length,
    });
  }
  assert.ok(frames.length >= 2, 'at least one image frame and the digest frame');
  const digest = blobs.pop() as Buffer;
  const image = Buffer.concat(blobs);
  // Image frames: 32 KiB each but the last, remaining_bytes counting down to 0 (then omitted).
  let left = image.length;
  frames.slice(0, -1).forEach((f, i) => {
    left -= f.bytes;
    assert.equal(f.remaining, left, `frame ${i} remaining_bytes`);
    if (left > 0) assert.equal(f.bytes, 32 * 1024, `frame ${i} size`);
    assert.deepEqual(f.keys, left > 0 ? ['remaining_bytes', 'blob'] : ['blob']);
  });
  assert.deepEqual(frames.at(-1), { keys: ['blob'], remaining: 0, bytes: 32 });
  assert.deepEqual(digest, createHash('sha256').update(image).digest(), "the trailing SHA-256 is the image's");
  return { image, digest, frames };
}

/** The hash of a bolt file, recomputed here from etcd's definition without backend-hash.ts. */
function directHash(path: string): number {
  const db = openBolt(path, { readOnly: true });
  try {
    const tx = db.begin(false);
    const crc = new Crc32c();
    for (const [name] of tx.entries()) {
      crc.update(name);
      const bucket = tx.bucket(name);
      assert.ok(bucket !== undefined);
      for (const [k, v] of bucket.entries()) {
        if (name.toString() === 'meta' && k.toString() === 'consistent_index') continue;
        crc.update(k);
        if (v !== null) crc.update(v);
      }
    }
    tx.abort();
    return crc.digest();
  } finally {
    db.close();
  }
}

function fileHash(path: string): { hash: number; problems: string[] } {
  const db = openBolt(path, { readOnly: true });
  try {
    const tx = db.begin(false);
    const out = { hash: backendHash(tx), problems: tx.check() };
    tx.abort();
    return out;
  } finally {
    db.close();
  }
}

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
    // Raised by hand (etcd's ACTIVATE, member 0 as sent): writes that add data are capped again.
    const act = await raw(b.url, '/v3/maintenance/alarm', '{"action":"ACTIVATE","alarm":"NOSPACE"}');
    assert.deepEqual(
      { status: act.status, body: JSON.parse(act.body) },
      { status: 200, body: { alarms: [{ alarm: 'NOSPACE' }] } },
    );
    assert.equal((await raw(b.url, '/v3/kv/put', `{"key":"${b64('x')}","value":"${b64('y')}"}`)).status, 429);
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

test('snapshot streams as etcd 3.4 does; re-joined it opens, passes check(), holds the keys; hash matches the file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'boltkv-snap-'));
  const kv = await openStore(join(dir, 'db'), { bolt: { noSync: true } });
  const b = await startBoltkv({ kv });
  try {
    const value = 'v'.repeat(1000);
    for (let i = 0; i < 300; i++) {
      const r = await raw(b.url, '/v3/kv/put', `{"key":"${b64(`key-${i}`)}","value":"${b64(`${i}:${value}`)}"}`);
      assert.equal(r.status, 200, r.body);
    }
    await raw(b.url, '/v3/kv/deleterange', `{"key":"${b64('key-7')}"}`);
    const before = JSON.parse((await raw(b.url, '/v3/maintenance/hash', '{}')).body) as {
      header: { revision: string };
      hash: number;
    };
    const snap = await fetchSnapshot(b.url);
    assert.ok(snap.frames.length > 4, 'several 32 KiB frames');
    assert.equal(snap.image.length % 4096, 0);
    const file = join(dir, 'snap.db');
    writeFileSync(file, snap.image);
    const { hash, problems } = fileHash(file);
    assert.deepEqual(problems, []);
    assert.equal(before.header.revision, '302');
    assert.equal(typeof before.hash, 'number');
    assert.equal(hash, before.hash, "the gateway hash is the snapshot file's");
    assert.equal(directHash(file), before.hash);
    // The hash moves with a write.
    await raw(b.url, '/v3/kv/put', `{"key":"${b64('another')}","value":"${b64('x')}"}`);
    const after = JSON.parse((await raw(b.url, '/v3/maintenance/hash', '{}')).body) as { hash: number };
    assert.notEqual(after.hash, before.hash);
    // The copy is a whole store.
    const copy = await openStore(file);
    try {
      const all = await copy.range({ key: 'key-', rangeEnd: 'key.' });
      assert.equal(all.count, 299);
      const one = await copy.range({ key: 'key-42' });
      assert.equal(Buffer.from(one.kvs[0]?.value ?? []).toString(), `42:${value}`);
      assert.equal(copy.revision(), 302);
    } finally {
      await copy.close();
    }
  } finally {
    await b.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('interop: etcd 3.4 frames its snapshot the same way, and its Maintenance.Hash is backendHash of its own file', async (t) => {
  if (!requireEtcd(t)) return;
  const etcd = await startEtcd();
  const dir = mkdtempSync(join(tmpdir(), 'boltkv-snap-etcd-'));
  try {
    const value = 'v'.repeat(1000);
    for (let i = 0; i < 100; i++) {
      const r = await raw(etcd.url, '/v3/kv/put', `{"key":"${b64(`key-${i}`)}","value":"${b64(value)}"}`);
      assert.equal(r.status, 200, r.body);
    }
    const h1 = JSON.parse((await raw(etcd.url, '/v3/maintenance/hash', '{}')).body) as { hash: number };
    const snap = await fetchSnapshot(etcd.url);
    const h2 = JSON.parse((await raw(etcd.url, '/v3/maintenance/hash', '{}')).body) as { hash: number };
    assert.equal(h1.hash, h2.hash, "etcd's hash held still around the snapshot");
    assert.ok(snap.frames.length > 2);
    const file = join(dir, 'etcd.db');
    writeFileSync(file, snap.image);
    const { hash, problems } = fileHash(file);
    assert.deepEqual(problems, []);
    assert.equal(hash, h1.hash);
  } finally {
    await etcd.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a client that hangs up mid-snapshot ends the stream: nothing stays in flight, the store writes and closes', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'boltkv-snap-abort-'));
  const kv = await openStore(join(dir, 'db'), { bolt: { noSync: true } });
  const b = await startBoltkv({ kv });
  try {
    const value = b64('v'.repeat(64 * 1024));
    for (let i = 0; i < 64; i++) {
      const r = await raw(b.url, '/v3/kv/put', `{"key":"${b64(`k${i}`)}","value":"${value}"}`);
      assert.equal(r.status, 200, r.body);
    }
    const u = new URL('/v3/maintenance/snapshot', b.url);
    const firstBytes = await new Promise<number>((resolve, reject) => {
      const req = request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', agent: false }, (res) => {
        // Read nothing more after the first piece, then hang up.
        res.once('data', (c: Buffer) => {
          req.destroy();
          resolve(c.length);
        });
        res.on('error', () => undefined);
      });
      req.on('error', (e) => (req.destroyed ? undefined : reject(e)));
      req.end('{}');
    });
    assert.ok(firstBytes > 0);
    for (let i = 0; i < 100 && b.server.stats().inFlight > 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(b.server.stats().inFlight, 0, 'the snapshot request finished after the hang-up');
    const w = await raw(b.url, '/v3/kv/put', `{"key":"${b64('after')}","value":"${b64('x')}"}`);
    assert.equal(w.status, 200, w.body);
  } finally {
    await b.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
