/**
 * When the freelist reaches the disk (issue 14's commit-cost design). By default a commit writes no
 * freelist page (its meta says "no freelist", 0xFFFF…), so its cost does not grow with the number of
 * free pages; a clean close writes the freelist once, so the next open reads it instead of walking
 * every tree; after a crash the open rebuilds it by the walk. `freelistWrite: 'commit'` keeps Go
 * bbolt's habit of writing it with every commit. The file format is bbolt's either way (Go's bbolt
 * reads "no freelist" metas: test/interop's noFreelistSync cases).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { open, type FileIO, type FileSystem } from '../../src/bolt/index.ts';
import { FaultyDisk } from '../support/faulty-fs.ts';
import { currentMeta } from '../support/page-map.ts';

const PATH = '/fl.db';
const PS = 4096;
const NO_FREELIST = 0xffffffffffffffffn;

/** Wraps a FileSystem to count the bytes written through it. */
function counting(fs: FileSystem): { fs: FileSystem; written: () => number } {
  let bytes = 0;
  const inner = new Map<FileIO, FileIO>();
  const wrap = (f: FileIO): FileIO => {
    const w = wrapped(f);
    inner.set(w, f);
    return w;
  };
  const wrapped = (f: FileIO): FileIO => ({
    read: (b, p) => f.read(b, p),
    write: (b, p) => {
      bytes += b.length;
      f.write(b, p);
    },
    writev: (bs, p) => {
      for (const b of bs) bytes += b.length;
      f.writev(bs, p);
    },
    sync: () => f.sync(),
    syncAsync: () => f.syncAsync(),
    size: () => f.size(),
    truncate: (n) => f.truncate(n),
    tryLock: (e) => f.tryLock(e),
    unlock: () => f.unlock(),
    close: () => f.close(),
  });
  return {
    fs: { ...fs, open: (p, o) => wrap(fs.open(p, o)), isCurrent: (p, f) => fs.isCurrent(p, inner.get(f) ?? f) },
    written: () => bytes,
  };
}

/** A file with many free pages: 3,000 keys of 1 KiB written, then their bucket deleted. */
function fragmented(options: { freelistWrite?: 'close' | 'commit' }): { disk: FaultyDisk; cost: () => number } {
  const disk = new FaultyDisk();
  const c = counting(disk.fs);
  const db = open(PATH, { ...options, fileSystem: c.fs, noSync: true });
  db.update((tx) => {
    const big = tx.createBucket('big');
    for (let i = 0; i < 3000; i++) big.put(`k${String(i).padStart(6, '0')}`, 'x'.repeat(1024));
    tx.createBucket('small');
  });
  db.update((tx) => tx.deleteBucket('big'));
  db.update((tx) => tx.bucket('small')!.put('warm', '1')); // release the deleted pages
  assert.ok(db.stats().freePageN > 700, `free pages: ${db.stats().freePageN}`);
  const before = c.written();
  for (let i = 0; i < 10; i++) db.update((tx) => tx.bucket('small')!.put(`k${i}`, 'v'));
  const perCommit = (c.written() - before) / 10;
  db.close();
  return { disk, cost: () => perCommit };
}

test('a default commit writes no freelist: its bytes do not grow with the free pages', () => {
  const lazy = fragmented({});
  const eager = fragmented({ freelistWrite: 'commit' });
  // One leaf, the root leaf and the meta: a handful of pages, however many pages are free.
  assert.ok(lazy.cost() <= 4 * PS, `default: ${lazy.cost()} bytes per commit`);
  // Writing it every commit costs its ~700 ids (two pages here) on top.
  assert.ok(
    eager.cost() >= lazy.cost() + PS,
    `commit mode: ${eager.cost()} vs default ${lazy.cost()} bytes per commit`,
  );
});

test('while open the meta says "no freelist"; a clean close writes it; after a crash open rebuilds it', () => {
  const disk = new FaultyDisk();
  const db = open(PATH, { fileSystem: disk.fs });
  db.update((tx) => {
    const b = tx.createBucket('b');
    for (let i = 0; i < 500; i++) b.put(`k${i}`, 'v'.repeat(200));
  });
  db.update((tx) => {
    for (let i = 0; i < 500; i += 2) tx.bucket('b')!.delete(`k${i}`);
  });
  assert.equal(currentMeta(disk.contents(PATH), PS).freelist, NO_FREELIST, 'no freelist while running');
  const free = db.stats().freePageN + db.stats().pendingPageN;

  // A crash now: the open rebuilds the freelist by walking the trees, and the file is sound.
  for (const mode of ['process', 'drop', 'tear'] as const) {
    const crashed = open(PATH, { fileSystem: new FaultyDisk({ files: disk.crashImage(mode, 1) }).fs });
    try {
      assert.deepEqual(crashed.check(), [], mode);
      assert.equal(
        crashed.view((tx) => tx.bucket('b')!.get('k1')?.length),
        200,
        mode,
      );
      assert.equal(crashed.stats().freePageN, free, `${mode}: rebuilt freelist`);
    } finally {
      crashed.close();
    }
  }

  db.close();
  const meta = currentMeta(disk.contents(PATH), PS);
  assert.notEqual(meta.freelist, NO_FREELIST, 'a clean close writes the freelist');
  const again = open(PATH, { fileSystem: disk.fs });
  try {
    assert.deepEqual(again.check(), []);
    // The freelist read back: the same free pages, less the page the freelist itself now occupies.
    const n = again.stats().freePageN;
    assert.ok(n >= free - 2 && n < free, `free pages read back: ${n}, before close ${free}`);
  } finally {
    again.close();
  }
  // Closing without a commit writes nothing more: the freelist on disk is still current.
  assert.deepEqual(currentMeta(disk.contents(PATH), PS), meta);
});

test('noFreelistSync never writes it, freelistWrite is validated', () => {
  const disk = new FaultyDisk();
  const db = open(PATH, { fileSystem: disk.fs, noFreelistSync: true });
  db.update((tx) => void tx.createBucket('b'));
  db.close();
  assert.equal(currentMeta(disk.contents(PATH), PS).freelist, NO_FREELIST);
  assert.throws(() => open(PATH, { fileSystem: disk.fs, freelistWrite: 'never' as never }), {
    code: 'ERR_INVALID_OPTION',
  });
});
