/**
 * The meta policy (issue 9 #9). A meta page that fails its magic, version or checksum is a torn or
 * unwritten meta: the other one carries the file, as in bbolt. A meta that passes its checksum but
 * cannot be true (a field at or above 2^53, a page size unlike the one it was found at, a root or
 * freelist outside the pages in use) was written that way by something: boltkv refuses the file with
 * ERR_INVALID_FILE naming the meta, rather than silently serving the other meta's older commit.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BoltError, open } from '../../src/bolt/index.ts';
import { FaultyDisk } from '../support/faulty-fs.ts';
import { currentMeta, mapPages, resealMeta } from '../support/page-map.ts';

const PATH = '/m.db';
const PS = 4096;
const HEADER = 16;
// Offsets of the meta fields inside a meta page.
const F = { pageSize: HEADER + 8, root: HEADER + 16, freelist: HEADER + 32, pgid: HEADER + 40, txid: HEADER + 48 };

/** A file with three commits; returns its bytes and which meta page holds the latest commit. */
function base(): { img: Uint8Array; cur: 0 | 1 } {
  const disk = new FaultyDisk();
  const db = open(PATH, { fileSystem: disk.fs, freelistWrite: 'commit' });
  for (let i = 0; i < 3; i++) db.update((tx) => tx.createBucketIfNotExists('b').put(`k${i}`, `v${i}`));
  db.close();
  const img = disk.contents(PATH);
  return { img, cur: currentMeta(img, PS).page };
}

function openImage(img: Uint8Array): string[] {
  const db = open(PATH, { fileSystem: new FaultyDisk({ files: { [PATH]: img } }).fs });
  try {
    return db.view((tx) => {
      const out: string[] = [];
      tx.bucket('b')!.forEach((k) => void out.push(Buffer.from(k).toString()));
      return out;
    });
  } finally {
    db.close();
  }
}

function refused(img: Uint8Array, what: RegExp): void {
  assert.throws(
    () => openImage(img),
    (err: unknown) => {
      assert.ok(err instanceof BoltError, String(err));
      assert.equal(err.code, 'ERR_INVALID_FILE', err.message);
      assert.match(err.message, what);
      return true;
    },
  );
}

test('a torn meta (checksum fails) falls back to the other meta, as in bbolt', () => {
  const { img, cur } = base();
  img[cur * PS + F.txid] = img[cur * PS + F.txid]! ^ 0xff;
  assert.deepEqual(openImage(img), ['k0', 'k1'], 'the previous commit');
});

for (const [name, field, value] of [
  ['txid', F.txid, 1n << 53n],
  ['txid', F.txid, 0xffffffffffffffffn - 5n],
  ['root', F.root, 1n << 53n],
  ['pgid', F.pgid, 1n << 60n],
  ['freelist', F.freelist, 1n << 55n],
] as const) {
  for (const which of ['latest', 'older'] as const) {
    test(`a checksummed ${which} meta with ${name} = ${value} is refused, not skipped`, () => {
      const { img, cur } = base();
      const page = (which === 'latest' ? cur : 1 - cur) as 0 | 1;
      new DataView(img.buffer).setBigUint64(page * PS + field, value, true);
      resealMeta(img, page, PS);
      refused(img, new RegExp(`meta ${page}.*${name}`));
    });
  }
}

test('a checksummed meta whose root or freelist lies outside the pages in use is refused', () => {
  for (const field of ['root', 'freelist'] as const) {
    const { img, cur } = base();
    const dv = new DataView(img.buffer);
    dv.setBigUint64(cur * PS + F[field], dv.getBigUint64(cur * PS + F.pgid, true) + 3n, true);
    resealMeta(img, cur, PS);
    refused(img, new RegExp(`meta ${cur}.*${field}`));
  }
});

test('a checksummed meta 1 with a page size unlike meta 0 is refused', () => {
  const { img } = base();
  new DataView(img.buffer).setUint32(PS + F.pageSize, 8192, true);
  resealMeta(img, 1, PS);
  refused(img, /meta 1.*page size/);
});

test('a write that frees a page the freelist already holds (a file check() calls corrupt) is ERR_CORRUPT_PAGE, not ERR_PANIC (#11)', () => {
  const disk = new FaultyDisk();
  const db0 = open(PATH, { fileSystem: disk.fs });
  db0.update((tx) => {
    const b = tx.createBucket('b');
    for (let i = 0; i < 200; i++) b.put(`k${String(i).padStart(4, '0')}`, 'v'.repeat(50));
  });
  db0.update((tx) => tx.bucket('b')!.put('k0000', 'w'));
  db0.close();
  const img = disk.contents(PATH);
  const map = mapPages(img, PS);
  const leaf = map.pages.leaf.at(-1)!;
  const fl = map.pages.freelist[0]!;
  // Add the in-use leaf to the freelist page's ids (kept sorted), as damage would.
  const dv = new DataView(img.buffer);
  const n = dv.getUint16(fl * PS + 10, true);
  const ids = Array.from({ length: n }, (_, i) => Number(dv.getBigUint64(fl * PS + HEADER + i * 8, true)));
  ids.push(leaf);
  ids.sort((a, b) => a - b);
  dv.setUint16(fl * PS + 10, ids.length, true);
  ids.forEach((id, i) => dv.setBigUint64(fl * PS + HEADER + i * 8, BigInt(id), true));

  const db = open(PATH, { fileSystem: new FaultyDisk({ files: { [PATH]: img } }).fs });
  try {
    assert.ok(
      db.check().some((p) => p.includes(`page ${leaf}: reachable freed`)),
      db.check().join('\n'),
    );
    const write = (): void =>
      db.update((tx) => {
        const b = tx.bucket('b')!;
        for (let i = 0; i < 200; i++) b.put(`k${String(i).padStart(4, '0')}`, 'x'.repeat(60));
      });
    // One put into the damaged leaf frees it first; rewriting everything may reuse it first.
    assert.throws(
      () => db.update((tx) => tx.bucket('b')!.put('k0199', 'y')),
      (err: unknown) => {
        assert.ok(err instanceof BoltError, String(err));
        assert.equal(err.code, 'ERR_CORRUPT_PAGE', err.message);
        return true;
      },
    );
    assert.throws(write, (err: unknown) => {
      assert.ok(err instanceof BoltError, String(err));
      assert.equal(err.code, 'ERR_CORRUPT_PAGE', err.message);
      return true;
    });
    // Reads still work and say the same thing.
    assert.equal(
      db.view((tx) => tx.bucket('b')!.get('k0001')?.length),
      50,
    );
    assert.throws(write, (err: unknown) => err instanceof BoltError && err.code === 'ERR_CORRUPT_PAGE');
  } finally {
    db.close();
  }
});
