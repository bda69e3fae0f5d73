/**
 * watchStream({ createdNotify: true }) through connect() answers as etcd's Watch RPC does, the same
 * as the in-process stream with the same option: created answers first, refusals inside the stream,
 * a compacted watch's id held until canceled (then the cancel is answered).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openStore } from '../../src/api/index.ts';
import type { WatchResponse, WatchStream } from '../../src/api/kv.ts';
import { connect } from '../../src/client/index.ts';
import { WatchHub } from '../../src/watch/index.ts';
import { etcdAvailable, startEtcd } from '../support/etcd.ts';

type Shape = (string | number | boolean | undefined)[];

async function run(
  put: (k: string, v: string) => Promise<number>,
  compact: (rev: number) => Promise<void>,
  stream: () => WatchStream,
): Promise<Shape[]> {
  const r1 = await put('cn/a', '1');
  const r2 = await put('cn/a', '2');
  const s = stream();
  const iter = s[Symbol.asyncIterator]();
  const out: Shape[] = [];
  const next = async (): Promise<void> => {
    const r = await Promise.race([
      iter.next(),
      new Promise<never>((_, rej) => setTimeout(() => rej(new Error('no answer')), 10_000)),
    ]);
    const v = r.value as WatchResponse;
    // Revisions relative to the first put, so the two stores compare.
    const rel = (n: number | undefined): number | undefined => (n === undefined || n === 0 ? n : n - r1);
    out.push([
      v.watchId,
      v.created,
      v.canceled,
      v.cancelReason,
      rel(v.compactRevision),
      rel(v.header.revision),
      v.events.length,
    ]);
  };
  out.push([
    'ids',
    s.create({ key: 'cn/a', watchId: 5 }),
    s.create({ key: 'cn/b', watchId: 5 }),
    s.create({ key: 'cn/z', rangeEnd: 'cn/a' }),
  ]);
  for (let i = 0; i < 3; i++) await next();
  await compact(r2);
  out.push(['compacted', s.create({ key: 'cn/a', startRevision: r1 })]);
  await next();
  await next();
  s.cancel(0);
  await next();
  s.close();
  return out;
}

test("createdNotify streams answer like etcd's Watch RPC, in process and through connect()", {
  timeout: 60_000,
}, async (t) => {
  if (!etcdAvailable()) {
    if (process.env.BOLTKV_REQUIRE_INTEROP === '1') throw new Error('etcd is required (BOLTKV_REQUIRE_INTEROP=1)');
    t.skip('etcd not installed');
    return;
  }
  const etcd = await startEtcd();
  const kv = connect({ endpoints: [etcd.url] });
  const local = await openStore({ inMemory: true });
  const hub = new WatchHub(local.events);
  try {
    const remote = await run(
      async (k, v) => (await kv.put({ key: k, value: v })).header.revision,
      async (rev) => void (await kv.compact({ revision: rev })),
      () => kv.watchStream({ createdNotify: true }),
    );
    const inProcess = await run(
      async (k, v) => (await local.put({ key: k, value: v })).header.revision,
      async (rev) => void (await local.compact({ revision: rev })),
      () => hub.stream({ createdNotify: true }),
    );
    assert.deepEqual(remote, inProcess);
    assert.deepEqual(remote[0], ['ids', 5, -1, -1]);
  } finally {
    await kv.close();
    hub.close();
    await local.close();
    await etcd.stop();
  }
});
