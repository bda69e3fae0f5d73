/**
 * Model test: random sequences of bucket and key operations, cursor walks, commits, rollbacks and
 * reopens run against boltkv and against a plain in-memory model; they must agree at every step,
 * and the file must pass check() after every commit. Runs under both freelist types.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { open, type Bucket, type DB, type Tx } from 'boltkv';
import { boltCode } from '../support/bolt-code.ts';

interface MBucket {
  keys: Map<string, string>; // hex key -> hex value
  buckets: Map<string, MBucket>;
  seq: number;
}
const emptyBucket = (): MBucket => ({ keys: new Map(), buckets: new Map(), seq: 0 });
function clone(b: MBucket): MBucket {
  return {
    keys: new Map(b.keys),
    buckets: new Map([...b.buckets].map(([k, v]) => [k, clone(v)])),
    seq: b.seq,
  };
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const unhex = (h: string): Uint8Array => new Uint8Array(Buffer.from(h, 'hex'));

type Cmd =
  | { t: 'put'; at: number; key: string; size: number; fill: number }
  | { t: 'del'; at: number; key: string }
  | { t: 'putMany'; at: number; n: number; seed: number; size: number }
  | { t: 'delMany'; at: number; every: number }
  | { t: 'create'; at: number; name: string }
  | { t: 'dropBucket'; at: number; name: string }
  | { t: 'seq'; at: number }
  | { t: 'walk'; at: number; backward: boolean; seek: string | null }
  | { t: 'cursorDelete'; at: number; every: number }
  | { t: 'commit' }
  | { t: 'rollback' }
  | { t: 'reopen' };

// Small key alphabet so keys collide, buckets and values clash, and pages split and merge.
const keyArb = fc
  .array(fc.constantFrom(0x00, 0x01, 0x61, 0x62, 0x7f, 0xff), { minLength: 1, maxLength: 4 })
  .map((a) => Buffer.from(a).toString('hex'));
const atArb = fc.nat(20);
const cmdArb: fc.Arbitrary<Cmd> = fc.oneof(
  {
    weight: 10,
    arbitrary: fc.record({
      t: fc.constant('put' as const),
      at: atArb,
      key: keyArb,
      size: fc.oneof(
        { weight: 8, arbitrary: fc.nat(40) },
        { weight: 1, arbitrary: fc.integer({ min: 3000, max: 20000 }) },
      ),
      fill: fc.nat(255),
    }),
  },
  { weight: 5, arbitrary: fc.record({ t: fc.constant('del' as const), at: atArb, key: keyArb }) },
  {
    weight: 3,
    arbitrary: fc.record({
      t: fc.constant('putMany' as const),
      at: atArb,
      n: fc.integer({ min: 1, max: 2000 }),
      seed: fc.nat(1000),
      size: fc.nat(200),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ t: fc.constant('delMany' as const), at: atArb, every: fc.integer({ min: 1, max: 4 }) }),
  },
  { weight: 4, arbitrary: fc.record({ t: fc.constant('create' as const), at: atArb, name: keyArb }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('dropBucket' as const), at: atArb, name: keyArb }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('seq' as const), at: atArb }) },
  {
    weight: 3,
    arbitrary: fc.record({
      t: fc.constant('walk' as const),
      at: atArb,
      backward: fc.boolean(),
      seek: fc.option(keyArb),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ t: fc.constant('cursorDelete' as const), at: atArb, every: fc.integer({ min: 1, max: 3 }) }),
  },
  { weight: 4, arbitrary: fc.constant({ t: 'commit' as const }) },
  { weight: 1, arbitrary: fc.constant({ t: 'rollback' as const }) },
  { weight: 1, arbitrary: fc.constant({ t: 'reopen' as const }) },
);

/** All bucket paths in the model, sorted, the root ('' = top level) first. */
function paths(root: MBucket): string[][] {
  const out: string[][] = [[]];
  const visit = (b: MBucket, p: string[]): void => {
    for (const name of [...b.buckets.keys()].sort()) {
      out.push([...p, name]);
      visit(b.buckets.get(name)!, [...p, name]);
    }
  };
  visit(root, []);
  return out;
}
function modelAt(root: MBucket, p: string[]): MBucket {
  let b = root;
  for (const name of p) b = b.buckets.get(name)!;
  return b;
}
function dbAt(tx: Tx, p: string[]): Bucket | Tx {
  let b: Bucket | Tx = tx;
  for (const name of p) b = b.bucket(unhex(name))!;
  return b;
}

