/**
 * `runServe` (what `boltkv serve` runs): etcd's flags, help and usage errors in process, and a real
 * child process stopped by SIGTERM while writes are in flight: it exits 0, every acknowledged write
 * is in the file, and the file is closed (it opens again at once, so its lock was released).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from '../../src/api/index.ts';
import { runServe, serveHelp } from '../../src/server/serve-command.ts';
import { freePort } from '../support/etcd.ts';
import { b64, raw } from './support.ts';

test('runServe: --help, unknown flags and bad values (usage errors exit 2)', async () => {
  const out: string[] = [];
  const err: string[] = [];
  const io = { out: (s: string) => void out.push(s), err: (s: string) => void err.push(s), handleSignals: false };
  assert.equal(await runServe(['--help'], io), 0);
  assert.equal(out.join(''), serveHelp());
  for (const flag of [
    '--data-dir',
    '--listen-client-urls',
    '--advertise-client-urls',
    '--name',
    '--max-request-bytes',
    '--log-level',
    '--quota-backend-bytes',
  ]) {
    assert.ok(serveHelp().includes(flag), flag);
  }
  assert.equal(await runServe(['--no-such-flag', 'x'], io), 2);
  assert.match(err.join(''), /ERR_USAGE: flag provided but not defined: -no-such-flag/);
  assert.equal(await runServe(['--max-request-bytes', 'lots'], io), 2);
  assert.equal(await runServe(['--log-level=shouty'], io), 2);
  assert.equal(await runServe(['--name'], io), 2);
});

test('runServe in process: defaults to <name>.etcd, serves, stops on abort with the file closed', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'boltkv-serve-'));
  const cwd = process.cwd();
  const ac = new AbortController();
  const port = await freePort();
  try {
    process.chdir(dir);
    const done = runServe(
      [
        '--name',
        'm1',
        `--listen-client-urls=http://127.0.0.1:${port}`,
        '--log-level',
        'error',
        '--quota-backend-bytes',
        '8589934592',
      ],
      { signal: ac.signal, handleSignals: false },
    );
    const url = `http://127.0.0.1:${port}`;
    for (let i = 0; ; i++) {
      try {
        await raw(url, '/v3/kv/range', '{"key":"YQ=="}');
        break;
      } catch (e) {
        if (i > 100) throw e;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    assert.equal((await raw(url, '/v3/kv/put', JSON.stringify({ key: b64('a'), value: b64('1') }))).status, 200);
    const members = JSON.parse((await raw(url, '/v3/cluster/member/list', '{}')).body) as {
      members: { name: string; clientURLs: string[] }[];
    };
    assert.equal(members.members[0]?.name, 'm1');
    assert.deepEqual(members.members[0]?.clientURLs, ['http://localhost:2379']); // etcd's default advertise URL
    ac.abort();
    assert.equal(await done, 0);
    const db = join(dir, 'm1.etcd', 'member', 'snap', 'db');
    assert.ok(existsSync(db));
    const kv = await openStore(db);
    assert.equal(Buffer.from((await kv.get('a')).kvs[0]?.value ?? []).toString(), '1');
    await kv.close();
  } finally {
    process.chdir(cwd);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a `boltkv serve` child process stopped by SIGTERM mid-write: exit 0, acknowledged writes durable, file closed', {
  timeout: 60_000,
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'boltkv-serve-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      '--conditions=boltkv-source',
      join(import.meta.dirname, 'serve-child.ts'),
      '--data-dir',
      dir,
      '--listen-client-urls',
      url,
      '--log-level',
      'info',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  try {
    for (let i = 0; ; i++) {
      try {
        await raw(url, '/v3/kv/range', '{"key":"YQ=="}');
        break;
      } catch (e) {
        if (i > 200) throw new Error(`child did not start: ${stderr}`, { cause: e });
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    const acked: string[] = [];
    let stop = false;
    const writers = Array.from({ length: 8 }, async (_, w) => {
      for (let i = 0; !stop; i++) {
        const key = `w${w}-${i}`;
        try {
          const r = await raw(
            url,
            '/v3/kv/put',
            JSON.stringify({ key: b64(key), value: b64('v'.repeat(1000)) }),
            'POST',
            5000,
          );
          if (r.status === 200) acked.push(key);
          else if (r.status === 503) return;
          else throw new Error(`unexpected ${r.status} ${r.body}`);
        } catch (e) {
          if (
            (e as NodeJS.ErrnoException).code === 'ECONNREFUSED' ||
            (e as NodeJS.ErrnoException).code === 'ECONNRESET'
          )
            return;
          throw e;
        }
      }
    });
    await new Promise((r) => setTimeout(r, 400));
    child.kill('SIGTERM');
    const code = await exited;
    stop = true;
    await Promise.all(writers);
    assert.equal(code, 0, stderr);
    assert.ok(acked.length > 0, 'some writes were acknowledged before the stop');
    const lines = stderr
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { level: string; msg: string });
    // One line at start, one at stop, none for requests.
    assert.deepEqual(lines.map((l) => l.msg), ['serving client traffic', 'stopped serving client traffic']);
    assert.ok(lines.some((l) => l.msg === 'stopped serving client traffic'));
    assert.ok(!lines.some((l) => l.level === 'error'), stderr);
    // The file was closed (its lock released) and holds every acknowledged write.
    const kv = await openStore(join(dir, 'member', 'snap', 'db'), { bolt: { lockTimeoutMs: 0 } });
    try {
      const all = await kv.get('w', { prefix: true, keysOnly: true });
      const present = new Set(all.kvs.map((k) => Buffer.from(k.key).toString()));
      for (const k of acked) assert.ok(present.has(k), `acknowledged write ${k} lost`);
    } finally {
      await kv.close();
    }
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});
