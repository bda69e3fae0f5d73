/**
 * An async commit's page writes (page-writer.ts): pages handed over in spill's order go out in
 * sorted vectored runs from the thread pool. Checked against a model file (every page's bytes at
 * its id) over random page sets, hand-over orders, completion orders and failures.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { join } from 'node:path';
import { open } from '../../src/bolt/index.ts';
import { BoltError } from '../../src/bolt/errors.ts';
import type { FileIO } from '../../src/bolt/file.ts';
import { AsyncPageWriter, forEachRun } from '../../src/bolt/page-writer.ts';
import { requireGoTools } from '../support/go-tools.ts';
import { inTempDir } from '../support/temp-dir.ts';

const PS = 64;

/** A file that records writevAsync calls and completes them in an order the test chooses. */
class RecordingFile {
  readonly bytes = new Uint8Array(PS * 512);
  readonly calls: { start: number; bufs: readonly Uint8Array[] }[] = [];
  private readonly waiting: (() => void)[] = [];
  failAt = -1;
  writevAsync(bufs: readonly Uint8Array[], position: number): Promise<void> {
    const n = this.calls.length;
    this.calls.push({ start: position / PS, bufs });
    if (n === this.failAt) return Promise.reject(new BoltError('ERR_IO', `write ${n} failed`));
    return new Promise((resolve) =>
      this.waiting.push(() => {
        // Copied when it completes: a buffer changed after the hand-over would show.
        let at = position;
        for (const b of bufs) {
          this.bytes.set(b, at);
          at += b.length;
        }
        resolve();
      }),
    );
  }
  /** Complete the waiting writes, in an order drawn from pick. */
  drain(pick: (n: number) => number): void {
    while (this.waiting.length > 0) this.waiting.splice(pick(this.waiting.length), 1)[0]!();
  }
}

/** Distinct page runs (id, pages) that do not overlap, in a random order. */
const pageSets = fc
  .uniqueArray(fc.integer({ min: 2, max: 400 }), { minLength: 1, maxLength: 150 })
  .chain((starts) =>
    fc.tuple(
      fc.constant(starts.sort((a, b) => a - b)),
      fc.array(fc.integer({ min: 1, max: 3 }), { minLength: starts.length, maxLength: starts.length }),
    ),
  )
  .map(([starts, sizes]) => {
    const runs: [number, number][] = [];
    let end = 0;
    starts.forEach((s, i) => {
      if (s < end) return;
      const n = Math.min(sizes[i]!, (starts[i + 1] ?? Number.MAX_SAFE_INTEGER) - s);
      runs.push([s, n]);
      end = s + n;
    });
    return runs;
  });

function pageBytes(id: number, n: number): Uint8Array {
  const b = new Uint8Array(n * PS);
  for (let i = 0; i < b.length; i++) b[i] = (id * 31 + i) & 0xff;
  return b;
}

test('every handed-over page lands at its id, in sorted contiguous runs, whatever the order', async () => {
  await fc.assert(
    fc.asyncProperty(
      pageSets,
      fc.integer({ min: 0, max: 2 ** 31 - 1 }),
      fc.integer({ min: 0, max: 150 }),
      async (runs, seed, late) => {
        let s = seed;
        const rnd = (n: number): number => {
          s = (s * 1103515245 + 12345) & 0x7fffffff;
          return s % n;
        };
        // Hand over in a shuffled order (spill's order is not the ids' order); a few pages go
        // into the map without a hand-over (the freelist page), for flush() to find.
        const order = runs.slice();
        for (let i = order.length - 1; i > 0; i--) {
          const j = rnd(i + 1);
          [order[i], order[j]] = [order[j]!, order[i]!];
        }
        const file = new RecordingFile();
        const pages = new Map<number, Uint8Array>();
        const w = new AsyncPageWriter(file as FileIO & RecordingFile, PS, pages);
        const handOver = Math.max(0, order.length - (late % 3));
        for (let i = 0; i < order.length; i++) {
          const [id, n] = order[i]!;
          pages.set(id, pageBytes(id, n));
          if (i < handOver) {
            w.add(id);
            assert.ok(w.has(id));
          }
        }
        w.flush();
        const done = w.settled();
        file.drain(rnd);
        await done;
        // The model: every page's bytes at its id, nothing else written.
        const want = new Uint8Array(file.bytes.length);
        for (const [id, n] of runs) want.set(pageBytes(id, n), id * PS);
        assert.deepEqual(file.bytes, want);
        // Each call is one run: its buffers back to back, ids ascending within it, no page twice.
        const seen = new Set<number>();
        for (const c of file.calls) {
          let at = c.start;
          for (const b of c.bufs) {
            assert.ok(pages.get(at) === b, `call at ${c.start}: buffer for page ${at} is not that page's`);
            assert.ok(!seen.has(at), `page ${at} written twice`);
            seen.add(at);
            at += b.length / PS;
          }
        }
        assert.equal(seen.size, runs.length);
      },
    ),
    { numRuns: 300 },
  );
});

