/**
 * Drives boltkv with workload operations and reads a boltkv database back into the dump shape the
 * model and Go's boltdump use, so the three can be compared with one deepEqual.
 */
import type { Bucket, DB, Tx } from '../../src/bolt/index.ts';
import { expand, hex, unhex, type DumpBucket, type DumpEntry, type Hex, type Op } from './workload.ts';

function bucketAt(tx: Tx, path: readonly Hex[]): Bucket {
  let b: Bucket | undefined | null = path.length > 0 ? tx.bucket(unhex(path[0]!)) : undefined;
  for (const p of path.slice(1)) b = b?.bucket(unhex(p));
  if (!b) throw new Error(`workload: no bucket at ${path.join('/')}`);
  return b;
}

/** Apply one workload operation inside a writable transaction. */
export function applyOp(tx: Tx, op: Op): void {
  switch (op.op) {
    case 'createBucket':
    case 'createBucketIfNotExists':
    case 'deleteBucket': {
      const name = unhex(op.name);
      const parent = op.path.length === 0 ? tx : bucketAt(tx, op.path);
      if (op.op === 'createBucket') parent.createBucket(name);
      else if (op.op === 'createBucketIfNotExists') parent.createBucketIfNotExists(name);
      else parent.deleteBucket(name);
      return;
    }
    case 'put':
      bucketAt(tx, op.path).put(unhex(op.k), unhex(op.v));
      return;
    case 'delete':
      bucketAt(tx, op.path).delete(unhex(op.k));
      return;
    case 'setSequence':
      // u64 in the format; a bigint carries the whole range.
      bucketAt(tx, op.path).setSequence(BigInt(op.n));
      return;
    case 'nextSequence':
      bucketAt(tx, op.path).nextSequence();
      return;
    case 'fill':
    case 'unfill':
      for (const o of expand(op)) applyOp(tx, o);
      return;
  }
}

/** Apply each transaction with db.update; returns how many committed. */
export function applyTxs(db: DB, txs: readonly (readonly Op[])[]): number {
  let n = 0;
  for (const ops of txs) {
    db.update((tx) => {
      for (const op of ops) applyOp(tx, op);
    });
    n++;
  }
  return n;
}

/** The whole content of a database, walking cursors forward. */
export function dumpDb(db: DB, options: { verify?: boolean } = {}): DumpEntry[] {
  return db.view((tx) => dumpTx(tx, options.verify ?? true));
}

/**
 * Read every bucket and key in a transaction. With `verify`, also cross-check the reader: a
 * backward walk, get() and seek() must agree with the forward walk (any disagreement throws).
 */
export function dumpTx(tx: Tx, verify = true): DumpEntry[] {
  const out: DumpEntry[] = [];
  const c = tx.cursor();
  for (let e = c.first(); e; e = c.next()) {
    const [k] = e;
    const b = tx.bucket(k);
    if (!b) throw new Error(`root: ${hex(k)} listed but tx.bucket() finds nothing`);
    out.push({ k: hex(k), bucket: dumpBucket(b, verify) });
  }
  return out;
}

function dumpBucket(b: Bucket, verify: boolean): DumpBucket {
  const entries: DumpEntry[] = [];
  const c = b.cursor();
  for (let e = c.first(); e; e = c.next()) {
    const [k, v] = e;
    if (v === null) {
      const child = b.bucket(k);
      if (!child) throw new Error(`key ${hex(k)} has a null value but bucket() finds nothing`);
      entries.push({ k: hex(k), bucket: dumpBucket(child, verify) });
    } else {
      entries.push({ k: hex(k), v: hex(v) });
    }
  }
  if (verify) verifyBucket(b, entries);
  return { seq: b.sequenceBigInt().toString(), entries };
}

function verifyBucket(b: Bucket, entries: readonly DumpEntry[]): void {
  const back: Hex[] = [];
  const c = b.cursor();
  for (let e = c.last(); e; e = c.prev()) back.push(hex(e[0]));
  back.reverse();
  const fwd = entries.map((e) => e.k);
  if (back.join() !== fwd.join()) throw new Error(`backward walk differs from forward walk`);
  for (const e of entries) {
    const got = b.get(unhex(e.k));
    if (e.v !== undefined) {
      if (got == null || hex(got) !== e.v) throw new Error(`get(${e.k}) differs from the cursor's value`);
    } else if (got != null) {
      throw new Error(`get(${e.k}) of a sub-bucket returned a value`);
    }
    const s = b.cursor().seek(unhex(e.k));
    if (!s || hex(s[0]) !== e.k) throw new Error(`seek(${e.k}) did not land on it`);
  }
}

/**
 * Touch everything a reader can reach without judging what it finds: for corrupt files, where
 * content may be wrong but every call must either work or throw a BoltError.
 */
export function readEverything(tx: Tx): number {
  let n = 0;
  const walk = (b: Bucket, depth: number): void => {
    if (depth > 64) return;
    const c = b.cursor();
    for (let e = c.first(); e; e = c.next()) {
      n++;
      const [k, v] = e;
      if (v === null) {
        const child = b.bucket(k);
        if (child) walk(child, depth + 1);
      } else {
        b.get(k);
      }
    }
    for (let e = c.last(); e; e = c.prev()) n++;
    c.seek(new Uint8Array([0x6b]));
    b.sequenceBigInt();
  };
  const c = tx.cursor();
  for (let e = c.first(); e; e = c.next()) {
    const b = tx.bucket(e[0]);
    if (b) walk(b, 0);
  }
  return n;
}
