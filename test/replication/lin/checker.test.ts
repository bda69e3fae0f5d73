// The linearizability checker on histories whose verdict is known.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { checkKv, checkRegister, type Operation } from './checker.ts';

const put = (client: number, value: string, call: number, ret: number): Operation => ({
  client,
  input: { kind: 'put', key: 'x', value },
  output: { kind: 'put' },
  call,
  ret,
});
const get = (client: number, value: string | null, call: number, ret: number): Operation => ({
  client,
  input: { kind: 'get', key: 'x' },
  output: { kind: 'get', value },
  call,
  ret,
});
const lostPut = (client: number, value: string, call: number): Operation => ({
  client,
  input: { kind: 'put', key: 'x', value },
  output: { kind: 'unknown' },
  call,
  ret: Infinity,
});

test('sequential and overlapping good histories are linearizable', () => {
  assert.ok(checkRegister([put(0, 'a', 0, 1), get(1, 'a', 2, 3)]));
  assert.ok(checkRegister([get(0, null, 0, 1), put(0, 'a', 2, 3)]));
  // a read overlapping a write may see either value
  assert.ok(checkRegister([put(0, 'a', 0, 10), get(1, 'a', 1, 2), get(2, 'a', 3, 4)]));
  assert.ok(checkRegister([put(0, 'a', 0, 10), get(1, null, 1, 2), get(2, 'a', 3, 4)]));
  // two concurrent writes, reads agree on one order
  assert.ok(checkRegister([put(0, 'a', 0, 10), put(1, 'b', 0, 10), get(2, 'a', 11, 12), get(3, 'a', 13, 14)]));
  // an unknown write may take effect late, or never
  assert.ok(checkRegister([lostPut(0, 'a', 0), get(1, null, 5, 6), get(1, 'a', 7, 8)]));
  assert.ok(checkRegister([lostPut(0, 'a', 0), get(1, null, 5, 6), get(1, null, 7, 8)]));
});

test('stale reads, lost writes and flip-flops are caught', () => {
  // a read after a completed write sees the old value
  assert.equal(checkRegister([put(0, 'a', 0, 1), get(1, null, 2, 3)]), false);
  // two reads in sequence disagree with any single order of two concurrent writes
  assert.equal(
    checkRegister([
      put(0, 'a', 0, 10),
      put(1, 'b', 0, 10),
      get(2, 'a', 11, 12),
      get(3, 'b', 13, 14),
      get(2, 'a', 15, 16),
    ]),
    false,
  );
  // a read of a value nobody wrote
  assert.equal(checkRegister([put(0, 'a', 0, 1), get(1, 'z', 2, 3)]), false);
  // a value seen, then the older value again (new-old inversion)
  assert.equal(checkRegister([put(0, 'a', 0, 1), put(0, 'b', 2, 20), get(1, 'b', 3, 4), get(2, 'a', 5, 6)]), false);
  // an unknown write cannot be read before it was called
  assert.equal(checkRegister([get(1, 'a', 0, 1), lostPut(0, 'a', 2)]), false);
});

test('compare-and-set: success and failure must match the order', () => {
  const cas = (
    client: number,
    expect: string | null,
    value: string,
    ok: boolean,
    call: number,
    ret: number,
  ): Operation => ({ client, input: { kind: 'cas', key: 'x', expect, value }, output: { kind: 'cas', ok }, call, ret });
  assert.ok(checkRegister([put(0, 'a', 0, 1), cas(1, 'a', 'b', true, 2, 3), get(2, 'b', 4, 5)]));
  // two CAS from the same value cannot both succeed
  assert.equal(checkRegister([put(0, 'a', 0, 1), cas(1, 'a', 'b', true, 2, 10), cas(2, 'a', 'c', true, 2, 10)]), false);
  assert.ok(checkRegister([put(0, 'a', 0, 1), cas(1, 'a', 'b', true, 2, 10), cas(2, 'a', 'c', false, 2, 10)]));
});

test('keys are checked independently; the bad key is named', () => {
  const y = (op: Operation): Operation => ({ ...op, input: { ...op.input, key: 'y' } });
  const r = checkKv([put(0, 'a', 0, 1), get(1, 'a', 2, 3), y(put(0, 'a', 0, 1)), y(get(1, null, 2, 3))]);
  assert.equal(r.ok, false);
  assert.equal(r.badKey, 'y');
  assert.equal(r.keys, 2);
});

test('property: any history produced by a real sequential register with random overlap is accepted; a corrupted read is rejected', () => {
  fc.assert(
    fc.property(
      fc.array(fc.record({ w: fc.boolean(), v: fc.nat(3), pre: fc.nat(5), post: fc.nat(5) }), {
        minLength: 1,
        maxLength: 25,
      }),
      (spec) => {
        // linearization points at 10, 20, 30...; intervals stretch around them
        let state: string | null = null;
        const ops: Operation[] = spec.map((s, k) => {
          const at = 10 * (k + 1);
          const call = at - s.pre;
          const ret = at + s.post;
          if (s.w) {
            state = `v${s.v}`;
            return put(k, state, call, ret);
          }
          return get(k, state, call, ret);
        });
        assert.ok(checkRegister(ops));
        // corrupt a read that no concurrent write can explain: make it return a never-written value
        const r = ops.findIndex((o) => o.input.kind === 'get');
        if (r >= 0) {
          const bad = ops.map((o, k) => (k === r ? { ...o, output: { kind: 'get' as const, value: 'never' } } : o));
          assert.equal(checkRegister(bad), false);
        }
      },
    ),
    { numRuns: 300 },
  );
});
