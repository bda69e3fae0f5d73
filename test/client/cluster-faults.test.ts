/**
 * connect() against a real 3-member etcd cluster whose members are killed (SIGKILL) under load:
 * a watch resumes on another member with nothing lost or repeated; calls in flight settle (succeed
 * or fail typed), never hang, and later calls fail over; a kept lease stays alive across the kill.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Event, WatchResponse } from '../../src/api/kv.ts';
import { connect } from '../../src/client/index.ts';
import { BoltkvError } from '../../src/errors.ts';
import { requireEtcd } from '../support/etcd.ts';
import { startEtcdCluster } from './support/etcd-cluster.ts';

const txt = (b: Uint8Array): string => Buffer.from(b).toString();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Events from `it` until one at revision ≥ `until`; fails on a response that is not events. */
async function eventsUntil(it: AsyncIterable<WatchResponse>, until: number, ms: number): Promise<Event[]> {
  const out: Event[] = [];
  const iter = it[Symbol.asyncIterator]();
  const deadline = Date.now() + ms;
  while (out.length === 0 || out[out.length - 1]!.kv.modRevision < until) {
    const r = await Promise.race([
      iter.next(),
      sleep(Math.max(1, deadline - Date.now())).then(() => {
        throw new Error(`watch stalled at ${out[out.length - 1]?.kv.modRevision ?? 'nothing'} (want ${until})`);
      }),
    ]);
    assert.notEqual(r.done, true, 'the watch ended');
    assert.notEqual(
      r.value.canceled,
      true,
      `the watch was canceled: ${JSON.stringify(r.value, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v))}`,
    );
    out.push(...r.value.events);
  }
  return out;
}

/** Put until it succeeds (a put may fail typed while the cluster elects a leader). */
async function putSurely(kv: ReturnType<typeof connect>, key: string, value: string): Promise<number> {
  for (let i = 0; ; i++) {
    try {
      return (await kv.put({ key, value })).header.revision;
    } catch (e) {
      assert.ok(e instanceof BoltkvError, `untyped failure: ${String(e)}`);
      if (i > 50) throw e;
      await sleep(100);
    }
  }
}

test('a watch survives the kill of its member: resumes elsewhere, nothing lost or repeated', {
  timeout: 60_000,
}, async (t) => {
  if (!requireEtcd(t)) return;
  const cluster = await startEtcdCluster(3);
  // The watcher talks to member 0 first; the writer never does.
  const watcher = connect({ endpoints: cluster.urls, watchPingIntervalMs: 500, timeoutMs: 5000 });
  const writer = connect({ endpoints: [cluster.urls[1]!, cluster.urls[2]!], timeoutMs: 5000 });
  try {
    const base = (await writer.range({ key: 'f/' })).header.revision;
    const w = watcher.watch({ key: 'f/', rangeEnd: 'f0', prevKv: true });
    const ws = watcher.watchStream();
    const sid = ws.create({ key: 'f/', rangeEnd: 'f0', startRevision: base + 1, filters: ['NODELETE'] });
    assert.equal(sid, 0);
    // Make sure the watch is registered before writing (its start is "now").
    w.requestProgress();
    const it = w[Symbol.asyncIterator]();
    const first = await it.next();
    assert.equal(first.value?.events.length, 0);
    const failures: unknown[] = [];
    for (let i = 0; i < 120; i++) {
      if (i === 40) await cluster.kill(0);
      const key = `f/${i % 7}`;
      const p = i % 10 === 9 ? writer.deleteRange({ key }) : writer.put({ key, value: `v${i}` });
      await p.catch((e: unknown) => failures.push(e));
    }
    for (const e of failures) assert.ok(e instanceof BoltkvError, `untyped failure: ${String(e)}`);
    const last = await putSurely(writer, 'f/end', 'end');
    const got = await eventsUntil({ [Symbol.asyncIterator]: () => it }, last, 30_000);
    // The truth: a fresh watch of the same history through a surviving member.
    const truthW = writer.watch({ key: 'f/', rangeEnd: 'f0', startRevision: base + 1, prevKv: true });
    const truth = await eventsUntil(truthW, last, 15_000);
    truthW.cancel();
    const shape = (es: Event[]): string[] =>
      es.map(
        (e) =>
          `${e.kv.modRevision} ${e.type} ${txt(e.kv.key)}=${txt(e.kv.value)} prev=${e.prevKv === undefined ? '-' : txt(e.prevKv.value)}`,
      );
    assert.ok(truth.length >= 100, `only ${truth.length} events were written`);
    assert.deepEqual(shape(got), shape(truth));
    const revs = got.map((e) => e.kv.modRevision);
    assert.ok(
      revs.every((r, i) => i === 0 || r >= revs[i - 1]!),
      'events out of order',
    );
    // The stream's watch resumed too, with its filter.
    const sgot = await eventsUntil(ws, last, 30_000);
    assert.deepEqual(
      shape(sgot),
      shape(truth.filter((e) => e.type === 'PUT')).map((s) => s.replace(/ prev=.*$/, ' prev=-')),
    );
    w.cancel();
    ws.close();
  } finally {
    await watcher.close();
    await writer.close();
    await cluster.stop();
  }
});

