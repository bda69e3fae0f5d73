/**
 * Workloads shared by the interop, crash and corruption suites: a list of transactions of bucket
 * operations, the same JSON spec the Go writer (test/interop/go/boltwrite) reads, and an in-memory
 * model that says what a database must contain after applying a prefix of them. Bytes are
 * lowercase hex everywhere; hex order is byte order, so sorting hex strings sorts keys the way
 * bbolt does.
 */
import { Rng } from './rng.ts';

export type Hex = string;

export type Op =
  | { op: 'createBucket' | 'createBucketIfNotExists' | 'deleteBucket'; path: Hex[]; name: Hex }
  | { op: 'put'; path: Hex[]; k: Hex; v: Hex }
  | { op: 'delete'; path: Hex[]; k: Hex }
  | { op: 'setSequence'; path: Hex[]; n: string }
  | { op: 'nextSequence'; path: Hex[] }
  /** Put (fill) or delete (unfill) keys prefix‖u32be(i) for i in [start, start+count). */
  | { op: 'fill' | 'unfill'; path: Hex[]; prefix: Hex; start: number; count: number; valueLen: number; seed: number };

/** What boltwrite reads on stdin. */
export interface Spec {
  pageSize?: number;
  noFreelistSync?: boolean;
  freelist?: 'array' | 'hashmap';
  txs: Op[][];
}

/** Content of a database, in the shape boltdump prints. Entries are in key order. */
export interface DumpEntry {
  k: Hex;
  v?: Hex;
  bucket?: DumpBucket;
}
export interface DumpBucket {
  seq: string;
  entries: DumpEntry[];
}

export const hex = (b: Uint8Array): Hex => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
export const unhex = (h: Hex): Uint8Array => new Uint8Array(Buffer.from(h, 'hex'));
export const hexOf = (s: string): Hex => Buffer.from(s, 'utf8').toString('hex');

/** The generation rule of `fill`, identical to boltwrite's. */
export function fillKey(prefix: Uint8Array, i: number): Uint8Array {
  const k = new Uint8Array(prefix.length + 4);
  k.set(prefix);
  new DataView(k.buffer).setUint32(prefix.length, i >>> 0, false);
  return k;
}
export function fillValue(i: number, n: number, seed: number): Uint8Array {
  const v = new Uint8Array(n);
  for (let j = 0; j < n; j++) v[j] = (i * 31 + j * 7 + seed) & 0xff;
  return v;
}

/** Expand fill/unfill into plain puts/deletes (for engines driven op by op). */
export function* expand(op: Op): Generator<Op> {
  if (op.op !== 'fill' && op.op !== 'unfill') {
    yield op;
    return;
  }
  const prefix = unhex(op.prefix);
  for (let i = op.start; i < op.start + op.count; i++) {
    const k = hex(fillKey(prefix, i));
    if (op.op === 'fill') yield { op: 'put', path: op.path, k, v: hex(fillValue(i, op.valueLen, op.seed)) };
    else yield { op: 'delete', path: op.path, k };
  }
}

const U64_MAX = (1n << 64n) - 1n;

export class ModelBucket {
  seq = 0n;
  readonly kv = new Map<Hex, Hex | ModelBucket>();

  dump(): DumpBucket {
    return { seq: this.seq.toString(), entries: dumpEntries(this.kv) };
  }
  clone(): ModelBucket {
    const b = new ModelBucket();
    b.seq = this.seq;
    for (const [k, v] of this.kv) b.kv.set(k, typeof v === 'string' ? v : v.clone());
    return b;
  }
}

function dumpEntries(kv: Map<Hex, Hex | ModelBucket>): DumpEntry[] {
  return [...kv.keys()].sort().map((k) => {
    const v = kv.get(k)!;
    return typeof v === 'string' ? { k, v } : { k, bucket: v.dump() };
  });
}

/** The reference: what a bbolt database holds after a sequence of operations. */
export class Model {
  /** Top-level buckets (the root bucket holds only buckets). */
  readonly top = new Map<Hex, ModelBucket>();

  clone(): Model {
    const m = new Model();
    for (const [k, b] of this.top) m.top.set(k, b.clone());
    return m;
  }

  dump(): DumpEntry[] {
    return [...this.top.keys()].sort().map((k) => ({ k, bucket: this.top.get(k)!.dump() }));
  }

  /** The bucket at path, or undefined. */
  find(path: readonly Hex[]): ModelBucket | undefined {
    let b = path.length > 0 ? this.top.get(path[0]!) : undefined;
    for (const p of path.slice(1)) {
      const next = b?.kv.get(p);
      b = next instanceof ModelBucket ? next : undefined;
    }
    return b;
  }

  private at(path: readonly Hex[]): ModelBucket {
    const b = this.find(path);
    if (!b) throw new Error(`model: no bucket at ${path.join('/')}`);
    return b;
  }

