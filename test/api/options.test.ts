/**
 * openStore's options (issue 9 #7/#8, issue 10): every wrongly typed option is a typed error raised
 * before a file is touched, and an unknown option (a typo, another library's name) is refused with
 * ERR_UNKNOWN_FIELD naming it instead of silently meaning "default".
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryBackend, MvccError, openStore } from '../../src/api/index.ts';

function code(c: string, field?: string) {
  return (e: unknown): boolean => {
    assert.ok(e instanceof MvccError, `expected an MvccError, got ${String(e)}`);
    assert.equal(e.code, c, e.message);
    if (field !== undefined) {
      assert.equal(e.field, field);
      assert.ok(e.message.includes(field), e.message);
    }
    return true;
  };
}

test('wrongly typed store options are ERR_INVALID_ARGUMENT naming the option', async () => {
  const bad: [string, unknown][] = [
    ['now', 5],
    ['minLeaseTTL', 'x'],
    ['minLeaseTTL', Number.NaN],
    ['leaseCheckIntervalMs', -5],
    ['leaseCheckIntervalMs', 1.5],
    ['compactionBatchLimit', 0],
    ['compactionBatchIntervalMs', '10'],
    ['autoExpireLeases', 'false'],
    ['closeBackend', 1],
    ['watch', 5],
    ['bolt', 'noSync'],
  ];
  for (const [name, value] of bad) {
    await assert.rejects(
      openStore({ inMemory: true, [name]: value } as never),
      code('ERR_INVALID_ARGUMENT', name),
      `${name}: ${String(value)}`,
    );
  }
});

test('unknown options and wrong openStore shapes are refused before a file is created', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'boltkv-opts-'));
  try {
    const path = join(dir, 'data.db');
    await assert.rejects(openStore(path, { prefix: 'app/' } as never), code('ERR_UNKNOWN_FIELD', 'prefix'));
    await assert.rejects(openStore(path, { minLeaseTtl: 5 } as never), code('ERR_UNKNOWN_FIELD', 'minLeaseTtl'));
    await assert.rejects(openStore(path, null as never), code('ERR_INVALID_ARGUMENT'));
    await assert.rejects(openStore(path, { now: 5 } as never), code('ERR_INVALID_ARGUMENT', 'now'));
    assert.equal(existsSync(path), false, 'no file was created for a refused open');
    await assert.rejects(openStore(path, { inMemory: true } as never), code('ERR_INVALID_ARGUMENT'));
    await assert.rejects(
      openStore({ inMemory: true, backend: new MemoryBackend() } as never),
      code('ERR_INVALID_ARGUMENT'),
    );
    await assert.rejects(openStore({ inMemory: 'yes' } as never), code('ERR_INVALID_ARGUMENT'));
    await assert.rejects(openStore(5 as never), code('ERR_INVALID_ARGUMENT'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a clock that returns garbage is a typed error instead of NaN TTLs that never expire', async () => {
  await assert.rejects(
    openStore({ inMemory: true, now: (() => 'soon') as never }),
    code('ERR_INVALID_ARGUMENT', 'now'),
  );
  let t: unknown = 1000;
  const kv = await openStore({ inMemory: true, now: () => t as number, leaseCheckIntervalMs: 0 });
  try {
    t = Number.NaN;
    await assert.rejects(kv.leaseGrant({ TTL: 5 }), code('ERR_INVALID_ARGUMENT', 'now'));
  } finally {
    await kv.close();
  }
});

test('valid options still work', async () => {
  let t = 1000;
  const kv = await openStore({
    inMemory: true,
    now: () => t,
    minLeaseTTL: 1,
    leaseCheckIntervalMs: 0,
    autoExpireLeases: true,
    watch: {},
  });
  const { ID, TTL } = await kv.leaseGrant({ TTL: 1 });
  assert.equal(TTL, 1);
  await kv.put({ key: 'k', lease: ID });
  t += 1500;
  await kv.put({ key: 'other' });
  assert.equal((await kv.get('k')).count, 0, 'the lease expired on the given clock');
  await kv.close();
});

test('maxRequestBytes refuses larger writes with etcd\'s "request is too large", writing nothing', async () => {
  const kv = await openStore({ inMemory: true, maxRequestBytes: 200 });
  try {
    await kv.set('small', 'x'.repeat(100));
    const before = kv.revision();
    const tooLarge = (e: unknown): boolean =>
      e instanceof MvccError && e.code === 'ERR_REQUEST_TOO_LARGE' && e.message === 'etcdserver: request is too large';
    await assert.rejects(kv.set('big', 'x'.repeat(200)), tooLarge);
    await assert.rejects(
      kv.txn({
        success: [
          { requestPut: { key: 'a', value: 'x'.repeat(120) } },
          { requestPut: { key: 'b', value: 'x'.repeat(120) } },
        ],
      }),
      tooLarge,
    );
    await assert.rejects(kv.deleteRange({ key: 'a', rangeEnd: 'z'.repeat(250) }), tooLarge);
    assert.equal(kv.revision(), before, 'nothing was written');
    // reads are not limited (etcd limits only what it proposes through raft)
    assert.equal((await kv.get('small', { rangeEnd: 'z'.repeat(300) })).count, 1);
  } finally {
    await kv.close();
  }
  await assert.rejects(
    openStore({ inMemory: true, maxRequestBytes: 0 }),
    code('ERR_INVALID_ARGUMENT', 'maxRequestBytes'),
  );
});
