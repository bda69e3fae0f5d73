// File locking: a read-write open takes an exclusive flock, a readOnly open a shared one. A second
// read-write opener (in another process, or through another descriptor in this one) gets
// ERR_LOCK_TIMEOUT after lockTimeoutMs; readOnly opens share; once the holder closes, or dies,
// the other can open, including one that was already waiting.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BoltError, open } from '../../src/bolt/index.ts';
import { inTempDir } from '../support/temp-dir.ts';

const CHILD = resolve(dirname(fileURLToPath(import.meta.url)), '../support/lock-child.ts');

interface ChildResult {
  ok: boolean;
  code?: string;
}

/** A child process running lock-child.ts, with line-by-line access to what it prints. */
class Child {
  readonly proc: ChildProcessWithoutNullStreams;
  private lines: string[] = [];
  private waiters: (() => void)[] = [];
  private stderr = '';
  private exited = false;

  constructor(path: string, mode: 'rw' | 'ro', timeoutMs: number, hold = false) {
    this.proc = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        '--conditions=boltkv-source',
        CHILD,
        path,
        mode,
        String(timeoutMs),
        ...(hold ? ['hold'] : []),
      ],
      { stdio: 'pipe' },
    );
    let buf = '';
    this.proc.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        this.lines.push(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
      }
      this.wake();
    });
    this.proc.stderr.on('data', (d: Buffer) => {
      this.stderr += d.toString();
    });
    this.proc.on('exit', () => {
      this.exited = true;
      this.wake();
    });
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** The next line the child prints; fails if it exits first. */
  async line(): Promise<string> {
    for (;;) {
      const l = this.lines.shift();
      if (l !== undefined) return l;
      if (this.exited) throw new Error(`lock child exited early; stderr:\n${this.stderr}`);
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }

  async result(): Promise<ChildResult> {
    for (;;) {
      const l = await this.line();
      if (l !== 'start') return JSON.parse(l) as ChildResult;
    }
  }

  async exit(): Promise<void> {
    if (this.exited) return;
    await new Promise<void>((r) => this.proc.once('exit', () => r()));
  }
}

function withDir(fn: (path: string) => Promise<void>): () => Promise<void> {
  return () => inTempDir((dir) => fn(join(dir, 'lock.db')), 'boltkv-lock-');
}

function isLockTimeout(err: unknown): boolean {
  return err instanceof BoltError && err.code === 'ERR_LOCK_TIMEOUT';
}

test(
  'a second read-write open in this process times out with ERR_LOCK_TIMEOUT',
  withDir(async (path) => {
    const db = open(path);
    try {
      assert.throws(() => open(path, { lockTimeoutMs: 100 }), isLockTimeout);
      assert.throws(
        () => open(path, { readOnly: true, lockTimeoutMs: 100 }),
        isLockTimeout,
        'a reader waits for the writer too',
      );
    } finally {
      db.close();
    }
    open(path, { lockTimeoutMs: 100 }).close();
  }),
);

test(
  'the lock error names the file, says who holds it and how to wait, and leaves no file behind',
  withDir(async (path) => {
    const db = open(path);
    try {
      assert.throws(
        () => open(path, { lockTimeoutMs: 20 }),
        (err: unknown) => {
          assert.ok(isLockTimeout(err));
          const msg = (err as Error).message;
          assert.ok(msg.includes(path), msg);
          assert.match(msg, /another handle or process holds it/);
          assert.match(msg, /lockTimeoutMs/);
          return true;
        },
      );
      assert.deepEqual(readdirSync(dirname(path)), ['lock.db'], 'no temporary or 0-byte file left');
    } finally {
      db.close();
    }
  }),
);

test(
  'another process cannot open read-write or read-only while we hold the write lock',
  withDir(async (path) => {
    const db = open(path);
    try {
      const rw = new Child(path, 'rw', 200);
      const ro = new Child(path, 'ro', 200);
      assert.deepEqual(await rw.result(), { ok: false, code: 'ERR_LOCK_TIMEOUT' });
      assert.deepEqual(await ro.result(), { ok: false, code: 'ERR_LOCK_TIMEOUT' });
    } finally {
      db.close();
    }
    assert.deepEqual(await new Child(path, 'rw', 200).result(), { ok: true }, 'after close the other process opens');
  }),
);

