// The alarm store against a simple model (a set of member:alarm), and its bucket keys against
// etcd's AlarmMember protobuf encoding.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { AlarmStore, decodeAlarmKey, encodeAlarmKey } from '../../src/replication/alarms.ts';

test("bucket keys are etcd's AlarmMember protobuf and decode back", () => {
  // memberID 0x1234 (varint 0xb4 0x24), alarm NOSPACE (1)
  assert.deepEqual([...encodeAlarmKey({ memberId: 0x1234n, alarm: 'NOSPACE' })], [0x08, 0xb4, 0x24, 0x10, 0x01]);
  assert.deepEqual(decodeAlarmKey(Uint8Array.from([0x08, 0x01, 0x10, 0x02])), { memberId: 1n, alarm: 'CORRUPT' });
  assert.deepEqual(
    [...encodeAlarmKey({ memberId: 0n, alarm: 'CORRUPT' })],
    [0x10, 0x02],
    'member 0: no memberID field',
  );
  assert.equal(
    decodeAlarmKey(Uint8Array.from([0x08, 0x01, 0x10, 0x03])),
    undefined,
    'an alarm type boltkv does not know',
  );
  assert.equal(decodeAlarmKey(Uint8Array.from([0x08, 0x80])), undefined, 'truncated varint');
  fc.assert(
    fc.property(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), (memberId) => {
      assert.deepEqual(decodeAlarmKey(encodeAlarmKey({ memberId, alarm: 'NOSPACE' })), { memberId, alarm: 'NOSPACE' });
    }),
  );
});

test('activate/deactivate sequences of both types match a set model, changes are reported once, and the bucket reloads to the same list', () => {
  const TYPES = ['NOSPACE', 'CORRUPT'] as const;
  fc.assert(
    fc.property(
      fc.array(fc.record({ on: fc.boolean(), m: fc.integer({ min: 0, max: 4 }), t: fc.integer({ min: 0, max: 1 }) }), {
        maxLength: 40,
      }),
      (ops) => {
        const s = new AlarmStore();
        // the model: "member:type index"
        const model = new Set<string>();
        const bucket = new Map<string, Uint8Array>();
        const w = {
          put: (_b: string, k: Uint8Array, _v: Uint8Array) => void bucket.set(Buffer.from(k).toString('hex'), k),
          delete: (_b: string, k: Uint8Array) => void bucket.delete(Buffer.from(k).toString('hex')),
        };
        for (const op of ops) {
          const alarm = TYPES[op.t]!;
          const key = `${op.m}:${op.t}`;
          const had = model.has(key);
          if (op.on) model.add(key);
          else model.delete(key);
          const r = s.apply({ action: op.on ? 'activate' : 'deactivate', memberId: BigInt(op.m), alarm });
          assert.equal(r.changed, had !== op.on);
          // etcd answers the alarm on every activation, and on a deactivation that found it
          assert.deepEqual(r.answer, op.on || had ? { memberId: BigInt(op.m), alarm } : undefined);
          for (const write of r.writes) write(w as never);
          for (const [i, t] of TYPES.entries())
            assert.equal(
              s.has(t),
              [...model].some((k) => k.endsWith(`:${i}`)),
            );
        }
        const want = [...model]
          .map((k) => k.split(':').map(Number) as [number, number])
          .sort((a, b) => a[0] - b[0] || a[1] - b[1])
          .map(([m, t]) => ({ memberId: BigInt(m), alarm: TYPES[t]! }));
        assert.deepEqual(s.list(), want);
        for (const t of TYPES)
          assert.deepEqual(
            s.list(t),
            want.filter((a) => a.alarm === t),
          );
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
