// The raft storage holds a bounded part of the log in memory: with many large entries appended
// and committed, the bytes its cache is charged stay within the budget (beyond it only while
// entries wait for their commit), a reopen reads the term runs and the newest entries, not every
// payload, and every entry is still served, from the file. Measured with the storage's own byte
// count and a reader that counts the raft_log bytes handed out, never with RSS or timing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Backend, BackendReader, ScanVisitor } from '../../src/mvcc/backend.ts';
import { BoltBackend } from '../../src/mvcc/backend/bolt.ts';
import type { Entry } from '../../src/raft/index.ts';
import { BoltRaftStorage } from '../../src/replication/bolt-raft-storage.ts';
import { RaftBackend } from '../../src/replication/raft-backend.ts';
import { RAFT_LOG_BUCKET, RAFT_TERMS_BUCKET, indexKey } from '../../src/replication/raft-buckets.ts';
import { FaultyDisk } from '../support/faulty-fs.ts';

const KiB = 1024;
const ENTRY = 64 * KiB;
const BUDGET = 512 * KiB;
const COUNT = 160; // 10 MiB of log, twenty times the budget

/** A view source that counts the raft_log value bytes it hands out. */
class CountingSource {
  logBytes = 0;
  constructor(readonly inner: Backend) {}
  view<T>(fn: (r: BackendReader) => T): T {
    return this.inner.view((r) => {
      const count = (bucket: string, v: Uint8Array): void => {
        if (bucket === RAFT_LOG_BUCKET) this.logBytes += v.length;
      };
      const counted =
        (bucket: string, visit: ScanVisitor): ScanVisitor =>
        (k, v) => {
          count(bucket, v);
          return visit(k, v);
        };
      return fn({
        get: (bucket, key) => {
          const v = r.get(bucket, key);
          if (v !== undefined) count(bucket, v);
          return v;
        },
        scan: (bucket, from, to, visit) => r.scan(bucket, from, to, counted(bucket, visit)),
        scanReverse: (bucket, from, to, visit) => r.scanReverse(bucket, from, to, counted(bucket, visit)),
      });
    });
  }
}

function entry(index: number, term: number): Entry {
  const data = new Uint8Array(ENTRY).fill(index & 0xff);
  data[0] = index >>> 8;
  return { index, term, type: 'normal', data };
}

function checkEntry(e: Entry | undefined, index: number, term: number): void {
  assert.ok(e !== undefined, `entry ${index} missing`);
  assert.equal(e.index, index);
  assert.equal(e.term, term);
  assert.equal(e.data.length, ENTRY);
  assert.equal(e.data[0], index >>> 8);
  assert.equal(e.data[1], index & 0xff);
}

/** Terms change every 50 entries, as after elections. */
const termOf = (i: number): number => 1 + Math.floor((i - 1) / 50);

async function fill(rb: RaftBackend, s: BoltRaftStorage, batch: number): Promise<number> {
  let maxPinned = 0;
  for (let i = 1; i <= COUNT; i += batch) {
    const ents: Entry[] = [];
    for (let j = i; j < i + batch && j <= COUNT; j++) ents.push(entry(j, termOf(j)));
    s.save({ entries: ents, hardState: { term: termOf(i + ents.length - 1), vote: 1, commit: i - 1 } });
    // not yet durable: held whatever the budget
    maxPinned = Math.max(maxPinned, s.cachedBytes());
    assert.ok(s.cachedBytes() >= ents.length * ENTRY, 'entries waiting for their commit are held');
    const done = rb.stage(s.takeWrites());
    await rb.flush();
    await done;
    assert.ok(s.cachedBytes() <= BUDGET, `after commit ${i}: ${s.cachedBytes()} bytes cached, budget ${BUDGET}`);
  }
  return maxPinned;
}