/** Sorted entries of a model bucket: [hexKey, hexValue | null]. */
function modelEntries(b: MBucket): Array<[string, string | null]> {
  const all: Array<[string, string | null]> = [...b.keys].map(([k, v]) => [k, v]);
  for (const k of b.buckets.keys()) all.push([k, null]);
  return all.sort((x, y) => Buffer.compare(unhex(x[0]), unhex(y[0])));
}

function dumpDb(tx: Tx): MBucket {
  const readBucket = (b: Bucket): MBucket => {
    const m = emptyBucket();
    m.seq = b.sequence;
    b.forEach((k, v) => {
      if (v === null) m.buckets.set(hex(k), readBucket(b.bucket(k)!));
      else m.keys.set(hex(k), hex(v));
    });
    return m;
  };
  const root = emptyBucket();
  tx.forEach((name, b) => {
    root.buckets.set(hex(name), readBucket(b));
  });
  return root;
}

function expectCode(fn: () => void, code: string): void {
  assert.throws(fn, boltCode(code));
}

function valueOf(size: number, fill: number): Uint8Array {
  const v = new Uint8Array(size);
  for (let i = 0; i < size; i++) v[i] = (fill + i * 7) & 0xff;
  return v;
}

function run(cmds: Cmd[], freelist: 'hashmap' | 'array', noFreelistSync: boolean): void {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'boltkv-model-'));
  const file = path.join(dir, 'db');
  const opts = { freelist, noSync: true, noFreelistSync, pageSize: 4096 } as const;
  let db: DB = open(file, opts);
  let committed = emptyBucket();
  let work = clone(committed);
  let tx: Tx = db.begin(true);
  const reopenCheck = (): void => {
    assert.deepEqual(db.check(), []);
    db.view((rtx) => assert.deepEqual(dumpDb(rtx), committed));
  };
  try {
    // Start with two top-level buckets and a nested one so key operations have somewhere to go.
    for (const name of ['61', '62']) {
      tx.createBucket(unhex(name));
      work.buckets.set(name, emptyBucket());
    }
    tx.bucket(unhex('61'))!.createBucket(unhex('00'));
    work.buckets.get('61')!.buckets.set('00', emptyBucket());
    for (const cmd of cmds) {
      const ps = paths(work);
      // Key operations need a real bucket: map `at` over non-root paths; bucket ops may use root.
      const bucketPaths = ps.slice(1);
      const keyBucket = (at: number): { m: MBucket; b: Bucket } | undefined => {
        if (bucketPaths.length === 0) return undefined;
        const p = bucketPaths[at % bucketPaths.length]!;
        return { m: modelAt(work, p), b: dbAt(tx, p) as Bucket };
      };
      switch (cmd.t) {
        case 'put': {
          const target = keyBucket(cmd.at);
          if (!target) break;
          const { m, b } = target;
          const v = valueOf(cmd.size, cmd.fill);
          if (m.buckets.has(cmd.key)) {
            expectCode(() => b.put(unhex(cmd.key), v), 'ERR_INCOMPATIBLE_VALUE');
          } else {
            b.put(unhex(cmd.key), v);
            m.keys.set(cmd.key, hex(v));
          }
          break;
        }
        case 'del': {
          const target = keyBucket(cmd.at);
          if (!target) break;
          const { m, b } = target;
          if (m.buckets.has(cmd.key)) expectCode(() => b.delete(unhex(cmd.key)), 'ERR_INCOMPATIBLE_VALUE');
          else {
            b.delete(unhex(cmd.key));
            m.keys.delete(cmd.key);
          }
          break;
        }
        case 'putMany': {
          const target = keyBucket(cmd.at);
          if (!target) break;
          const { m, b } = target;
          let x = cmd.seed + 1;
          for (let i = 0; i < cmd.n; i++) {
            x = (x * 1103515245 + 12345) % 2147483648;
            const k = Buffer.alloc(6);
            k.writeUIntBE(x % 100000, 0, 6);
            const kh = k.toString('hex');
            if (m.buckets.has(kh)) continue;
            const v = valueOf(cmd.size, x & 0xff);
            b.put(k, v);
            m.keys.set(kh, hex(v));
          }
          break;
        }
        case 'delMany': {
          const target = keyBucket(cmd.at);
          if (!target) break;
          const { m, b } = target;
          const keys = [...m.keys.keys()].sort();
          keys.forEach((k, i) => {
            if (i % cmd.every === 0) {
              b.delete(unhex(k));
              m.keys.delete(k);
            }
          });
          break;
        }
        case 'cursorDelete': {
          const target = keyBucket(cmd.at);
          if (!target) break;
          const { m, b } = target;
          const c = b.cursor();
          let i = 0;
          for (let e = c.first(); e; e = c.next()) {
            if (e[1] !== null && i++ % cmd.every === 0) {
              c.delete();
              m.keys.delete(hex(e[0]));
            }
          }
          break;
        }
        case 'create': {
          const p = ps[cmd.at % ps.length]!;
          const m = modelAt(work, p);
          const parent = dbAt(tx, p);
          if (m.buckets.has(cmd.name)) expectCode(() => parent.createBucket(unhex(cmd.name)), 'ERR_BUCKET_EXISTS');
          else if (m.keys.has(cmd.name))
            expectCode(() => parent.createBucket(unhex(cmd.name)), 'ERR_INCOMPATIBLE_VALUE');
          else {
            parent.createBucket(unhex(cmd.name));
            m.buckets.set(cmd.name, emptyBucket());
          }
          break;
        }
        case 'dropBucket': {
          const p = ps[cmd.at % ps.length]!;
          const m = modelAt(work, p);
          const parent = dbAt(tx, p);
          if (m.buckets.has(cmd.name)) {
            parent.deleteBucket(unhex(cmd.name));
            m.buckets.delete(cmd.name);
          } else if (m.keys.has(cmd.name))
            expectCode(() => parent.deleteBucket(unhex(cmd.name)), 'ERR_INCOMPATIBLE_VALUE');
          else expectCode(() => parent.deleteBucket(unhex(cmd.name)), 'ERR_BUCKET_NOT_FOUND');
          break;
        }
        case 'seq': {
          if (bucketPaths.length === 0) break;
          const p = bucketPaths[cmd.at % bucketPaths.length]!;
          const m = modelAt(work, p);
          assert.equal((dbAt(tx, p) as Bucket).nextSequence(), ++m.seq);
          break;
        }
        case 'walk': {
          const p = ps[cmd.at % ps.length]!;
          const m = modelAt(work, p);
          const c = dbAt(tx, p).cursor();
          let expected = modelEntries(m);
          const got: Array<[string, string | null]> = [];
          if (cmd.seek !== null) {
            const sk = unhex(cmd.seek);
            expected = expected.filter(([k]) => Buffer.compare(unhex(k), sk) >= 0);
            for (let e = c.seek(sk); e; e = c.next()) got.push([hex(e[0]), e[1] && hex(e[1])]);
            assert.deepEqual(got, expected);
            // Walking back from the end returns everything in reverse.
            const back: string[] = [];
            for (let e = c.prev(); e; e = c.prev()) back.push(hex(e[0]));
            assert.deepEqual(
              back,
              modelEntries(m)
                .map(([k]) => k)
                .reverse(),
            );
          } else if (cmd.backward) {
            for (let e = c.last(); e; e = c.prev()) got.push([hex(e[0]), e[1] && hex(e[1])]);
            assert.deepEqual(got, expected.reverse());
          } else {
            for (let e = c.first(); e; e = c.next()) got.push([hex(e[0]), e[1] && hex(e[1])]);
            assert.deepEqual(got, expected);
          }
          break;
        }
        case 'commit': {
          tx.commit();
          committed = clone(work);
          assert.deepEqual(db.check(), []);
          tx = db.begin(true);
          break;
        }
        case 'rollback': {
          tx.rollback();
          work = clone(committed);
          tx = db.begin(true);
          break;
        }
        case 'reopen': {
          tx.rollback();
          work = clone(committed);
          db.close();
          db = open(file, opts);
          reopenCheck();
          tx = db.begin(true);
          break;
        }
      }
    }
    tx.commit();
    committed = clone(work);
    reopenCheck();
    db.close();
    db = open(file, { ...opts, freelist: freelist === 'array' ? 'hashmap' : 'array' });
    reopenCheck();
  } finally {
    db.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

for (const freelist of ['hashmap', 'array'] as const) {
  test(`engine agrees with the model (${freelist} freelist)`, () => {
    fc.assert(
      fc.property(fc.array(cmdArb, { minLength: 10, maxLength: 80, size: 'max' }), (cmds) =>
        run(cmds, freelist, false),
      ),
      { numRuns: Number(process.env.BOLTKV_STRESS ? 1000 : 120) },
    );
  });
}

test('engine agrees with the model without a synced freelist', () => {
  fc.assert(
    fc.property(fc.array(cmdArb, { minLength: 10, maxLength: 80, size: 'max' }), (cmds) => run(cmds, 'hashmap', true)),
    { numRuns: Number(process.env.BOLTKV_STRESS ? 500 : 50) },
  );
});

// Replays one counterexample with its full error: BOLTKV_MODEL_REPLAY='[...]' node scripts/test.mjs model
if (process.env.BOLTKV_MODEL_REPLAY) {
  test('replay', () => run(JSON.parse(process.env.BOLTKV_MODEL_REPLAY!) as Cmd[], 'hashmap', false));
}
