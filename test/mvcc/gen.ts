/**
 * fast-check generators of etcd request sequences, shared by the model test and the differential
 * test against a real etcd. Requests use string keys (ASCII) so the model can work on strings.
 * Revisions in ranges and compactions are relative (`back` from the current revision) and are
 * resolved when the step runs, so shrinking keeps them meaningful.
 */
import fc from 'fast-check';
import type { MCompare, MDelete, MOp, MPut, MRange, MTxn } from './etcd-model.ts';

export const KEYS = ['a', 'ab', 'b', 'c', 'd', 'e'] as const;
const keyArb = fc.constantFrom(...KEYS);
const valueArb = fc.constantFrom('', 'x', 'y', 'zz');
const endArb = fc.oneof(
  { weight: 3, arbitrary: fc.constant<string | undefined>(undefined) },
  { weight: 1, arbitrary: fc.constant('\0') },
  { weight: 2, arbitrary: fc.constantFrom('b', 'c', 'e', 'f') },
);

/** A range with a relative revision: `revBack` from the current revision, or the next (future) one. */
export type RRange = Omit<MRange, 'revision'> & { rev?: { back: number } | 'future' };

export const rangeArb: fc.Arbitrary<RRange> = fc.record(
  {
    key: keyArb,
    rangeEnd: endArb,
    limit: fc.constantFrom(0, 1, 2),
    rev: fc.oneof(
      { weight: 4, arbitrary: fc.constant(undefined) },
      { weight: 3, arbitrary: fc.nat(10).map((back) => ({ back })) },
      { weight: 1, arbitrary: fc.constant('future' as const) },
    ),
    sortOrder: fc.constantFrom(undefined, 'NONE' as const, 'ASCEND' as const, 'DESCEND' as const),
    sortTarget: fc.constantFrom(
      undefined,
      'KEY' as const,
      'MOD' as const,
      'CREATE' as const,
      'VERSION' as const,
      'VALUE' as const,
    ),
    keysOnly: fc.boolean(),
    countOnly: fc.boolean(),
    minModRevision: fc.constantFrom(0, 0, 3),
    maxCreateRevision: fc.constantFrom(0, 0, 5),
  },
  { requiredKeys: ['key'] },
);

export const putArb: fc.Arbitrary<MPut> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ key: keyArb, value: valueArb, prevKv: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ key: keyArb, ignoreValue: fc.constant(true), prevKv: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ key: fc.constant(''), value: valueArb }) },
);

export const deleteArb: fc.Arbitrary<MDelete> = fc.record({ key: keyArb, rangeEnd: endArb, prevKv: fc.boolean() });

const compareArb: fc.Arbitrary<MCompare> = fc.oneof(
  fc.record({
    key: keyArb,
    target: fc.constant('VALUE' as const),
    result: fc.constantFrom('EQUAL' as const, 'NOT_EQUAL' as const, 'GREATER' as const, 'LESS' as const),
    value: valueArb,
  }),
  fc.record({
    key: keyArb,
    rangeEnd: endArb,
    target: fc.constant('VERSION' as const),
    result: fc.constantFrom('EQUAL' as const, 'NOT_EQUAL' as const, 'GREATER' as const, 'LESS' as const),
    version: fc.nat(3),
  }),
  // only the operand matching the target is set: etcd's target_union is a oneof
  fc
    .record({
      key: keyArb,
      target: fc.constantFrom('CREATE' as const, 'MOD' as const),
      result: fc.constantFrom('EQUAL' as const, 'GREATER' as const, 'LESS' as const),
      n: fc.nat(6),
    })
    .map(({ n, ...c }): MCompare => (c.target === 'CREATE' ? { ...c, createRevision: n } : { ...c, modRevision: n })),
);

/** Txn ops; ranges inside use absolute small revisions so they hit the pre-check paths too. */
const txnOpArb = (depth: number): fc.Arbitrary<MOp> => {
  const leaf: fc.Arbitrary<MOp>[] = [
    rangeArb.map((r) => {
      const { rev, ...rest } = r;
      return { requestRange: { ...rest, revision: typeof rev === 'object' ? rev.back : 0 } };
    }),
    putArb.filter((p) => p.key !== '').map((p) => ({ requestPut: p })),
    deleteArb.map((d) => ({ requestDeleteRange: d })),
  ];
  if (depth <= 0) return fc.oneof(...leaf);
  return fc.oneof(
    ...leaf,
    txnArb(depth - 1).map((t) => ({ requestTxn: t })),
  );
};

export const txnArb = (depth = 2): fc.Arbitrary<MTxn> =>
  fc.record({
    compare: fc.array(compareArb, { maxLength: 2 }),
    success: fc.array(txnOpArb(depth), { maxLength: 3 }),
    failure: fc.array(txnOpArb(depth), { maxLength: 3 }),
  });

export type Step =
  | { t: 'range'; r: RRange }
  | { t: 'put'; r: MPut }
  | { t: 'delete'; r: MDelete }
  | { t: 'txn'; r: MTxn }
  | { t: 'compact'; back: number }
  | { t: 'reopen' };

export const stepArb = (withReopen: boolean): fc.Arbitrary<Step> =>
  fc.oneof(
    { weight: 6, arbitrary: putArb.map((r) => ({ t: 'put' as const, r })) },
    { weight: 4, arbitrary: rangeArb.map((r) => ({ t: 'range' as const, r })) },
    { weight: 2, arbitrary: deleteArb.map((r) => ({ t: 'delete' as const, r })) },
    { weight: 3, arbitrary: txnArb().map((r) => ({ t: 'txn' as const, r })) },
    { weight: 2, arbitrary: fc.integer({ min: -1, max: 3 }).map((back) => ({ t: 'compact' as const, back })) },
    { weight: withReopen ? 1 : 0, arbitrary: fc.constant({ t: 'reopen' as const }) },
  );

/** Resolve a relative range against the current revision. */
export function resolveRange(r: RRange, current: number): MRange {
  const { rev, ...rest } = r;
  if (rev === undefined) return rest;
  if (rev === 'future') return { ...rest, revision: current + 1 };
  return { ...rest, revision: Math.max(1, current - rev.back) };
}

/** Plain-JSON form of a boltkv response: Uint8Array → latin1 string (the model's representation). */
export function plain(v: unknown): unknown {
  if (v instanceof Uint8Array) return Buffer.from(v).toString('latin1');
  if (Array.isArray(v)) return v.map(plain);
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) if (x !== undefined) out[k] = plain(x);
    return out;
  }
  return v;
}
