import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { BoltError } from '../../src/bolt/errors.ts';
import { FaultyDisk, type FaultyFile } from './faulty-fs.ts';

const RW = { readOnly: false, mode: 0o600 };
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

function isIoError(err: unknown): boolean {
  return err instanceof BoltError && err.code === 'ERR_IO';
}

function readAll(f: { size(): number; read(b: Uint8Array, p: number): number }): Uint8Array {
  const buf = new Uint8Array(f.size());
  assert.equal(f.read(buf, 0), buf.length);
  return buf;
}

test('writes are visible at once but durable only after sync', () => {
  const disk = new FaultyDisk({ seed: 7 });
  const f = disk.fs.open('/db', RW);
  f.write(enc('hello'), 0);
  assert.equal(dec(readAll(f)), 'hello');
  assert.equal(disk.durableContents('/db').length, 0);
  assert.equal(disk.pendingCount('/db'), 1);
  f.sync();
  assert.equal(dec(disk.durableContents('/db')), 'hello');
  assert.equal(disk.pendingCount('/db'), 0);
  f.write(enc('J'), 0);
  assert.equal(dec(disk.contents('/db')), 'Jello');
  assert.equal(dec(disk.crashImage('drop').get('/db')!), 'hello');
  assert.equal(dec(disk.crashImage('process').get('/db')!), 'Jello');
});

test('reads past the end are short; writes past the end leave zeros', () => {
  const disk = new FaultyDisk();
  const f = disk.fs.open('/db', RW);
  f.write(enc('ab'), 4);
  assert.equal(f.size(), 6);
  const buf = new Uint8Array(10).fill(9);
  assert.equal(f.read(buf, 0), 6);
  assert.deepEqual([...buf.subarray(0, 6)], [0, 0, 0, 0, 97, 98]);
  assert.equal(f.read(buf, 100), 0);
});

test('writev lands buffers back to back; truncate grows with zeros and shrinks', () => {
  const disk = new FaultyDisk();
  const f = disk.fs.open('/db', RW);
  f.writev([enc('ab'), enc(''), enc('cd')], 1);
  assert.deepEqual([...disk.contents('/db')], [0, 97, 98, 99, 100]);
  f.truncate(8);
  assert.equal(f.size(), 8);
  f.truncate(2);
  assert.deepEqual([...disk.contents('/db')], [0, 97]);
  f.truncate(4);
  assert.deepEqual([...disk.contents('/db')], [0, 97, 0, 0], 'regrown bytes are zero, not the old data');
});

test('the caller may reuse its buffer after write returns', () => {
  const disk = new FaultyDisk();
  const f = disk.fs.open('/db', RW);
  const buf = enc('xyz');
  f.write(buf, 0);
  buf.fill(0);
  assert.equal(dec(disk.contents('/db')), 'xyz');
  assert.equal(dec(disk.crashImage('process').get('/db')!), 'xyz');
});

test('unsynced truncate is lost on power loss', () => {
  const disk = new FaultyDisk({ files: { '/db': enc('0123456789') } });
  const f = disk.fs.open('/db', RW);
  f.truncate(4);
  assert.equal(disk.crashImage('drop').get('/db')!.length, 10);
  f.sync();
  assert.equal(disk.crashImage('drop').get('/db')!.length, 4);
});

test('failAt makes exactly the Nth matching call throw ERR_IO without effect', () => {
  const disk = new FaultyDisk();
  const f = disk.fs.open('/db', RW);
  disk.failAt(2, { ops: ['write'] });
  f.write(enc('a'), 0);
  f.sync(); // not a write: not counted by the rule
  assert.throws(() => f.write(enc('b'), 1), isIoError);
  assert.equal(dec(disk.contents('/db')), 'a', 'a failed write changes nothing');
  f.write(enc('c'), 1);
  assert.equal(dec(disk.contents('/db')), 'ac');
});

test('every op kind can be made to fail', async () => {
  const kinds = [
    'open',
    'read',
    'write',
    'writev',
    'writevAsync',
    'sync',
    'syncAsync',
    'size',
    'truncate',
    'tryLock',
    'unlock',
    'close',
  ] as const;
  for (const op of kinds) {
    const disk = new FaultyDisk({ files: { '/db': enc('data') } });
    disk.failAt(1, { ops: [op] });
    const call = async (): Promise<void> => {
      if (op === 'open') {
        disk.fs.open('/db', RW);
        return;
      }
      const f = disk.fs.open('/db', RW);
      switch (op) {
        case 'read':
          f.read(new Uint8Array(2), 0);
          break;
        case 'write':
          f.write(enc('x'), 0);
          break;
        case 'writev':
          f.writev([enc('x')], 0);
          break;
        case 'writevAsync':
          await f.writevAsync!([enc('x')], 0);
          break;
        case 'sync':
          f.sync();
          break;
        case 'syncAsync':
          await f.syncAsync();
          break;
        case 'size':
          f.size();
          break;
        case 'truncate':
          f.truncate(1);
          break;
        case 'tryLock':
          f.tryLock(true);
          break;
        case 'unlock':
          f.unlock();
          break;
        case 'close':
          f.close();
          break;
      }
    };
    await assert.rejects(call(), isIoError, `op ${op} should fail`);
  }
});

