// The alarm store against a simple model (a set of member:alarm), and its bucket keys against
// etcd's AlarmMember protobuf encoding.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { AlarmStore, decodeAlarmKey, encodeAlarmKey } from '../../src/replication/alarms.ts';

test("bucket keys are etcd's AlarmMember protobuf and decode back", () => {
  // memberID 0x1234 (varint 0xb4 0x24), alarm NOSPACE (1)
  assert.deepEqual([...encodeAlarmKey({ memberId: 0x1234n, alarm: 'NOSPACE' })], [0x08, 0xb4, 0x24, 0x10, 0x01]);
  assert.equal(
    decodeAlarmKey(Uint8Array.from([0x08, 0x01, 0x10, 0x02])),
    undefined,
    'CORRUPT is not one boltkv raises',
  );
  assert.equal(decodeAlarmKey(Uint8Array.from([0x08, 0x80])), undefined, 'truncated varint');
  fc.assert(
    fc.property(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), (memberId) => {
      assert.deepEqual(decodeAlarmKey(encodeAlarmKey({ memberId, alarm: 'NOSPACE' })), { memberId, alarm: 'NOSPACE' });
    }),
  );
});

test('activate/deactivate sequences match a set model, changes are reported once, and the bucket reloads to the same list', () => {
  fc.assert(
    fc.property(
      fc.array(fc.record({ on: fc.boolean(), m: fc.integer({ min: 0, max: 4 }) }), { maxLength: 40 }),
      (ops) => {
        const s = new AlarmStore();
        const model = new Set<number>();
        const bucket = new Map<string, Uint8Array>();
        const w = {
          put: (_b: string, k: Uint8Array, _v: Uint8Array) => void bucket.set(Buffer.from(k).toString('hex'), k),
          delete: (_b: string, k: Uint8Array) => void bucket.delete(Buffer.from(k).toString('hex')),
        };
        for (const op of ops) {
          const had = model.has(op.m);
          if (op.on) model.add(op.m);
          else model.delete(op.m);
          const r = s.apply({ action: op.on ? 'activate' : 'deactivate', memberId: BigInt(op.m), alarm: 'NOSPACE' });
          assert.equal(r.changed !== undefined, had !== op.on);
          for (const write of r.writes) write(w as never);
          assert.equal(s.has('NOSPACE'), model.size > 0);
        }
        const want = [...model].sort((a, b) => a - b).map((m) => ({ memberId: BigInt(m), alarm: 'NOSPACE' }));
        assert.deepEqual(s.list(), want);
        const reader = {
          scan: (_b: string, _f: Uint8Array, _t: unknown, fn: (k: Uint8Array, v: Uint8Array) => void) => {
            for (const k of bucket.values()) fn(k, new Uint8Array(0));
          },
        };
        assert.deepEqual(AlarmStore.load(reader as never).list(), want);
      },
    ),
  );
});
