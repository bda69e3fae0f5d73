/**
 * etcdctl's commands in process (--data-dir) against the real etcdctl talking to a real etcd 3.4:
 * the same command lines must print the same simple text and, with -w json, the same JSON (header
 * cluster_id/member_id/raft_term aside, which only a server has). Plus the commands etcdctl runs
 * only against a server (endpoint hashkv, snapshot, alarm, lease, defrag) on their own.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { open } from '../../src/bolt/index.ts';
import { dbPathOf, parseCompare, parseTxn } from '../../src/cli/etcd-commands.ts';
import { run } from '../../src/cli/main.ts';
import { requireEtcd, startEtcd } from '../support/etcd.ts';

async function ours(
  dir: string,
  argv: string[],
  stdin?: string,
  target = ['--data-dir', dir],
): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await run([argv[0]!, ...target, ...argv.slice(1)], {
    out: (s) => void (out += s),
    err: (s) => void (err += s),
    isTTY: false,
    stdin: async () => stdin ?? '',
  });
  return { code, out, err };
}

function theirs(url: string, argv: string[], stdin?: string): { code: number; out: string; err: string } {
  const r = spawnSync('etcdctl', ['--endpoints', url, ...argv], {
    encoding: 'utf8',
    input: stdin,
    env: { ...process.env, ETCDCTL_API: '3' },
  });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

/** etcdctl's JSON without what only a server has. */
function comparable(s: string): unknown {
  return JSON.parse(s, (k, v) => (k === 'cluster_id' || k === 'member_id' || k === 'raft_term' ? undefined : v));
}

const SCRIPT: Array<{ argv: string[]; stdin?: string }> = [
  { argv: ['put', 'foo', 'bar'] },
  { argv: ['put', 'foo/a', 'alpha'] },
  { argv: ['put', 'foo/b', 'beta', '--prev-kv'] },
  { argv: ['put', 'foo/a', 'alpha2', '--prev-kv'] },
  { argv: ['put', 'zeta', 'last'] },
  { argv: ['get', 'foo'] },
  { argv: ['get', 'foo', '--prefix'] },
  { argv: ['get', 'foo', '--prefix', '--keys-only'] },
  { argv: ['get', 'foo', '--from-key', '--limit', '2'] },
  { argv: ['get', 'foo', '--prefix', '--sort-by', 'MODIFY', '--order', 'DESCEND'] },
  { argv: ['get', 'foo', '--prefix', '--print-value-only'] },
  { argv: ['get', 'foo/a', '--rev', '3'] },
  { argv: ['get', 'a', 'g'] },
  { argv: ['get', 'missing'] },
  {
    argv: ['txn'],
    stdin: 'value("foo") = "bar"\nmod("zeta") > "1"\n\nput foo/c gamma\nget foo/a\ndel foo/b\n\nput nope nope\n\n',
  },
  { argv: ['txn'], stdin: 'version("foo") = "9"\n\nput x y\n\nget foo --prefix\n\n' },
  { argv: ['del', 'foo/c', '--prev-kv'] },
  { argv: ['del', 'foo', '--prefix'] },
  { argv: ['del', 'nothing'] },
  { argv: ['compaction', '3'] },
  { argv: ['get', 'foo/a', '--rev', '2'] },
  { argv: ['compaction', '2'] },
];

