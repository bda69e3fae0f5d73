// Crash safety over a fault-injecting file layer. For randomized workloads of commits, count the
// I/O calls in a dry run, then for every call index replay the workload and "pull the plug" there,
// in each crash mode (process death; power loss dropping unsynced writes; a reordering disk keeping
// a random subset; a torn write). The engine reopens the crash image and must find a consistent
// file (check() clean) holding exactly the state after some commit k, where k is at least the
// number of commits that returned and at most the number attempted. It must then accept a commit.
// Also: an I/O error injected at any call makes that call's operation throw a BoltError, and the
// file still reopens to a committed prefix.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BoltError, open, type DB, type Tx } from '../../src/bolt/index.ts';
import { FaultyDisk, type CrashMode } from '../support/faulty-fs.ts';
import { Rng } from '../support/rng.ts';
import { applyOp, dumpDb } from '../support/bolt-ops.ts';
import { Model, canon, committedStates, fillKey, generate, hexOf, type Op } from '../support/workload.ts';

const PATH = '/data/crash.db';
const STRESS = process.env.BOLTKV_STRESS === '1';

type EngineOptions = {
  noFreelistSync?: boolean;
  freelist?: 'array' | 'hashmap';
  pageSize?: number;
  cacheSize?: number;
  initialSize?: number;
};

interface Variant {
  name: string;
  seed: number;
  txs: number;
  maxOps: number;
  keySpace?: number;
  bigValueRate?: number;
  options: EngineOptions;
  /** Commit with db.updateAsync (fdatasync off the event loop) instead of db.update. */
  async?: boolean;
  /** Commit each transaction through db.batch (the group-commit path), one call at a time. */
  batch?: boolean;
  /** Keep a read transaction open across the workload, renewed every few commits, so frees stay pending. */
  reader?: boolean;
  /** Fixed transactions committed into the base file before the sweep (not crash-tested themselves). */
  prefix?: Op[][];
  /** The workload must write a commit's pages as one vectored run (so tears and drops hit such runs). */
  vectored?: boolean;
  /** These transactions instead of generated ones. */
  fixed?: Op[][];
}

/** Thousands of keys, then most of them deleted: a freelist that spans several (1 KiB) pages. */
const BIG_FREELIST: Op[][] = [
  [
    { op: 'createBucket', path: [], name: hexOf('bulk') },
    { op: 'fill', path: [hexOf('bulk')], prefix: hexOf('f'), start: 0, count: 6000, valueLen: 20, seed: 4 },
  ],
  [{ op: 'unfill', path: [hexOf('bulk')], prefix: hexOf('f'), start: 200, count: 5600, valueLen: 0, seed: 0 }],
];

/** A three-level tree (1 KiB pages): branches above the leaves that one-put commits rewrite. */
const TREE_PREFIX = hexOf('f');
const DEEP_TREE: Op[][] = [
  [
    { op: 'createBucket', path: [], name: hexOf('tree') },
    { op: 'fill', path: [hexOf('tree')], prefix: TREE_PREFIX, start: 0, count: 3000, valueLen: 20, seed: 5 },
  ],
];
const treeKey = (i: number): string => Buffer.from(fillKey(Buffer.from(TREE_PREFIX, 'hex'), i)).toString('hex');
const treePut = (k: string, n: number): Op[] => [{ op: 'put', path: [hexOf('tree')], k, v: 'ab'.repeat(n) }];
/**
 * One-put commits on DEEP_TREE: most rewrite each branch on the path as a copy of its old page
 * with one child id patched; the others take the element-by-element path (a new first key below
 * the leftmost separator, a leaf split by a large value, a delete).
 */
const ONE_PUT_COMMITS: Op[][] = [
  treePut(treeKey(1500), 10),
  treePut(treeKey(7), 30),
  treePut(hexOf('a-first'), 5),
  treePut(treeKey(2999), 0),
  treePut(treeKey(1200), 700),
  [{ op: 'delete', path: [hexOf('tree')], k: treeKey(400) }],
  treePut(treeKey(401), 12),
  treePut(treeKey(1500), 3),
];

