/**
 * etcdctl's maintenance commands through --endpoints: the same history is written to a real etcd
 * (by etcdctl) and to `boltkv serve` (by boltkv), then endpoint hashkv/status, alarm, defrag and
 * snapshot save run as etcdctl against etcd and as boltkv against both. HashKV must be equal number
 * for number; the JSON must have etcdctl's shape; snapshots must be whole files.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { open } from '../../src/bolt/index.ts';
import { run } from '../../src/cli/main.ts';
import { freePort, requireEtcd, startEtcd } from '../support/etcd.ts';

async function ours(argv: string[], stdin?: string): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await run(argv, {
    out: (s) => void (out += s),
    err: (s) => void (err += s),
    isTTY: false,
    stdin: async () => stdin ?? '',
  });
  return { code, out, err };
}

function theirs(url: string, argv: string[]): { code: number; out: string; err: string } {
  const r = spawnSync('etcdctl', ['--endpoints', url, ...argv], {
    encoding: 'utf8',
    env: { ...process.env, ETCDCTL_API: '3' },
  });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

/** etcdctl's JSON without what differs between two servers (ids, term, the endpoint). */
function comparable(s: string): unknown {
  return JSON.parse(s, (k, v) =>
    k === 'cluster_id' || k === 'member_id' || k === 'raft_term' || k === 'Endpoint' ? undefined : v,
  );
}

/** Sorted key paths of a JSON value: its shape. */
function shape(v: unknown, at = ''): string[] {
  if (Array.isArray(v)) return v.flatMap((x) => shape(x, `${at}[]`));
  if (v !== null && typeof v === 'object')
    return Object.entries(v)
      .flatMap(([k, x]) => [`${at}.${k}`, ...shape(x, `${at}.${k}`)])
      .sort();
  return [];
}

const HISTORY: string[][] = [
  ['put', 'a', '1'],
  ['put', 'b', '2'],
  ['put', 'a', '3'],
  ['del', 'b'],
  ['put', 'c/x', 'long value '.repeat(20)],
  ['put', 'c/y', 'y'],
  ['del', 'c', '--prefix'],
  ['put', 'a', '4'],
  ['compaction', '5'],
  ['put', 'd', '5'],
];