test('times: Infinity keeps failing; count() counts by kind', () => {
  const disk = new FaultyDisk();
  const f = disk.fs.open('/db', RW);
  disk.failAt(1, { ops: ['sync'], times: Infinity });
  for (let i = 0; i < 5; i++) assert.throws(() => f.sync(), isIoError);
  f.write(enc('a'), 0);
  assert.equal(disk.count(['sync']), 5);
  assert.equal(disk.count(['write']), 1);
  assert.equal(disk.count(), 7); // open + 5 syncs + write
  assert.equal(disk.trace[0], 'open /db');
});

test('crashAt kills every later call; the in-flight write can reach the disk', () => {
  const disk = new FaultyDisk({ seed: 3 });
  const f = disk.fs.open('/db', RW);
  f.write(enc('aaaa'), 0);
  f.sync();
  disk.crashAt(2, { ops: ['write'] });
  f.write(enc('bb'), 0);
  assert.throws(() => f.write(enc('cc'), 2), isIoError);
  assert.ok(disk.crashed);
  assert.deepEqual(disk.crashPoint, { call: 5, op: 'write' });
  assert.throws(() => f.read(new Uint8Array(1), 0), isIoError);
  assert.throws(() => f.sync(), isIoError);
  assert.throws(() => disk.fs.open('/db', RW), isIoError);
  assert.equal(dec(disk.crashImage('process').get('/db')!), 'bbcc');
  assert.equal(dec(disk.crashImage('drop').get('/db')!), 'aaaa');
  const rebooted = disk.reboot('drop');
  const g = rebooted.fs.open('/db', RW) as FaultyFile;
  assert.equal(dec(readAll(g)), 'aaaa');
  assert.equal(rebooted.count(['write']), 0);
});

test('subset images keep each unsynced write or not, never anything else', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 1000 }), fc.integer({ min: 0, max: 1000 }), (seed, imageSeed) => {
      const disk = new FaultyDisk({ seed });
      const f = disk.fs.open('/db', RW);
      f.write(new Uint8Array(8).fill(1), 0);
      f.sync();
      // Four unsynced one-byte writes to distinct slots.
      for (let i = 0; i < 4; i++) f.write(new Uint8Array([10 + i]), i * 2);
      const img = disk.crashImage('subset', imageSeed).get('/db')!;
      assert.equal(img.length, 8);
      for (let i = 0; i < 4; i++) {
        assert.ok(img[i * 2] === 1 || img[i * 2] === 10 + i);
        assert.equal(img[i * 2 + 1], 1);
      }
      assert.deepEqual(disk.crashImage('subset', imageSeed), disk.crashImage('subset', imageSeed), 'deterministic');
    }),
  );
});

test('subset images over many seeds include both extremes', () => {
  const disk = new FaultyDisk({ seed: 11 });
  const f = disk.fs.open('/db', RW);
  for (let i = 0; i < 3; i++) f.write(new Uint8Array([1]), i);
  const seen = new Set<string>();
  for (let s = 0; s < 200; s++) seen.add([...disk.crashImage('subset', s).get('/db')!].join(','));
  // Any subset of three writes at positions 0..2: lengths vary and all 8 patterns are reachable.
  assert.ok(seen.has(''), 'nothing persisted');
  assert.ok(seen.has('1,1,1'), 'everything persisted');
  assert.ok(seen.has('0,0,1'), 'a later write without the earlier ones');
});

test('tear persists a strict prefix of one unsynced write', () => {
  const page = new Uint8Array(4096).fill(0xab);
  let torn = 0;
  for (let s = 0; s < 50; s++) {
    const disk = new FaultyDisk({ seed: s, files: { '/db': new Uint8Array(4096) } });
    const f = disk.fs.open('/db', RW);
    f.write(page, 0);
    const img = disk.crashImage('tear', s).get('/db')!;
    assert.equal(img.length, 4096);
    const n = img.indexOf(0);
    // Only one pending write, so it is the torn one: some prefix is 0xab, the rest still zero.
    assert.ok(n > 0 && n < 4096, `prefix length ${n}`);
    assert.ok(img.subarray(0, n).every((b) => b === 0xab));
    assert.ok(img.subarray(n).every((b) => b === 0));
    if (n <= 128) torn++;
  }
  assert.ok(torn > 5, `short tears should be common, saw ${torn}/50`);
});

