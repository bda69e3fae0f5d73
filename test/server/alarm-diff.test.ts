/**
 * Alarms against a real etcd 3.4: the same raw /v3/maintenance/alarm calls (GET with and without a
 * type, ACTIVATE of NOSPACE and CORRUPT for member 0 and others, DEACTIVATE of exactly one
 * (member, type) pair, member 0 included) and the writes and reads each raised alarm refuses or lets
 * through, sent to etcd and to `boltkv serve`'s gateway over a bolt file; status codes and JSON
 * bodies must be equal. Alarms survive a restart on both. Then `boltkv alarm list|disarm` against
 * both servers prints what `etcdctl` prints and disarms every raised alarm as etcdctl does (it
 * lists, then deactivates each), and etcd's own file holds the alarm keys boltkv writes. etcd keeps
 * alarms in Go maps, so lists are compared sorted.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from '../../src/api/index.ts';
import { AlarmStore, alarmText, decodeAlarmKey, encodeAlarmKey } from '../../src/api/alarm-store.ts';
import { open as openBolt } from '../../src/bolt/index.ts';
import { run } from '../../src/cli/main.ts';
import { connect } from '../../src/client/index.ts';
import { requireEtcd, startEtcd, type EtcdServer } from '../support/etcd.ts';
import { b64, normalize, raw, startBoltkv } from './support.ts';

type Served = { url: string; close(): Promise<void> };

async function startOurs(file: string): Promise<Served> {
  const kv = await openStore(file, { bolt: { noSync: true }, leaseCheckIntervalMs: 0 });
  return startBoltkv({ kv });
}

/** Status and body with what differs between two servers set aside, alarm lists sorted. */
async function answer(base: string, path: string, body: string): Promise<unknown> {
  const r = await raw(base, path, body);
  const n = normalize(r.body) as Record<string, unknown>;
  if (n !== null && typeof n === 'object') {
    const key = (a: unknown): string => JSON.stringify(a);
    if (Array.isArray(n.alarms)) n.alarms = [...n.alarms].sort((a, b) => key(a).localeCompare(key(b)));
    if (path === '/v3/maintenance/status')
      return { status: r.status, errors: [...((n.errors as string[]) ?? [])].sort() };
  }
  return { status: r.status, body: n };
}

const ALARM = '/v3/maintenance/alarm';
const put = (k: string): [string, string] => ['/v3/kv/put', `{"key":"${b64(k)}","value":"${b64('v')}"}`];
const READS: [string, string][] = [
  ['/v3/kv/range', `{"key":"${b64('a')}"}`],
  ['/v3/kv/range', `{"key":"${b64('a')}","serializable":true}`],
  ['/v3/kv/txn', `{"success":[{"request_range":{"key":"${b64('a')}"}}]}`],
];
/** Writes: which a raised alarm refuses differs (NOSPACE: those adding data; CORRUPT: all). */
const WRITES: [string, string][] = [
  put('a'),
  ['/v3/kv/deleterange', `{"key":"${b64('zz')}"}`],
  ['/v3/kv/txn', `{"success":[{"request_delete_range":{"key":"${b64('zz')}"}}]}`],
  ['/v3/kv/txn', `{"success":[{"request_put":{"key":"${b64('t')}","value":"${b64('v')}"}}]}`],
  ['/v3/lease/grant', '{"TTL":60,"ID":777}'],
  ['/v3/lease/revoke', '{"ID":777}'],
  ['/v3/kv/compaction', '{"revision":"1"}'],
  ['/v3/maintenance/status', '{}'],
];

/** Every step, sent to both servers in order; a label names the step in a failure. */
const STEPS: [string, string, string][] = [
  ['nothing raised', ALARM, '{}'],
  ['activate NOSPACE of member 0', ALARM, '{"action":"ACTIVATE","alarm":"NOSPACE"}'],
  ['activate it again: answered again', ALARM, '{"action":"ACTIVATE","alarm":"NOSPACE"}'],
  ['activate NOSPACE of member 5', ALARM, '{"action":"ACTIVATE","memberID":"5","alarm":"NOSPACE"}'],
  ['list all', ALARM, '{"action":"GET"}'],
  ['list NOSPACE', ALARM, '{"action":"GET","alarm":"NOSPACE"}'],
  ['list CORRUPT', ALARM, '{"action":"GET","alarm":"CORRUPT"}'],
  ['list a type outside the enum', ALARM, '{"action":"GET","alarm":7}'],
  ['list by number', ALARM, '{"action":0,"alarm":1}'],
  ...READS.map(([p, b]): [string, string, string] => [`NOSPACE: read ${b}`, p, b]),
  ...WRITES.map(([p, b]): [string, string, string] => [`NOSPACE: write ${p} ${b}`, p, b]),
  ['deactivate member 0 only', ALARM, '{"action":"DEACTIVATE","alarm":"NOSPACE"}'],
  ['member 5 still listed', ALARM, '{}'],
  ['deactivate NONE of member 5: nothing', ALARM, '{"action":"DEACTIVATE","memberID":"5"}'],
  ['still capped', ...put('b')],
  ['deactivate member 5', ALARM, '{"action":"DEACTIVATE","memberID":"5","alarm":"NOSPACE"}'],
  ['deactivate it again: nothing', ALARM, '{"action":"DEACTIVATE","memberID":"5","alarm":"NOSPACE"}'],
  ['none left', ALARM, '{}'],
  ['writes again', ...put('c')],
  ['activate CORRUPT of member 7', ALARM, '{"action":"ACTIVATE","memberID":"7","alarm":"CORRUPT"}'],
  ['list CORRUPT with it', ALARM, '{"action":"GET","alarm":"CORRUPT"}'],
  ...READS.map(([p, b]): [string, string, string] => [`CORRUPT: read ${b}`, p, b]),
  ...WRITES.map(([p, b]): [string, string, string] => [`CORRUPT: write ${p} ${b}`, p, b]),
  ['deactivate CORRUPT of member 0: not raised', ALARM, '{"action":"DEACTIVATE","alarm":"CORRUPT"}'],
];