const VARIANTS: Variant[] = [
  { name: 'default', seed: 1, txs: 10, maxOps: 12, options: {} },
  { name: 'default, another seed', seed: 7, txs: 10, maxOps: 20, options: {} },
  { name: 'big values', seed: 2, txs: 8, maxOps: 8, bigValueRate: 0.3, options: {} },
  { name: 'splits (wide key space)', seed: 3, txs: 6, maxOps: 120, keySpace: 400, options: {} },
  { name: 'noFreelistSync', seed: 4, txs: 10, maxOps: 12, options: { noFreelistSync: true } },
  { name: 'hashmap freelist', seed: 5, txs: 10, maxOps: 12, options: { freelist: 'hashmap' } },
  { name: 'pageSize 2048', seed: 6, txs: 8, maxOps: 40, keySpace: 150, options: { pageSize: 2048 } },
  { name: 'async commits', seed: 8, txs: 10, maxOps: 15, options: {}, async: true },
  { name: 'batch commits', seed: 13, txs: 8, maxOps: 15, options: {}, batch: true },
  { name: 'open reader pins pages', seed: 9, txs: 12, maxOps: 15, keySpace: 100, options: {}, reader: true },
  // A page cache too small to hold anything: every page access is a read, so reads fail and crash too.
  { name: 'tiny page cache', seed: 10, txs: 6, maxOps: 30, keySpace: 150, options: { cacheSize: 1 } },
  { name: 'initialSize 1 MiB', seed: 12, txs: 6, maxOps: 20, bigValueRate: 0.2, options: { initialSize: 1 << 20 } },
  { name: 'freelist spans pages', seed: 11, txs: 4, maxOps: 20, options: { pageSize: 1024 }, prefix: BIG_FREELIST },
  // Commits dirtying many pages of a file with free runs: each commit's pages are reserved as one
  // contiguous run and written by one vectored call, which the tear image cuts across buffers.
  {
    name: 'multi-page commits written as one run',
    seed: 14,
    txs: 6,
    maxOps: 60,
    keySpace: 300,
    options: { pageSize: 1024 },
    prefix: BIG_FREELIST,
    vectored: true,
  },
  // Async commits issue their page writes to the thread pool while spill builds the next pages
  // (writevAsync): crashes land between those writes, and with a cache that holds nothing, reads
  // during spill fail and crash while writes are in flight.
  {
    name: 'async multi-page commits, pages written off the event loop as runs',
    seed: 16,
    txs: 6,
    maxOps: 60,
    keySpace: 300,
    options: { pageSize: 1024 },
    prefix: BIG_FREELIST,
    vectored: true,
    async: true,
  },
  {
    name: 'batch commits, tiny page cache (reads while page writes are in flight)',
    seed: 17,
    txs: 6,
    maxOps: 30,
    keySpace: 150,
    options: { cacheSize: 1 },
    batch: true,
  },
  {
    name: 'one-put commits on a three-level tree',
    seed: 15,
    txs: 0,
    maxOps: 1,
    options: { pageSize: 1024 },
    prefix: DEEP_TREE,
    fixed: ONE_PUT_COMMITS,
  },
];
// A few more seeds with mixed settings, for breadth at low cost.
for (let s = 20; s < 28; s++) {
  VARIANTS.push({
    name: `mixed seed ${s}`,
    seed: s,
    txs: 8,
    maxOps: 25,
    keySpace: 120,
    bigValueRate: 0.08,
    options: [{}, { noFreelistSync: true }, { freelist: 'hashmap' as const }, { pageSize: 1024 }][s % 4]!,
    async: s % 3 === 0,
    reader: s % 2 === 0,
  });
}
if (STRESS) {
  for (let s = 100; s < 110; s++) {
    VARIANTS.push({
      name: `stress ${s}`,
      seed: s,
      txs: 14,
      maxOps: 40,
      keySpace: 200,
      bigValueRate: 0.1,
      options: s % 3 === 0 ? { noFreelistSync: true } : s % 3 === 1 ? { freelist: 'hashmap' } : {},
      async: s % 4 === 0,
      reader: s % 5 === 0,
    });
  }
}

