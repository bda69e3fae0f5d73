/**
 * Record encoding: the fast index-field reader used on open agrees with the full decoder for every
 * KeyValue and tombstone, whatever the sizes of keys, values and numbers (msgpack picks different
 * encodings for each range).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeIndexFields, decodeRecord, encodeKeyValue, encodeTombstone } from '../../src/mvcc/codec.ts';

const num = fc.oneof(fc.nat(200), fc.nat(70_000), fc.nat(2 ** 32 + 5), fc.maxSafeNat());
const latin1 = (b: Uint8Array): string => Buffer.from(b).toString('latin1');

test('decodeIndexFields agrees with decodeRecord', () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 1, maxLength: 300 }), fc.uint8Array({ maxLength: 70_000 }),
      num, num, num, fc.oneof(fc.constant(0n), fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n })), fc.boolean(),
      (key, value, createRevision, modRevision, version, lease, tomb) => {
        const b = tomb ? encodeTombstone(key) : encodeKeyValue({ key, value, createRevision, modRevision, version, lease });
        const full = decodeRecord(b);
        const f = decodeIndexFields(b);
        assert.equal(f.key, latin1(key));
        assert.equal(f.tombstone, full.tombstone);
        if (!full.tombstone) {
          assert.deepEqual(full.kv.value, value);
          assert.deepEqual([f.createRevision, f.version, f.lease], [createRevision, version, lease]);
        }
      },
    ),
    { numRuns: 300 },
  );
});