test('alarm ACTIVATE/DEACTIVATE/GET and what raised alarms refuse: the same answers as etcd 3.4, kept across a restart', async (t) => {
  if (!requireEtcd(t)) return;
  const dir = mkdtempSync(join(tmpdir(), 'boltkv-alarm-diff-'));
  const etcdDir = join(dir, 'etcd');
  const file = join(dir, 'boltkv.db');
  let etcd: EtcdServer | undefined;
  let ours: Served | undefined;
  try {
    etcd = await startEtcd({ dataDir: etcdDir });
    ours = await startOurs(file);
    for (const [label, path, body] of STEPS) {
      assert.deepEqual(await answer(ours.url, path, body), await answer(etcd.url, path, body), label);
    }
    // Both restart: the raised CORRUPT alarm is read back from the file and still refuses writes.
    await etcd.stop();
    await ours.close();
    etcd = await startEtcd({ dataDir: etcdDir });
    ours = await startOurs(file);
    for (const [label, path, body] of [
      ['after restart: CORRUPT listed', ALARM, '{}'],
      ['after restart: writes refused', ...put('d')],
      ['after restart: reads served', ...READS[0]!],
      ['deactivate CORRUPT of member 7', ALARM, '{"action":"DEACTIVATE","memberID":"7","alarm":"CORRUPT"}'],
      ['writes again after the disarm', ...put('e')],
    ] as [string, string, string][]) {
      assert.deepEqual(await answer(ours.url, path, body), await answer(etcd.url, path, body), label);
    }
    // ACTIVATE of the NONE type raises nothing here (etcd 3.4 panics for member 0 and keeps a
    // typeless alarm for others; later etcd answers this): not sent to etcd.
    for (const body of ['{"action":"ACTIVATE"}', '{"action":"ACTIVATE","memberID":"9"}']) {
      const r = await raw(ours.url, ALARM, body);
      assert.deepEqual({ status: r.status, body: r.body }, { status: 200, body: '{}' }, body);
    }
    assert.equal((await raw(ours.url, ALARM, '{}')).body, '{}');
  } finally {
    await ours?.close();
    await etcd?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

async function boltkvCli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await run(argv, { out: (s) => void (out += s), err: (s) => void (err += s), isTTY: false });
  return { code, out, err };
}

function etcdctl(url: string, argv: string[]): { code: number; out: string; err: string } {
  const r = spawnSync('etcdctl', ['--endpoints', url, ...argv], {
    encoding: 'utf8',
    env: { ...process.env, ETCDCTL_API: '3' },
  });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

const sortedLines = (s: string): string[] =>
  s
    .split('\n')
    .filter((l) => l !== '')
    .sort();

test('boltkv alarm list|disarm against etcd and boltkv serve print what etcdctl prints and disarm every alarm', async (t) => {
  if (!requireEtcd(t)) return;
  const dir = mkdtempSync(join(tmpdir(), 'boltkv-alarm-cli-'));
  let etcd: EtcdServer | undefined;
  let ours: Served | undefined;
  try {
    etcd = await startEtcd({ dataDir: join(dir, 'etcd') });
    ours = await startOurs(join(dir, 'boltkv.db'));
    const raise = async (): Promise<void> => {
      for (const body of [
        '{"action":"ACTIVATE","alarm":"NOSPACE"}',
        '{"action":"ACTIVATE","memberID":"5","alarm":"NOSPACE"}',
        '{"action":"ACTIVATE","memberID":"7","alarm":"CORRUPT"}',
      ]) {
        for (const url of [etcd!.url, ours!.url]) assert.equal((await raw(url, ALARM, body)).status, 200);
      }
    };
    await raise();
    const want = etcdctl(etcd.url, ['alarm', 'list']);
    assert.equal(want.code, 0, want.err);
    assert.deepEqual(sortedLines(want.out), [
      'alarm:NOSPACE ',
      'memberID:5 alarm:NOSPACE ',
      'memberID:7 alarm:CORRUPT ',
    ]);
    for (const url of [etcd.url, ours.url]) {
      const list = await boltkvCli(['alarm', 'list', '--endpoints', url]);
      assert.equal(list.code, 0, list.err);
      assert.deepEqual(sortedLines(list.out), sortedLines(want.out), `list at ${url}`);
    }
    // No table for alarms in etcdctl: both fail after the call.
    const tableTheirs = etcdctl(etcd.url, ['alarm', 'list', '-w', 'table']);
    assert.equal(tableTheirs.err, 'Error: table not supported as output format\n');
    for (const url of [etcd.url, ours.url]) {
      const tableOurs = await boltkvCli(['alarm', 'list', '-w', 'table', '--endpoints', url]);
      assert.deepEqual(
        { code: tableOurs.code, err: tableOurs.err, out: tableOurs.out },
        { code: 1, err: 'Error: ERR_UNSUPPORTED: table not supported as output format\n', out: '' },
      );
      // -w json: etcdctl's JSON, alarms in the order the server listed them
      const json = await boltkvCli(['alarm', 'list', '-w', 'json', '--endpoints', url]);
      const sortJson = (s: string): unknown =>
        (JSON.parse(s) as { alarms: unknown[] }).alarms.map((a) => JSON.stringify(a)).sort();
      assert.deepEqual(sortJson(json.out), sortJson(etcdctl(etcd.url, ['alarm', 'list', '-w', 'json']).out), url);
    }
    // etcdctl's disarm on etcd, boltkv's on both: every alarm cleared, each printed once.
    const theirs = etcdctl(etcd.url, ['alarm', 'disarm']);
    assert.equal(theirs.code, 0, theirs.err);
    assert.deepEqual(sortedLines(theirs.out), sortedLines(want.out));
    await raise();
    for (const url of [etcd.url, ours.url]) {
      const off = await boltkvCli(['alarm', 'disarm', '--endpoints', url]);
      assert.equal(off.code, 0, off.err);
      assert.deepEqual(sortedLines(off.out), sortedLines(want.out), `disarm at ${url}`);
      assert.equal((await raw(url, ALARM, '{}')).body, '{}', `nothing left at ${url}`);
      assert.equal((await raw(url, ...put('after'))).status, 200, `writes again at ${url}`);
    }
    // etcd's own file: its alarm bucket holds the keys boltkv writes (AlarmMember protobuf), so an
    // AlarmStore loaded from it lists what etcdctl listed.
    await raise();
    await etcd.stop();
    etcd = undefined;
    const db = openBolt(join(dir, 'etcd', 'member', 'snap', 'db'), { readOnly: true });
    try {
      const keys = db.view((tx) => [...(tx.bucket('alarm')?.entries() ?? [])].map(([k]) => Buffer.from(k)));
      const store = new AlarmStore();
      for (const k of keys) {
        const a = decodeAlarmKey(k);
        assert.ok(a !== undefined, k.toString('hex'));
        assert.deepEqual(Buffer.from(encodeAlarmKey(a)), k, 'the same bytes as etcd wrote');
        store.apply({ action: 'activate', ...a });
      }
      assert.deepEqual(store.list().map(alarmText).sort(), sortedLines(want.out));
    } finally {
      db.close();
    }
  } finally {
    await ours?.close();
    await etcd?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('connect(): alarmDisarm of one (member, type) pair clears that pair only, on etcd and on boltkv serve', async (t) => {
  if (!requireEtcd(t)) return;
  const dir = mkdtempSync(join(tmpdir(), 'boltkv-alarm-client-'));
  let etcd: EtcdServer | undefined;
  let ours: Served | undefined;
  try {
    etcd = await startEtcd();
    ours = await startOurs(join(dir, 'boltkv.db'));
    const results: unknown[] = [];
    for (const url of [etcd.url, ours.url]) {
      for (const body of [
        '{"action":"ACTIVATE","alarm":"NOSPACE"}',
        '{"action":"ACTIVATE","memberID":"5","alarm":"NOSPACE"}',
      ])
        assert.equal((await raw(url, ALARM, body)).status, 200);
      await using c = connect({ endpoints: [url] });
      const off = await c.alarmDisarm({ memberId: 0n, alarm: 'NOSPACE' });
      const left = await c.alarmList();
      const again = await c.alarmDisarm({ memberId: 0n, alarm: 'NOSPACE' });
      results.push({ off: off.alarms, left: left.alarms, again: again.alarms });
    }
    assert.deepEqual(results[0], {
      off: [{ memberId: 0n, alarm: 'NOSPACE' }],
      left: [{ memberId: 5n, alarm: 'NOSPACE' }],
      again: [],
    });
    assert.deepEqual(results[1], results[0]);
  } finally {
    await ours?.close();
    await etcd?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