test('etcdctl commands: same text and JSON as etcdctl against etcd', { timeout: 120_000 }, async (t) => {
  if (!requireEtcd(t)) return;
  for (const [format, via] of [
    ['simple', 'data-dir'],
    ['json', 'data-dir'],
    ['simple', 'endpoints'],
    ['json', 'endpoints'],
  ] as const) {
    const etcd = await startEtcd();
    // With --endpoints, boltkv's client talks to a second etcd given the same commands.
    const other = via === 'endpoints' ? await startEtcd() : undefined;
    const dir = mkdtempSync(join(tmpdir(), 'boltkv-ctl-'));
    try {
      for (const step of SCRIPT) {
        const argv = format === 'json' ? [...step.argv, '-w', 'json'] : step.argv;
        const a = theirs(etcd.url, argv, step.stdin);
        const b = await ours(dir, argv, step.stdin, other ? ['--endpoints', other.url] : undefined);
        const label = `${via}: ${argv.join(' ')}`;
        assert.equal(b.code === 0, a.code === 0, `${label}: exit status (etcdctl: ${a.err}; boltkv: ${b.err})`);
        if (a.code !== 0) {
          // The same etcd error text, one line, with our code in front.
          const msg = a.err
            .trim()
            .split('\n')
            .pop()!
            .replace(/^Error:\s*/, '')
            .replace(/^\{.*"error":"(.*?)".*$/, '$1');
          assert.ok(b.err.includes(msg), `${label}: error "${b.err.trim()}" should carry etcd's "${msg}"`);
          continue;
        }
        if (format === 'json' && /^[[{]/.test(a.out)) assert.deepEqual(comparable(b.out), comparable(a.out), label);
        else assert.equal(b.out, a.out, label);
      }
      if (other) {
        const ml = JSON.parse(
          (await ours(dir, ['member', 'list', '-w', 'json'], undefined, ['--endpoints', other.url])).out,
        );
        assert.equal(ml.members.length, 1);
        assert.deepEqual(ml.members[0].clientURLs, [other.url]);
        const st = await ours(dir, ['endpoint', 'status', '-w', 'json'], undefined, ['--endpoints', other.url]);
        assert.match(JSON.parse(st.out)[0].Status.version, /^3\.4\./);
        // etcd 3.4's gateway has no HashKV route: the CLI hashes the member's snapshot, as etcd would.
        const hk = await ours(dir, ['endpoint', 'hashkv'], undefined, ['--endpoints', other.url]);
        assert.equal(hk.code, 0, hk.err);
        assert.equal(hk.out, theirs(etcd.url, ['endpoint', 'hashkv']).out.replace(etcd.url, other.url));
      }
    } finally {
      await etcd.stop();
      await other?.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  }
});

test('etcdctl commands on a data dir: hashkv, snapshot, alarms, leases, defrag, errors', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'boltkv-ctl-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  for (let i = 0; i < 200; i++) assert.equal((await ours(dir, ['put', `k${i % 20}`, `v${i}`])).code, 0);
  const hk = JSON.parse((await ours(dir, ['endpoint', 'hashkv', '-w', 'json'])).out);
  assert.equal(hk[0].Endpoint, dir);
  assert.equal(typeof hk[0].HashKV.hash, 'number');
  assert.equal(hk[0].HashKV.header.revision, 201);
  const hk100 = JSON.parse((await ours(dir, ['endpoint', 'hashkv', '--rev', '100', '-w', 'json'])).out);
  assert.notEqual(hk100[0].HashKV.hash, hk[0].HashKV.hash);
  const st = JSON.parse((await ours(dir, ['endpoint', 'status', '-w', 'json'])).out);
  assert.ok(st[0].Status.dbSize > 0 && st[0].Status.header.revision === 201);
  const snap = join(dir, 'snap.db');
  assert.equal((await ours(dir, ['snapshot', 'save', snap])).out, `Snapshot saved at ${snap}\n`);
  const ss = JSON.parse((await ours(dir, ['snapshot', 'status', snap, '-w', 'json'])).out);
  assert.equal(ss.revision, 201);
  assert.ok(ss.totalKey >= 200);
  assert.match((await ours(dir, ['snapshot', 'status', snap])).out, /^[0-9a-f]+, 201, \d+, [\d.]+ kB\n$/);
  const db = open(snap, { readOnly: true });
  assert.deepEqual(db.check(), []);
  db.close();
  const g = await ours(dir, ['lease', 'grant', '100']);
  const id = /^lease ([0-9a-f]+) granted with TTL\(100s\)\n$/.exec(g.out)?.[1];
  assert.ok(id, g.out);
  assert.equal((await ours(dir, ['put', 'leased', 'x', '--lease', id])).out, 'OK\n');
  assert.match(
    (await ours(dir, ['lease', 'timetolive', id, '--keys'])).out,
    new RegExp(`^lease ${id} granted with TTL\\(100s\\), remaining\\(\\d+s\\), attached keys\\(\\[leased\\]\\)\\n$`),
  );
  assert.equal((await ours(dir, ['lease', 'list'])).out, `found 1 leases\n${id}\n`);
  assert.equal((await ours(dir, ['lease', 'revoke', id])).out, `lease ${id} revoked\n`);
  assert.equal((await ours(dir, ['get', 'leased'])).out, '');
  assert.equal((await ours(dir, ['alarm', 'list'])).out, '');
  assert.equal((await ours(dir, ['compaction', '150', '--physical'])).out, 'compacted revision 150\n');
  const before = open(dbPathOf(dir), { readOnly: true });
  const size = before.view((tx) => tx.size);
  before.close();
  assert.equal((await ours(dir, ['defrag'])).out, `Finished defragmenting etcd member[${dir}]\n`);
  const after = open(dbPathOf(dir), { readOnly: true });
  assert.ok(after.view((tx) => tx.size) <= size);
  assert.deepEqual(after.check(), []);
  after.close();
  // Errors: one line, the code, non-zero.
  const bad: Array<[string[], RegExp, number]> = [
    [['get'], /^Error: ERR_USAGE: get command needs one argument/, 2],
    [['get', 'a', '--prefix', '--from-key'], /^Error: ERR_USAGE: `--prefix` and `--from-key`/, 2],
    [
      ['get', 'a', '--rev', '10'],
      /^Error: ERR_COMPACTED: etcdserver: mvcc: required revision has been compacted\n$/,
      1,
    ],
    [
      ['get', 'a', '--rev', '100000'],
      /^Error: ERR_FUTURE_REV: etcdserver: mvcc: required revision is a future revision\n$/,
      1,
    ],
    [['compaction', 'x'], /^Error: ERR_USAGE: /, 2],
    [['lease', 'revoke', 'zz'], /^Error: ERR_USAGE: bad lease ID \(zz\), expecting ID in Hex\n$/, 2],
    [['lease', 'revoke', 'abc'], /^Error: ERR_LEASE_NOT_FOUND: etcdserver: requested lease not found\n$/, 1],
    [['get', 'a', '--sort-by', 'SIZE'], /^Error: ERR_USAGE: bad sort target/, 2],
    [['endpoint', 'nope'], /^Error: ERR_USAGE: endpoint needs a subcommand/, 2],
  ];
  for (const [argv, re, code] of bad) {
    const r = await ours(dir, argv);
    assert.equal(r.code, code, `${argv.join(' ')}: ${r.err}`);
    assert.match(r.err, re, argv.join(' '));
    assert.equal(r.err.split('\n').length, 2, 'one line');
  }
  const txnBad = await ours(dir, ['txn'], 'bogus("a") = "1"\n\n\n');
  assert.match(txnBad.err, /^Error: ERR_INVALID_INPUT: malformed comparison/);
  let epErr = '';
  const ep = await run(['get', '--endpoints', 'http://127.0.0.1:1', 'a'], {
    out: () => undefined,
    err: (s) => void (epErr += s),
    isTTY: false,
  });
  assert.equal(ep, 1);
  assert.match(epErr, /^Error: ERR_[A-Z_]+: /);
  assert.match((await ours(dir, ['member', 'list'])).out, new RegExp(`^0, started, default, , ${dir}, false\n$`));
});

test('watch: the same events as etcdctl watch, from a past revision, with prev-kv', { timeout: 60_000 }, async (t) => {
  if (!requireEtcd(t)) return;
  const etcd = await startEtcd();
  const dir = mkdtempSync(join(tmpdir(), 'boltkv-ctl-'));
  try {
    for (const step of [
      ['put', 'w/a', '1'],
      ['put', 'w/b', '2'],
      ['put', 'other', 'x'],
      ['put', 'w/a', '3'],
      ['del', 'w/b'],
    ]) {
      theirs(etcd.url, step);
      await ours(dir, step);
    }
    for (const flags of [
      ['--rev', '1', '--prefix', 'w/'],
      ['--rev', '2', '--prev-kv', 'w/a'],
      ['--rev', '1', 'w/', 'w0'],
    ]) {
      const r = spawnSync('etcdctl', ['--endpoints', etcd.url, 'watch', ...flags], {
        encoding: 'utf8',
        timeout: 3000,
        env: { ...process.env, ETCDCTL_API: '3' },
      });
      const want = r.stdout;
      assert.ok(want.length > 0, `etcdctl watch ${flags.join(' ')} printed events`);
      for (const target of [
        ['--data-dir', dir],
        ['--endpoints', etcd.url],
      ]) {
        const stop = new AbortController();
        let got = '';
        const done = run(['watch', ...target, ...flags], {
          out: (s) => {
            got += s;
            if (got.length >= want.length) stop.abort();
          },
          err: () => undefined,
          isTTY: false,
          signal: stop.signal,
        });
        const timer = setTimeout(() => stop.abort(), 5000);
        assert.equal(await done, 0);
        clearTimeout(timer);
        assert.equal(got, want, `watch ${target[0]} ${flags.join(' ')}`);
      }
    }
  } finally {
    await etcd.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('txn syntax parses as etcdctl reads it', () => {
  assert.deepEqual(parseCompare('mod("k") > "5"'), { key: 'k', target: 'MOD', result: 'GREATER', modRevision: 5 });
  assert.deepEqual(parseCompare('value("a b") != "x y"'), {
    key: 'a b',
    target: 'VALUE',
    result: 'NOT_EQUAL',
    value: 'x y',
  });
  const t = parseTxn('version("k") = "0"\n\nput k "v 1"\n\ndel k\n');
  assert.deepEqual(t.success, [{ requestPut: { key: 'k', value: 'v 1', prevKv: false } }]);
  assert.equal(t.failure.length, 1);
});

test('boltkv serve from the CLI, driven by the etcdctl commands through --endpoints', { timeout: 60_000 }, async () => {
  const { freePort } = await import('../support/etcd.ts');
  const dir = mkdtempSync(join(tmpdir(), 'boltkv-serve-'));
  const url = `http://127.0.0.1:${await freePort()}`;
  const stop = new AbortController();
  let serveOut = '';
  const served = run(
    ['serve', '--data-dir', dir, '--listen-client-urls', url, '--advertise-client-urls', url, '--log-level', 'error'],
    {
      out: (s) => void (serveOut += s),
      err: (s) => void (serveOut += s),
      isTTY: false,
      signal: stop.signal,
    },
  );
  try {
    const ep = ['--endpoints', url];
    let up = false;
    for (let i = 0; i < 100 && !up; i++) {
      up = (await ours(dir, ['endpoint', 'status'], undefined, ep)).code === 0;
      if (!up) await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(up, `server answered (${serveOut})`);
    assert.equal((await ours(dir, ['put', 'served', 'yes'], undefined, ep)).out, 'OK\n');
    assert.equal((await ours(dir, ['get', 'served'], undefined, ep)).out, 'served\nyes\n');
    assert.equal((await ours(dir, ['del', 'served'], undefined, ep)).out, '1\n');
    assert.match((await ours(dir, ['member', 'list'], undefined, ep)).out, /, started, default, /);
  } finally {
    stop.abort();
    assert.equal(await served, 0);
    rmSync(dir, { recursive: true, force: true });
  }
  assert.match(
    (
      await run(['serve', '--help'], { out: (s) => void (serveOut = s), err: () => undefined, isTTY: false })
    ).toString(),
    /^0$/,
  );
  assert.match(serveOut, /^usage: boltkv serve/);
});
