import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { WatchHub } from '../../src/watch/hub.ts';
import { WatchError } from '../../src/watch/errors.ts';
import type { WatchResponse } from '../../src/watch/types.ts';
import { FakeSource } from './support/fake-source.ts';
import { checkWatch } from './support/checker.ts';
import { readUntil, str, take, turn } from './support/helpers.ts';

const keysOf = (r: WatchResponse): string[] => r.events.map((e) => `${e.type}:${str(e.kv.key)}`);

describe('WatchHub basics', () => {
  it('delivers each committed revision to a synced watcher, one response per revision', async () => {
    const src = new FakeSource();
    const hub = new WatchHub(src);
    const w = hub.watch({ key: 'a' });
    const it = w[Symbol.asyncIterator]();
    src.put('a', '1');
    src.put('b', 'x');
    src.put('a', '2');
    src.delete('a');
    const rs = await take(it, 3);
    assert.deepEqual(rs.map(keysOf), [['PUT:a'], ['PUT:a'], ['DELETE:a']]);
    assert.deepEqual(
      rs.map((r) => r.header.revision),
      [2, 4, 5],
    );
    assert.equal(rs[0]!.events[0]!.kv.version, 1);
    assert.equal(rs[1]!.events[0]!.kv.version, 2);
    assert.equal(rs[1]!.events[0]!.prevKv, undefined, 'prevKv only when asked');
    assert.equal(rs[0]!.watchId, undefined);
    w.cancel();
    assert.equal((await it.next()).done, true);
    hub.close();
  });

  it('prevKv and filters', async () => {
    const src = new FakeSource();
    const hub = new WatchHub(src);
    const withPrev = hub.watch({ key: 'k', prevKv: true })[Symbol.asyncIterator]();
    const noPut = hub.watch({ key: 'k', filters: ['NOPUT'] })[Symbol.asyncIterator]();
    const noDel = hub.watch({ key: 'k', filters: ['NODELETE'] })[Symbol.asyncIterator]();
    src.put('k', 'v1');
    src.put('k', 'v2');
    src.delete('k');
    const p = await take(withPrev, 3);
    assert.equal(p[0]!.events[0]!.prevKv, undefined, 'a create has no previous value');
    assert.equal(str(p[1]!.events[0]!.prevKv!.value), 'v1');
    assert.equal(str(p[2]!.events[0]!.prevKv!.value), 'v2');
    assert.deepEqual((await take(noPut, 1)).map(keysOf), [['DELETE:k']]);
    assert.deepEqual((await take(noDel, 2)).map(keysOf), [['PUT:k'], ['PUT:k']]);
    hub.close();
  });

  it('keeps all events of one revision in one response (txn, range delete)', async () => {
    const src = new FakeSource();
    const hub = new WatchHub(src, { maxBufferedEvents: 2 });
    const it = hub.watch({ key: 'p/', rangeEnd: 'p0' })[Symbol.asyncIterator]();
    src.txn([
      { op: 'put', key: 'p/1', value: 'a' },
      { op: 'put', key: 'q', value: 'a' },
      { op: 'put', key: 'p/2', value: 'b' },
      { op: 'put', key: 'p/3', value: 'c' },
    ]);
    src.delete('p/', 'p0');
    const rs = await take(it, 2);
    assert.deepEqual(rs.map(keysOf), [
      ['PUT:p/1', 'PUT:p/2', 'PUT:p/3'],
      ['DELETE:p/1', 'DELETE:p/2', 'DELETE:p/3'],
    ]);
    hub.close();
  });

  it('range rules: prefix, open-ended "\\0", all keys, UTF-8 strings and bytes', async () => {
    const src = new FakeSource();
    const hub = new WatchHub(src);
    const open = hub.watch({ key: 'm', rangeEnd: '\0' })[Symbol.asyncIterator]();
    const all = hub.watch({ key: '\0', rangeEnd: '\0' })[Symbol.asyncIterator]();
    const bytes = hub.watch({ key: new Uint8Array([0xc3, 0xa9]) })[Symbol.asyncIterator](); // "é"
    src.put('a', '1');
    src.put('z', '1');
    src.put(Buffer.from('é', 'utf8').toString('latin1'), '1'); // the fake takes byte-strings
    assert.deepEqual((await take(open, 2)).map(keysOf), [['PUT:z'], ['PUT:é']]);
    assert.deepEqual((await take(all, 3)).map(keysOf), [['PUT:a'], ['PUT:z'], ['PUT:é']]);
    assert.deepEqual((await take(bytes, 1)).map(keysOf), [['PUT:é']]);
    hub.close();
  });

  it('rejects bad requests with typed errors', () => {
    const hub = new WatchHub(new FakeSource());
    const bad: [unknown, string][] = [
      [{ key: '' }, 'ERR_INVALID_WATCH_REQUEST'],
      [{ key: 42 }, 'ERR_INVALID_WATCH_REQUEST'],
      [{ key: 'b', rangeEnd: 'a' }, 'ERR_EMPTY_WATCH_RANGE'],
      [{ key: 'a', rangeEnd: 'a' }, 'ERR_EMPTY_WATCH_RANGE'],
      [{ key: 'a', startRevision: -1 }, 'ERR_INVALID_WATCH_REQUEST'],
      [{ key: 'a', startRevision: 1.5 }, 'ERR_INVALID_WATCH_REQUEST'],
      [{ key: 'a', filters: ['NOPE'] }, 'ERR_INVALID_WATCH_REQUEST'],
      [{ key: 'a', filters: 'NOPUT' }, 'ERR_INVALID_WATCH_REQUEST'],
      [{ key: 'a', signal: {} }, 'ERR_INVALID_WATCH_REQUEST'],
      [null, 'ERR_INVALID_WATCH_REQUEST'],
    ];
    for (const [req, code] of bad) {
      assert.throws(
        () => hub.watch(req as never),
        (e: unknown) => e instanceof WatchError && e.code === code,
        JSON.stringify(req),
      );
    }
    // Unknown fields are refused by name: a foreign spelling must not silently mean "one key".
    for (const field of ['range_end', 'prefix', 'startRev']) {
      assert.throws(
        () => hub.watch({ key: 'a', [field]: 'b' } as never),
        (e: unknown) =>
          e instanceof WatchError && e.code === 'ERR_UNKNOWN_FIELD' && e.field === field && e.message.includes(field),
        field,
      );
      assert.throws(
        () => hub.stream().create({ key: 'a', [field]: 'b' } as never),
        (e: unknown) => e instanceof WatchError && e.code === 'ERR_UNKNOWN_FIELD' && e.field === field,
        `stream ${field}`,
      );
    }
    assert.throws(
      () => new WatchHub(new FakeSource(), { maxBufferedEvent: 10 } as never),
      (e: unknown) => e instanceof WatchError && e.code === 'ERR_UNKNOWN_FIELD' && e.field === 'maxBufferedEvent',
    );
    assert.throws(
      () => new WatchHub(new FakeSource(), { maxBufferedEvents: 0 }),
      (e: unknown) => e instanceof WatchError && e.code === 'ERR_INVALID_WATCH_REQUEST',
    );
    hub.close();
    assert.throws(
      () => hub.watch({ key: 'a' }),
      (e: unknown) => e instanceof WatchError && e.code === 'ERR_CLOSED',
    );
  });
});