test('a failed write makes settled() reject with it, only after every issued write finished', async () => {
  await fc.assert(
    fc.asyncProperty(pageSets, fc.nat(), async (runs, k) => {
      const file = new RecordingFile();
      const pages = new Map<number, Uint8Array>();
      const w = new AsyncPageWriter(file as FileIO & RecordingFile, PS, pages);
      for (const [id, n] of runs) {
        pages.set(id, pageBytes(id, n));
        w.add(id);
      }
      // How many calls the whole set takes, to fail one of them.
      let calls = 0;
      forEachRun(
        [...pages.keys()].sort((a, b) => a - b),
        pages,
        PS,
        () => calls++,
      );
      file.failAt = k % (calls + 1); // == calls: no failure
      w.flush();
      let settled = false;
      const done = w.settled().then(
        () => {
          settled = true;
        },
        (err: unknown) => {
          settled = true;
          throw err;
        },
      );
      await Promise.resolve();
      await Promise.resolve();
      const pendingBefore = file.calls.length > (file.failAt < calls ? 1 : 0);
      if (pendingBefore) assert.equal(settled, false, 'settled before the issued writes finished');
      file.drain(() => 0);
      if (file.failAt < calls)
        await assert.rejects(done, (e: unknown) => e instanceof BoltError && e.code === 'ERR_IO');
      else await done;
    }),
    { numRuns: 200 },
  );
});

test('async commits on a real file (pages written from the thread pool) read back whole, pass check(), and bbolt checks and reads the file', async (t) => {
  const go = requireGoTools(t);
  const key = (i: number): Buffer => Buffer.from(`k${String((i * 7919) % 30_000).padStart(6, '0')}`);
  const val = (i: number, round: number): Buffer => Buffer.alloc(40 + (i % 90), (i + round) & 0xff);
  await inTempDir(async (dir) => {
    const path = join(dir, 'async.db');
    const db = open(path);
    try {
      // Large commits (thousands of pages: many chunks of writes in flight) through updateAsync,
      // then rounds of batched puts over the same keys (scattered pages) and a few deletes.
      for (let c = 0; c < 3; c++)
        await db.updateAsync((tx) => {
          const b = tx.createBucketIfNotExists('b');
          for (let i = c * 10_000; i < (c + 1) * 10_000; i++) b.put(key(i), val(i, 0));
        });
      for (let round = 1; round <= 3; round++) {
        await Promise.all(
          Array.from({ length: 600 }, (_, j) =>
            db.batch((tx) => tx.bucket('b')!.put(key(j * 47 + round), val(j * 47 + round, round))),
          ),
        );
      }
      await db.batch((tx) => tx.bucket('b')!.delete(key(5)));
      assert.deepEqual(db.check(), []);
    } finally {
      db.close();
    }
    const expect = new Map<string, Buffer>();
    for (let i = 0; i < 30_000; i++) expect.set(key(i).toString('hex'), val(i, 0));
    for (let round = 1; round <= 3; round++)
      for (let j = 0; j < 600; j++) expect.set(key(j * 47 + round).toString('hex'), val(j * 47 + round, round));
    expect.delete(key(5).toString('hex'));
    const again = open(path, { readOnly: true });
    try {
      assert.deepEqual(again.check(), []);
      let n = 0;
      again.view((tx) =>
        tx.bucket('b')!.forEach((k, v) => {
          assert.deepEqual(v, expect.get(k.toString('hex')), `value of ${k}`);
          n++;
        }),
      );
      assert.equal(n, expect.size);
    } finally {
      again.close();
    }
    if (!go) return;
    const d = go.dump(path);
    assert.deepEqual(d.problems, [], 'bbolt tx.Check');
    const b = d.buckets.find((e) => e.k === Buffer.from('b').toString('hex'));
    assert.equal(b?.bucket?.entries.length, expect.size, 'bbolt reads every key');
    for (const e of b!.bucket!.entries) assert.equal(e.v, expect.get(e.k)!.toString('hex'), `bbolt's value of ${e.k}`);
  });
});