test('the raft log in memory stays within its byte budget, across appends and a reopen', async () => {
  const disk = new FaultyDisk();
  const bolt = BoltBackend.open('/log.db', { fileSystem: disk.fs });
  try {
    const rb = new RaftBackend(bolt);
    const s = BoltRaftStorage.load(rb, { cacheBytes: BUDGET });
    const pinned = await fill(rb, s, 16);
    assert.ok(pinned > BUDGET, 'a batch bigger than the budget was held until committed');
    assert.equal(s.lastIndex(), COUNT);

    // reopen: the term runs and the newest entries within the budget are read, not the whole log
    const src = new CountingSource(rb);
    const again = BoltRaftStorage.load(src, { cacheBytes: BUDGET });
    assert.ok(again.cachedBytes() <= BUDGET && again.cachedBytes() > 0, `reopened cache ${again.cachedBytes()}`);
    assert.ok(
      src.logBytes <= BUDGET + 3 * (ENTRY + 9),
      `reopen read ${src.logBytes} bytes of the log (${COUNT * ENTRY} stored)`,
    );
    assert.equal(again.firstIndex(), 1);
    assert.equal(again.lastIndex(), COUNT);

    // terms come from memory
    const before = src.logBytes;
    for (let i = 1; i <= COUNT; i++) assert.equal(again.term(i), termOf(i));
    assert.equal(src.logBytes, before, 'term() reads no entry');

    // every entry is served, the old ones from the file, in message-sized slices
    let i = 1;
    while (i <= COUNT) {
      const got = again.entries(i, COUNT + 1, 256 * KiB);
      assert.ok(got.length >= 1 && got.length <= 4, `a 256 KiB slice holds ${got.length} entries`);
      for (const e of got) checkEntry(e, i++, termOf(e.index));
    }
    assert.ok(src.logBytes - before >= (COUNT * ENTRY) / 2, 'old entries were read from the file');
    assert.ok(again.cachedBytes() <= BUDGET, 'reading old entries does not grow the cache');

    // appending after the reopen, over a replaced suffix, keeps the bound
    again.save({
      entries: [entry(COUNT - 5, 99), entry(COUNT - 4, 99)],
      hardState: { term: 99, vote: 2, commit: COUNT - 10 },
    });
    const done = rb.stage(again.takeWrites());
    await rb.flush();
    await done;
    assert.equal(again.lastIndex(), COUNT - 4);
    assert.equal(again.term(COUNT - 6), termOf(COUNT - 6));
    assert.equal(again.term(COUNT - 5), 99);
    assert.ok(again.cachedBytes() <= BUDGET);
    const third = BoltRaftStorage.load(rb, { cacheBytes: BUDGET });
    assert.deepEqual(third.entries(COUNT - 7, COUNT - 3, Infinity), again.entries(COUNT - 7, COUNT - 3, Infinity));
    assert.deepEqual(bolt.db.check(), []);
  } finally {
    bolt.close();
  }
});

test('a log written without the term runs is read once to rebuild them, then not again', async () => {
  const disk = new FaultyDisk();
  const bolt = BoltBackend.open('/old.db', { fileSystem: disk.fs });
  try {
    const rb = new RaftBackend(bolt);
    const s = BoltRaftStorage.load(rb, { cacheBytes: BUDGET });
    await fill(rb, s, 40);
    // what an older version left: the same log, no terms bucket
    await rb.update((w) => {
      const starts: Uint8Array[] = [];
      w.scan(RAFT_TERMS_BUCKET, indexKey(0), undefined, (k) => {
        starts.push(new Uint8Array(k));
      });
      for (const k of starts) w.delete(RAFT_TERMS_BUCKET, k);
    });
    const src = new CountingSource(rb);
    const old = BoltRaftStorage.load(src, { cacheBytes: BUDGET });
    assert.ok(src.logBytes >= COUNT * ENTRY, 'the rebuild reads the log');
    for (let i = 1; i <= COUNT; i++) assert.equal(old.term(i), termOf(i));
    assert.ok(old.hasWrites(), 'the rebuilt runs are queued for the next commit');
    const done = rb.stage(old.takeWrites());
    await rb.flush();
    await done;
    const src2 = new CountingSource(rb);
    const next = BoltRaftStorage.load(src2, { cacheBytes: BUDGET });
    assert.ok(src2.logBytes <= BUDGET + 3 * (ENTRY + 9), `second reopen read ${src2.logBytes} bytes`);
    for (let i = 1; i <= COUNT; i++) assert.equal(next.term(i), termOf(i));
    checkEntry(next.entries(1, 2, 0)[0], 1, 1);
  } finally {
    bolt.close();
  }
});