/** Image variants taken at each crash point. */
const IMAGES: { mode: CrashMode; seed: number }[] = [
  { mode: 'process', seed: 0 },
  { mode: 'drop', seed: 0 },
  { mode: 'subset', seed: 1 },
  { mode: 'subset', seed: 2 },
  { mode: 'tear', seed: 1 },
  { mode: 'tear', seed: 2 },
  { mode: 'subset', seed: 3 },
  { mode: 'tear', seed: 3 },
  ...(STRESS
    ? [4, 5].flatMap((seed) => [
        { mode: 'subset' as const, seed },
        { mode: 'tear' as const, seed },
      ])
    : []),
];

const MARKER: Op[] = [
  { op: 'createBucketIfNotExists', path: [], name: hexOf('marker') },
  { op: 'put', path: [hexOf('marker')], k: hexOf('after-recovery'), v: hexOf('yes') },
];

function expectBoltError(err: unknown, what: string): void {
  if (!(err instanceof BoltError)) {
    assert.fail(`${what}: expected a BoltError, got ${err instanceof Error ? err.stack : String(err)}`);
  }
}

/** A disk holding a fully synced database: new and empty, or after the given transactions. */
function baseImage(options: EngineOptions, prefix: readonly Op[][] = []): Map<string, Uint8Array> {
  const disk = new FaultyDisk();
  const db = open(PATH, { ...options, fileSystem: disk.fs });
  for (const ops of prefix) {
    db.update((tx) => {
      for (const op of ops) applyOp(tx, op);
    });
  }
  db.close();
  return disk.crashImage('drop');
}

/** The model after a variant's prefix: where its committed states start. */
function startModel(v: Variant): Model {
  const m = new Model();
  for (const ops of v.prefix ?? []) for (const op of ops) m.apply(op);
  return m;
}

interface RunResult {
  committed: number;
  attempted: number;
  error?: unknown;
  db?: DB;
}

/** Run the workload; stop at the first error. Leaves the DB open (it may be dead). */
async function runWorkload(
  disk: FaultyDisk,
  txs: readonly Op[][],
  options: EngineOptions,
  v?: Variant,
): Promise<RunResult> {
  const r: RunResult = { committed: 0, attempted: 0 };
  try {
    r.db = open(PATH, { ...options, fileSystem: disk.fs });
  } catch (err) {
    r.error = err;
    return r;
  }
  const db = r.db;
  let reader = v?.reader ? db.begin(false) : undefined;
  try {
    for (const ops of txs) {
      r.attempted++;
      const apply = (tx: Tx): void => {
        for (const op of ops) applyOp(tx, op);
      };
      try {
        if (v?.batch) await db.batch(apply);
        else if (v?.async) await db.updateAsync(apply);
        else db.update(apply);
      } catch (err) {
        r.error = err;
        return r;
      }
      r.committed++;
      if (reader && r.committed % 3 === 0) {
        try {
          reader.rollback();
          reader = undefined;
          reader = db.begin(false);
        } catch (err) {
          r.error = err;
          return r;
        }
      }
    }
  } finally {
    try {
      reader?.rollback();
    } catch (err) {
      r.error ??= err;
    }
  }
  return r;
}

