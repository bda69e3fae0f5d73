/**
 * The watch stream's etcd 3.4 answers, in process: created responses, client-chosen ids and the
 * duplicate answer, empty ranges refused in the stream, compacted watches holding their id until
 * canceled, unknown cancels unanswered. (The same sequences are compared with a real etcd in
 * etcd-differential.test.ts.)
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { WatchError } from '../../src/watch/errors.ts';
import { WatchHub } from '../../src/watch/hub.ts';
import { FakeSource } from './support/fake-source.ts';
import { take, turn, withTimeout } from './support/helpers.ts';

const DUP = 'mvcc: duplicate watch ID provided on the WatchStream';

describe('watch stream ids and answers', () => {
  it('client-chosen ids, auto ids skipping them, duplicates and empty ranges answered with watchId -1', async () => {
    const src = new FakeSource();
    src.put('a', '0'); // revision 2
    const hub = new WatchHub(src);
    const s = hub.stream({ createdNotify: true });
    const it = s[Symbol.asyncIterator]();
    assert.equal(s.create({ key: 'a', watchId: 1 }), 1);
    assert.equal(s.create({ key: 'a' }), 0);
    assert.equal(s.create({ key: 'a' }), 2); // 1 is taken
    assert.equal(s.create({ key: 'a', watchId: -5 }), -5); // etcd takes any non-zero id
    assert.equal(s.create({ key: 'b', watchId: 2 }), -1);
    assert.equal(s.create({ key: 'b', rangeEnd: 'a' }), -1);
    const created = (watchId: number) => ({ header: { revision: 2 }, events: [], watchId, created: true });
    assert.deepEqual(await take(it, 6), [
      created(1),
      created(0),
      created(2),
      created(-5),
      { header: { revision: 2 }, events: [], watchId: -1, created: true, canceled: true, cancelReason: DUP },
      {
        header: { revision: 2 },
        events: [],
        watchId: -1,
        created: true,
        canceled: true,
        cancelReason: 'mvcc: watcher range is empty',
      },
    ]);
    src.put('a', '1');
    const events = await take(it, 4);
    assert.deepEqual(events.map((r) => r.watchId).sort(), [-5, 0, 1, 2]);
    // A canceled id is free again; an unknown one gets no answer.
    s.cancel(1);
    s.cancel(1);
    s.cancel(99);
    assert.equal(s.create({ key: 'a', watchId: 1 }), 1);
    assert.deepEqual(await take(it, 2), [
      { header: { revision: 3 }, events: [], canceled: true, watchId: 1 },
      { header: { revision: 3 }, events: [], watchId: 1, created: true },
    ]);
    s.requestProgress();
    assert.deepEqual(await take(it, 1), [{ header: { revision: 3 }, events: [], watchId: -1 }]);
    // Malformed requests still throw; a standalone watch has no ids.
    assert.throws(
      () => s.create({ key: 'a', watchId: 1.5 }),
      (e: unknown) => e instanceof WatchError && e.code === 'ERR_INVALID_WATCH_REQUEST',
    );
    assert.throws(
      () => hub.watch({ key: 'a', watchId: 3 }),
      (e: unknown) => e instanceof WatchError && e.code === 'ERR_INVALID_WATCH_REQUEST',
    );
    assert.throws(
      () => hub.watch({ key: 'b', rangeEnd: 'a' }),
      (e: unknown) => e instanceof WatchError && e.code === 'ERR_EMPTY_WATCH_RANGE',
    );
    hub.close();
  });

  it('a compacted watch is answered at header revision 0 and keeps its id until canceled', async () => {
    const src = new FakeSource();
    for (let i = 0; i < 10; i++) src.put('k', `${i}`);
    src.compact(6);
    const hub = new WatchHub(src);
    const s = hub.stream({ createdNotify: true });
    const it = s[Symbol.asyncIterator]();
    assert.equal(s.create({ key: 'k', startRevision: 2, watchId: 7 }), 7);
    assert.deepEqual(await take(it, 2), [
      { header: { revision: 11 }, events: [], watchId: 7, created: true },
      { header: { revision: 0 }, events: [], compactRevision: 6, canceled: true, watchId: 7 },
    ]);
    // Still held: etcd reports the duplicate until the client cancels it.
    assert.equal(s.create({ key: 'k', watchId: 7 }), -1);
    assert.equal((await take(it, 1))[0]!.cancelReason, DUP);
    // Its id does not hold a progress request back.
    s.requestProgress();
    assert.deepEqual(await take(it, 1), [{ header: { revision: 11 }, events: [], watchId: -1 }]);
    s.cancel(7);
    assert.deepEqual(await take(it, 1), [{ header: { revision: 11 }, events: [], canceled: true, watchId: 7 }]);
    assert.equal(s.create({ key: 'k', watchId: 7 }), 7);
    // The standalone watch gets the same compacted answer.
    const w = hub.watch({ key: 'k', startRevision: 3 });
    const [c] = await take(w[Symbol.asyncIterator](), 1);
    assert.deepEqual(c, { header: { revision: 0 }, events: [], compactRevision: 6, canceled: true });
    hub.close();
  });

  it('an aborted signal cancels at once: created, canceled, and the id is free', async () => {
    const src = new FakeSource();
    const hub = new WatchHub(src);
    const s = hub.stream({ createdNotify: true });
    const it = s[Symbol.asyncIterator]();
    const ac = new AbortController();
    ac.abort();
    assert.equal(s.create({ key: 'a', watchId: 4, signal: ac.signal }), 4);
    assert.deepEqual(await take(it, 2), [
      { header: { revision: 1 }, events: [], watchId: 4, created: true },
      { header: { revision: 1 }, events: [], canceled: true, watchId: 4 },
    ]);
    assert.equal(s.create({ key: 'a', watchId: 4 }), 4);
    await take(it, 1);
    s.close();
    assert.equal((await withTimeout(it.next(), 1000, 'end')).done, true);
    hub.close();
  });

  it('catch-up responses hold at most 1,000 revisions by default (etcd watchBatchMaxRevs)', async () => {
    const src = new FakeSource();
    for (let i = 0; i < 2500; i++) src.put(`k${i % 3}`, `${i}`);
    const hub = new WatchHub(src);
    const w = hub.watch({ key: 'k', rangeEnd: 'l', startRevision: 2 });
    const it = w[Symbol.asyncIterator]();
    await turn();
    const rs = await take(it, 3);
    assert.deepEqual(
      rs.map((r) => r.events.length),
      [1000, 1000, 500],
    );
    assert.deepEqual(
      rs.map((r) => r.header.revision),
      [1001, 2001, 2501],
    );
    hub.close();
  });
});

describe('watch stream without createdNotify (as clientv3 shows a stream)', () => {
  it('no created responses; duplicate ids and empty ranges throw; a compacted id is free at once', async () => {
    const src = new FakeSource();
    for (let i = 0; i < 10; i++) src.put('k', `${i}`);
    src.compact(6);
    const hub = new WatchHub(src);
    assert.throws(
      () => hub.stream({ createdNotifications: true } as never),
      (e: unknown) => e instanceof WatchError && e.code === 'ERR_UNKNOWN_FIELD' && e.field === 'createdNotifications',
    );
    const s = hub.stream();
    const it = s[Symbol.asyncIterator]();
    assert.equal(s.create({ key: 'k', watchId: 3 }), 3);
    assert.throws(
      () => s.create({ key: 'j', watchId: 3 }),
      (e: unknown) => e instanceof WatchError && e.code === 'ERR_DUPLICATE_WATCH_ID' && e.message === DUP,
    );
    assert.throws(
      () => s.create({ key: 'b', rangeEnd: 'a' }),
      (e: unknown) => e instanceof WatchError && e.code === 'ERR_EMPTY_WATCH_RANGE',
    );
    assert.equal(s.create({ key: 'k', startRevision: 2, watchId: 7 }), 7);
    // The first response is the compacted cancel: no created responses, no refusals in the stream.
    assert.deepEqual(await take(it, 1), [
      { header: { revision: 0 }, events: [], compactRevision: 6, canceled: true, watchId: 7 },
    ]);
    assert.equal(s.create({ key: 'k', watchId: 7 }), 7);
    src.put('k', 'x');
    const rs = await take(it, 2);
    assert.deepEqual(rs.map((r) => [r.watchId, r.events.length]).sort(), [
      [3, 1],
      [7, 1],
    ]);
    hub.close();
  });
});
