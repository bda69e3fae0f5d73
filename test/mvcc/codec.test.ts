/**
 * Record encoding: the fast index-field reader used on open agrees with the full decoder for every
 * KeyValue and tombstone, whatever the sizes of keys, values and numbers (msgpack picks different
 * encodings for each range).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  decodeIndexFields,
  decodeRecord,
  decodeRecordFull,
  encodeKeyValue,
  encodeTombstone,
} from '../../src/mvcc/codec.ts';
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

test('decodeRecord reads what boltkv writes as msgpackr does, and anything else as msgpackr says', () => {
  const same = (b: Uint8Array, at: Uint8Array): void => {
    let want: unknown;
    try {
      want = decodeRecordFull(b, at);
    } catch (e) {
      assert.throws(
        () => decodeRecord(b, at),
        (got: unknown) => {
          assert.deepEqual(got, e);
          return true;
        },
      );
      return;
    }
    assert.deepEqual(decodeRecord(b, at), want);
  };
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 300 }),
      fc.uint8Array({ maxLength: 70_000 }),
      num,
      num,
      num,
      fc.oneof(fc.constant(0n), fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n })),
      fc.boolean(),
      fc.nat(40),
      fc.integer({ min: 0, max: 255 }),
      (key, value, a, b2, version, lease, tomb, cut, poke) => {
        const createRevision = Math.min(a, b2);
        const modRevision = Math.max(a, b2);
        const b = tomb
          ? encodeTombstone(key)
          : encodeKeyValue({ key, value, createRevision, modRevision, version, lease });
        const at = revToBytes(modRevision, 0, tomb);
        same(b, at);
        // damaged copies: cut short, or one byte of the head changed
        same(b.subarray(0, Math.max(0, b.length - 1 - cut)), at);
        const poked = Uint8Array.from(b);
        poked[cut % poked.length] = poke;
        same(poked, at);
      },
    ),
    { numRuns: 500 },
  );
  // a uint64 lease above int64 is damage on both paths
  const big = encodeKeyValue({
    key: Buffer.from('k'),
    value: Buffer.from('v'),
    createRevision: 1,
    modRevision: 1,
    version: 1,
    lease: 5n,
  });
  const wide = Buffer.concat([big.subarray(0, big.length - 1), Buffer.from([0xcf, 0xff, 0, 0, 0, 0, 0, 0, 1])]);
  assert.throws(() => decodeRecordFull(wide, revToBytes(1, 0)), { code: 'ERR_CORRUPT' });
  assert.throws(() => decodeRecord(wide, revToBytes(1, 0)), { code: 'ERR_CORRUPT' });
});
