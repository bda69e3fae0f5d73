/**
 * Watch over the real revision layer (MvccStore on the memory backend): the guarantee model,
 * many-key deletes and lease expiry as one revision, and resuming after a restart.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MvccStore } from '../../src/mvcc/store.ts';
import { MemoryBackend } from '../../src/mvcc/backend/memory.ts';
import { MvccError } from '../../src/mvcc/errors.ts';
import type { EventSource, RevisionBatch } from '../../src/mvcc/types.ts';
import { WatchHub } from '../../src/watch/hub.ts';
import type { WatchResponse } from '../../src/watch/types.ts';
import { inRange, type FakeOp } from './support/fake-source.ts';
import { checkWatch } from './support/checker.ts';
import { readUntil, str, take } from './support/helpers.ts';
import { checkGuarantees, newCoverage, runScenario, type Action, type ModelDriver } from './support/model.ts';

const stress = process.env.BOLTKV_STRESS === '1';
const b = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'latin1'));

function openStore(backend = new MemoryBackend(), now?: () => number): MvccStore {
  return MvccStore.open({ backend, leaseCheckIntervalMs: 0, compactionBatchLimit: 7, now });
}

/** Counts history reads while delegating to the store. */
function counting(store: MvccStore): { source: EventSource; reads: () => number } {
  let n = 0;
  const source: EventSource = {
    currentRevision: () => store.currentRevision(),
    compactRevision: () => store.compactRevision(),
    onCommit: (l) => store.onCommit(l),
    readEvents: (req) => {
      n++;
      return store.readEvents(req);
    },
  };
  return { source, reads: () => n };
}

function putThenDeleted(ops: FakeOp[]): boolean {
  const put = new Set<string>();
  for (const o of ops) {
    if (o.op === 'put') put.add(o.key);
    else for (const k of put) if (inRange(k, o.key, o.rangeEnd)) return true;
  }
  return false;
}

function storeDriver(): ModelDriver {
  const store = openStore();
  const fullLog: RevisionBatch[] = [];
  store.onCommit((batch) => fullLog.push(batch));
  const { source, reads } = counting(store);
  return {
    source,
    fullLog,
    async txn(ops: FakeOp[]): Promise<number> {
      // Known store deviation (reported): for a key put and then deleted by a "\0" range in one
      // txn (etcd accepts that), the store's live DELETE carries the in-txn value as prevKv where
      // etcd gives the value at revision - 1. See the todo test below; kept out of the model.
      if (putThenDeleted(ops)) return store.currentRevision();
      try {
        await store.txn({
          success: ops.map((o) =>
            o.op === 'put'
              ? { requestPut: { key: b(o.key), value: b(o.value) } }
              : {
                  requestDeleteRange: { key: b(o.key), rangeEnd: o.rangeEnd === undefined ? undefined : b(o.rangeEnd) },
                },
          ),
        });
      } catch (e) {
        // The generator may produce what etcd rejects (a key twice in one txn): no revision then.
        if (!(e instanceof MvccError && e.code === 'ERR_DUPLICATE_KEY')) throw e;
      }
      return store.currentRevision();
    },
    async compact(rev: number): Promise<void> {
      await store.compact({ revision: rev });
    },
    reads,
    close: () => store.close(),
  };
}

if (process.env.WATCH_REPLAY_STORE !== undefined) {
  const [acts, mb, cu] = JSON.parse(process.env.WATCH_REPLAY_STORE) as [Action[], number, number];
  await runScenario(acts, mb, cu, storeDriver(), newCoverage());
}