/** Open an image with a normal engine and check it holds states[k] for some k in [lo, hi]. */
function verifyImage(
  image: Map<string, Uint8Array>,
  states: readonly string[],
  lo: number,
  hi: number,
  options: EngineOptions,
  label: string,
): number {
  const disk = new FaultyDisk({ files: image });
  const which = (got: string): number => {
    for (let i = lo; i <= hi; i++) if (states[i] === got) return i;
    const anywhere = states.indexOf(got);
    assert.fail(
      `${label}: content is not a state after commit ${lo}..${hi}` +
        (anywhere >= 0 ? ` (it equals the state after commit ${anywhere})` : ' (it matches no committed state)') +
        `\n got: ${got.slice(0, 400)}\nwant: ${states[lo]!.slice(0, 400)}`,
    );
  };
  const openOrFail = (readOnly: boolean): DB => {
    try {
      return open(PATH, { ...options, readOnly, fileSystem: disk.fs });
    } catch (err) {
      assert.fail(`${label}: reopen (readOnly=${readOnly}) failed: ${err instanceof Error ? err.stack : String(err)}`);
    }
  };
  // First as a reader (no freelist rebuild, no writes), then as the next writer.
  const ro = openOrFail(true);
  let kRead: number;
  try {
    assert.deepEqual(ro.check(), [], `${label}: check() after recovery (readOnly)`);
    kRead = which(canon(dumpDb(ro)));
  } finally {
    ro.close();
  }
  const db = openOrFail(false);
  try {
    assert.deepEqual(db.check(), [], `${label}: check() after recovery`);
    const k = which(canon(dumpDb(db)));
    assert.equal(k, kRead, `${label}: a read-only and a read-write open see different commits`);
    // The recovered file must take new commits and stay consistent.
    db.update((tx) => {
      for (const op of MARKER) applyOp(tx, op);
    });
    assert.deepEqual(db.check(), [], `${label}: check() after a commit on the recovered file`);
    return k;
  } finally {
    db.close();
  }
}

function describeCrash(v: Variant, i: number, disk: FaultyDisk, mode: string, seed: number): string {
  return `[${v.name} seed=${v.seed}] crash at call ${i} (${disk.trace[disk.trace.length - 1]}), image ${mode}/${seed}`;
}

for (const v of VARIANTS) {
  test(`crash at every I/O point recovers a committed prefix: ${v.name}`, async () => {
    const txs =
      v.fixed ??
      generate(new Rng(v.seed), {
        txs: v.txs,
        maxOps: v.maxOps,
        keySpace: v.keySpace,
        bigValueRate: v.bigValueRate,
        pageSize: v.options.pageSize,
      });
    const states = committedStates(txs, startModel(v));
    const base = baseImage(v.options, v.prefix);

    // Dry run: how many calls does the workload make, and does it work at all?
    const dry = new FaultyDisk({ files: base, seed: v.seed });
    const before = dry.count();
    const res = await runWorkload(dry, txs, v.options, v);
    assert.equal(res.error, undefined, `dry run failed: ${String(res.error)}`);
    res.db!.close();
    const calls = dry.count() - before;
    assert.ok(calls > txs.length * 2, `expected at least two I/O calls per commit, saw ${calls}`);
    if (v.vectored) {
      const runs = dry.trace.slice(before).filter((t) => t.startsWith('writev')).length;
      assert.ok(runs >= txs.length - 1, `expected a vectored write per commit, saw ${runs} in ${txs.length} commits`);
    }
    if (v.async || v.batch) {
      const asyncWrites = dry.trace.slice(before).filter((t) => t.startsWith('writevAsync ')).length;
      assert.ok(
        asyncWrites >= txs.length,
        `expected async commits to write pages off the event loop, saw ${asyncWrites}`,
      );
    }
    verifyImage(dry.crashImage('drop'), states, txs.length, txs.length, v.options, `[${v.name}] clean close`);

    const seenK = new Set<number>();
    for (let i = 1; i <= calls; i++) {
      const disk = new FaultyDisk({ files: base, seed: v.seed * 1000 + i });
      disk.crashAt(i);
      const r = await runWorkload(disk, txs, v.options, v);
      if (!disk.crashed) {
        // Only close() calls remain after the workload: crash in close.
        try {
          r.db?.close();
        } catch (err) {
          expectBoltError(err, `close at crash ${i}`);
        }
      } else if (r.error !== undefined) {
        expectBoltError(r.error, `workload at crash ${i}`);
      }
      assert.ok(
        disk.crashed,
        `[${v.name}] crash point ${i} of ${calls} was never reached: the workload is not deterministic`,
      );
      for (const img of IMAGES) {
        const label = describeCrash(v, i, disk, img.mode, img.seed);
        const k = verifyImage(disk.crashImage(img.mode, img.seed), states, r.committed, r.attempted, v.options, label);
        seenK.add(k);
      }
    }
    console.log(
      `crash sweep [${v.name}]: ${calls} crash points x ${IMAGES.length} images; recovered to commits ${[...seenK].sort((a, b) => a - b).join(',')}`,
    );
    // The sweep must actually have exercised recovery to different points of the history.
    assert.ok(seenK.has(0) && seenK.has(txs.length), `recovered states ${[...seenK].sort((a, b) => a - b)}`);
  });
}

