/**
 * The public API: openStore's three forms, persistence in a bolt file, the Client-style shortcuts,
 * and the watch wiring (events reach watchers after the write is durable, with prevKv).
 * Rules checked (etcd-semantics.md): "Range" prefix-end rule via get({ prefix }), "Watch" start
 * revision / prevKv / DELETE events carrying the deletion revision, "Compaction" for watches.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore, MemoryBackend, MvccError, type KVStore } from '../../src/api/index.ts';
import type { WatchResponse } from '../../src/watch/types.ts';

const txt = (b: Uint8Array): string => Buffer.from(b).toString();

/** Responses until `n` events (or one response without events, e.g. a cancel) have arrived. */
async function take(it: AsyncIterable<WatchResponse>, n: number): Promise<WatchResponse[]> {
  const out: WatchResponse[] = [];
  let events = 0;
  for await (const r of it) {
    out.push(r);
    events += r.events.length;
    if (events >= n || r.events.length === 0) break;
  }
  return out;
}

test('openStore(path) persists across close and reopen', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'boltkv-api-'));
  try {
    const path = join(dir, 'data.db');
    let kv: KVStore = await openStore(path);
    await kv.set('a', '1');
    await kv.set('a', '2');
    await kv.set('b', '3');
    await kv.close();
    kv = await openStore(path);
    const r = await kv.get('a', { revision: 2 });
    assert.equal(txt(r.kvs[0]!.value), '1');
    assert.equal(r.header.revision, 4);
    assert.deepEqual(await kv.get('', { fromKey: true }).catch((e: MvccError) => e.code), 'ERR_EMPTY_KEY');
    assert.deepEqual(
      (await kv.get('\0', { fromKey: true })).kvs.map((x) => txt(x.key)),
      ['a', 'b'],
    );
    await kv.close();
    await kv.close(); // idempotent
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('openStore rejects what it cannot open with a typed error', async () => {
  await assert.rejects(
    openStore({} as never),
    (e: unknown) => e instanceof MvccError && e.code === 'ERR_INVALID_ARGUMENT',
  );
  await assert.rejects(openStore(''), (e: unknown) => e instanceof MvccError && e.code === 'ERR_INVALID_ARGUMENT');
  const dir = mkdtempSync(join(tmpdir(), 'boltkv-api-'));
  try {
    // a directory is not a database file: the engine's typed error comes through
    await assert.rejects(
      openStore(dir),
      (e: unknown) => e instanceof Error && typeof (e as { code?: unknown }).code === 'string',
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('Client-style shortcuts: get/set/delete with prefix, fromKey and explicit ranges', async () => {
  const kv = await openStore({ backend: new MemoryBackend() });
  for (const k of ['app/a', 'app/b', 'app0', 'apq', 'b']) await kv.set(k, k.toUpperCase());
  assert.deepEqual(
    (await kv.get('app/', { prefix: true })).kvs.map((x) => txt(x.key)),
    ['app/a', 'app/b'],
  );
  assert.deepEqual(
    (await kv.get('app', { prefix: true, keysOnly: true })).kvs.map((x) => [txt(x.key), txt(x.value)]),
    [
      ['app/a', ''],
      ['app/b', ''],
      ['app0', ''],
    ],
  );
  assert.equal((await kv.get('app', { fromKey: true, countOnly: true })).count, 5);
  assert.deepEqual(
    (await kv.get('app/b', { rangeEnd: 'apq' })).kvs.map((x) => txt(x.key)),
    ['app/b', 'app0'],
  );
  const del = await kv.delete('app/', { prefix: true, prevKv: true });
  assert.equal(del.deleted, 2);
  assert.deepEqual(
    del.prevKvs.map((x) => txt(x.value)),
    ['APP/A', 'APP/B'],
  );
  const put = await kv.set('b', 'new', { prevKv: true });
  assert.equal(txt(put.prevKv!.value), 'B');
  await kv.close();
});

test('watch: events arrive in order with prevKv; a watch from a past revision replays history', async () => {
  const kv = await openStore({ inMemory: true });
  const w = kv.watch({ key: 'k', rangeEnd: 'l', prevKv: true });
  const live = take(w, 3);
  await kv.set('k1', 'a');
  await kv.txn({ success: [{ requestPut: { key: 'k1', value: 'b' } }, { requestPut: { key: 'k2', value: 'c' } }] });
  await kv.delete('k1');
  const got = await live;
  const events = got.flatMap((r) =>
    r.events.map((e) => [e.type, txt(e.kv.key), e.kv.modRevision, e.prevKv ? txt(e.prevKv.value) : null]),
  );
  assert.deepEqual(events, [
    ['PUT', 'k1', 2, null],
    ['PUT', 'k1', 3, 'a'],
    ['PUT', 'k2', 3, null],
  ]);
  w.cancel();
  const past = kv.watch({ key: 'k1', startRevision: 3 });
  const replay = await take(past, 2);
  const ev = replay.flatMap((r) => r.events.map((e) => [e.type, e.kv.modRevision]));
  assert.deepEqual(ev, [
    ['PUT', 3],
    ['DELETE', 4],
  ]);
  past.cancel();
  await kv.compact({ revision: 4 });
  const old = kv.watch({ key: 'k1', startRevision: 2 });
  const [c] = await take(old, 1);
  assert.equal(c!.compactRevision, 4);
  assert.equal(c!.canceled, true);
  const s = kv.watchStream();
  const id = s.create({ key: 'z' });
  const first = take(s, 1);
  await kv.set('z', '1');
  const [r] = await first;
  assert.equal(r!.watchId, id);
  assert.equal(txt(r!.events[0]!.kv.value), '1');
  s.close();
  await kv.close();
});