test('crash images are deterministic per seed and differ across seeds', () => {
  const build = (seed: number): FaultyDisk => {
    const disk = new FaultyDisk({ seed });
    const f = disk.fs.open('/db', RW);
    for (let i = 0; i < 16; i++) f.write(new Uint8Array(64).fill(i + 1), i * 64);
    return disk;
  };
  const a = build(5).crashImage('tear', 1).get('/db')!;
  const b = build(5).crashImage('tear', 1).get('/db')!;
  assert.deepEqual(a, b);
  const variants = new Set<string>();
  for (let s = 0; s < 10; s++) variants.add(Buffer.from(build(5).crashImage('tear', s).get('/db')!).toString('hex'));
  assert.ok(variants.size > 1);
});

test('locks: exclusive excludes all, shared share, close releases', () => {
  const disk = new FaultyDisk({ files: { '/db': new Uint8Array(0) } });
  const a = disk.fs.open('/db', RW);
  const b = disk.fs.open('/db', RW);
  const c = disk.fs.open('/db', { readOnly: true, mode: 0 });
  assert.equal(a.tryLock(true), true);
  assert.equal(b.tryLock(true), false);
  assert.equal(c.tryLock(false), false);
  a.close();
  assert.equal(c.tryLock(false), true);
  assert.equal(b.tryLock(false), true);
  assert.equal(b.tryLock(true), false, 'cannot upgrade while another holds shared');
  c.unlock();
  assert.equal(b.tryLock(true), true, 'upgrade once alone');
});

test('read-only handles cannot write; read-only open of a missing file fails', () => {
  const disk = new FaultyDisk({ files: { '/db': enc('abc') } });
  const r = disk.fs.open('/db', { readOnly: true, mode: 0 });
  assert.throws(() => r.write(enc('x'), 0), isIoError);
  assert.throws(() => r.truncate(0), isIoError);
  assert.equal(dec(disk.contents('/db')), 'abc');
  assert.throws(() => disk.fs.open('/missing', { readOnly: true, mode: 0 }), isIoError);
  assert.equal(disk.fs.exists('/missing'), false);
  disk.fs.open('/missing', RW).close();
  assert.equal(disk.fs.exists('/missing'), true);
});

test('a closed handle refuses calls; bad positions are typed errors', () => {
  const disk = new FaultyDisk();
  const f = disk.fs.open('/db', RW);
  assert.throws(() => f.write(enc('x'), -1), isIoError);
  assert.throws(() => f.read(new Uint8Array(1), Number.NaN), isIoError);
  f.close();
  f.close(); // idempotent
  assert.throws(() => f.read(new Uint8Array(1), 0), isIoError);
});

test('syncAsync makes writes durable, and rejects (not throws) on a fault', async () => {
  const disk = new FaultyDisk();
  const f = disk.fs.open('/db', RW);
  f.write(enc('q'), 0);
  await f.syncAsync();
  assert.equal(dec(disk.durableContents('/db')), 'q');
  disk.failAt(1, { ops: ['syncAsync'] });
  const p = f.syncAsync();
  assert.ok(p instanceof Promise);
  await assert.rejects(p, isIoError);
});

test('ignoreSync models a disk that lies about fsync', () => {
  const disk = new FaultyDisk({ ignoreSync: true });
  const f = disk.fs.open('/db', RW);
  f.write(enc('x'), 0);
  f.sync();
  assert.equal(disk.durableContents('/db').length, 0);
  assert.equal(disk.crashImage('drop').get('/db')!.length, 0);
});

test('writevAsync lands its bytes later, as they are then; a crash before that loses them', async () => {
  const disk = new FaultyDisk({ files: { '/db': enc('....') } });
  const f = disk.fs.open('/db', RW);
  const a = enc('ab');
  const p = f.writevAsync!([a, enc('cd')], 0);
  assert.equal(dec(disk.contents('/db')), '....', 'not landed while in flight');
  a[0] = 'x'.charCodeAt(0); // changed after the hand-over: the change is what lands
  await p;
  assert.equal(dec(disk.contents('/db')), 'xbcd');
  assert.equal(dec(disk.crashImage('drop').get('/db')!), '....', 'not durable before a sync');
  await f.syncAsync();
  assert.equal(dec(disk.crashImage('drop').get('/db')!), 'xbcd');

  const lost = f.writevAsync!([enc('zz')], 0);
  disk.crash();
  await lost;
  assert.equal(dec(disk.contents('/db')), 'xbcd', 'in flight at the crash: lost');
  await assert.rejects(f.writevAsync!([enc('q')], 0), isIoError, 'every call after a crash fails');
});