async function serveOnce(dir: string): Promise<{ url: string; stop: () => Promise<void> }> {
  const url = `http://127.0.0.1:${await freePort()}`;
  const ctl = new AbortController();
  let log = '';
  const served = run(
    ['serve', '--data-dir', dir, '--listen-client-urls', url, '--advertise-client-urls', url, '--log-level', 'error'],
    {
      out: (s) => void (log += s),
      err: (s) => void (log += s),
      isTTY: false,
      signal: ctl.signal,
    },
  );
  for (let i = 0; i < 200; i++) {
    if ((await ours(['endpoint', 'status', '--endpoints', url])).code === 0) {
      return {
        url,
        stop: async () => {
          ctl.abort();
          assert.equal(await served, 0, log);
        },
      };
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  ctl.abort();
  await served;
  throw new Error(`boltkv serve did not answer: ${log}`);
}

test('maintenance through --endpoints: boltkv serve and a real etcd answer as etcdctl does', {
  timeout: 90_000,
}, async (t) => {
  if (!requireEtcd(t)) return;
  const dir = mkdtempSync(join(tmpdir(), 'boltkv-maint-'));
  const etcd = await startEtcd();
  const served = await serveOnce(join(dir, 'served'));
  t.after(async () => {
    await served.stop();
    await etcd.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  const E = etcd.url;
  const S = served.url;
  for (const step of HISTORY) {
    assert.equal(theirs(E, step).code, 0, step.join(' '));
    assert.equal((await ours([...step, '--endpoints', S])).code, 0, step.join(' '));
  }

  // HashKV: boltkv serve's equals etcd's, at the current revision and at past ones.
  for (const rev of ['0', '6', '9', '10']) {
    const want = theirs(E, ['endpoint', 'hashkv', '--rev', rev, '-w', 'json']);
    const got = await ours(['endpoint', 'hashkv', '--rev', rev, '-w', 'json', '--endpoints', S]);
    assert.equal(want.code, 0, want.err);
    assert.equal(got.code, 0, got.err);
    assert.deepEqual(comparable(got.out), comparable(want.out), `hashkv --rev ${rev}`);
    const simple = await ours(['endpoint', 'hashkv', '--rev', rev, '--endpoints', S]);
    assert.equal(
      simple.out,
      theirs(E, ['endpoint', 'hashkv', '--rev', rev]).out.replace(E, S),
      `hashkv --rev ${rev} text`,
    );
  }
  // A compacted revision: etcd's error, one line, exit 1.
  const compacted = await ours(['endpoint', 'hashkv', '--rev', '3', '--endpoints', S]);
  assert.equal(compacted.code, 1);
  assert.equal(compacted.err, 'Error: ERR_COMPACTED: etcdserver: mvcc: required revision has been compacted\n');
  // Against etcd 3.4 itself the gateway has no HashKV route: the CLI hashes a snapshot of the
  // member instead, and prints what etcdctl prints (compaction-aware, at past revisions too).
  for (const rev of ['0', '6', '10']) {
    const want = theirs(E, ['endpoint', 'hashkv', '--rev', rev, '-w', 'json']);
    const got = await ours(['endpoint', 'hashkv', '--rev', rev, '-w', 'json', '--endpoints', E]);
    assert.equal(got.code, 0, got.err);
    assert.match(got.err, /hashing a snapshot/);
    assert.deepEqual(comparable(got.out), comparable(want.out), `hashkv from etcd's snapshot --rev ${rev}`);
  }
  const etcdCompacted = await ours(['endpoint', 'hashkv', '--rev', '3', '--endpoints', E]);
  assert.equal(etcdCompacted.code, 1);
  assert.match(etcdCompacted.err, /Error: ERR_COMPACTED: etcdserver: mvcc: required revision has been compacted\n$/);

  // endpoint status: the same JSON as etcdctl on etcd; boltkv serve's has etcd's fields (no raft: one member).
  const stE = theirs(E, ['endpoint', 'status', '-w', 'json']);
  const stOursE = await ours(['endpoint', 'status', '-w', 'json', '--endpoints', E]);
  assert.deepEqual(comparable(stOursE.out), comparable(stE.out));
  assert.equal((await ours(['endpoint', 'status', '--endpoints', E])).out, theirs(E, ['endpoint', 'status']).out);
  const stS = JSON.parse((await ours(['endpoint', 'status', '-w', 'json', '--endpoints', S])).out);
  const raftFields = new Set([
    '[].Status.raftIndex',
    '[].Status.raftTerm',
    '[].Status.raftAppliedIndex',
    '[].Status.header.raft_term',
  ]);
  assert.deepEqual(
    shape(stS),
    shape(JSON.parse(stE.out)).filter((k) => !raftFields.has(k)),
  );
  assert.equal(stS[0].Status.header.revision, JSON.parse(stE.out)[0].Status.header.revision);
  assert.equal(stS[0].Status.leader, stS[0].Status.header.member_id);
  // Two endpoints: one row each, in order.
  const two = await ours(['endpoint', 'status', '--endpoints', `${S},${E}`]);
  assert.equal(two.code, 0, two.err);
  const rows = two.out.trimEnd().split('\n');
  assert.equal(rows.length, 2);
  assert.ok(rows[0]!.startsWith(`${S}, `) && rows[1]!.startsWith(`${E}, `), two.out);
  assert.match(rows[0]!, /, 3\.4\.0\+boltkv, [\d.]+ kB, true, false, 0, 0, 0, $/);

  // alarm list / disarm: nothing raised on either.
  for (const argv of [
    ['alarm', 'list'],
    ['alarm', 'list', '-w', 'json'],
    ['alarm', 'disarm'],
    ['alarm', 'disarm', '-w', 'json'],
  ]) {
    const want = theirs(E, argv).out;
    assert.equal((await ours([...argv, '--endpoints', S])).out, want, argv.join(' '));
    assert.equal((await ours([...argv, '--endpoints', E])).out, want, argv.join(' '));
  }

  // defrag: every endpoint, etcdctl's line for each; a member that cannot be reached fails the command.
  assert.equal(theirs(E, ['defrag']).out, `Finished defragmenting etcd member[${E}]\n`);
  const d = await ours(['defrag', '--endpoints', `${S},${E}`]);
  assert.equal(d.code, 0, d.err);
  assert.equal(d.out, `Finished defragmenting etcd member[${S}]\nFinished defragmenting etcd member[${E}]\n`);
  const dead = `http://127.0.0.1:${await freePort()}`;
  const dBad = await ours(['defrag', '--endpoints', `${dead},${S}`]);
  assert.equal(dBad.code, 1);
  assert.equal(dBad.out, `Finished defragmenting etcd member[${S}]\n`);
  assert.match(
    dBad.err,
    new RegExp(`^Failed to defragment etcd member\\[${dead}\\] \\(.+\\)\\nError: ERR_PARTIAL_FAILURE: `),
  );
  // The data is intact after defragmentation.
  assert.equal((await ours(['get', 'a', '--endpoints', S])).out, 'a\n4\n');

  // snapshot save: from etcd, byte for byte what etcdctl saves; from boltkv serve, a whole bolt
  // file followed by its SHA-256, which etcdctl's snapshot status reads as boltkv's does.
  const theirsSnap = join(dir, 'theirs.db');
  const oursFromEtcd = join(dir, 'ours-etcd.db');
  const oursFromServe = join(dir, 'ours-serve.db');
  assert.equal(theirs(E, ['snapshot', 'save', theirsSnap]).code, 0);
  assert.deepEqual(await ours(['snapshot', 'save', oursFromEtcd, '--endpoints', E]), {
    code: 0,
    out: `Snapshot saved at ${oursFromEtcd}\n`,
    err: '',
  });
  assert.ok(readFileSync(oursFromEtcd).equals(readFileSync(theirsSnap)), 'same bytes as etcdctl snapshot save');
  assert.equal(
    (await ours(['snapshot', 'save', oursFromServe, '--endpoints', S, '-w', 'json'])).out,
    `Snapshot saved at ${oursFromServe}\n`,
  );
  const img = readFileSync(oursFromServe);
  assert.ok(
    createHash('sha256')
      .update(img.subarray(0, img.length - 32))
      .digest()
      .equals(img.subarray(img.length - 32)),
    'ends with its SHA-256',
  );
  const db = open(oursFromServe, { readOnly: true });
  assert.deepEqual(db.check(), []);
  db.close();
  for (const w of ['simple', 'json']) {
    const a = spawnSync('etcdctl', ['snapshot', 'status', oursFromServe, '-w', w], {
      encoding: 'utf8',
      env: { ...process.env, ETCDCTL_API: '3' },
    });
    assert.equal(a.status, 0, a.stderr);
    assert.equal((await ours(['snapshot', 'status', oursFromServe, '-w', w])).out, a.stdout, `snapshot status -w ${w}`);
  }
  const many = await ours(['snapshot', 'save', join(dir, 'x.db'), '--endpoints', `${S},${E}`]);
  assert.equal(many.code, 2);
  assert.match(many.err, /^Error: ERR_USAGE: snapshot must be requested to one selected node, not multiple/);
  const unreachable = await ours(['snapshot', 'save', join(dir, 'y.db'), '--endpoints', dead]);
  assert.equal(unreachable.code, 1);
  assert.match(unreachable.err, /^Error: ERR_UNAVAILABLE: /);
});
