/**
 * Unknown request fields are refused (issue 10): etcd3's snake_case `range_end`, level's `prefix` or
 * `gte`, a misspelt `prevKV` must not silently mean "no range" or "no prevKv". The error is
 * ERR_UNKNOWN_FIELD and names the field, in the message and in `field`; nothing is written.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MvccError, openStore } from '../../src/api/index.ts';

function unknown(field: string) {
  return (e: unknown): boolean => {
    assert.ok(e instanceof MvccError, `expected an MvccError, got ${String(e)}`);
    assert.equal(e.code, 'ERR_UNKNOWN_FIELD', e.message);
    assert.equal(e.field, field);
    assert.ok(e.message.includes(`"${field}"`), e.message);
    return true;
  };
}

test('every request kind refuses a field it does not have', async () => {
  const kv = await openStore({ inMemory: true, leaseCheckIntervalMs: 0 });
  try {
    await kv.set('a', '1');
    await kv.set('b', '2');
    const before = kv.revision();
    const cases: [() => Promise<unknown>, string][] = [
      [() => kv.range({ key: 'a', range_end: 'z' } as never), 'range_end'],
      [() => kv.range({ key: 'a', gte: 'a' } as never), 'gte'],
      [() => kv.get('a', { prefixx: true } as never), 'prefixx'],
      [() => kv.put({ key: 'a', value: '2', prevKV: true } as never), 'prevKV'],
      [() => kv.set('a', '2', { ttl: 5 } as never), 'ttl'],
      [() => kv.deleteRange({ key: 'a', range_end: 'z' } as never), 'range_end'],
      [() => kv.delete('a', { prefix: true, limit: 1 } as never), 'limit'],
      [() => kv.txn({ compare: [], success: [], otherwise: [] } as never), 'otherwise'],
      [
        () =>
          kv.txn({ compare: [{ key: 'a', target: 'VALUE', result: 'EQUAL', value: '1', mod_revision: 2 }] } as never),
        'mod_revision',
      ],
      [() => kv.txn({ success: [{ requestPut: { key: 'a' }, request_put: { key: 'b' } }] } as never), 'request_put'],
      [() => kv.txn({ success: [{ requestDeleteRange: { key: 'a', range_end: 'z' } }] } as never), 'range_end'],
      [() => kv.compact({ revision: 2, physcial: true } as never), 'physcial'],
      [() => kv.leaseGrant({ TTL: 5, id: 3 } as never), 'id'],
      [() => kv.leaseRevoke({ ID: 3, force: true } as never), 'force'],
      [() => kv.leaseKeepAlive({ id: 3 } as never), 'id'],
      [() => kv.leaseTimeToLive({ ID: 3, withKeys: true } as never), 'withKeys'],
    ];
    for (const [call, field] of cases) await assert.rejects(call(), unknown(field), field);
    assert.equal(kv.revision(), before, 'nothing was written');
    assert.equal((await kv.get('a', { prefix: true })).count, 1);
    // fields set to undefined are as good as absent
    assert.equal((await kv.range({ key: 'a', extra: undefined } as never)).count, 1);
    await assert.rejects(kv.apply(1, { put: { key: 'x' }, putt: {} } as never), unknown('putt'));
  } finally {
    await kv.close();
  }
});

test('a field of the wrong type is ERR_INVALID_ARGUMENT naming it in `field`', async () => {
  const kv = await openStore({ inMemory: true });
  try {
    const cases: [() => Promise<unknown>, string][] = [
      [() => kv.range({ key: 'a', limit: 'ten' } as never), 'limit'],
      [() => kv.range({ key: 'a', sortOrder: 'UP' } as never), 'sortOrder'],
      [() => kv.put({ key: 5 } as never), 'key'],
      [() => kv.put({ key: 'a', prevKv: 'yes' } as never), 'prevKv'],
      [
        () => kv.txn({ compare: [{ key: 'a', target: 'MOD', result: 'EQUAL', modRevision: 1.5 }] }),
        'compare.modRevision',
      ],
      [() => kv.leaseRevoke({ ID: 1.5 }), 'ID'],
    ];
    for (const [call, field] of cases) {
      await assert.rejects(
        call(),
        (e: unknown) => e instanceof MvccError && e.code === 'ERR_INVALID_ARGUMENT' && e.field === field,
        field,
      );
    }
  } finally {
    await kv.close();
  }
});