/** Opens path on the disk and asserts it is a sound, empty database. */
function expectEmptyDb(disk: FaultyDisk, options: EngineOptions, what: string): void {
  const db = open(PATH, { ...options, fileSystem: disk.fs });
  try {
    assert.deepEqual(db.check(), [], what);
    assert.equal(canon(dumpDb(db)), canon(new Model().dump()), what);
    db.update((tx) => tx.createBucket('after').put('k', 'v'));
  } finally {
    db.close();
  }
}

for (const options of [{}, { pageSize: 1024, initialSize: 1 << 20 }] as EngineOptions[]) {
  test(`a crash at any call while a new file is being created leaves no file or an empty database ${JSON.stringify(options)}`, () => {
    const dry = new FaultyDisk();
    open(PATH, { ...options, fileSystem: dry.fs }).close();
    const calls = dry.count();
    for (let i = 1; i <= calls; i++) {
      const disk = new FaultyDisk({ seed: i });
      disk.crashAt(i);
      try {
        open(PATH, { ...options, fileSystem: disk.fs }).close();
      } catch (err) {
        expectBoltError(err, `create at crash ${i}`);
      }
      for (const img of IMAGES) {
        // Whatever survived, the next open() must give a sound empty database: creation is atomic.
        expectEmptyDb(
          new FaultyDisk({ files: disk.crashImage(img.mode, img.seed) }),
          options,
          `crash at ${i} (${disk.trace.at(-1)}), ${img.mode}/${img.seed}`,
        );
      }
    }
  });

  test(`an I/O error at any call while a new file is being created is typed and the next open succeeds ${JSON.stringify(options)}`, () => {
    const dry = new FaultyDisk();
    open(PATH, { ...options, fileSystem: dry.fs }).close();
    const calls = dry.count();
    let failed = 0;
    for (let i = 1; i <= calls; i++) {
      const disk = new FaultyDisk({ seed: i });
      disk.failAt(i);
      try {
        open(PATH, { ...options, fileSystem: disk.fs }).close();
      } catch (err) {
        expectBoltError(err, `create failing at call ${i}`);
        failed++;
      }
      disk.clearRules();
      expectEmptyDb(disk, options, `after a failure at call ${i} (${disk.trace[i - 1]})`);
    }
    assert.ok(failed > 0, 'no injected failure reached the caller');
  });
}

