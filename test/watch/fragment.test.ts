/**
 * etcd's response fragmentation, against its definition: pieces concatenate to the original
 * events, every piece stays below the limit unless it holds a single event, every piece but the
 * last is as full as it can be and says `fragment: true`. The split points themselves are checked
 * against a real etcd in etcd-differential.test.ts.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { Event, KeyValue } from '../../src/mvcc/types.ts';
import { fragmentResponse, watchResponseSize } from '../../src/watch/fragment.ts';
import { WatchHub } from '../../src/watch/hub.ts';
import type { WatchResponse } from '../../src/watch/types.ts';
import { FakeSource } from './support/fake-source.ts';
import { take } from './support/helpers.ts';

const kvArb: fc.Arbitrary<KeyValue> = fc.record({
  key: fc.uint8Array({ minLength: 1, maxLength: 40 }),
  createRevision: fc.integer({ min: 0, max: 2 ** 40 }),
  modRevision: fc.integer({ min: 1, max: 2 ** 40 }),
  version: fc.integer({ min: 0, max: 5000 }),
  value: fc.uint8Array({ maxLength: 3000 }),
  lease: fc.oneof(fc.constant(0n), fc.bigInt({ min: 1n, max: 2n ** 63n - 1n })),
});
const eventArb: fc.Arbitrary<Event> = fc.record(
  { type: fc.constantFrom('PUT' as const, 'DELETE' as const), kv: kvArb, prevKv: kvArb },
  { requiredKeys: ['type', 'kv'] },
);

describe('fragmentResponse', () => {
  it('sizes a response as protobuf does', () => {
    const kv: KeyValue = {
      key: new Uint8Array([97]),
      createRevision: 1,
      modRevision: 1,
      version: 1,
      value: new Uint8Array([98]),
      lease: 0n,
    };
    // kv: key 3 + three int64s 2 each + value 3 = 12; event: 1 + 1 + 12 = 14; in the response 1 + 1 + 14 = 16.
    // header: cluster and member ids 11 each, revision 2, raft term 2 = 26, as a field 28. Total 44.
    assert.equal(watchResponseSize({ header: { revision: 1 }, events: [{ type: 'PUT', kv }] }), 44);
    // watchId 300 takes a two-byte varint, DELETE adds the type field, fragment two bytes.
    assert.equal(
      watchResponseSize({ header: { revision: 1 }, watchId: 300, fragment: true, events: [{ type: 'DELETE', kv }] }),
      44 + 3 + 2 + 2,
    );
    // A lease id above 2^62 (as etcd hands out) is a nine-byte varint plus its tag.
    assert.equal(
      watchResponseSize({
        header: { revision: 1 },
        events: [{ type: 'PUT', kv: { ...kv, lease: 7587868394318233155n } }],
      }),
      44 + 10,
    );
    // A negative int64 (watchId -1) is ten bytes.
    assert.equal(watchResponseSize({ header: { revision: 1 }, watchId: -1, events: [] }), 28 + 11);
  });

  it('splits exactly as etcd sendFragments defines it', () => {
    fc.assert(
      fc.property(
        fc.array(eventArb, { maxLength: 40 }),
        fc.integer({ min: 50, max: 40_000 }),
        fc.integer({ min: 0, max: 1000 }),
        (events, maxBytes, watchId) => {
          const resp: WatchResponse = { header: { revision: 7 }, events, watchId };
          const pieces = fragmentResponse(resp, maxBytes);
          assert.deepEqual(
            pieces.flatMap((p) => p.events),
            events,
          );
          if (events.length < 2 || watchResponseSize(resp) < maxBytes) {
            assert.deepEqual(pieces, [resp]);
            return;
          }
          pieces.forEach((p, i) => {
            const last = i === pieces.length - 1;
            assert.equal(p.fragment, last ? undefined : true);
            assert.equal(p.watchId, watchId);
            assert.equal(p.header.revision, 7);
            assert.ok(p.events.length >= 1);
            const asSent = { ...p, fragment: true };
            if (p.events.length > 1) assert.ok(watchResponseSize(asSent) < maxBytes, 'below the limit');
            if (!last) {
              const next = pieces[i + 1]!.events[0]!;
              assert.ok(
                watchResponseSize({ ...asSent, events: [...p.events, next] }) >= maxBytes,
                'as full as it can be',
              );
            }
          });
        },
      ),
      { numRuns: 300 },
    );
  });

  it('a live revision reaching the limit reaches a fragmenting watch in pieces, others whole', async () => {
    const src = new FakeSource();
    // Limit 1 byte + 512 KiB: a revision of 8 x 100 KiB values must be cut.
    const hub = new WatchHub(src, { maxRequestBytes: 1 });
    const w = hub.watch({ key: 'k', rangeEnd: 'l', fragment: true });
    const plain = hub.watch({ key: 'k', rangeEnd: 'l' });
    const big = 'x'.repeat(100 * 1024);
    src.txn(Array.from({ length: 8 }, (_, i) => ({ op: 'put' as const, key: `k${i}`, value: big })));
    const pieces = await take(w[Symbol.asyncIterator](), 2);
    assert.deepEqual(
      pieces.map((p) => [p.events.length, p.fragment]),
      [
        [5, true],
        [3, undefined],
      ],
    );
    const [whole] = await take(plain[Symbol.asyncIterator](), 1);
    assert.equal(whole!.events.length, 8);
    assert.equal(whole!.fragment, undefined);
    hub.close();
  });
});
