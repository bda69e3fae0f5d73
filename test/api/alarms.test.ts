// The in-process store's alarms (etcd's Alarm RPC without a server): raised by hand, enforced as
// etcd's appliers do, kept in the file's alarm bucket across a reopen, disarmed pair by pair; bad
// alarms and a closed store answer typed errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from '../../src/api/index.ts';
import { isBoltkvError } from '../../src/errors.ts';

const refusedAs = (code: string) => (e: unknown) => isBoltkvError(e, code);

test('alarmActivate/alarmDisarm on a store over a file: enforced, kept across a reopen, one pair at a time', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'boltkv-alarms-'));
  const file = join(dir, 'db');
  try {
    let kv = await openStore(file, { bolt: { noSync: true }, leaseCheckIntervalMs: 0 });
    await kv.put({ key: 'a', value: '1' });
    const corrupt = { memberId: 3n, alarm: 'CORRUPT' as const };
    const nospace = { memberId: 0n, alarm: 'NOSPACE' as const };
    assert.deepEqual((await kv.alarmActivate(nospace)).alarms, [nospace]);
    // NOSPACE: writes that add data refused; deletes, compaction and reads go on
    await assert.rejects(kv.put({ key: 'b', value: '2' }), refusedAs('ERR_NO_SPACE'));
    await assert.rejects(kv.leaseGrant({ TTL: 10 }), refusedAs('ERR_NO_SPACE'));
    await kv.deleteRange({ key: 'zz' });
    assert.equal((await kv.range({ key: 'a' })).count, 1);
    assert.deepEqual((await kv.alarmActivate(corrupt)).alarms, [corrupt]);
    assert.deepEqual((await kv.status()).errors, ['alarm:NOSPACE ', 'memberID:3 alarm:CORRUPT ']);
    // CORRUPT: every write refused, and its refusal wins over NOSPACE's
    await assert.rejects(kv.put({ key: 'b', value: '2' }), refusedAs('ERR_CORRUPT_CLUSTER'));
    await assert.rejects(kv.deleteRange({ key: 'a' }), refusedAs('ERR_CORRUPT_CLUSTER'));
    await assert.rejects(kv.compact({ revision: 1 }), refusedAs('ERR_CORRUPT_CLUSTER'));
    await assert.rejects(kv.leaseRevoke({ ID: 1 }), refusedAs('ERR_CORRUPT_CLUSTER'));
    await assert.rejects(kv.txn({ success: [{ requestDeleteRange: { key: 'a' } }] }), refusedAs('ERR_CORRUPT_CLUSTER'));
    assert.equal((await kv.txn({ success: [{ requestRange: { key: 'a' } }] })).succeeded, true);
    await kv.close();

    kv = await openStore(file, { bolt: { noSync: true }, leaseCheckIntervalMs: 0 });
    assert.deepEqual((await kv.alarmList()).alarms, [nospace, corrupt], 'kept in the file');
    assert.deepEqual((await kv.alarmList('CORRUPT')).alarms, [corrupt]);
    await assert.rejects(kv.put({ key: 'b', value: '2' }), refusedAs('ERR_CORRUPT_CLUSTER'));
    assert.deepEqual((await kv.alarmDisarm({ memberId: 0n, alarm: 'CORRUPT' })).alarms, [], 'not raised: no-op');
    assert.deepEqual((await kv.alarmDisarm(corrupt)).alarms, [corrupt]);
    await assert.rejects(kv.put({ key: 'b', value: '2' }), refusedAs('ERR_NO_SPACE'));
    assert.deepEqual((await kv.alarmDisarm()).alarms, [nospace], 'no argument: every raised alarm');
    await kv.put({ key: 'b', value: '2' });
    // bad alarms are typed errors, not TypeErrors
    for (const bad of [
      { memberId: -1n, alarm: 'NOSPACE' },
      { memberId: 1n << 64n, alarm: 'NOSPACE' },
      { memberId: 1, alarm: 'NOSPACE' },
      { memberId: 1n, alarm: 'NONE' },
      null,
    ]) {
      await assert.rejects(kv.alarmActivate(bad as never), refusedAs('ERR_INVALID_ARGUMENT'), String(bad));
      await assert.rejects(kv.alarmDisarm(bad as never), refusedAs('ERR_INVALID_ARGUMENT'), String(bad));
    }
    await kv.close();
    await assert.rejects(kv.alarmActivate(nospace), refusedAs('ERR_CLOSED'));
    kv = await openStore(file, { bolt: { noSync: true }, leaseCheckIntervalMs: 0 });
    assert.deepEqual((await kv.alarmList()).alarms, [], 'the disarms are kept too');
    await kv.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