test(
  'read-only opens share the lock, across processes and within one',
  withDir(async (path) => {
    open(path).close(); // create it
    const a = open(path, { readOnly: true });
    const b = open(path, { readOnly: true, lockTimeoutMs: 100 });
    try {
      assert.deepEqual(await new Child(path, 'ro', 200).result(), { ok: true });
      assert.deepEqual(
        await new Child(path, 'rw', 200).result(),
        { ok: false, code: 'ERR_LOCK_TIMEOUT' },
        'readers exclude a writer',
      );
    } finally {
      a.close();
      b.close();
    }
  }),
);

test(
  'a waiting opener gets the lock as soon as the holder closes',
  withDir(async (path) => {
    const db = open(path);
    const waiter = new Child(path, 'rw', 20_000);
    assert.equal(await waiter.line(), 'start');
    // Give the child time to reach its first failed attempt, then let go.
    await new Promise((r) => setTimeout(r, 500));
    db.close();
    assert.deepEqual(await waiter.result(), { ok: true });
  }),
);

test(
  'a lock held by another process blocks us, and is released when it exits or is killed',
  withDir(async (path) => {
    open(path).close();
    const holder = new Child(path, 'rw', 1000, true);
    assert.deepEqual(await holder.result(), { ok: true });
    assert.throws(() => open(path, { lockTimeoutMs: 100 }), isLockTimeout);
    holder.proc.stdin.end();
    await holder.exit();
    open(path, { lockTimeoutMs: 100 }).close();

    const victim = new Child(path, 'rw', 1000, true);
    assert.deepEqual(await victim.result(), { ok: true });
    assert.throws(() => open(path, { readOnly: true, lockTimeoutMs: 100 }), isLockTimeout);
    victim.proc.kill('SIGKILL');
    await victim.exit();
    open(path, { lockTimeoutMs: 1000 }).close();
  }),
);

test(
  'two processes creating the same fresh files at the same instants lose nothing (many rounds)',
  withDir(async (path) => {
    const dir = dirname(path);
    const rounds = Number(process.env.BOLTKV_STRESS ? 1000 : 150);
    const run = (id: string, peer: string): Promise<{ ok: boolean; errors: string[] }> =>
      new Promise((resolveRun, reject) => {
        const proc = spawn(
          process.execPath,
          ['--import', 'tsx', '--conditions=boltkv-source', CHILD, 'race', dir, String(rounds), id, peer],
          { stdio: ['ignore', 'pipe', 'pipe'] },
        );
        let out = '';
        let err = '';
        proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
        proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
        proc.on('error', reject);
        proc.on('exit', () => {
          try {
            resolveRun(JSON.parse(out.trim()) as { ok: boolean; errors: string[] });
          } catch {
            reject(new Error(`race child ${id} printed ${JSON.stringify(out)}; stderr:\n${err}`));
          }
        });
      });
    const [a, b] = await Promise.all([run('A', 'B'), run('B', 'A')]);
    assert.deepEqual(a.errors.slice(0, 5), [], 'process A failed');
    assert.deepEqual(b.errors.slice(0, 5), [], 'process B failed');
    // Every acknowledged write of both processes is in every file, and every file is sound.
    for (let i = 0; i < rounds; i++) {
      const db = open(join(dir, `race-${i}.db`), { readOnly: true });
      try {
        assert.deepEqual(db.check(), [], `round ${i}`);
        const keys = db.view((tx) => {
          const out: string[] = [];
          tx.bucket('race')?.forEach((k) => void out.push(Buffer.from(k).toString()));
          return out;
        });
        assert.deepEqual(keys, ['A', 'B'], `round ${i}: acknowledged keys`);
      } finally {
        db.close();
      }
    }
    // Creation leaves nothing else behind: only the databases and our barrier markers.
    const stray = readdirSync(dir).filter((n) => !/^race-\d+\.db$/.test(n) && !/^barrier-\d+\.[AB]$/.test(n));
    assert.deepEqual(stray, []);
  }),
);