test('a file no commit ever reached (an interrupted creation by an older version) is re-initialised, never refused', () => {
  const dry = new FaultyDisk();
  open(PATH, { fileSystem: dry.fs }).close();
  const image = dry.contents(PATH).subarray(0, 4 * 4096);
  const variants: [string, Uint8Array][] = [
    ['0 bytes', new Uint8Array(0)],
    ['first two pages only (ENOSPC after 8 KiB)', image.slice(0, 8192)],
    [
      'metas written, freelist and root pages zero',
      (() => {
        const b = image.slice();
        b.fill(0, 8192);
        return b;
      })(),
    ],
    [
      'meta 0 torn, the rest zero',
      (() => {
        const b = new Uint8Array(16384);
        b.set(image.subarray(0, 40));
        return b;
      })(),
    ],
    ['all zero', new Uint8Array(16384)],
  ];
  for (const [name, bytes] of variants) {
    // A read-only open cannot repair it: a typed error, or (metas intact) check() says what is wrong.
    const ro = new FaultyDisk({ files: { [PATH]: bytes } });
    try {
      const db = open(PATH, { readOnly: true, fileSystem: ro.fs });
      try {
        assert.notDeepEqual(db.check(), [], name);
      } finally {
        db.close();
      }
    } catch (err) {
      expectBoltError(err, `${name}, read-only`);
    }
    expectEmptyDb(new FaultyDisk({ files: { [PATH]: bytes } }), {}, name);
  }
  // A file someone committed to is never taken for one: it keeps its data or is refused.
  const used = new FaultyDisk();
  const db = open(PATH, { fileSystem: used.fs });
  db.update((tx) => tx.createBucket('b').put('k', 'v'));
  db.close();
  const damaged = used.contents(PATH).slice();
  damaged.fill(0, 0, 8192); // both metas gone
  assert.throws(() => open(PATH, { fileSystem: new FaultyDisk({ files: { [PATH]: damaged } }).fs }), BoltError);
});

test('a new database is durable once open() returns', () => {
  const disk = new FaultyDisk();
  open(PATH, { fileSystem: disk.fs }).close();
  const again = new FaultyDisk({ files: disk.crashImage('drop') });
  const db = open(PATH, { fileSystem: again.fs });
  assert.deepEqual(db.check(), []);
  db.close();
});

test('every commit that returned survives power loss', () => {
  const txs = generate(new Rng(77), { txs: 10, maxOps: 10 });
  const states = committedStates(txs);
  const disk = new FaultyDisk({ files: baseImage({}), seed: 77 });
  const db = open(PATH, { fileSystem: disk.fs });
  for (let n = 0; n < txs.length; n++) {
    db.update((tx) => {
      for (const op of txs[n]!) applyOp(tx, op);
    });
    for (const mode of ['drop', 'subset', 'tear'] as const) {
      verifyImage(disk.crashImage(mode, n), states, n + 1, n + 1, {}, `after commit ${n + 1}, ${mode}`);
    }
  }
  db.close();
});

for (const v of STRESS
  ? VARIANTS
  : VARIANTS.filter((x) =>
      [
        'default',
        'big values',
        'splits (wide key space)',
        'async commits',
        'async multi-page commits, pages written off the event loop as runs',
        'open reader pins pages',
        'tiny page cache',
        'freelist spans pages',
      ].includes(x.name),
    )) {
  test(`an I/O error at any call is a BoltError and leaves a committed prefix: ${v.name}`, async () => {
    const txs = generate(new Rng(v.seed + 500), {
      txs: v.txs,
      maxOps: v.maxOps,
      keySpace: v.keySpace,
      bigValueRate: v.bigValueRate,
    });
    const states = committedStates(txs, startModel(v));
    const base = baseImage(v.options, v.prefix);
    const dry = new FaultyDisk({ files: base });
    const before = dry.count();
    const d = await runWorkload(dry, txs, v.options, v);
    assert.equal(d.error, undefined);
    d.db!.close();
    const calls = dry.count() - before;

    let failedCommits = 0;
    for (let i = 1; i <= calls; i++) {
      const label = `[${v.name}] I/O error at call ${i}`;
      const disk = new FaultyDisk({ files: base, seed: i });
      disk.failAt(i);
      const r = await runWorkload(disk, txs, v.options, v);
      disk.clearRules();
      let markerCommitted = false;
      if (r.error !== undefined) {
        expectBoltError(r.error, label);
        if (r.db) failedCommits++;
        // The engine may refuse further writes after an I/O error, but only with a BoltError.
        if (r.db) {
          try {
            r.db.update((tx) => {
              for (const op of MARKER) applyOp(tx, op);
            });
            markerCommitted = true;
            assert.deepEqual(r.db.check(), [], `${label}: check() on the live DB after a failed commit and a good one`);
          } catch (err) {
            if (err instanceof assert.AssertionError) throw err;
            expectBoltError(err, `${label}: commit after the failure`);
          }
        }
      }
      try {
        r.db?.close();
      } catch (err) {
        expectBoltError(err, `${label}: close`);
      }
      for (const mode of ['process', 'drop'] as const) {
        if (markerCommitted) {
          // The failed commit was rolled back in memory; the next commit builds on the last good one.
          const m = startModel(v);
          for (const tx of txs.slice(0, r.committed)) for (const op of tx) m.apply(op);
          for (const op of MARKER) m.apply(op);
          const want = [canon(m.dump())];
          verifyImageExact(disk.crashImage(mode), want, v.options, `${label}, ${mode}, after marker commit`);
        } else {
          verifyImage(disk.crashImage(mode), states, r.committed, r.attempted, v.options, `${label}, ${mode}`);
        }
      }
    }
    assert.ok(failedCommits > 0, 'no injected failure ever reached a commit');
  });
}