  apply(op: Op): void {
    switch (op.op) {
      case 'createBucket':
      case 'createBucketIfNotExists':
      case 'deleteBucket': {
        const kv: Map<Hex, Hex | ModelBucket> =
          op.path.length === 0 ? (this.top as Map<Hex, Hex | ModelBucket>) : this.at(op.path).kv;
        const cur = kv.get(op.name);
        if (op.op === 'deleteBucket') {
          if (!(cur instanceof ModelBucket)) throw new Error(`model: deleteBucket of missing ${op.name}`);
          kv.delete(op.name);
        } else if (cur === undefined) {
          kv.set(op.name, new ModelBucket());
        } else if (op.op === 'createBucket' || typeof cur === 'string') {
          throw new Error(`model: ${op.op} over existing ${op.name}`);
        }
        return;
      }
      case 'put': {
        const b = this.at(op.path);
        if (b.kv.get(op.k) instanceof ModelBucket) throw new Error(`model: put over bucket ${op.k}`);
        b.kv.set(op.k, op.v);
        return;
      }
      case 'delete': {
        const b = this.at(op.path);
        if (b.kv.get(op.k) instanceof ModelBucket) throw new Error(`model: delete of bucket ${op.k}`);
        b.kv.delete(op.k);
        return;
      }
      case 'setSequence':
        this.at(op.path).seq = BigInt(op.n);
        return;
      case 'nextSequence': {
        const b = this.at(op.path);
        b.seq = b.seq === U64_MAX ? 0n : b.seq + 1n;
        return;
      }
      case 'fill':
      case 'unfill':
        for (const o of expand(op)) this.apply(o);
        return;
    }
  }
}

/**
 * Canonical text of a dump, for comparing states cheaply (Map lookups) and printing diffs.
 */
export function canon(d: readonly DumpEntry[]): string {
  return JSON.stringify(d);
}

/** The states after 0, 1, ..., txs.length transactions, as canonical strings. */
export function committedStates(txs: readonly (readonly Op[])[], start = new Model()): string[] {
  const m = start.clone();
  const out = [canon(m.dump())];
  for (const tx of txs) {
    for (const op of tx) m.apply(op);
    out.push(canon(m.dump()));
  }
  return out;
}

export interface GenOptions {
  txs: number;
  /** Operations per transaction: uniform in [1, maxOps]. */
  maxOps: number;
  /** Distinct keys per bucket; small so puts overwrite and deletes hit. */
  keySpace?: number;
  /** Probability that a value is big enough to need overflow pages. */
  bigValueRate?: number;
  pageSize?: number;
}

/**
 * A random, valid workload over nested buckets: every operation is legal in the state the
 * preceding ones produce (the generator consults a scratch model), so the engine must accept all
 * of it and any error it throws is a finding.
 */
export function generate(rng: Rng, opts: GenOptions): Op[][] {
  const keySpace = opts.keySpace ?? 40;
  const bigRate = opts.bigValueRate ?? 0.05;
  const pageSize = opts.pageSize ?? 4096;
  const m = new Model();
  const txs: Op[][] = [];
  const names = ['a', 'b', 'c'].map(hexOf);
  const subNames = ['x', 'y'].map(hexOf);

  const bucketPaths = (): Hex[][] => {
    const out: Hex[][] = [];
    const visit = (path: Hex[], b: ModelBucket): void => {
      out.push(path);
      for (const [k, v] of b.kv) if (v instanceof ModelBucket && path.length < 3) visit([...path, k], v);
    };
    for (const [k, b] of m.top) visit([k], b);
    return out;
  };
  const value = (): Hex => {
    const n = rng.bool(bigRate) ? rng.int(pageSize, pageSize * 3 + 100) : rng.int(0, 80);
    return hex(rng.bytes(n));
  };
  const key = (): Hex =>
    hexOf(
      `k${rng
        .int(0, keySpace - 1)
        .toString()
        .padStart(3, '0')}`,
    );

  for (let t = 0; t < opts.txs; t++) {
    const ops: Op[] = [];
    const n = rng.int(1, opts.maxOps);
    for (let i = 0; i < n; i++) {
      const paths = bucketPaths();
      let op: Op | undefined;
      const r = rng.next();
      if (paths.length === 0 || r < 0.06) {
        const name = rng.pick(names);
        op = m.top.has(name)
          ? { op: 'createBucketIfNotExists', path: [], name }
          : { op: 'createBucket', path: [], name };
      } else {
        const path = rng.pick(paths);
        const b = m.find(path)!;
        if (r < 0.1) {
          const name = rng.pick(subNames);
          const cur = b.kv.get(name);
          if (cur === undefined) op = { op: 'createBucket', path, name };
          else if (cur instanceof ModelBucket) op = { op: 'deleteBucket', path, name };
        } else if (r < 0.12) {
          if (path.length === 1 && rng.bool(0.3)) op = { op: 'deleteBucket', path: [], name: path[0]! };
        } else if (r < 0.16) {
          op = rng.bool() ? { op: 'nextSequence', path } : { op: 'setSequence', path, n: String(rng.int(0, 1e9)) };
        } else if (r < 0.4) {
          const k = key();
          if (!(b.kv.get(k) instanceof ModelBucket)) op = { op: 'delete', path, k };
        } else {
          const k = key();
          if (!(b.kv.get(k) instanceof ModelBucket)) op = { op: 'put', path, k, v: value() };
        }
      }
      if (op) {
        m.apply(op);
        ops.push(op);
      }
    }
    if (ops.length === 0) {
      const op: Op = { op: 'createBucketIfNotExists', path: [], name: names[0]! };
      m.apply(op);
      ops.push(op);
    }
    txs.push(ops);
  }
  return txs;
}
