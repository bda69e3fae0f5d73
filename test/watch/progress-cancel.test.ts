import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { WatchHub } from '../../src/watch/hub.ts';
import { WatchError } from '../../src/watch/errors.ts';
import { FakeSource } from './support/fake-source.ts';
import { readUntil, take, turn, withTimeout } from './support/helpers.ts';

describe('progress notifications', () => {
  it('requestProgress on a synced watcher answers at the current revision', async () => {
    const src = new FakeSource();
    src.put('x', '1');
    const hub = new WatchHub(src);
    const w = hub.watch({ key: 'a' });
    const it = w[Symbol.asyncIterator]();
    src.put('x', '2'); // revision 3, not watched
    w.requestProgress();
    const [p] = await take(it, 1);
    assert.deepEqual(p, { header: { revision: 3 }, events: [] });
    hub.close();
  });

  it('is deferred until an unsynced watcher has caught up, so it is a valid bookmark', async () => {
    const src = new FakeSource();
    for (let i = 0; i < 40; i++) src.put('a', `${i}`);
    const hub = new WatchHub(src, { catchUpRevisions: 5, maxBufferedEvents: 5 });
    const w = hub.watch({ key: 'a', startRevision: 2 });
    w.requestProgress(); // not synced yet
    const it = w[Symbol.asyncIterator]();
    const { responses } = await readUntil(it, (r) => r.events.length === 0);
    const events = responses.flatMap((r) => r.events);
    assert.equal(events.length, 40, 'every event before the bookmark');
    assert.equal(responses.at(-1)!.header.revision, 41);
    hub.close();
  });

  it('unread progress notifications coalesce instead of piling up', async () => {
    const src = new FakeSource();
    const hub = new WatchHub(src);
    const w = hub.watch({ key: 'a' });
    for (let i = 0; i < 1000; i++) {
      src.put('b', `${i}`);
      w.requestProgress();
    }
    const it = w[Symbol.asyncIterator]();
    const [p] = await take(it, 1);
    assert.equal(p!.header.revision, 1001);
    src.put('a', 'z');
    const [e] = await take(it, 1);
    assert.equal(e!.events.length, 1, 'no stale progress queued behind the first');
    hub.close();
  });

  it('periodic notifications only for progressNotify watchers, skipped after events', async () => {
    const src = new FakeSource();
    const hub = new WatchHub(src, { progressIntervalMs: 20 });
    const notify = hub.watch({ key: 'a', progressNotify: true })[Symbol.asyncIterator]();
    const quiet = hub.watch({ key: 'a' })[Symbol.asyncIterator]();
    src.put('b', '1');
    const [p] = await take(notify, 1, 1000);
    assert.deepEqual(p, { header: { revision: 2 }, events: [] });
    // A tick interval with events delivered gets no notification for that interval.
    src.put('a', '1');
    const [e] = await take(notify, 1, 1000);
    assert.equal(e!.events.length, 1);
    const [p2] = await take(notify, 1, 1000);
    assert.equal(p2!.events.length, 0);
    assert.equal(p2!.header.revision, 3);
    const [q] = await take(quiet, 1);
    assert.equal(q!.events.length, 1, 'the plain watcher saw only the event');
    const pending = quiet.next();
    const raced = await Promise.race([pending, new Promise((r) => setTimeout(() => r('idle'), 80))]);
    assert.equal(raced, 'idle');
    hub.close();
    assert.equal((await pending).done, true);
  });
});