describe('WatchHub history and compaction', () => {
  it('a watcher started in the past reads history, then joins the live feed without gap', async () => {
    const src = new FakeSource();
    for (let i = 0; i < 50; i++) src.put(`k${i % 5}`, `v${i}`);
    const hub = new WatchHub(src, { catchUpRevisions: 4, maxBufferedEvents: 6 });
    const w = hub.watch({ key: 'k', rangeEnd: 'l', startRevision: 3, prevKv: true });
    const it = w[Symbol.asyncIterator]();
    const got: WatchResponse[] = [];
    // Keep writing while it catches up, so the hand-over happens under load.
    for (let i = 0; i < 30; i++) {
      src.put(`k${i % 7}`, `w${i}`);
      if (i % 3 === 0) got.push(...(await take(it, 1)));
      await turn();
    }
    w.requestProgress();
    const final = src.currentRevision();
    got.push(...(await readUntil(it, (r) => r.events.length === 0 && r.header.revision === final)).responses);
    assert.ok(src.reads > 0, 'history was read');
    const res = checkWatch(
      src.fullLog,
      { key: 'k', rangeEnd: 'l', startRev: 3, prevKv: true, noPut: false, noDelete: false },
      got,
    );
    assert.equal(res.complete, true);
    assert.equal(res.delivered, 49 + 30); // revisions 3..51, then 30 live puts
    assert.equal(hub.stats().synced, 1);
    hub.close();
  });

  it('a start revision below the compact revision gets one compacted cancel', async () => {
    const src = new FakeSource();
    for (let i = 0; i < 10; i++) src.put('a', `${i}`);
    src.compact(6);
    const hub = new WatchHub(src);
    const w = hub.watch({ key: 'a', startRevision: 5 });
    const it = w[Symbol.asyncIterator]();
    const [r] = await take(it, 1);
    assert.equal(r!.compactRevision, 6);
    assert.equal(r!.canceled, true);
    assert.equal(r!.events.length, 0);
    assert.equal((await it.next()).done, true);
    assert.equal(w.canceled, true);
    // Exactly at the compact revision is still readable.
    const ok = hub.watch({ key: 'a', startRevision: 6 })[Symbol.asyncIterator]();
    const rs = await take(ok, 1);
    assert.deepEqual(
      rs[0]!.events.map((e) => e.kv.modRevision),
      [6, 7, 8, 9, 10, 11],
    );
    hub.close();
  });

  it('a future start revision waits for that revision', async () => {
    const src = new FakeSource();
    const hub = new WatchHub(src);
    const it = hub.watch({ key: 'a', startRevision: 4 })[Symbol.asyncIterator]();
    src.put('a', '1'); // rev 2
    src.put('a', '2'); // rev 3
    src.put('a', '3'); // rev 4
    const [r] = await take(it, 1);
    assert.equal(r!.events[0]!.kv.modRevision, 4);
    hub.close();
  });

  it('re-reads from history when the source skips a revision notification', async () => {
    const src = new FakeSource();
    const hub = new WatchHub(src);
    const it = hub.watch({ key: 'a' })[Symbol.asyncIterator]();
    src.put('a', '1'); // rev 2, notified
    src.muteNext = 1;
    src.put('a', '2'); // rev 3, notification lost
    src.put('a', '3'); // rev 4, notified: the hub sees the gap
    const got = await take(it, 2);
    assert.deepEqual(
      got.flatMap((r) => r.events.map((e) => e.kv.modRevision)),
      [2, 3, 4],
    );
    hub.close();
  });
});