test('calls in flight when their member dies settle typed; later calls fail over; a kept lease lives on', {
  timeout: 60_000,
}, async (t) => {
  if (!requireEtcd(t)) return;
  const cluster = await startEtcdCluster(3);
  const kv = connect({ endpoints: cluster.urls, timeoutMs: 8000 });
  const other = connect({ endpoints: [cluster.urls[2]!] });
  try {
    const lease = await kv.lease(3);
    assert.equal(typeof lease.ID, 'bigint');
    await kv.put({ key: 'm/leased', value: 'x', lease: lease.ID });
    // Warm up: the client now talks to member 0.
    await kv.range({ key: 'm/' });
    const calls: Promise<unknown>[] = [];
    for (let i = 0; i < 60; i++) {
      calls.push(kv.put({ key: `m/${i}`, value: String(i) }));
      calls.push(kv.range({ key: 'm/', rangeEnd: 'm0' }));
    }
    const killed = cluster.kill(0);
    const t0 = Date.now();
    const settled = await Promise.allSettled(calls);
    await killed;
    assert.ok(Date.now() - t0 < 20_000, 'calls took too long to settle');
    let ok = 0;
    for (const s of settled) {
      if (s.status === 'fulfilled') ok++;
      else assert.ok(s.reason instanceof BoltkvError, `untyped failure: ${String(s.reason)}`);
    }
    // Reads fail over rather than fail.
    settled.forEach((s, i) => {
      if (i % 2 === 1)
        assert.equal(s.status, 'fulfilled', `a range failed: ${s.status === 'rejected' ? String(s.reason) : ''}`);
    });
    assert.ok(ok >= 60);
    // New calls, writes included, go to a live member.
    assert.ok((await kv.put({ key: 'm/after', value: '1' })).header.revision > 0);
    // The lease outlives its TTL several times over, kept alive through the other members.
    await sleep(5000);
    assert.equal(lease.alive, true);
    const ttl = await other.leaseTimeToLive({ ID: lease.ID });
    assert.ok(ttl.TTL > 0, `lease TTL ${ttl.TTL}`);
    assert.equal((await other.range({ key: 'm/leased' })).count, 1);
    // Revoked elsewhere: the helper reports it lost.
    await other.leaseRevoke({ ID: lease.ID });
    const reason = await Promise.race([lease.lost, sleep(5000).then(() => undefined)]);
    assert.equal(reason?.code, 'ERR_LEASE_LOST');
    assert.equal(lease.signal.aborted, true);
  } finally {
    await kv.close();
    await other.close();
    await cluster.stop();
  }
});
