/**
 * Record encoding: the fast index-field reader used on open agrees with the full decoder for every
 * KeyValue and tombstone, whatever the sizes of keys, values and numbers (msgpack picks different
 * encodings for each range).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeIndexFields, decodeRecord, encodeKeyValue, encodeTombstone } from '../../src/mvcc/codec.ts';
import { revToBytes } from '../../src/mvcc/revision.ts';

const num = fc.oneof(fc.nat(200), fc.nat(70_000), fc.nat(2 ** 32 + 5), fc.nat({ max: Number.MAX_SAFE_INTEGER - 1 }));
const latin1 = (b: Uint8Array): string => Buffer.from(b).toString('latin1');

test('decodeIndexFields agrees with decodeRecord', () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 1, maxLength: 300 }),
      fc.uint8Array({ maxLength: 70_000 }),
      num.map((n) => n + 1),
      num.map((n) => n + 1),
      num.map((n) => n + 1),
      fc.oneof(fc.constant(0n), fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n })),
      fc.boolean(),
      (key, value, a, b2, version, lease, tomb) => {
        const createRevision = Math.min(a, b2);
        const modRevision = Math.max(a, b2);
        const b = tomb
          ? encodeTombstone(key)
          : encodeKeyValue({ key, value, createRevision, modRevision, version, lease });
        const at = revToBytes(modRevision, 0, tomb);
        const full = decodeRecord(b, at);
        const f = decodeIndexFields(b, at);
        assert.equal(f.key, latin1(key));
        assert.equal(f.tombstone, full.tombstone);
        if (!full.tombstone) {
          assert.deepEqual(new Uint8Array(full.kv.value), value);
          assert.deepEqual(
            [f.createRevision, f.modRevision, f.version, f.lease],
            [createRevision, modRevision, version, lease],
          );
          assert.equal(full.kv.lease, lease);
        }
      },
    ),
    { numRuns: 300 },
  );
});