function verifyImageExact(
  image: Map<string, Uint8Array>,
  want: readonly string[],
  options: EngineOptions,
  label: string,
): void {
  const db = open(PATH, { ...options, fileSystem: new FaultyDisk({ files: image }).fs });
  try {
    assert.deepEqual(db.check(), [], `${label}: check()`);
    assert.equal(canon(dumpDb(db)), want[0], `${label}: content`);
  } finally {
    db.close();
  }
}

test('the harness notices a disk that ignores fdatasync', async () => {
  // If this passed silently, the sweeps above could not catch a missing or misplaced sync either.
  const txs = generate(new Rng(31), { txs: 5, maxOps: 10 });
  const states = committedStates(txs);
  const disk = new FaultyDisk({ files: baseImage({}), ignoreSync: true });
  const r = await runWorkload(disk, txs, {});
  assert.equal(r.committed, txs.length);
  r.db!.close();
  assert.throws(
    () => verifyImage(disk.crashImage('drop'), states, txs.length, txs.length, {}, 'lying disk'),
    /content is not a state after commit|reopen failed|check\(\)/,
  );
});

test('a failed read inside a read transaction throws ERR_IO and poisons nothing', () => {
  const txs = generate(new Rng(41), { txs: 4, maxOps: 40, keySpace: 150, bigValueRate: 0.1 });
  const states = committedStates(txs);
  const disk = new FaultyDisk({ files: baseImage({}) });
  const writer = open(PATH, { fileSystem: disk.fs });
  for (const ops of txs) {
    writer.update((tx) => {
      for (const op of ops) applyOp(tx, op);
    });
  }
  writer.close();
  const db = open(PATH, { fileSystem: disk.fs, cacheSize: 1 });
  try {
    const before = disk.count(['read']);
    assert.equal(canon(dumpDb(db)), states[txs.length]);
    const reads = disk.count(['read']) - before;
    assert.ok(reads > 5, `a full walk with no cache should read pages, saw ${reads} reads`);
    for (let i = 1; i <= reads; i++) {
      disk.failAt(i, { ops: ['read'] });
      assert.throws(
        () => dumpDb(db),
        (err: unknown) => err instanceof BoltError && err.code === 'ERR_IO',
        `read #${i} failed: the walk must throw ERR_IO, not return partial content`,
      );
      disk.clearRules();
      assert.equal(canon(dumpDb(db)), states[txs.length], `after failed read #${i}, the next walk sees everything`);
    }
    assert.deepEqual(db.check(), []);
  } finally {
    db.close();
  }
});