describe('cancel, abort, close', () => {
  it('cancel ends iteration and drops queued responses', async () => {
    const src = new FakeSource();
    const hub = new WatchHub(src);
    const w = hub.watch({ key: 'a' });
    src.put('a', '1');
    w.cancel();
    w.cancel();
    assert.equal(w.canceled, true);
    const it = w[Symbol.asyncIterator]();
    assert.equal((await it.next()).done, true);
    src.put('a', '2');
    assert.equal(hub.stats().synced, 0);
    hub.close();
  });

  it('an AbortSignal cancels; an already aborted one yields nothing', async () => {
    const src = new FakeSource();
    const hub = new WatchHub(src);
    const ac = new AbortController();
    const w = hub.watch({ key: 'a', signal: ac.signal });
    const it = w[Symbol.asyncIterator]();
    const pending = it.next();
    ac.abort();
    assert.equal((await withTimeout(pending, 1000, 'end')).done, true);
    const w2 = hub.watch({ key: 'a', signal: AbortSignal.abort() });
    assert.equal(w2.canceled, true);
    assert.equal(hub.stats().synced + hub.stats().unsynced, 0);
    hub.close();
  });

  it('breaking out of for-await cancels the watch', async () => {
    const src = new FakeSource();
    const hub = new WatchHub(src);
    const w = hub.watch({ key: 'a' });
    src.put('a', '1');
    src.put('a', '2');
    let n = 0;
    for await (const r of w) {
      n += r.events.length;
      break;
    }
    assert.equal(n, 1);
    assert.equal(w.canceled, true);
    hub.close();
  });

  it('hub.close ends every iterator and stream', async () => {
    const src = new FakeSource();
    const hub = new WatchHub(src);
    const it = hub.watch({ key: 'a' })[Symbol.asyncIterator]();
    const s = hub.stream();
    s.create({ key: 'a' });
    const sit = s[Symbol.asyncIterator]();
    const p1 = it.next();
    const p2 = sit.next();
    hub.close();
    assert.equal((await p1).done, true);
    assert.equal((await p2).done, true);
    assert.equal(s.closed, true);
    assert.throws(
      () => s.create({ key: 'b' }),
      (e: unknown) => e instanceof WatchError && e.code === 'ERR_CLOSED',
    );
    src.put('a', '1'); // no listener left: must not throw
  });
});

describe('watch stream', () => {
  it('multiplexes watches tagged by id; cancel(id) answers canceled; progress waits for all', async () => {
    const src = new FakeSource();
    for (let i = 0; i < 20; i++) src.put('old', `${i}`);
    const hub = new WatchHub(src, { catchUpRevisions: 3 });
    const s = hub.stream();
    const it = s[Symbol.asyncIterator]();
    const a = s.create({ key: 'a' });
    const b = s.create({ key: 'old', startRevision: 2 });
    assert.deepEqual([a, b], [0, 1]);
    s.requestProgress(); // watch 1 is behind: deferred
    src.put('a', '1');
    const { responses } = await readUntil(it, (r) => r.watchId === -1);
    const progress = responses.at(-1)!;
    assert.deepEqual(progress, { header: { revision: 22 }, events: [], watchId: -1 });
    const byId = (id: number): number =>
      responses.filter((r) => r.watchId === id).reduce((n, r) => n + r.events.length, 0);
    assert.equal(byId(0), 1);
    assert.equal(byId(1), 20);
    s.cancel(a);
    const [c] = await take(it, 1);
    assert.deepEqual(c, { header: { revision: 22 }, events: [], canceled: true, watchId: 0 });
    s.cancel(a); // unknown now: ignored
    src.put('a', '2');
    src.put('old', 'x');
    const [e] = await take(it, 1);
    assert.equal(e!.watchId, 1);
    s.close();
    assert.equal((await it.next()).done, true);
    assert.throws(
      () => s.create({ key: 'a' }),
      (err: unknown) => err instanceof WatchError,
    );
    hub.close();
  });

  it('a stream shares one bounded buffer; its watches park and catch up independently', async () => {
    const src = new FakeSource();
    const hub = new WatchHub(src, { maxBufferedEvents: 8, catchUpRevisions: 4 });
    const s = hub.stream();
    s.create({ key: 'a' });
    s.create({ key: 'b', prevKv: true });
    for (let i = 0; i < 200; i++) src.txn([{ op: 'put', key: i % 3 === 0 ? 'b' : 'a', value: `${i}` }]);
    await turn();
    assert.ok(hub.stats().unsynced > 0, 'parked while nobody reads');
    const it = s[Symbol.asyncIterator]();
    s.requestProgress();
    const { responses } = await readUntil(it, (r) => r.watchId === -1);
    const revs = (id: number): number[] =>
      responses.filter((r) => r.watchId === id).flatMap((r) => r.events.map((e) => e.kv.modRevision));
    const expect = (pred: (i: number) => boolean): number[] =>
      Array.from({ length: 200 }, (_, i) => i)
        .filter(pred)
        .map((i) => i + 2);
    assert.deepEqual(
      revs(0),
      expect((i) => i % 3 !== 0),
    );
    assert.deepEqual(
      revs(1),
      expect((i) => i % 3 === 0),
    );
    hub.close();
  });
});
