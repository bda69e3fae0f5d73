/**
 * The workloads both interop directions use: one large spec that touches every storage feature
 * (100k keys, nested/inline/deep buckets, overflow values, deletes, sequences, many commits) and
 * small random ones. Shared so boltkv→Go and Go→boltkv test the same shapes.
 */
import { Rng } from '../support/rng.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generate, hexOf, Model, type Op } from '../support/workload.ts';

const h = hexOf;

/** Large values: one that fits a page, and several that need 2, 5, 25 and 250 pages. */
const BIG_SIZES = [3000, 5000, 20_000, 100_000, 1_000_000];

export function bigSpecTxs(): Op[][] {
  const txs: Op[][] = [
    [
      { op: 'createBucket', path: [], name: h('main') },
      { op: 'fill', path: [h('main')], prefix: h('key-'), start: 0, count: 100_000, valueLen: 16, seed: 1 },
      { op: 'setSequence', path: [h('main')], n: '9007199254740991' },
    ],
    [
      { op: 'createBucket', path: [], name: h('nest') },
      { op: 'createBucket', path: [h('nest')], name: h('tiny') },
      { op: 'put', path: [h('nest'), h('tiny')], k: h('a'), v: h('alpha') },
      { op: 'put', path: [h('nest'), h('tiny')], k: h('b'), v: '' },
      { op: 'createBucket', path: [h('nest')], name: h('deep') },
      { op: 'fill', path: [h('nest'), h('deep')], prefix: h('d'), start: 0, count: 3000, valueLen: 40, seed: 2 },
      { op: 'createBucket', path: [h('nest'), h('deep')], name: h('deeper') },
      { op: 'put', path: [h('nest'), h('deep'), h('deeper')], k: h('x'), v: h('inline inside deep') },
      { op: 'createBucket', path: [h('nest'), h('deep'), h('deeper')], name: h('empty') },
      { op: 'nextSequence', path: [h('nest'), h('deep')] },
      { op: 'nextSequence', path: [h('nest'), h('deep')] },
      { op: 'createBucket', path: [], name: h('big') },
      ...BIG_SIZES.map(
        (n, i): Op => ({
          op: 'fill',
          path: [h('big')],
          prefix: h(`big${i}`),
          start: 0,
          count: 1,
          valueLen: n,
          seed: i,
        }),
      ),
      { op: 'createBucket', path: [], name: h('empty top') },
    ],
    [
      { op: 'unfill', path: [h('main')], prefix: h('key-'), start: 20_000, count: 30_000, valueLen: 0, seed: 0 },
      { op: 'unfill', path: [h('big')], prefix: h('big3'), start: 0, count: 1, valueLen: 0, seed: 0 },
      { op: 'put', path: [h('main')], k: h('key-'), v: h('shortest key with the prefix') },
      { op: 'deleteBucket', path: [h('nest')], name: h('tiny') },
    ],
  ];
  // Several small commits on top, each changing a little everywhere.
  for (let i = 0; i < 8; i++) {
    txs.push([
      {
        op: 'fill',
        path: [h('main')],
        prefix: h('key-'),
        start: 20_000 + i * 100,
        count: 50,
        valueLen: 8 + i,
        seed: 10 + i,
      },
      { op: 'put', path: [h('nest'), h('deep'), h('deeper')], k: h(`x${i}`), v: h(`v${i}`) },
      { op: 'nextSequence', path: [h('big')] },
      { op: 'delete', path: [h('nest'), h('deep')], k: '64' + (i * 7).toString(16).padStart(8, '0') },
    ]);
  }
  return txs;
}

/** A random nested workload, for breadth. */
export function randomTxs(seed: number): Op[][] {
  return generate(new Rng(seed), { txs: 25, maxOps: 60, keySpace: 300, bigValueRate: 0.05 });
}

/** 1 KiB pages and a 70 MB value: deleting it frees ~70k pages at once, past the 0xFFFF count. */
export function bigFreelistTxs(): Op[][] {
  return [
    [
      { op: 'createBucket', path: [], name: '62' },
      { op: 'fill', path: ['62'], prefix: '76', start: 0, count: 1, valueLen: 70 << 20, seed: 5 },
      { op: 'put', path: ['62'], k: '6b', v: '01' },
    ],
    [{ op: 'unfill', path: ['62'], prefix: '76', start: 0, count: 1, valueLen: 0, seed: 0 }],
    [{ op: 'put', path: ['62'], k: '6c', v: '02' }],
  ];
}

/** The content a list of transactions should leave behind. */
export function modelOf(txs: readonly Op[][]): Model {
  const m = new Model();
  for (const tx of txs) for (const op of tx) m.apply(op);
  return m;
}

/** Run fn in a fresh temp dir, removed afterwards. */
export function inTmp(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'boltkv-interop-'));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
