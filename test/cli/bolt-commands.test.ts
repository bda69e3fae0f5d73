/**
 * bbolt's file commands, backup and defrag through the CLI on real files: output in each format,
 * exit codes, one-line typed errors, --help on every command.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { open } from '../../src/bolt/index.ts';
import { cli, cliProcess } from './harness.ts';
import { BOLT_COMMANDS } from '../../src/cli/bolt-commands.ts';

function fixture(): { dir: string; path: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'boltkv-cli-'));
  const path = join(dir, 'app.db');
  const db = open(path, { noSync: true, freelistWrite: 'commit' });
  db.update((tx) => {
    const w = tx.createBucket('widgets');
    for (let i = 0; i < 3000; i++) w.put(`k${String(i).padStart(5, '0')}`, `value-${i}`);
    const sub = w.createBucket('sub');
    sub.put('bin', new Uint8Array([0, 1, 2, 255]));
    sub.put('text', 'hello');
    tx.createBucket('empty');
  });
  db.update((tx) => {
    const w = tx.bucket('widgets')!;
    for (let i = 0; i < 2500; i++) w.delete(`k${String(i).padStart(5, '0')}`);
  });
  db.close();
  return { dir, path, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

test('info, check, buckets, keys, get in every output format', async (t) => {
  const { path, cleanup } = fixture();
  t.after(cleanup);
  assert.deepEqual(await cli('info', path), { code: 0, out: 'Page Size: 4096\n', err: '' });
  const infoJson = JSON.parse((await cli('info', '-w', 'json', path)).out);
  assert.equal(infoJson.pageSize, 4096);
  assert.equal(infoJson.txid, 3);
  assert.deepEqual(await cli('check', path), { code: 0, out: 'OK\n', err: '' });
  assert.deepEqual(JSON.parse((await cli('check', path, '--write-out=json')).out), { ok: true, problems: [] });
  assert.equal((await cli('buckets', path)).out, 'empty\nwidgets\n');
  assert.deepEqual(JSON.parse((await cli('buckets', '-w', 'json', path)).out), ['empty', 'widgets']);
  const tbl = (await cli('buckets', '-w', 'table', path)).out;
  assert.match(tbl, /^\+-+\+\n\| BUCKET +\|\n\+-+\+\n\| empty +\|\n\| widgets \|\n\+-+\+\n$/);
  const keys = (await cli('keys', path, 'widgets')).out.trim().split('\n');
  assert.equal(keys.length, 501);
  assert.equal(keys[0], 'k02500');
  assert.equal(keys.at(-1), 'sub');
  assert.equal((await cli('keys', path, 'widgets', 'sub')).out, 'bin\ntext\n');
  assert.equal((await cli('get', path, 'widgets', 'k02999')).out, 'value-2999\n');
  assert.equal((await cli('get', path, 'widgets', 'sub', 'bin')).out, '000102ff\n', 'auto shows binary as hex');
  assert.equal(
    (await cli('get', '--format', 'ascii-encoded', path, 'widgets', 'sub', 'bin')).out,
    '"\\x00\\x01\\x02\\xff"\n',
  );
  assert.equal((await cli('get', '--format=redacted', path, 'widgets', 'sub', 'text')).out, '<redacted len:5>\n');
  assert.equal(
    (
      await cli(
        'get',
        '--parse-format',
        'hex',
        path,
        Buffer.from('widgets').toString('hex'),
        Buffer.from('k02600').toString('hex'),
      )
    ).out,
    'value-2600\n',
  );
  assert.deepEqual(JSON.parse((await cli('get', '-w', 'json', path, 'widgets', 'k02501')).out), {
    key: 'k02501',
    value: 'value-2501',
  });
});

test('stats, pages, page, dump agree with the file', async (t) => {
  const { path, cleanup } = fixture();
  t.after(cleanup);
  const stats = JSON.parse((await cli('stats', '-w', 'json', path)).out);
  assert.equal(stats.count, 2);
  assert.equal(stats.keyN, 502);
  const db = open(path, { readOnly: true });
  const st = db.view((tx) => tx.bucket('widgets')!.stats());
  const freeN = db.stats().freePageN;
  const pgid = db.view((tx) => tx.meta.pgid);
  db.close();
  assert.equal(stats.leafPageN, st.leafPageN);
  assert.match((await cli('stats', path)).out, /Number of keys\/value pairs: 502\n/);
  const rows = JSON.parse((await cli('pages', '-w', 'json', path)).out) as Array<{
    id: number;
    type: string;
    overflow: number;
  }>;
  assert.equal(rows.filter((r) => r.type === 'free').length, freeN);
  assert.deepEqual(
    rows.slice(0, 2).map((r) => r.type),
    ['meta', 'meta'],
  );
  // Every page id below the high-water mark is covered exactly once.
  const covered = rows.reduce((n, r) => n + 1 + (r.type === 'meta' ? 0 : r.overflow), 0);
  assert.equal(covered, pgid);
  assert.match(
    (await cli('pages', path)).out,
    /^ID {7}TYPE {7}ITEMS {2}OVRFLW\n={8} ={10} ={6} ={6}\n0 +meta +0\n1 +meta +0\n/,
  );
  const leaf = rows.find((r) => r.type === 'leaf')!;
  const pg = await cli('page', path, String(leaf.id));
  assert.equal(pg.code, 0);
  assert.match(pg.out, new RegExp(`^Page ID:    ${leaf.id}\nPage Type:  leaf\nTotal Size: 4096 bytes\n`));
  const metas = JSON.parse((await cli('page', '-w', 'json', path, '0', '1')).out) as Array<{
    header: { type: string; meta: { pgid: number; txid: number } };
  }>;
  assert.deepEqual(
    metas.map((m) => m.header.type),
    ['meta', 'meta'],
  );
  const newest = metas.reduce((a, b) => (a.header.meta.txid > b.header.meta.txid ? a : b));
  assert.equal(newest.header.meta.txid, 3);
  assert.equal(newest.header.meta.pgid, pgid);
  const all = JSON.parse((await cli('page', '--all', '-w', 'json', path)).out) as unknown[];
  assert.equal(all.length, rows.filter((r) => r.type !== 'free').length);
  const d = await cli('dump', path, '0');
  assert.match(d.out, /^00000000 {2}00 00 00 00 00 00 00 00 04 00/);
  assert.match(d.out, /\n00000010 {2}ed da 0c ed 02 00 00 00 00 10 00 00/, 'magic and version after the header');
  assert.match((await cli('dump', path, '1')).out, /^00001000 {2}01 00 00 00/);
});

test('compact, backup and defrag produce dense, checkable copies', async (t) => {
  const { dir, path, cleanup } = fixture();
  t.after(cleanup);
  const out = join(dir, 'compact.db');
  const r = await cli('compact', '-o', out, path);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /^\d+ -> \d+ bytes \(gain=\d+\.\d\dx\)\n$/);
  assert.equal((await cli('check', out)).out, 'OK\n');
  assert.equal((await cli('keys', out, 'widgets')).out, (await cli('keys', path, 'widgets')).out);
  assert.equal((await cli('compact', '-o', out, path)).code, 1, 'refuses an existing destination');
  const bk = join(dir, 'backup.db');
  const b = await cli('backup', '-w', 'json', '-o', bk, path);
  assert.equal(b.code, 0, b.err);
  assert.equal(JSON.parse(b.out).bytes, statSync(bk).size);
  assert.equal((await cli('check', bk)).out, 'OK\n');
  const before = statSync(path).size;
  const keysBefore = (await cli('keys', path, 'widgets')).out;
  const df = await cli('defrag', '-w', 'json', path);
  assert.equal(df.code, 0, df.err);
  const dj = JSON.parse(df.out);
  assert.equal(dj.before, before);
  assert.ok(dj.after < before, `defrag shrank ${before} -> ${dj.after}`);
  assert.equal((await cli('check', path)).out, 'OK\n');
  assert.equal((await cli('keys', path, 'widgets')).out, keysBefore);
  assert.equal((await cli('get', path, 'widgets', 'sub', 'text')).out, 'hello\n');
});

test('bench runs and reports both phases', async () => {
  const r = await cli('bench', '--count', '2000', '--batch-size', '500', '--no-sync', '-w', 'json');
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out);
  assert.equal(j.write.ops, 2000);
  assert.ok(j.read.ops >= 2000 && j.read.opsPerSec > 0);
  assert.equal((await cli('bench', '--count', '1000', '--batch-size', '300')).code, 2);
});

test('errors: one line with the code, non-zero exit; --help everywhere', async (t) => {
  const { dir, path, cleanup } = fixture();
  t.after(cleanup);
  const cases: Array<[string[], number, RegExp]> = [
    [['info'], 2, /^Error: ERR_USAGE: path required\n$/],
    [['info', join(dir, 'missing.db')], 1, /^Error: ERR_FILE_NOT_FOUND: /],
    [['frob'], 2, /^Error: ERR_USAGE: unknown command: frob/],
    [['keys', path], 2, /^Error: ERR_USAGE: bucket required\n$/],
    [['keys', path, 'nope'], 1, /^Error: ERR_NOT_FOUND: bucket not found: nope\n$/],
    [['get', path, 'widgets', 'nope'], 1, /^Error: ERR_NOT_FOUND: key not found\n$/],
    [['get', path, 'widgets', 'sub'], 1, /^Error: ERR_INVALID_INPUT: /],
    [['page', path, '999999'], 1, /^Error: ERR_NOT_FOUND: page not found/],
    [['page', path, 'x'], 2, /^Error: ERR_USAGE: invalid page id/],
    [['info', '--bogus', path], 2, /^Error: ERR_USAGE: unknown flag: --bogus\n$/],
    [['info', '-w', 'yaml', path], 2, /^Error: ERR_USAGE: unsupported output format/],
    [['get', '--parse-format', 'hex', path, 'zz', 'k'], 2, /^Error: ERR_USAGE: invalid hex/],
    [['compact', path], 2, /^Error: ERR_USAGE: destination path required/],
    [['bench', '--count', 'many'], 2, /^Error: ERR_USAGE: invalid integer/],
  ];
  for (const [argv, code, err] of cases) {
    const r = await cli(...argv);
    assert.equal(r.code, code, `${argv.join(' ')}: ${r.err}`);
    assert.match(r.err, err, argv.join(' '));
    assert.equal(r.err.trimEnd().split('\n').length, 1, 'one line');
    assert.equal(r.out, '');
  }
  // Not a database file, and a damaged one.
  const junk = join(dir, 'junk.db');
  writeFileSync(junk, Buffer.alloc(8192, 7));
  const j = await cli('check', junk);
  assert.equal(j.code, 1);
  assert.match(j.err, /^Error: ERR_INVALID_FILE: /);
  for (const c of BOLT_COMMANDS) {
    const h = await cli(c.name, '--help');
    assert.equal(h.code, 0);
    assert.match(h.out, new RegExp(`^usage: boltkv ${c.name}`));
    assert.match(h.out, /--write-out, -w/);
  }
  const top = await cli('--help');
  assert.equal(top.code, 0);
  for (const c of BOLT_COMMANDS) assert.match(top.out, new RegExp(`\\n    ${c.name} `));
  assert.ok(existsSync(path));
});

test('the binary: exit codes and streams of a real process', (t) => {
  const { path, cleanup } = fixture();
  t.after(cleanup);
  const ok = cliProcess(['get', path, 'widgets', 'k02500']);
  assert.deepEqual([ok.code, ok.out, ok.err], [0, 'value-2500\n', '']);
  const bad = cliProcess(['get', path, 'widgets', 'missing']);
  assert.deepEqual([bad.code, bad.out, bad.err], [1, '', 'Error: ERR_NOT_FOUND: key not found\n']);
  assert.equal(cliProcess([]).code, 2);
});