describe('watch over the real revision layer', () => {
  it('the guarantee model holds over MvccStore', { timeout: 120_000 }, async () => {
    const seen = await checkGuarantees(storeDriver, { maxActions: stress ? 200 : 50, numRuns: stress ? 500 : 120 });
    console.log('watch-over-store coverage', seen);
    assert.ok(seen.delivered > 300, 'events delivered');
    assert.ok(seen.complete > 30, 'watchers drained to a final bookmark');
    assert.ok(seen.historyReads > 20, 'history catch-up reads');
  });

  it('a txn deleting many keys is one revision of DELETE events in one response', async () => {
    const store = openStore();
    const hub = new WatchHub(store, { maxBufferedEvents: 4 });
    for (let i = 0; i < 50; i++) await store.put({ key: `job/${String(i).padStart(2, '0')}`, value: 'x' });
    const w = hub.watch({ key: 'job/', rangeEnd: 'job0', prevKv: true });
    const it = w[Symbol.asyncIterator]();
    await store.txn({ success: [{ requestDeleteRange: { key: 'job/', rangeEnd: 'job0' } }] });
    const [r] = await take(it, 1);
    assert.equal(r!.events.length, 50);
    assert.ok(r!.events.every((e) => e.type === 'DELETE' && e.kv.modRevision === 52 && e.prevKv !== undefined));
    assert.deepEqual(
      r!.events.map((e) => str(e.kv.key)),
      Array.from({ length: 50 }, (_, i) => `job/${String(i).padStart(2, '0')}`),
    );
    hub.close();
    await store.close();
  });

  it('an expiring lease deletes its keys in one revision, seen as one response', async () => {
    let clock = 1_000_000;
    const store = openStore(new MemoryBackend(), () => clock);
    const hub = new WatchHub(store);
    const it = hub.watch({ key: 'svc/', rangeEnd: 'svc0' })[Symbol.asyncIterator]();
    const { ID } = await store.leaseGrant({ TTL: 5 });
    for (let i = 0; i < 10; i++) await store.put({ key: `svc/${i}`, value: 'up', lease: ID });
    await store.put({ key: 'other', value: 'x', lease: ID });
    const puts = await take(it, 10);
    assert.ok(puts.every((r) => r.events.length === 1 && r.events[0]!.kv.lease === ID));
    clock += 6_000;
    store.expireLeases();
    const [r] = await take(it, 1);
    assert.equal(r!.events.length, 10);
    const rev = r!.events[0]!.kv.modRevision;
    assert.ok(r!.events.every((e) => e.type === 'DELETE' && e.kv.modRevision === rev));
    hub.close();
    await store.close();
  });

  it('resumes after a restart from the last delivered revision + 1 without loss or repeat', async () => {
    const backend = new MemoryBackend();
    const fullLog: RevisionBatch[] = [];
    let store = openStore(backend);
    store.onCommit((x) => fullLog.push(x));
    let hub = new WatchHub(store);
    const w1 = hub.watch({ key: 'cfg/', rangeEnd: 'cfg0', prevKv: true });
    const it1 = w1[Symbol.asyncIterator]();
    for (let i = 0; i < 20; i++) await store.put({ key: `cfg/${i % 4}`, value: `v${i}` });
    const first: WatchResponse[] = await take(it1, 12);
    const last = first.at(-1)!.events.at(-1)!.kv.modRevision;
    // More writes the client never saw, then the process "restarts".
    for (let i = 20; i < 25; i++) await store.put({ key: `cfg/${i % 4}`, value: `v${i}` });
    hub.close();
    await store.close();

    store = openStore(backend.reopen());
    store.onCommit((x) => fullLog.push(x));
    hub = new WatchHub(store);
    const w2 = hub.watch({ key: 'cfg/', rangeEnd: 'cfg0', prevKv: true, startRevision: last + 1 });
    const it2 = w2[Symbol.asyncIterator]();
    for (let i = 25; i < 30; i++) await store.put({ key: `cfg/${i % 4}`, value: `v${i}` });
    w2.requestProgress();
    const cur = store.currentRevision();
    const { responses } = await readUntil(it2, (r) => r.events.length === 0 && r.header.revision === cur);
    const res = checkWatch(
      fullLog,
      { key: 'cfg/', rangeEnd: 'cfg0', startRev: 2, prevKv: true, noPut: false, noDelete: false },
      [...first, ...responses],
    );
    assert.equal(res.complete, true);
    assert.equal(res.delivered, 30);
    hub.close();
    await store.close();
  });

  it('prevKv of a key put then deleted in one txn is its value at revision - 1, as in etcd', async () => {
    const store = openStore();
    const hub = new WatchHub(store);
    await store.put({ key: 'a', value: '1' });
    const it = hub.watch({ key: 'a', prevKv: true })[Symbol.asyncIterator]();
    // etcd 3.4 accepts this txn (the "\0" range escapes its duplicate-key check) and reports
    // prevKv = a@2 (value "1") on both events.
    await store.txn({
      success: [{ requestPut: { key: 'a', value: '2' } }, { requestDeleteRange: { key: '\0', rangeEnd: '\0' } }],
    });
    const [r] = await take(it, 1);
    hub.close();
    await store.close();
    assert.deepEqual(
      r!.events.map((e) => [e.type, e.prevKv === undefined ? null : str(e.prevKv.value)]),
      [
        ['PUT', '1'],
        ['DELETE', '1'],
      ],
    );
  });
});
